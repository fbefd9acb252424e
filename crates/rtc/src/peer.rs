//! The [`Peer`] facade for the node's answering role: answers an offer as an
//! ICE-lite, DTLS-passive endpoint with one host candidate, then demultiplexes
//! (RFC 7983) what arrives on its port into ICE, DTLS and SCTP, and reports
//! data channel events.
//!
//! An answer accepts the data channel section and, as [`MediaAnswer`] says,
//! rejects media sections (port 0), receives them (a WHIP publisher) or sends
//! on them (a WHEP viewer); media datagrams go up as [`PeerEvent::Media`],
//! still protected. The offering side (node to node) builds its offer and applies the answer
//! through the [`crate::jsep`] engine.

use crate::crypto::Hmac;
use crate::demux::{classify, PacketKind};
use crate::dtls::{DtlsEvent, DtlsFactory, DtlsRole, DtlsState, DtlsTransport};
use crate::ice::agent::{AgentConfig, IceAgent};
use crate::ice::{Credentials, IceEvent, IceLite, IceState, Via};
use crate::jsep::codecs::{self, Codec, Extension};
use crate::jsep::{
    media_kind, AnswerFilter, AnswerPolicy, DtlsSide, Jsep, JsepError, LocalTransport, MediaKind,
    SdpType, SignalingState,
};
use crate::sctp::{ChannelEvent, DataChannels, DEFAULT_MAX_MESSAGE};
use crate::sdp::{Candidate, Direction, Fingerprint, SdpAnswer, SdpError, SdpOffer, Setup};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Why an offer cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("bad SDP: {0}")]
    Sdp(#[from] SdpError),
    #[error("the offer has no data channel section")]
    NoDataChannel,
    /// A media answer found no audio or video section it could accept.
    #[error("the offer has no audio or video section with a codec this node carries")]
    NoMedia,
    /// A sending answer: the offer has a section for the stream's `kind` but
    /// takes none of its formats (the viewer would get no picture).
    #[error("the stream's {kind} is {stream}; this offer takes none of it (it offers {offered})")]
    NoCommonFormat {
        kind: &'static str,
        /// The stream's formats, as people read them.
        stream: String,
        /// What the offer's section lists.
        offered: String,
    },
    #[error("the offer lacks {0}")]
    Missing(&'static str),
    /// A value the description may not carry (RFC 8839, 8841, 8843).
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("signaling: {0}")]
    Jsep(#[from] JsepError),
}

/// What the peer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// ICE, DTLS and SCTP are up (ICE and DTLS for a peer without data channels).
    Connected,
    ChannelOpen {
        id: u16,
        label: String,
    },
    Message {
        id: u16,
        binary: bool,
        data: Vec<u8>,
    },
    ChannelClosed {
        id: u16,
    },
    /// DTLS-SRTP negotiated a profile: the master keys of both directions
    /// (for [`crate::srtp::Context::from_dtls`]).
    SrtpKeys(crate::dtls::SrtpKeys),
    /// An SRTP or SRTCP datagram from the selected pair, still protected.
    Media(Vec<u8>),
    /// Failed, lost or closed; why.
    Closed(CloseReason),
}

/// Events a peer holds before it drops media datagrams (logged), so a flood
/// cannot grow the queue when nobody reads it.
pub const MAX_QUEUED_EVENTS: usize = 4096;

/// Why a peer connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    #[error("closed locally")]
    Local,
    /// The signaling side ended it (`DELETE /rtc/<id>`).
    #[error("closed by DELETE")]
    Deleted,
    #[error("ICE consent expired")]
    ConsentExpired,
    /// Every candidate pair failed.
    #[error("ICE failed: no candidate pair connected")]
    IceFailed,
    #[error("DTLS: {0}")]
    Dtls(#[from] crate::dtls::DtlsError),
    /// The SCTP association failed or was lost (sctp-proto's reason).
    #[error("SCTP: {0}")]
    Sctp(crate::sctp::Lost),
    /// ICE did not connect in time after the answer.
    #[error("ICE did not connect in time")]
    ConnectTimeout,
    /// The peer closed DTLS with close_notify.
    #[error("closed by the peer")]
    RemoteClosed,
    /// The node is shutting down.
    #[error("node shutting down")]
    Shutdown,
    /// A viewer's stream ended: its publisher left and none came back in time.
    #[error("the stream ended")]
    StreamEnded,
}

impl CloseReason {
    /// Whether this side ended the connection on purpose and told the peer.
    pub fn told_peer(&self) -> bool {
        self.tells_peer()
    }

    /// Whether this side ends the connection on purpose, and tells the peer.
    fn tells_peer(&self) -> bool {
        matches!(
            self,
            CloseReason::Local
                | CloseReason::Deleted
                | CloseReason::Shutdown
                | CloseReason::StreamEnded
        )
    }
}

