//! JSEP (RFC 8829) as libwebrtc builds it: createOffer / createAnswer /
//! setLocalDescription / setRemoteDescription with the signaling states, pending
//! and current descriptions, transceivers with directions, mid generation,
//! m-line recycling for rejected and stopped sections, the data m-section last,
//! BUNDLE and rtcp-mux, ICE restart with new credentials, session version
//! increments, and rollback.
//!
//! The engine is synchronous: each call is one operation applied in order, which
//! is the operations chain of the asynchronous browser API. Randomness for ICE
//! credentials and the session id comes in through [`Jsep::new`].

pub mod codecs;

use crate::sdp::{Candidate, Direction, MediaSection, SdpError, SessionDescription, Setup};
use std::net::SocketAddr;

/// JSEP errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsepError {
    #[error("invalid in signaling state {0:?}")]
    InvalidState(SignalingState),
    #[error("bad SDP: {0}")]
    Sdp(#[from] SdpError),
    #[error("the description is not the last one created")]
    Modified,
    #[error("no such transceiver")]
    NoTransceiver,
}

/// RFC 8829 §3.2 signaling states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    Stable,
    HaveLocalOffer,
    HaveRemoteOffer,
    HaveLocalPranswer,
    HaveRemotePranswer,
    Closed,
}

/// Description types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpType {
    Offer,
    Pranswer,
    Answer,
    Rollback,
}

/// Media kinds of transceivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// `audio` or `video`, as SDP names it.
    pub fn name(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// An RTCRtpTransceiver's negotiation state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transceiver {
    pub kind: MediaKind,
    pub direction: Direction,
    /// Negotiated direction, after an answer.
    pub current_direction: Option<Direction>,
    pub mid: Option<String>,
    pub stopped: bool,
    /// What it sends with, when it sends: the SSRC and, for video, the RTX
    /// SSRC (`a=ssrc`, `a=ssrc-group:FID` in its section).
    pub send_ssrc: Option<(u32, Option<u32>)>,
}

/// What descriptions need from the rest of the stack.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    /// `a=fingerprint` value, e.g. `sha-256 AB:…`.
    pub fingerprint: String,
    /// Candidates written in every section; `a=end-of-candidates` follows when
    /// `end_of_candidates` is set (no trickling).
    pub candidates: Vec<Candidate>,
    pub end_of_candidates: bool,
    /// The default candidate (RFC 8839 §4.2.1.2): the m= port and c= address;
    /// port 9 and 0.0.0.0 without one.
    pub default_address: Option<SocketAddr>,
    /// `a=ice-lite` at session level (RFC 8839 §5.3).
    pub ice_lite: bool,
    /// `a=ice-options` values.
    pub ice_options: Vec<String>,
    /// Our `a=max-message-size` (RFC 8841).
    pub max_message_size: usize,
}

impl LocalTransport {
    /// libwebrtc's defaults: trickle ICE, no candidates yet, 256 KiB messages.
    pub fn new(fingerprint: String) -> Self {
        Self {
            fingerprint,
            candidates: Vec::new(),
            end_of_candidates: false,
            default_address: None,
            ice_lite: false,
            ice_options: vec!["trickle".into()],
            max_message_size: 262_144,
        }
    }
}

/// What an answer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerPolicy {
    /// Audio, video and data, as a browser answers.
    All,
    /// The data section only; audio and video sections are rejected (port 0),
    /// and no transceiver is created for them.
    DataOnly,
}

/// What an answer may keep beyond what the engine knows: a relay answers a
/// viewer with only the formats its publisher sends, and only the header
/// extensions it rewrites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFilter {
    /// Formats `(encoding, fmtp)` an audio answer may keep; `None`: all known.
    pub audio: Option<Vec<(String, Option<String>)>>,
    /// The same for video (RTX of a kept codec stays).
    pub video: Option<Vec<(String, Option<String>)>>,
    /// Header extension URIs an answer may keep; `None`: all known.
    pub extensions: Option<Vec<String>>,
    /// List the formats browsers decode first ([`codecs::prefer_decodable`]):
    /// a relay answers its publishers this way, so they send what viewers play.
    pub prefer_decodable: bool,
}

