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

use crate::sdp::{Direction, MediaSection, SdpError, SessionDescription};

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
    fn name(self) -> &'static str {
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
}

/// What descriptions need from the rest of the stack.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    /// `a=fingerprint` value, e.g. `sha-256 AB:…`.
    pub fingerprint: String,
    /// Candidate lines (without `a=`), if any.
    pub candidates: Vec<String>,
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
    ufrag: String,
    pwd: String,
    restart: bool,
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
            restart: false,
            random,
            next_mid: 0,
            transport,
        }
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

    /// The ICE credentials the next description carries.
    pub fn ice_credentials(&self) -> (&str, &str) {
        (&self.ufrag, &self.pwd)
    }

    /// addTransceiver.
    pub fn add_transceiver(&mut self, kind: MediaKind, direction: Direction) -> usize {
        self.transceivers.push(Transceiver {
            kind,
            direction,
            current_direction: None,
            mid: None,
            stopped: false,
        });
        self.transceivers.len() - 1
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
        s.push_str("a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n");
        s
    }

    fn transport_lines(&self, setup: &str) -> String {
        let mut s = format!("c=IN IP4 0.0.0.0\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=ice-options:trickle\r\na=fingerprint:{}\r\na=setup:{setup}\r\n", self.ufrag, self.pwd, self.transport.fingerprint);
        for c in &self.transport.candidates {
            s.push_str(&format!("a={c}\r\n"));
        }
        s
    }

    fn media_section(&self, kind: MediaKind, mid: &str, dir: Direction, setup: &str) -> String {
        let fmts = match kind {
            MediaKind::Audio => "111",
            MediaKind::Video => "96 97",
        };
        let mut s = format!("m={} 9 UDP/TLS/RTP/SAVPF {fmts}\r\n", kind.name());
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
        s
    }

    fn data_section(&self, mid: &str, setup: &str) -> String {
        format!("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n{}a=mid:{mid}\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n", self.transport_lines(setup))
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
        if self.restart {
            self.ufrag = (self.random)(8);
            self.pwd = (self.random)(24);
            self.restart = false;
        }
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
                Slot::Data(mid) => self.data_section(mid, "actpass"),
                Slot::Rejected(k, p, f, mid) => Self::rejected_section(k, p, f, mid),
            });
        }
        self.last_created = Some(sdp.clone());
        Ok(sdp)
    }

    /// createAnswer (have-remote-offer or have-local-pranswer).
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
        let offered_bundle = offer.bundle().unwrap_or_default();
        let mut body = String::new();
        let mut accepted = Vec::new();
        for m in &offer.media {
            let line = m.media_line()?;
            let mid = m.mid().unwrap_or_default().to_owned();
            let kind = match line.kind.as_str() {
                "audio" => Some(MediaKind::Audio),
                "video" => Some(MediaKind::Video),
                _ => None,
            };
            if line.port == 0 {
                body.push_str(&Self::rejected_section(
                    &line.kind,
                    &line.proto,
                    &line.formats.join(" "),
                    &mid,
                ));
                continue;
            }
            match kind {
                Some(k) => {
                    // The transceiver with this mid, else the first unassociated one of
                    // the kind, else a new recvonly one (RFC 8829 §5.10).
                    let i = match self
                        .transceivers
                        .iter()
                        .position(|t| t.mid.as_deref() == Some(&mid))
                    {
                        Some(i) => i,
                        None => match self
                            .transceivers
                            .iter()
                            .position(|t| t.mid.is_none() && !t.stopped && t.kind == k)
                        {
                            Some(i) => i,
                            None => self.add_transceiver(k, Direction::RecvOnly),
                        },
                    };
                    self.transceivers[i].mid = Some(mid.clone());
                    let t = &self.transceivers[i];
                    if t.stopped {
                        body.push_str(&Self::rejected_section(
                            &line.kind,
                            &line.proto,
                            &line.formats.join(" "),
                            &mid,
                        ));
                        continue;
                    }
                    let dir = intersect(t.direction, m.direction().reverse());
                    body.push_str(&self.media_section(k, &mid, dir, "active"));
                    accepted.push(mid);
                }
                None if line.formats.first().map(String::as_str) == Some("webrtc-datachannel")
                    && self.data_mid.as_deref().is_none_or(|d| d == mid) =>
                {
                    self.data_mid = Some(mid.clone());
                    body.push_str(&self.data_section(&mid, "active"));
                    accepted.push(mid);
                }
                None => body.push_str(&Self::rejected_section(
                    &line.kind,
                    &line.proto,
                    &line.formats.join(" "),
                    &mid,
                )),
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
                self.pending_local = Some(desc);
                HaveLocalOffer
            }
            (HaveRemoteOffer | HaveLocalPranswer, SdpType::Pranswer) => {
                self.pending_local = Some(desc);
                HaveLocalPranswer
            }
            (HaveRemoteOffer | HaveLocalPranswer, SdpType::Answer) => {
                self.apply_answer(&desc, true);
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
                self.pending_remote = Some(desc);
                HaveRemoteOffer
            }
            (HaveLocalOffer | HaveRemotePranswer, SdpType::Pranswer) => {
                self.pending_remote = Some(desc);
                HaveRemotePranswer
            }
            (HaveLocalOffer | HaveRemotePranswer, SdpType::Answer) => {
                self.apply_answer(&desc, false);
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
            HaveLocalOffer => self.pending_local = None,
            HaveRemoteOffer => self.pending_remote = None,
            s => return Err(JsepError::InvalidState(s)),
        }
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