/// Checks what RFC 8839, 8841 and 8843 require of a description before any of it
/// is used: `a=ice-pwd` beside `a=ice-ufrag` for the data section, an
/// `a=sctp-port` in 1..=65535, and no control character in any `a=mid`.
fn check_strict(
    sdp: &crate::sdp::SessionDescription,
    data: &crate::sdp::MediaSection,
) -> Result<(), PeerError> {
    for m in &sdp.media {
        for mid in m.attribute_values("mid") {
            let mid = mid.ok_or(PeerError::Invalid("a=mid without a value"))?;
            if mid.is_empty() || mid.chars().any(char::is_control) {
                return Err(PeerError::Invalid(
                    "a=mid: empty or with a control character",
                ));
            }
        }
    }
    sdp.ice_pwd(data).ok_or(PeerError::Missing("a=ice-pwd"))?;
    for port in data.attribute_values("sctp-port") {
        let ok = port
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| (1..=65535).contains(&p));
        if !ok {
            return Err(PeerError::Invalid("a=sctp-port: not in 1..=65535"));
        }
    }
    Ok(())
}

/// What an answer does with audio and video sections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MediaAnswer {
    /// Data channels only: media sections are rejected.
    #[default]
    Reject,
    /// Receive audio and video (recvonly), every codec the relay carries.
    Receive,
    /// Send these tracks (sendonly), and nothing else.
    Send(SendPlan),
}

/// The tracks a sending answer offers a viewer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendPlan {
    pub tracks: Vec<SendTrack>,
    /// Header extension URIs the sender writes.
    pub extensions: Vec<String>,
    /// The `a=msid` stream the tracks belong to.
    pub stream: String,
}

/// One track of a [`SendPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTrack {
    pub kind: MediaKind,
    /// The formats `(encoding, fmtp)` the track may carry.
    pub formats: Vec<(String, Option<String>)>,
    pub ssrc: u32,
    pub rtx_ssrc: Option<u32>,
}

/// An accepted audio or video section, as the answer negotiated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTrack {
    pub mid: String,
    pub kind: MediaKind,
    /// Our direction (the answer's `a=sendonly` or `a=recvonly`).
    pub direction: Direction,
    /// Payload types and formats (the offer's numbers), RTX included.
    pub codecs: Vec<Codec>,
    /// Header extensions by the offer's ids.
    pub extensions: Vec<Extension>,
    /// The SSRCs the offer announced for the section (`a=ssrc`).
    pub remote_ssrcs: Vec<u32>,
    /// What we send with, if we send.
    pub send_ssrc: Option<(u32, Option<u32>)>,
    /// Both sides agreed on reduced-size RTCP (`a=rtcp-rsize` in offer and
    /// answer); otherwise every RTCP packet sent is compound (RFC 5506 §5).
    pub rtcp_rsize: bool,
}

/// A sending answer's refusal: a track of the stream whose kind the offer
/// wants (a section of that kind, not rejected) but none of whose formats it
/// takes. Silently answering without it would show no picture while
/// signalling says all is well.
fn no_common_format(
    offer: &SdpOffer,
    plan: &SendPlan,
    tracks: &[MediaTrack],
) -> Result<(), PeerError> {
    for t in &plan.tracks {
        let wanted = offer.media.iter().find(|m| {
            !offer.is_rejected(m)
                && m.media_line()
                    .is_ok_and(|l| media_kind(&l.kind) == Some(t.kind))
        });
        let Some(section) = wanted else { continue };
        if tracks
            .iter()
            .any(|a| a.kind == t.kind && a.send_ssrc.is_some())
        {
            continue;
        }
        // What the section offers, one entry per encoding (H264 with its
        // profile-level-ids), without the repair formats.
        let fmtps = section.fmtps().unwrap_or_default();
        let mut offered: Vec<(String, Vec<String>)> = Vec::new();
        for m in section.rtpmaps().unwrap_or_default() {
            let enc = m.encoding.clone();
            if ["rtx", "red", "ulpfec", "flexfec-03"]
                .iter()
                .any(|r| enc.eq_ignore_ascii_case(r))
            {
                continue;
            }
            let profile = enc
                .eq_ignore_ascii_case("H264")
                .then(|| {
                    fmtps
                        .iter()
                        .find(|f| f.payload_type == m.payload_type)
                        .and_then(|f| codecs::fmtp_param(&f.params, "profile-level-id"))
                })
                .flatten();
            match offered
                .iter_mut()
                .find(|(e, _)| e.eq_ignore_ascii_case(&enc))
            {
                Some((_, ps)) => ps.extend(profile.filter(|p| !ps.contains(p))),
                None => offered.push((enc, profile.into_iter().collect())),
            }
        }
        let offered: Vec<String> = offered
            .into_iter()
            .map(|(e, ps)| match ps.is_empty() {
                true => e,
                false => format!("{e} ({})", ps.join(", ")),
            })
            .collect();
        return Err(PeerError::NoCommonFormat {
            kind: t.kind.name(),
            stream: t
                .formats
                .iter()
                .map(|(e, f)| codecs::format_name(e, f.as_deref()))
                .collect::<Vec<_>>()
                .join(", "),
            offered: if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            },
        });
    }
    Ok(())
}