impl AnswerFilter {
    /// `negotiated` without what the filter leaves out for `kind`.
    fn apply(&self, kind: MediaKind, mut n: codecs::Negotiated) -> codecs::Negotiated {
        let formats = match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        };
        if let Some(f) = formats {
            let kept: Vec<u8> = n
                .codecs
                .iter()
                .filter(|c| !c.encoding.eq_ignore_ascii_case("rtx"))
                .filter(|c| {
                    f.iter().any(|(e, p)| {
                        c.encoding.eq_ignore_ascii_case(e)
                            && codecs::same_format(e, c.fmtp.as_deref(), p.as_deref())
                    })
                })
                .map(|c| c.payload_type)
                .collect();
            n.codecs.retain(|c| {
                kept.contains(&c.payload_type)
                    || (c.encoding.eq_ignore_ascii_case("rtx")
                        && codecs::rtx_apt(c).is_some_and(|a| kept.contains(&a)))
            });
        }
        if let Some(x) = &self.extensions {
            n.extensions.retain(|e| x.contains(&e.uri));
        }
        if self.prefer_decodable {
            codecs::prefer_decodable(&mut n);
        }
        n
    }
}

/// The DTLS role this side has negotiated (RFC 8842): kept across re-offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsSide {
    Client,
    Server,
}

/// The JSEP engine of one peer connection.
pub struct Jsep {
    state: SignalingState,
    transceivers: Vec<Transceiver>,
    data_channel: bool,
    data_mid: Option<String>,
    pending_local: Option<SessionDescription>,
    current_local: Option<SessionDescription>,
    pending_remote: Option<SessionDescription>,
    current_remote: Option<SessionDescription>,
    /// mids of transceivers proposed by the last created offer (index → mid).
    proposed: Vec<(usize, String)>,
    proposed_data_mid: Option<String>,
    last_created: Option<String>,
    session_id: u64,
    session_version: u64,
    /// Credentials of the current local description (or the first one to come).
    ufrag: String,
    pwd: String,
    /// New credentials written by the last created description (an ICE restart,
    /// ours or the remote's); they take effect when that description is applied.
    pending_creds: Option<(String, String)>,
    /// The credentials an applied, not yet answered restarting offer replaced.
    rollback_creds: Option<(String, String)>,
    /// restartIce() was called and no restarting offer has been applied since.
    restart: bool,
    /// Transceivers created by the pending remote offer (removed if it is rolled back).
    remote_created: Vec<usize>,
    dtls_side: Option<DtlsSide>,
    /// The role a first answer to an actpass offer takes.
    answer_side: DtlsSide,
    policy: AnswerPolicy,
    filter: AnswerFilter,
    /// The `a=msid` stream id of the tracks we send (`-`: none).
    msid_stream: String,
    random: Box<dyn FnMut(usize) -> String + Send>,
    next_mid: u32,
    transport: LocalTransport,
}

impl std::fmt::Debug for Jsep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jsep")
            .field("state", &self.state)
            .field("transceivers", &self.transceivers)
            .field("data_mid", &self.data_mid)
            .finish_non_exhaustive()
    }
}

const AUDIO: &[&str] = &[
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
];
const VIDEO: &[&str] = &[
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtcp-fb:96 ccm fir",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
];

impl Jsep {
    /// A new engine. `random(n)` returns `n` random ICE characters; it also seeds the session id.
    pub fn new(
        transport: LocalTransport,
        mut random: Box<dyn FnMut(usize) -> String + Send>,
    ) -> Self {
        let ufrag = random(8);
        let pwd = random(24);
        let session_id = random(18)
            .bytes()
            .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
            >> 1;
        Self {
            state: SignalingState::Stable,
            transceivers: Vec::new(),
            data_channel: false,
            data_mid: None,
            pending_local: None,
            current_local: None,
            pending_remote: None,
            current_remote: None,
            proposed: Vec::new(),
            proposed_data_mid: None,
            last_created: None,
            session_id,
            session_version: 1,
            ufrag,
            pwd,
            pending_creds: None,
            rollback_creds: None,
            restart: false,
            remote_created: Vec::new(),
            dtls_side: None,
            answer_side: DtlsSide::Client,
            policy: AnswerPolicy::All,
            filter: AnswerFilter::default(),
            msid_stream: "-".into(),
            random,
            next_mid: 0,
            transport,
        }
    }

    /// An engine with given ICE credentials and `o=` session id (an answering
    /// host draws them itself); `random` serves later ICE restarts.
    pub fn with_identity(
        transport: LocalTransport,
        ufrag: String,
        pwd: String,
        session_id: u64,
        random: Box<dyn FnMut(usize) -> String + Send>,
    ) -> Self {
        let mut j = Self::new(transport, random);
        j.ufrag = ufrag;
        j.pwd = pwd;
        j.session_id = session_id;
        j
    }