/// The accepted media sections of an answer.
fn media_tracks(offer: &SdpOffer, answer: &str, sends: &[SendTrack]) -> Vec<MediaTrack> {
    let Ok(a) = SdpAnswer::parse(answer) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in &a.media {
        let Ok(line) = m.media_line() else { continue };
        let Some(kind) = media_kind(&line.kind) else {
            continue;
        };
        if line.port == 0 {
            continue;
        }
        let caps = match kind {
            MediaKind::Audio => codecs::AUDIO_CODECS,
            MediaKind::Video => codecs::VIDEO_CODECS,
        };
        let Ok(n) = codecs::negotiate(m, caps) else {
            continue;
        };
        let mid = m.mid().unwrap_or_default().to_owned();
        let mut remote_ssrcs: Vec<u32> = offer
            .media_by_mid(&mid)
            .and_then(|o| o.ssrcs().ok())
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.ssrc)
            .collect();
        remote_ssrcs.dedup();
        let direction = m.direction();
        let send_ssrc = matches!(direction, Direction::SendOnly | Direction::SendRecv)
            .then(|| sends.iter().find(|t| t.kind == kind))
            .flatten()
            .map(|t| (t.ssrc, t.rtx_ssrc));
        out.push(MediaTrack {
            mid,
            kind,
            direction,
            codecs: n.codecs,
            extensions: n.extensions,
            remote_ssrcs,
            send_ssrc,
            rtcp_rsize: m.rtcp_rsize(),
        });
    }
    out
}

/// What this side answers with.
#[derive(Debug, Clone)]
pub struct LocalParams {
    /// The host candidate (the node's address and its WebRTC UDP port).
    pub candidate: SocketAddr,
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub fingerprint: Fingerprint,
    /// `o=` session id.
    pub session_id: u64,
    /// Full ICE instead of ICE-lite, with the candidates gathered beyond the host one.
    pub full_ice: Option<FullIce>,
}

pub use crate::ice::candidates::{
    candidate_priority, local_candidates, FullIce, HOST_PREFERENCE, PRFLX_PREFERENCE,
    RELAY_PREFERENCE, SRFLX_PREFERENCE,
};

/// One answered peer connection.
/// The ICE side of a peer: lite when answering, full (controlling) when offering.
enum Ice {
    Lite(IceLite),
    /// Offer sent; the agent starts when the answer brings the remote credentials.
    AwaitingAnswer(Credentials, u64),
    /// Answered as a full agent; it starts with [`Peer::start_ice`].
    Answered(AgentConfig),
    Full(IceAgent),
}

impl Ice {
    fn handle_stun(&mut self, now: Instant, via: Via, from: SocketAddr, data: &[u8], h: &dyn Hmac) {
        // A rejected check or response is answered or dropped by the agent; it
        // changes nothing here.
        let _ = match self {
            // A lite agent has only its host candidate.
            Ice::Lite(a) if via == Via::Host => a.handle_stun(now, from, data, h),
            Ice::Full(a) => a.handle_stun(now, via, from, data, h),
            Ice::Lite(_) | Ice::AwaitingAnswer(..) | Ice::Answered(_) => Ok(()),
        };
    }
    fn handle_timeout(&mut self, now: Instant, h: &dyn Hmac) {
        match self {
            Ice::Lite(a) => a.handle_timeout(now),
            Ice::Full(a) => a.handle_timeout(now, h),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => {}
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Ice::Lite(a) => a.poll_timeout(),
            Ice::Full(a) => a.poll_timeout(),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => None,
        }
    }
    fn poll_transmit(&mut self) -> Option<(Via, SocketAddr, Vec<u8>)> {
        match self {
            Ice::Lite(a) => a.poll_transmit().map(|(to, b)| (Via::Host, to, b)),
            Ice::Full(a) => a.poll_transmit(),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => None,
        }
    }
    fn poll_event(&mut self) -> Option<IceEvent> {
        match self {
            Ice::Lite(a) => a.poll_event(),
            Ice::Full(a) => a.poll_event(),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => None,
        }
    }
    fn state(&self) -> IceState {
        match self {
            Ice::Lite(a) => a.state(),
            Ice::Full(a) => a.state(),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => IceState::New,
        }
    }
    fn close(&mut self) {
        match self {
            Ice::Lite(a) => a.close(),
            Ice::Full(a) => a.close(),
            Ice::AwaitingAnswer(..) | Ice::Answered(_) => {}
        }
    }
}

pub struct Peer {
    ice: Ice,
    dtls: DtlsTransport,
    sctp: DataChannels,
    /// The offering side's signaling state; `None` when answering.
    jsep: Option<Jsep>,
    selected: Option<(Via, SocketAddr)>,
    transmits: VecDeque<(Via, SocketAddr, Vec<u8>)>,
    events: VecDeque<PeerEvent>,
    closed: bool,
    /// Whether the answer accepted a data section (SCTP runs over DTLS).
    data: bool,
    /// The accepted audio and video sections.
    media: Vec<MediaTrack>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("ice", &self.ice.state())
            .field("dtls", &self.dtls.state())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Answers `offer` through the JSEP engine with the data-only policy: the
    /// answer keeps the offer's mids and order, accepts the first
    /// `webrtc-datachannel` section and rejects media (port 0); ICE-lite with one
    /// host candidate and end-of-candidates. `random(n)` gives `n` ICE characters
    /// for a later ICE restart.
    pub fn answer(
        offer: &SdpOffer,
        local: &LocalParams,
        factory: Box<dyn DtlsFactory>,
        random: Box<dyn FnMut(usize) -> String + Send>,
    ) -> Result<(Self, String), PeerError> {
        Self::answer_media(offer, local, factory, random, MediaAnswer::Reject)
    }

    /// Answers `offer` as [`Peer::answer`] does, with its audio and video
    /// sections as `media` says. The ICE and DTLS parameters come from the
    /// data section, else the first media section (BUNDLE: one transport).
    pub fn answer_media(
        offer: &SdpOffer,
        local: &LocalParams,
        factory: Box<dyn DtlsFactory>,
        random: Box<dyn FnMut(usize) -> String + Send>,
        media: MediaAnswer,
    ) -> Result<(Self, String), PeerError> {
        let usable = |m: &&crate::sdp::MediaSection, data: bool| {
            m.media_line().is_ok_and(|l| {
                let is_data = l.proto.ends_with("DTLS/SCTP")
                    && l.formats.first().map(String::as_str) == Some("webrtc-datachannel");
                let is_media = media_kind(&l.kind).is_some() && l.proto.contains("RTP/SAVPF");
                !offer.is_rejected(m) && if data { is_data } else { is_media }
            })
        };
        let data_section = offer.media.iter().find(|m| usable(m, true));
        let transport_section = match (&media, data_section) {
            (_, Some(d)) => d,
            (MediaAnswer::Reject, None) => return Err(PeerError::NoDataChannel),
            (_, None) => offer
                .media
                .iter()
                .find(|m| usable(m, false))
                .ok_or(PeerError::NoMedia)?,
        };
        let data = transport_section;
        check_strict(offer, data)?;
        data.mid().ok_or(PeerError::Missing("a=mid"))?;
        let remote_ufrag = offer
            .ice_ufrag(data)
            .ok_or(PeerError::Missing("a=ice-ufrag"))?
            .to_owned();
        let fp = offer
            .fingerprints(data)?
            .into_iter()
            .next()
            .ok_or(PeerError::Missing("a=fingerprint"))?;
        let peer_max = match data_section {
            Some(d) => d.max_message_size()?.unwrap_or(65536) as usize,
            None => 65536,
        };
        let mut transport = LocalTransport::new(local.fingerprint.to_value());
        match &local.full_ice {
            None => {
                transport.candidates = vec![Candidate::host("1", local.candidate, 2_130_706_431)];
                transport.end_of_candidates = true;
                transport.ice_lite = true;
                transport.ice_options = vec!["ice2".into()];
            }
            Some(full) => {
                transport.candidates = local_candidates(local.candidate, full);
                transport.end_of_candidates = full.complete;
                transport.ice_options = vec!["trickle".into(), "ice2".into()];
            }
        }
        transport.default_address = Some(local.candidate);
        transport.max_message_size = DEFAULT_MAX_MESSAGE;
        let mut jsep = Jsep::with_identity(
            transport,
            local.ice_ufrag.clone(),
            local.ice_pwd.clone(),
            local.session_id,
            random,
        );
        let mut sends = Vec::new();
        match &media {
            MediaAnswer::Reject => jsep.set_answer_policy(AnswerPolicy::DataOnly),
            MediaAnswer::Receive => jsep.set_answer_filter(AnswerFilter {
                prefer_decodable: true,
                ..AnswerFilter::default()
            }),
            MediaAnswer::Send(plan) => {
                let mut filter = AnswerFilter {
                    audio: Some(Vec::new()),
                    video: Some(Vec::new()),
                    extensions: Some(plan.extensions.clone()),
                    prefer_decodable: false,
                };
                for t in &plan.tracks {
                    let i = jsep.add_transceiver(t.kind, Direction::SendOnly);
                    jsep.set_send_ssrc(i, t.ssrc, t.rtx_ssrc)?;
                    match t.kind {
                        MediaKind::Audio => filter.audio = Some(t.formats.clone()),
                        MediaKind::Video => filter.video = Some(t.formats.clone()),
                    }
                }
                jsep.set_answer_filter(filter);
                jsep.set_msid_stream(&plan.stream);
                sends = plan.tracks.clone();
            }
        }
        jsep.set_answer_side(DtlsSide::Server);
        jsep.set_remote_description(SdpType::Offer, &offer.to_string())?;
        let sdp = jsep.create_answer()?;
        let tracks = media_tracks(offer, &sdp, &sends);
        // A receiving answer needs something to receive; a sending one needs
        // a section that takes what it sends.
        let wanted = match &media {
            MediaAnswer::Reject => true,
            MediaAnswer::Receive => tracks
                .iter()
                .any(|t| matches!(t.direction, Direction::RecvOnly | Direction::SendRecv)),
            MediaAnswer::Send(_) => tracks.iter().any(|t| t.send_ssrc.is_some()),
        };
        if let MediaAnswer::Send(plan) = &media {
            no_common_format(offer, plan, &tracks)?;
        }
        if !wanted {
            return Err(PeerError::NoMedia);
        }
        jsep.set_local_description(SdpType::Answer, &sdp)?;
        // Our role is what the answer said: passive (server) unless the offer was passive.
        let role = match jsep.dtls_side() {
            Some(DtlsSide::Client) => DtlsRole::Client,
            _ => DtlsRole::Server,
        };
        let mut dtls = DtlsTransport::new(factory, role);
        dtls.set_remote_fingerprint(fp);
        let ice = match &local.full_ice {
            None => Ice::Lite(IceLite::new(Credentials {
                local_ufrag: local.ice_ufrag.clone(),
                local_pwd: local.ice_pwd.clone(),
                remote_ufrag: Some(remote_ufrag),
            })),
            Some(full) => Ice::Answered(AgentConfig {
                local_ufrag: local.ice_ufrag.clone(),
                local_pwd: local.ice_pwd.clone(),
                remote_ufrag,
                remote_pwd: offer
                    .ice_pwd(data)
                    .ok_or(PeerError::Missing("a=ice-pwd"))?
                    .to_owned(),
                tie_breaker: full.tie_breaker,
                priority: candidate_priority(PRFLX_PREFERENCE),
                controlling: false,
            }),
        };
        let sctp = DataChannels::new(role == DtlsRole::Client, DEFAULT_MAX_MESSAGE, peer_max);
        Ok((
            Self {
                ice,
                dtls,
                sctp,
                jsep: Some(jsep),
                selected: None,
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                closed: false,
                data: data_section.is_some(),
                media: tracks,
            },
            sdp,
        ))
    }