    /// Signaling state.
    pub fn state(&self) -> SignalingState {
        self.state
    }

    /// Transceivers in the order they were added.
    pub fn transceivers(&self) -> &[Transceiver] {
        &self.transceivers
    }

    /// Pending or current local description.
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.pending_local.as_ref().or(self.current_local.as_ref())
    }

    /// Pending or current remote description.
    pub fn remote_description(&self) -> Option<&SessionDescription> {
        self.pending_remote
            .as_ref()
            .or(self.current_remote.as_ref())
    }

    /// Current (negotiated) descriptions.
    pub fn current(&self) -> (Option<&SessionDescription>, Option<&SessionDescription>) {
        (self.current_local.as_ref(), self.current_remote.as_ref())
    }

    /// Pending descriptions.
    pub fn pending(&self) -> (Option<&SessionDescription>, Option<&SessionDescription>) {
        (self.pending_local.as_ref(), self.pending_remote.as_ref())
    }

    /// The ICE credentials of the last created description (pending ones if it
    /// restarts ICE), else the current ones.
    pub fn ice_credentials(&self) -> (&str, &str) {
        match &self.pending_creds {
            Some((u, p)) => (u, p),
            None => (&self.ufrag, &self.pwd),
        }
    }

    /// The DTLS role negotiated so far, if any.
    pub fn dtls_side(&self) -> Option<DtlsSide> {
        self.dtls_side
    }

    /// The role a first answer to an actpass offer takes: client (active, as
    /// libwebrtc, the default) or server (passive, as ICE-lite servers answer).
    pub fn set_answer_side(&mut self, side: DtlsSide) {
        self.answer_side = side;
    }

    /// What answers accept (default: everything).
    pub fn set_answer_policy(&mut self, policy: AnswerPolicy) {
        self.policy = policy;
    }

    /// Narrows what answers keep (formats, header extensions).
    pub fn set_answer_filter(&mut self, filter: AnswerFilter) {
        self.filter = filter;
    }

    /// The `a=msid` stream id our sending tracks are announced in (one
    /// stream: a viewer plays them together).
    pub fn set_msid_stream(&mut self, id: &str) {
        self.msid_stream = id.to_owned();
    }

    /// addTransceiver.
    pub fn add_transceiver(&mut self, kind: MediaKind, direction: Direction) -> usize {
        self.transceivers.push(Transceiver {
            kind,
            direction,
            current_direction: None,
            mid: None,
            stopped: false,
            send_ssrc: None,
        });
        self.transceivers.len() - 1
    }

    /// The SSRC (and RTX SSRC) a transceiver sends with, announced in its section.
    pub fn set_send_ssrc(
        &mut self,
        t: usize,
        ssrc: u32,
        rtx: Option<u32>,
    ) -> Result<(), JsepError> {
        self.transceivers
            .get_mut(t)
            .ok_or(JsepError::NoTransceiver)?
            .send_ssrc = Some((ssrc, rtx));
        Ok(())
    }

    /// createDataChannel (the first one adds the data m-section at the next offer).
    pub fn create_data_channel(&mut self) {
        self.data_channel = true;
    }

    /// Changes a transceiver's direction.
    pub fn set_direction(&mut self, t: usize, d: Direction) -> Result<(), JsepError> {
        self.transceivers
            .get_mut(t)
            .ok_or(JsepError::NoTransceiver)?
            .direction = d;
        Ok(())
    }

    /// transceiver.stop(): its m-section is rejected (port 0) in the next offer.
    pub fn stop_transceiver(&mut self, t: usize) -> Result<(), JsepError> {
        self.transceivers
            .get_mut(t)
            .ok_or(JsepError::NoTransceiver)?
            .stopped = true;
        Ok(())
    }

    /// restartIce(): the next offer carries new credentials.
    pub fn restart_ice(&mut self) {
        self.restart = true;
    }

    fn used_mids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .transceivers
            .iter()
            .filter_map(|t| t.mid.clone())
            .collect();
        v.extend(self.data_mid.clone());
        for d in [
            &self.current_local,
            &self.current_remote,
            &self.pending_local,
            &self.pending_remote,
        ]
        .into_iter()
        .flatten()
        {
            v.extend(d.media.iter().filter_map(|m| m.mid().map(str::to_owned)));
        }
        v
    }

    fn generate_mid(&mut self) -> String {
        let used = self.used_mids();
        loop {
            let m = self.next_mid.to_string();
            self.next_mid += 1;
            if !used.contains(&m)
                && !self.proposed.iter().any(|(_, p)| *p == m)
                && self.proposed_data_mid.as_deref() != Some(&m)
            {
                return m;
            }
        }
    }

    fn rejected_in_current(&self, mid: &str) -> bool {
        [&self.current_local, &self.current_remote]
            .into_iter()
            .flatten()
            .any(|d| {
                d.media_by_mid(mid)
                    .is_some_and(|m| m.media_line().is_ok_and(|l| l.port == 0))
            })
    }

    fn session_header(&mut self, mids: &[String]) -> String {
        self.session_version += 1;
        let mut s = format!(
            "v=0\r\no=- {} {} IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
            self.session_id, self.session_version
        );
        if !mids.is_empty() {
            s.push_str(&format!("a=group:BUNDLE {}\r\n", mids.join(" ")));
        }
        if self.transport.ice_lite {
            s.push_str("a=ice-lite\r\n");
        }
        s.push_str("a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n");
        s
    }

    fn connection_line(&self) -> String {
        match self.transport.default_address {
            Some(SocketAddr::V4(a)) => format!("c=IN IP4 {}\r\n", a.ip()),
            Some(SocketAddr::V6(a)) => format!("c=IN IP6 {}\r\n", a.ip()),
            None => "c=IN IP4 0.0.0.0\r\n".to_owned(),
        }
    }

    fn port(&self) -> u16 {
        self.transport.default_address.map_or(9, |a| a.port())
    }

    fn transport_lines(&self, setup: &str) -> String {
        let (ufrag, pwd) = self.ice_credentials();
        let mut s = self.connection_line();
        s.push_str(&format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"));
        if !self.transport.ice_options.is_empty() {
            s.push_str(&format!(
                "a=ice-options:{}\r\n",
                self.transport.ice_options.join(" ")
            ));
        }
        s.push_str(&format!(
            "a=fingerprint:{}\r\na=setup:{setup}\r\n",
            self.transport.fingerprint
        ));
        s
    }

    fn candidate_lines(&self) -> String {
        let mut s = String::new();
        for c in &self.transport.candidates {
            s.push_str(&format!("a=candidate:{}\r\n", c.to_value()));
        }
        if self.transport.end_of_candidates {
            s.push_str("a=end-of-candidates\r\n");
        }
        s
    }

    fn media_section(&self, kind: MediaKind, mid: &str, dir: Direction, setup: &str) -> String {
        let fmts = match kind {
            MediaKind::Audio => "111",
            MediaKind::Video => "96 97",
        };
        let mut s = format!(
            "m={} {} UDP/TLS/RTP/SAVPF {fmts}\r\n",
            kind.name(),
            self.port()
        );
        s.push_str(&self.transport_lines(setup));
        s.push_str(&format!(
            "a=mid:{mid}\r\na={}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n",
            dir.as_str()
        ));
        for l in if kind == MediaKind::Audio {
            AUDIO
        } else {
            VIDEO
        } {
            s.push_str(l);
            s.push_str("\r\n");
        }
        s.push_str(&self.candidate_lines());
        s
    }

    /// An answer's media section with the negotiated codecs (the offer's
    /// payload types), header extensions (the offer's ids) and, when we send,
    /// an `a=msid` (RFC 8829 §5.3.1).
    #[allow(clippy::too_many_arguments)]
    fn answer_media_section(
        &self,
        t: &Transceiver,
        proto: &str,
        mid: &str,
        dir: Direction,
        setup: &str,
        n: &codecs::Negotiated,
        rsize: bool,
    ) -> String {
        let (kind, ssrc) = (t.kind, t.send_ssrc);
        let fmts: Vec<String> = n
            .codecs
            .iter()
            .map(|c| c.payload_type.to_string())
            .collect();
        let mut s = format!(
            "m={} {} {proto} {}\r\n",
            kind.name(),
            self.port(),
            fmts.join(" ")
        );
        s.push_str(&self.transport_lines(setup));
        s.push_str(&format!("a=mid:{mid}\r\n"));
        for e in &n.extensions {
            s.push_str(&format!("a=extmap:{} {}\r\n", e.id, e.uri));
        }
        s.push_str(&format!("a={}\r\n", dir.as_str()));
        let sends = matches!(dir, Direction::SendRecv | Direction::SendOnly);
        let track = format!("softbus-{mid}");
        if sends {
            s.push_str(&format!("a=msid:{} {track}\r\n", self.msid_stream));
        }
        s.push_str("a=rtcp-mux\r\n");
        // Reduced-size RTCP only when the offer proposed it (RFC 5506 §5).
        if rsize {
            s.push_str("a=rtcp-rsize\r\n");
        }
        for c in &n.codecs {
            s.push_str(&c.lines());
        }
        // RFC 5576 ssrc lines (libwebrtc writes them; receivers that demux by
        // SSRC, like aiortc, need them). RTX only when an RTX codec is kept.
        if let (true, Some((ssrc, rtx))) = (sends, ssrc) {
            let has_rtx = n
                .codecs
                .iter()
                .any(|c| c.encoding.eq_ignore_ascii_case("rtx"));
            let rtx = rtx.filter(|_| has_rtx);
            if let Some(r) = rtx {
                s.push_str(&format!("a=ssrc-group:FID {ssrc} {r}\r\n"));
            }
            for x in std::iter::once(ssrc).chain(rtx) {
                s.push_str(&format!(
                    "a=ssrc:{x} cname:softbus\r\na=ssrc:{x} msid:{} {track}\r\n",
                    self.msid_stream
                ));
            }
        }
        s.push_str(&self.candidate_lines());
        s
    }

    fn data_section(&self, proto: &str, mid: &str, setup: &str) -> String {
        format!(
            "m=application {} {proto} webrtc-datachannel\r\n{}a=mid:{mid}\r\na=sctp-port:5000\r\na=max-message-size:{}\r\n{}",
            self.port(),
            self.transport_lines(setup),
            self.transport.max_message_size,
            self.candidate_lines()
        )
    }

    fn rejected_section(kind: &str, proto: &str, fmts: &str, mid: &str) -> String {
        format!("m={kind} 0 {proto} {fmts}\r\nc=IN IP4 0.0.0.0\r\na=mid:{mid}\r\na=inactive\r\n")
    }

    /// createOffer (stable or have-local-offer).
    pub fn create_offer(&mut self) -> Result<String, JsepError> {
        if !matches!(
            self.state,
            SignalingState::Stable | SignalingState::HaveLocalOffer
        ) {
            return Err(JsepError::InvalidState(self.state));
        }
        // restartIce(): new credentials, in effect once this offer is applied
        // (RFC 8829 §4.1.10); an offer created and discarded restarts nothing.
        self.pending_creds = if self.restart {
            Some(((self.random)(8), (self.random)(24)))
        } else {
            None
        };
        // Sections of the current description keep their place.
        enum Slot {
            Transceiver(usize, String),
            Data(String),
            Rejected(String, String, String, String),
        }
        let mut slots: Vec<Slot> = Vec::new();
        let mut recyclable = std::collections::VecDeque::new();
        let existing: Vec<MediaSection> = self
            .local_description()
            .or(self.remote_description())
            .map(|d| d.media.clone())
            .unwrap_or_default();
        for m in &existing {
            let mid = m.mid().unwrap_or_default().to_owned();
            let line = m.media_line()?;
            if Some(&mid) == self.data_mid.as_ref() && !self.rejected_in_current(&mid) {
                slots.push(Slot::Data(mid));
                continue;
            }
            match self
                .transceivers
                .iter()
                .position(|t| t.mid.as_deref() == Some(&mid))
            {
                Some(i) if !self.transceivers[i].stopped && !self.rejected_in_current(&mid) => {
                    slots.push(Slot::Transceiver(i, mid))
                }
                found => {
                    // Stopped, rejected or orphaned: rejected now, recyclable once negotiated as rejected.
                    if self.rejected_in_current(&mid) {
                        recyclable.push_back(slots.len());
                        if let Some(i) = found {
                            self.transceivers[i].mid = None;
                        }
                    }
                    slots.push(Slot::Rejected(
                        line.kind.clone(),
                        line.proto.clone(),
                        line.formats.join(" "),
                        mid,
                    ));
                }
            }
        }
        // New transceivers: recycled sections first, then appended, in the order added.
        self.proposed.clear();
        for i in 0..self.transceivers.len() {
            let t = &self.transceivers[i];
            if t.mid.is_some() || t.stopped {
                continue;
            }
            let mid = self.generate_mid();
            self.proposed.push((i, mid.clone()));
            match recyclable.pop_front() {
                Some(at) => slots[at] = Slot::Transceiver(i, mid),
                None => slots.push(Slot::Transceiver(i, mid)),
            }
        }
        // The data m-section is last.
        self.proposed_data_mid = None;
        if self.data_channel && self.data_mid.is_none() {
            let mid = self.generate_mid();
            self.proposed_data_mid = Some(mid.clone());
            slots.push(Slot::Data(mid));
        }
        let bundle: Vec<String> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Transceiver(_, m) | Slot::Data(m) => Some(m.clone()),
                Slot::Rejected(..) => None,
            })
            .collect();
        let mut sdp = self.session_header(&bundle);
        for s in &slots {
            sdp.push_str(&match s {
                Slot::Transceiver(i, mid) => {
                    let t = &self.transceivers[*i];
                    self.media_section(t.kind, mid, t.direction, "actpass")
                }
                Slot::Data(mid) => self.data_section("UDP/DTLS/SCTP", mid, "actpass"),
                Slot::Rejected(k, p, f, mid) => Self::rejected_section(k, p, f, mid),
            });
        }
        self.last_created = Some(sdp.clone());
        Ok(sdp)
    }

    /// createAnswer (have-remote-offer or have-local-pranswer). Transceivers were
    /// associated when the offer was applied; the policy decides what is accepted.
    pub fn create_answer(&mut self) -> Result<String, JsepError> {
        if !matches!(
            self.state,
            SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer
        ) {
            return Err(JsepError::InvalidState(self.state));
        }
        let offer = self
            .pending_remote
            .clone()
            .ok_or(JsepError::InvalidState(self.state))?;
        // A remote ICE restart (new ufrag/pwd on a transport we already had) is
        // answered with new credentials too (RFC 8445 §9, RFC 8839 §4.4.1.1.1).
        self.pending_creds = if self.remote_restarts(&offer) {
            Some(((self.random)(8), (self.random)(24)))
        } else {
            None
        };
        let setup = self.answer_setup(&offer)?;
        let offered_bundle = offer.bundle().unwrap_or_default();
        let mut body = String::new();
        let mut accepted = Vec::new();
        for m in &offer.media {
            let line = m.media_line()?;
            let mid = m.mid().unwrap_or_default().to_owned();
            let rejected =
                || Self::rejected_section(&line.kind, &line.proto, &line.formats.join(" "), &mid);
            if offer.is_rejected(m) {
                body.push_str(&rejected());
                continue;
            }
            match media_kind(&line.kind) {
                Some(k) => {
                    let t = self
                        .transceivers
                        .iter()
                        .find(|t| t.mid.as_deref() == Some(&mid));
                    let caps = match k {
                        MediaKind::Audio => codecs::AUDIO_CODECS,
                        MediaKind::Video => codecs::VIDEO_CODECS,
                    };
                    let negotiated = self.filter.apply(k, codecs::negotiate(m, caps)?);
                    match t {
                        Some(t)
                            if !t.stopped
                                && self.policy == AnswerPolicy::All
                                && !negotiated.codecs.is_empty() =>
                        {
                            let dir = intersect(t.direction, m.direction().reverse());
                            body.push_str(&self.answer_media_section(
                                t,
                                &line.proto,
                                &mid,
                                dir,
                                setup,
                                &negotiated,
                                m.rtcp_rsize(),
                            ));
                            accepted.push(mid);
                        }
                        _ => body.push_str(&rejected()),
                    }
                }
                None if line.formats.first().map(String::as_str) == Some("webrtc-datachannel")
                    && self.data_mid.as_deref().is_none_or(|d| d == mid) =>
                {
                    self.data_mid = Some(mid.clone());
                    body.push_str(&self.data_section(&line.proto, &mid, setup));
                    accepted.push(mid);
                }
                None => body.push_str(&rejected()),
            }
        }
        let bundle: Vec<String> = accepted
            .into_iter()
            .filter(|m| offered_bundle.contains(m))
            .collect();
        let mut sdp = self.session_header(&bundle);
        sdp.push_str(&body);
        self.last_created = Some(sdp.clone());
        Ok(sdp)
    }

    /// Whether `offer` restarts ICE: a transport we negotiated before with other
    /// credentials now.
    fn remote_restarts(&self, offer: &SessionDescription) -> bool {
        let Some(current) = &self.current_remote else {
            return false;
        };
        let creds = |d: &SessionDescription| {
            d.media
                .iter()
                .find(|m| m.media_line().is_ok_and(|l| l.port != 0))
                .map(|m| {
                    (
                        d.ice_ufrag(m).map(str::to_owned),
                        d.ice_pwd(m).map(str::to_owned),
                    )
                })
        };
        matches!((creds(current), creds(offer)), (Some(a), Some(b)) if a != b)
    }

    /// Our a=setup in an answer (RFC 8842 §5.2-5.3): the opposite of an offer that
    /// says active or passive; for actpass the role negotiated before is kept, and
    /// the first time it is [`Jsep::set_answer_side`]'s (active by default).
    fn answer_setup(&self, offer: &SessionDescription) -> Result<&'static str, JsepError> {
        let offered = offer
            .media
            .iter()
            .find(|m| m.media_line().is_ok_and(|l| l.port != 0))
            .map(MediaSection::setup)
            .transpose()?
            .flatten();
        Ok(
            match (offered, self.dtls_side.unwrap_or(self.answer_side)) {
                (Some(Setup::Active), _) => "passive",
                (Some(Setup::Passive), _) => "active",
                (_, DtlsSide::Server) => "passive",
                (_, DtlsSide::Client) => "active",
            },
        )
    }

    /// Associates the transceivers with a remote offer's sections (RFC 8829
    /// §5.10): the one with the mid, else the first unassociated one of the kind,
    /// else a new recvonly one, which a rollback removes again.
    fn associate_remote_offer(&mut self, offer: &SessionDescription) -> Result<(), JsepError> {
        if self.policy == AnswerPolicy::DataOnly {
            return Ok(());
        }
        for m in &offer.media {
            let line = m.media_line()?;
            let Some(k) = media_kind(&line.kind) else {
                continue;
            };
            if offer.is_rejected(m) {
                continue;
            }
            let mid = m.mid().unwrap_or_default().to_owned();
            if self
                .transceivers
                .iter()
                .any(|t| t.mid.as_deref() == Some(&mid))
            {
                continue;
            }
            let i = match self
                .transceivers
                .iter()
                .position(|t| t.mid.is_none() && !t.stopped && t.kind == k)
            {
                Some(i) => i,
                None => {
                    let i = self.add_transceiver(k, Direction::RecvOnly);
                    self.remote_created.push(i);
                    i
                }
            };
            self.transceivers[i].mid = Some(mid);
        }
        Ok(())
    }

    /// Records the DTLS role an applied answer gives us.
    fn learn_dtls_side(&mut self, answer: &SessionDescription, answer_is_local: bool) {
        let setup = answer
            .media
            .iter()
            .find(|m| m.media_line().is_ok_and(|l| l.port != 0))
            .and_then(|m| m.setup().ok().flatten());
        // A missing a=setup in an answer means active (RFC 4145 §4).
        let answerer_active = !matches!(setup, Some(Setup::Passive));
        self.dtls_side = Some(if answerer_active == answer_is_local {
            DtlsSide::Client
        } else {
            DtlsSide::Server
        });
    }

    /// The credentials of the description just applied take effect.
    fn commit_creds(&mut self) {
        if let Some((u, p)) = self.pending_creds.take() {
            self.rollback_creds = Some((
                std::mem::replace(&mut self.ufrag, u),
                std::mem::replace(&mut self.pwd, p),
            ));
        }
    }

    /// setLocalDescription. The description must be the last one created.
    pub fn set_local_description(&mut self, t: SdpType, sdp: &str) -> Result<(), JsepError> {
        use SignalingState::*;
        if t == SdpType::Rollback {
            return self.rollback();
        }
        if self.last_created.as_deref() != Some(sdp) {
            return Err(JsepError::Modified);
        }
        let desc = SessionDescription::parse(sdp)?;
        self.state = match (self.state, t) {
            (Stable | HaveLocalOffer, SdpType::Offer) => {
                for (i, mid) in std::mem::take(&mut self.proposed) {
                    self.transceivers[i].mid = Some(mid);
                }
                if let Some(m) = self.proposed_data_mid.take() {
                    self.data_mid = Some(m);
                }
                if self.pending_creds.is_some() {
                    self.restart = false;
                }
                self.rollback_creds = None;
                self.commit_creds();
                self.pending_local = Some(desc);
                HaveLocalOffer
            }
            (HaveRemoteOffer | HaveLocalPranswer, SdpType::Pranswer) => {
                self.pending_local = Some(desc);
                HaveLocalPranswer
            }
            (HaveRemoteOffer | HaveLocalPranswer, SdpType::Answer) => {
                self.apply_answer(&desc, true);
                self.learn_dtls_side(&desc, true);
                self.commit_creds();
                self.rollback_creds = None;
                self.remote_created.clear();
                self.current_local = Some(desc);
                self.current_remote = self.pending_remote.take();
                self.pending_local = None;
                Stable
            }
            (s, _) => return Err(JsepError::InvalidState(s)),
        };
        Ok(())
    }

    /// setRemoteDescription.
    pub fn set_remote_description(&mut self, t: SdpType, sdp: &str) -> Result<(), JsepError> {
        use SignalingState::*;
        if t == SdpType::Rollback {
            return self.rollback();
        }
        let desc = SessionDescription::parse(sdp)?;
        self.state = match (self.state, t) {
            (Stable | HaveRemoteOffer, SdpType::Offer) => {
                self.associate_remote_offer(&desc)?;
                self.pending_remote = Some(desc);
                HaveRemoteOffer
            }
            (HaveLocalOffer | HaveRemotePranswer, SdpType::Pranswer) => {
                self.pending_remote = Some(desc);
                HaveRemotePranswer
            }
            (HaveLocalOffer | HaveRemotePranswer, SdpType::Answer) => {
                self.apply_answer(&desc, false);
                self.learn_dtls_side(&desc, false);
                self.rollback_creds = None;
                self.current_remote = Some(desc);
                self.current_local = self.pending_local.take();
                self.pending_remote = None;
                Stable
            }
            (s, _) => return Err(JsepError::InvalidState(s)),
        };
        Ok(())
    }

    fn apply_answer(&mut self, answer: &SessionDescription, answer_is_local: bool) {
        for m in &answer.media {
            let Some(mid) = m.mid() else { continue };
            let rejected = m.media_line().is_ok_and(|l| l.port == 0);
            if let Some(t) = self
                .transceivers
                .iter_mut()
                .find(|t| t.mid.as_deref() == Some(mid))
            {
                t.current_direction = if rejected {
                    t.stopped = true;
                    None
                } else if answer_is_local {
                    Some(m.direction())
                } else {
                    Some(m.direction().reverse())
                };
            }
        }
    }

    fn rollback(&mut self) -> Result<(), JsepError> {
        use SignalingState::*;
        match self.state {
            HaveLocalOffer => {
                self.pending_local = None;
                // A rolled-back restarting offer restarts nothing: the old
                // credentials are back and restartIce() is still pending.
                if let Some((u, p)) = self.rollback_creds.take() {
                    self.ufrag = u;
                    self.pwd = p;
                    self.restart = true;
                }
            }
            HaveRemoteOffer => {
                self.pending_remote = None;
                // Transceivers the offer created go with it (RFC 8829 §4.1.10.2).
                for i in std::mem::take(&mut self.remote_created).into_iter().rev() {
                    if i < self.transceivers.len() {
                        self.transceivers.remove(i);
                    }
                }
            }
            s => return Err(JsepError::InvalidState(s)),
        }
        self.pending_creds = None;
        // mids given out by the rolled-back offer (or by an answer we created for a
        // rolled-back remote offer) are unassigned again; negotiated ones stay.
        let keep: Vec<String> = [&self.current_local, &self.current_remote]
            .into_iter()
            .flatten()
            .flat_map(|d| d.media.iter().filter_map(|m| m.mid().map(str::to_owned)))
            .collect();
        for t in &mut self.transceivers {
            if t.mid.as_ref().is_some_and(|m| !keep.contains(m)) {
                t.mid = None;
            }
        }
        if self.data_mid.as_ref().is_some_and(|m| !keep.contains(m)) {
            self.data_mid = None;
        }
        self.state = Stable;
        Ok(())
    }

    /// close().
    pub fn close(&mut self) {
        self.state = SignalingState::Closed;
    }
}

/// The transceiver kind of an `m=` media name.
pub fn media_kind(kind: &str) -> Option<MediaKind> {
    match kind {
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    }
}

/// Answer direction: what we want, limited by what the offerer allows (RFC 8829 §5.3.1).
fn intersect(local: Direction, offered_reversed: Direction) -> Direction {
    let send = matches!(local, Direction::SendRecv | Direction::SendOnly)
        && matches!(offered_reversed, Direction::SendRecv | Direction::SendOnly);
    let recv = matches!(local, Direction::SendRecv | Direction::RecvOnly)
        && matches!(offered_reversed, Direction::SendRecv | Direction::RecvOnly);
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}