    /// The accepted audio and video sections (empty for a data-only peer).
    pub fn media(&self) -> &[MediaTrack] {
        &self.media
    }

    /// Makes an offer through the JSEP engine: one data m-section (actpass, our
    /// host candidate, end-of-candidates), as the offering side of node-to-node
    /// connections. `random(n)` gives `n` ICE characters for the credentials
    /// and session id; `candidate` is the local socket's address.
    pub fn offer(
        candidate: SocketAddr,
        fingerprint: &Fingerprint,
        factory: Box<dyn DtlsFactory>,
        tie_breaker: u64,
        random: Box<dyn FnMut(usize) -> String + Send>,
    ) -> Result<(Self, String), PeerError> {
        Self::offer_with_media(candidate, fingerprint, factory, tie_breaker, random, &[])
    }

    /// [`Peer::offer`] with audio and video transceivers too (`kind`,
    /// direction), before the data section: a media client of a relay.
    pub fn offer_with_media(
        candidate: SocketAddr,
        fingerprint: &Fingerprint,
        factory: Box<dyn DtlsFactory>,
        tie_breaker: u64,
        random: Box<dyn FnMut(usize) -> String + Send>,
        media: &[(MediaKind, Direction)],
    ) -> Result<(Self, String), PeerError> {
        let mut transport = LocalTransport::new(fingerprint.to_value());
        transport.candidates = vec![Candidate::host("1", candidate, 2_130_706_431)];
        transport.end_of_candidates = true;
        Self::offer_transport(transport, factory, tie_breaker, random, media)
    }

    /// A data-only offer of a full agent with its gathered candidates (host,
    /// server-reflexive, relayed); `ice-options:trickle`.
    pub fn offer_full(
        host: SocketAddr,
        full: &FullIce,
        fingerprint: &Fingerprint,
        factory: Box<dyn DtlsFactory>,
        random: Box<dyn FnMut(usize) -> String + Send>,
    ) -> Result<(Self, String), PeerError> {
        let mut transport = LocalTransport::new(fingerprint.to_value());
        transport.candidates = local_candidates(host, full);
        transport.end_of_candidates = full.complete;
        transport.ice_options = vec!["trickle".into(), "ice2".into()];
        Self::offer_transport(transport, factory, full.tie_breaker, random, &[])
    }

    fn offer_transport(
        transport: LocalTransport,
        factory: Box<dyn DtlsFactory>,
        tie_breaker: u64,
        random: Box<dyn FnMut(usize) -> String + Send>,
        media: &[(MediaKind, Direction)],
    ) -> Result<(Self, String), PeerError> {
        let mut jsep = Jsep::new(transport, random);
        for (kind, dir) in media {
            jsep.add_transceiver(*kind, *dir);
        }
        jsep.create_data_channel();
        let sdp = jsep.create_offer()?;
        jsep.set_local_description(SdpType::Offer, &sdp)?;
        let (ufrag, pwd) = jsep.ice_credentials();
        let creds = Credentials {
            local_ufrag: ufrag.to_owned(),
            local_pwd: pwd.to_owned(),
            remote_ufrag: None,
        };
        let peer = Self {
            ice: Ice::AwaitingAnswer(creds, tie_breaker),
            dtls: DtlsTransport::new(factory, DtlsRole::Auto),
            sctp: DataChannels::new(true, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE),
            jsep: Some(jsep),
            selected: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            closed: false,
            data: true,
            media: Vec::new(),
        };
        Ok((peer, sdp))
    }

    /// Applies the answer to our offer: credentials, candidates, fingerprint, and the
    /// DTLS role from its setup (passive makes us client). Connectivity checks start.
    pub fn apply_answer(
        &mut self,
        now: Instant,
        answer: &str,
        h: &dyn Hmac,
        random: Box<dyn FnMut() -> [u8; 12] + Send>,
    ) -> Result<(), PeerError> {
        // Only an offer of ours awaiting its answer takes one.
        if let Some(j) = &self.jsep {
            if j.state() != SignalingState::HaveLocalOffer {
                return Err(JsepError::InvalidState(j.state()).into());
            }
        }
        let a = SdpAnswer::parse(answer)?;
        let m = a
            .media
            .iter()
            .find(|m| {
                m.media_line().is_ok_and(|l| {
                    l.port != 0
                        && l.formats.first().map(String::as_str) == Some("webrtc-datachannel")
                })
            })
            .ok_or(PeerError::NoDataChannel)?;
        check_strict(&a, m)?;
        let Ice::AwaitingAnswer(creds, tie) = &self.ice else {
            return Err(PeerError::Missing("an offer of ours"));
        };
        let cfg = AgentConfig {
            local_ufrag: creds.local_ufrag.clone(),
            local_pwd: creds.local_pwd.clone(),
            remote_ufrag: a
                .ice_ufrag(m)
                .ok_or(PeerError::Missing("a=ice-ufrag"))?
                .to_owned(),
            remote_pwd: a
                .ice_pwd(m)
                .ok_or(PeerError::Missing("a=ice-pwd"))?
                .to_owned(),
            tie_breaker: *tie,
            priority: 2_130_706_431,
            controlling: true,
        };
        let fp = a
            .fingerprints(m)?
            .into_iter()
            .next()
            .ok_or(PeerError::Missing("a=fingerprint"))?;
        // RFC 8842 §5.3: the answerer is active unless it says passive; a missing
        // a=setup means active (RFC 4145 §4), so then we are the DTLS server.
        let client = match m.setup()? {
            Some(Setup::Passive) => true,
            Some(Setup::Active) | None => false,
            Some(_) => {
                return Err(PeerError::Invalid(
                    "a=setup in an answer: actpass or holdconn",
                ))
            }
        };
        let peer_max = m.max_message_size()?.unwrap_or(65536) as usize;
        let mut agent = IceAgent::new(cfg, random);
        let mut remotes: Vec<SocketAddr> = m
            .candidates()
            .into_iter()
            .flatten()
            .filter(|c| c.transport.eq_ignore_ascii_case("udp"))
            .filter_map(|c| c.ip().map(|ip| SocketAddr::new(ip, c.port)))
            .collect();
        if remotes.is_empty() {
            return Err(PeerError::Missing("a usable a=candidate"));
        }
        remotes.truncate(crate::ice::agent::MAX_REMOTE);
        for r in remotes {
            agent.add_remote_candidate(now, r, h);
        }
        // Everything checked: the JSEP engine takes the answer and moves to stable.
        if let Some(j) = &mut self.jsep {
            j.set_remote_description(SdpType::Answer, answer)?;
        }
        self.ice = Ice::Full(agent);
        self.dtls.set_remote_fingerprint(fp);
        self.dtls.set_role(
            now,
            if client {
                DtlsRole::Client
            } else {
                DtlsRole::Server
            },
        );
        self.sctp = DataChannels::new(client, DEFAULT_MAX_MESSAGE, peer_max);
        self.process(now);
        Ok(())
    }

    /// Opens a data channel (reliable, ordered) once connected.
    pub fn open_channel(
        &mut self,
        now: Instant,
        label: &str,
    ) -> Result<u16, crate::sctp::ChannelError> {
        let id =
            self.sctp
                .open_channel(now, label, true, crate::sctp::dcep::Reliability::Reliable)?;
        self.process(now);
        Ok(id)
    }

    /// Starts the full agent of a peer answered with [`LocalParams::full_ice`]:
    /// the offer's candidates (`remotes`) and the relays are paired and
    /// checked. `random` makes transaction ids. Nothing happens for other peers.
    pub fn start_ice(
        &mut self,
        now: Instant,
        remotes: &[SocketAddr],
        relays: &[(Via, u32)],
        random: Box<dyn FnMut() -> [u8; 12] + Send>,
        h: &dyn Hmac,
    ) {
        let Ice::Answered(cfg) = &self.ice else {
            return;
        };
        let mut agent = IceAgent::new(cfg.clone(), random);
        for (via, priority) in relays {
            agent.add_local(now, *via, *priority, h);
        }
        for r in remotes {
            agent.add_remote_candidate(now, *r, h);
        }
        self.ice = Ice::Full(agent);
        self.process(now);
    }

    /// An ICE restart (RFC 8445 §9) with new credentials on both sides: the
    /// agent starts again with `local` and `remote` (a lite agent with the
    /// same host candidate; a full one, either role, with the same bases and
    /// `remotes`, checking at once). DTLS, SCTP and media go on over the pair
    /// in use until a new one is selected.
    #[allow(clippy::too_many_arguments)]
    pub fn restart_ice(
        &mut self,
        now: Instant,
        local: (&str, &str),
        remote: (&str, &str),
        remotes: &[SocketAddr],
        relays: &[(Via, u32)],
        random: Box<dyn FnMut() -> [u8; 12] + Send>,
        h: &dyn Hmac,
    ) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Invalid(
                "ICE restart of a closed peer connection",
            ));
        }
        self.ice = match &self.ice {
            Ice::Lite(_) => Ice::Lite(IceLite::new(Credentials {
                local_ufrag: local.0.to_owned(),
                local_pwd: local.1.to_owned(),
                remote_ufrag: Some(remote.0.to_owned()),
            })),
            Ice::Full(a) => {
                let mut cfg = a.config().clone();
                cfg.local_ufrag = local.0.to_owned();
                cfg.local_pwd = local.1.to_owned();
                cfg.remote_ufrag = remote.0.to_owned();
                cfg.remote_pwd = remote.1.to_owned();
                let mut agent = IceAgent::new(cfg, random);
                for (via, priority) in relays {
                    agent.add_local(now, *via, *priority, h);
                }
                for r in remotes {
                    agent.add_remote_candidate(now, *r, h);
                }
                Ice::Full(agent)
            }
            _ => return Err(PeerError::Invalid("ICE restart before ICE started")),
        };
        self.process(now);
        Ok(())
    }

    /// A remote candidate learnt late (trickle); ignored by a lite agent, which
    /// only answers checks.
    pub fn add_remote_candidate(&mut self, now: Instant, addr: SocketAddr, h: &dyn Hmac) {
        if let Ice::Full(a) = &mut self.ice {
            a.add_remote_candidate(now, addr, h);
            self.process(now);
        }
    }

    /// A local relay became ready after the answer: it is paired too.
    pub fn add_local_relay(&mut self, now: Instant, via: Via, priority: u32, h: &dyn Hmac) {
        if let Ice::Full(a) = &mut self.ice {
            a.add_local(now, via, priority, h);
            self.process(now);
        }
    }

    /// The remote ICE ufrag in force.
    pub fn remote_ufrag(&self) -> Option<&str> {
        match &self.ice {
            Ice::Lite(a) => a.remote_ufrag(),
            Ice::Full(a) => Some(a.remote_ufrag()),
            Ice::Answered(c) => Some(&c.remote_ufrag),
            Ice::AwaitingAnswer(..) => None,
        }
    }

    /// A datagram from `from` on the peer's host port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8], h: &dyn Hmac) {
        self.handle_datagram_via(now, Via::Host, from, data, h);
    }

    /// A datagram from `from` that arrived through base `via`.
    pub fn handle_datagram_via(
        &mut self,
        now: Instant,
        via: Via,
        from: SocketAddr,
        data: &[u8],
        h: &dyn Hmac,
    ) {
        if self.closed {
            return;
        }
        let on_selected = self.selected == Some((via, from))
            || (self.selected.is_some()
                && matches!(&self.ice, Ice::Full(a) if a.is_valid(via, from)));
        match classify(data) {
            PacketKind::Stun => {
                self.ice.handle_stun(now, via, from, data, h);
            }
            PacketKind::Dtls if on_selected => self.dtls.handle_datagram(now, data),
            PacketKind::RtpOrRtcp if on_selected && self.dtls.state() == DtlsState::Connected => {
                if self.events.len() < MAX_QUEUED_EVENTS {
                    self.events.push_back(PeerEvent::Media(data.to_vec()));
                } else {
                    tracing::debug!("media datagram dropped: events not read");
                }
            }
            _ => {}
        }
        self.process(now);
    }

    /// Sends an SRTP or SRTCP datagram (already protected) to the selected
    /// pair; false before DTLS is up or for anything that is not RTP/RTCP.
    pub fn send_media(&mut self, datagram: Vec<u8>) -> bool {
        let Some((via, to)) = self.selected else {
            return false;
        };
        if self.closed
            || self.dtls.state() != DtlsState::Connected
            || classify(&datagram) != PacketKind::RtpOrRtcp
        {
            return false;
        }
        self.transmits.push_back((via, to, datagram));
        true
    }

    /// Timers of every layer.
    pub fn handle_timeout(&mut self, now: Instant, h: &dyn Hmac) {
        self.ice.handle_timeout(now, h);
        self.dtls.handle_timeout(now);
        self.sctp.handle_timeout(now);
        self.process(now);
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ice.poll_timeout(),
            self.dtls.poll_timeout(),
            self.sctp.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn process(&mut self, now: Instant) {
        while let Some(e) = self.ice.poll_event() {
            match e {
                IceEvent::Selected(via, a) => {
                    self.selected = Some((via, a));
                    self.dtls.set_ice_connected(now, true);
                }
                IceEvent::StateChanged(IceState::Disconnected) => {
                    self.close_with(now, CloseReason::ConsentExpired)
                }
                IceEvent::StateChanged(IceState::Failed) => {
                    self.close_with(now, CloseReason::IceFailed)
                }
                IceEvent::StateChanged(_) => {}
            }
        }
        while let Some(t) = self.ice.poll_transmit() {
            self.transmits.push_back(t);
        }
        // DTLS application data is SCTP; SCTP output goes back into DTLS.
        for _ in 0..64 {
            let mut progressed = false;
            while let Some(e) = self.dtls.poll_event() {
                progressed = true;
                match e {
                    DtlsEvent::Data(d) => self.sctp.handle_packet(now, &d),
                    DtlsEvent::Connected | DtlsEvent::SrtpKeys(_) => {
                        // DTLS reports its keys when it connects with an SRTP
                        // profile, else Connected: either way it is up.
                        if let DtlsEvent::SrtpKeys(k) = e {
                            self.events.push_back(PeerEvent::SrtpKeys(k));
                        }
                        if !self.data {
                            // Media only: up once DTLS is (the keys come first).
                            self.events.push_back(PeerEvent::Connected);
                        } else if self.dtls.is_client() == Some(true) {
                            let _ = self.sctp.connect(now, DEFAULT_MAX_MESSAGE);
                        }
                    }
                    DtlsEvent::Failed(e) => self.close_with(now, CloseReason::Dtls(e)),
                    DtlsEvent::Closed => self.close_with(now, CloseReason::RemoteClosed),
                    DtlsEvent::StateChanged(_) => {}
                }
            }
            while let Some(p) = self.sctp.poll_packet() {
                progressed = true;
                if self.dtls.state() == DtlsState::Connected {
                    let _ = self.dtls.send(now, &p);
                }
            }
            while let Some(e) = self.sctp.poll_event() {
                progressed = true;
                self.events.push_back(match e {
                    ChannelEvent::Connected => PeerEvent::Connected,
                    ChannelEvent::Open { id, label, .. } => PeerEvent::ChannelOpen { id, label },
                    ChannelEvent::Message { id, binary, data } => {
                        PeerEvent::Message { id, binary, data }
                    }
                    ChannelEvent::Closed { id } => PeerEvent::ChannelClosed { id },
                    ChannelEvent::Lost(r) => PeerEvent::Closed(CloseReason::Sctp(r)),
                });
            }
            if !progressed {
                break;
            }
        }
        if let Some((via, to)) = self.selected {
            while let Some(d) = self.dtls.poll_transmit() {
                self.transmits.push_back((via, to, d));
            }
        }
    }

    fn close_with(&mut self, now: Instant, reason: CloseReason) {
        if self.closed {
            return;
        }
        tracing::info!(%reason, "peer connection closed");
        self.closed = true;
        if reason.tells_peer() && self.dtls.state() == DtlsState::Connected {
            // SCTP SHUTDOWN closes the peer's channels, then close_notify its
            // DTLS transport, both to the selected pair (RFC 8831 §6.7, RFC 5246 §7.2.1).
            self.sctp.shutdown(now);
            while let Some(p) = self.sctp.poll_packet() {
                let _ = self.dtls.send(now, &p);
            }
        }
        self.dtls.close();
        if let Some((via, to)) = self.selected {
            while let Some(d) = self.dtls.poll_transmit() {
                self.transmits.push_back((via, to, d));
            }
        }
        self.ice.close();
        if let Some(j) = &mut self.jsep {
            j.close();
        }
        self.events.push_back(PeerEvent::Closed(reason));
    }

    /// Sends a message on a channel.
    pub fn send(
        &mut self,
        now: Instant,
        id: u16,
        binary: bool,
        data: &[u8],
    ) -> Result<(), crate::sctp::ChannelError> {
        self.sctp.send(now, id, binary, data)?;
        self.process(now);
        Ok(())
    }

    /// Bytes queued on a channel and not yet acknowledged.
    pub fn buffered_amount(&mut self, id: u16) -> usize {
        self.sctp.buffered_amount(id)
    }

    /// Accepts a channel the remote opened (sends DATA_CHANNEL_ACK).
    pub fn accept_channel(
        &mut self,
        now: Instant,
        id: u16,
    ) -> Result<(), crate::sctp::ChannelError> {
        self.sctp.accept_channel(now, id)?;
        self.process(now);
        Ok(())
    }

    /// Closes a channel.
    pub fn close_channel(&mut self, now: Instant, id: u16) {
        let _ = self.sctp.close_channel(now, id);
        self.process(now);
    }

    /// Whether the peer has closed (or failed).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes everything, telling the peer (SCTP SHUTDOWN, DTLS close_notify).
    pub fn close(&mut self, now: Instant) {
        self.close_with(now, CloseReason::Local);
    }

    /// Closes everything, for `reason`; the peer is told when the reason is ours.
    pub fn close_because(&mut self, now: Instant, reason: CloseReason) {
        self.close_with(now, reason);
    }

    /// The DTLS role negotiated (or asked for, before negotiation).
    pub fn dtls_role(&self) -> DtlsRole {
        self.dtls.role()
    }

    /// The remote address of the selected (last nominated) candidate pair.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected.map(|(_, a)| a)
    }

    /// The selected pair: its local base and remote address.
    pub fn selected_pair(&self) -> Option<(Via, SocketAddr)> {
        self.selected
    }

    /// Next `(destination, datagram)` of a peer whose only base is the host
    /// socket (every peer without relays).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        let (via, to, d) = self.transmits.pop_front()?;
        debug_assert_eq!(via, Via::Host, "a relayed datagram needs poll_transmit_via");
        Some((to, d))
    }

    /// Next `(base, destination, datagram)`.
    pub fn poll_transmit_via(&mut self) -> Option<(Via, SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }
}
