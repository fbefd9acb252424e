//! The media relay of the node core: named streams, each with one WHIP
//! publisher and any number of WHEP viewers, forwarded the way mediasoup's
//! WebRtcTransport forwards (an SFU: no decoding).
//!
//! Per viewer, packets are rewritten to the viewer's SSRC, payload types and
//! header extension ids, with sequence numbers and timestamps that continue
//! when the publisher reconnects. Keyframe requests of viewers reach the
//! publisher (at most one per [`KEYFRAME_INTERVAL`]); NACKs are answered from
//! the stream's packet cache as RTX, within each viewer's own budget; sender
//! reports are translated. A publisher that leaves has [`MediaLimits::grace`]
//! to come back; then its viewers get RTCP BYE and are closed.
//!
//! Sans-IO: the relay reads and writes through the [`Host`] it is given.

use crate::Principal;
use softbus_rtc::host::{Host, PeerId};
use softbus_rtc::jsep::codecs::{self, Codec};
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{CloseReason, MediaAnswer, MediaTrack, SendPlan, SendTrack};
use softbus_rtc::relay::{rtx_packet, ExtensionMap, PacketCache, Rewriter};
use softbus_rtc::rtp::{self, Rtcp, RtpPacket};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Keyframe requests forwarded to a publisher at most this often.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);

/// The SSRC the relay signs its own RTCP with (PLI to publishers).
const RELAY_SSRC: u32 = 0x5F0B_0005;

/// Header extensions a viewer's answer keeps: those the relay rewrites.
/// Transport-wide CC and RID are the publisher's link's, not the viewer's.
pub const RELAYED_EXTENSIONS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "urn:3gpp:video-orientation",
];

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// Bounds of the relay (part of the node's one limits table).
#[derive(Debug, Clone)]
pub struct MediaLimits {
    /// Streams at once.
    pub max_streams: usize,
    /// Viewers of one stream.
    pub max_viewers: usize,
    /// Viewers of all streams together.
    pub max_viewers_total: usize,
    /// How long a stream waits for its publisher to come back.
    pub grace: Duration,
    /// Packets each track's cache keeps for retransmission.
    pub cache_packets: usize,
    /// Retransmissions one viewer may ask for per second; more NACKed
    /// packets are not resent (the viewer's loss, nobody else's).
    pub rtx_per_second: u32,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            max_streams: 16,
            max_viewers: 64,
            max_viewers_total: 256,
            grace: Duration::from_secs(5),
            cache_packets: 1024,
            rtx_per_second: 400,
        }
    }
}

/// Why a WHIP or WHEP request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaRefusal {
    #[error("stream names are 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")]
    BadName,
    #[error("stream {0:?} already has a publisher")]
    Busy(String),
    #[error("no stream named {0:?}")]
    NoSuchStream(String),
    #[error("stream limit of {0} reached")]
    TooManyStreams(usize),
    #[error("viewer limit of {0} reached for this stream")]
    TooManyViewers(usize),
    #[error("viewer limit of {0} reached for all streams together")]
    TooManyViewersInAll(usize),
}

/// What the relay reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A publisher connected (first, or back within the grace period).
    PublisherJoined {
        stream: String,
        peer: PeerId,
        who: String,
        auth: crate::AuthMethod,
        resumed: bool,
        tracks: Vec<String>,
    },
    /// The publisher left; the stream waits `grace` for it.
    PublisherLeft {
        stream: String,
        peer: PeerId,
        reason: CloseReason,
    },
    ViewerJoined {
        stream: String,
        peer: PeerId,
        who: String,
        auth: crate::AuthMethod,
    },
    ViewerLeft {
        stream: String,
        peer: PeerId,
        reason: CloseReason,
    },
    /// No publisher came back in time: viewers got BYE and were closed.
    StreamEnded { stream: String },
}

/// A stream's state for the dashboard and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    pub stream: String,
    pub publisher: Option<u64>,
    pub live: bool,
    pub tracks: Vec<String>,
    pub viewers: Vec<ViewerInfo>,
    pub packets_in: u64,
    pub bytes_in: u64,
}

/// One viewer's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ViewerInfo {
    pub peer: u64,
    pub packets: u64,
    pub bytes: u64,
    pub retransmitted: u64,
    /// NACKed packets not resent: gone from the cache, or over the budget.
    pub not_resent: u64,
}

/// The original packet of a publisher's RTX packet: its header with the
/// media payload type, sequence number and SSRC, and the payload after the
/// original sequence number.
fn rtx_restore(p: &RtpPacket<'_>, apt: u8, ssrc: u32) -> Option<Vec<u8>> {
    let payload = p.payload();
    if payload.len() < 2 {
        return None; // padding only
    }
    let osn = u16::from_be_bytes([payload[0], payload[1]]);
    let hlen = p.header_len();
    let raw = p.raw();
    let mut out = Vec::with_capacity(raw.len() + 16);
    out.extend_from_slice(&raw[..hlen]);
    out[0] &= !0x20; // the padding, if any, is not carried over
    out[1] = (out[1] & 0x80) | apt;
    out[2..4].copy_from_slice(&osn.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&payload[2..]);
    Some(out)
}

/// A stream name as the URL carries it.
pub fn check_stream_name(name: &str) -> Result<(), MediaRefusal> {
    // It starts with a letter or digit: `.` and `..` in a Location would be
    // normalised by clients into another path.
    let ok = (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(MediaRefusal::BadName)
    }
}

/// One track of the publisher.
struct SourceTrack {
    kind: MediaKind,
    codecs: Vec<Codec>,
    /// Publisher header extensions `(id, uri)`.
    extensions: Vec<(u16, String)>,
    source_ssrc: Option<u32>,
    cache: PacketCache,
    /// Uplink repair: the highest sequence number seen and what is missing
    /// below it (when first missed, when last asked for, how often).
    highest: Option<u16>,
    missing: BTreeMap<u16, Missing>,
    /// Whether the publisher negotiated NACK for this track (Opus usually not).
    nack: bool,
}

/// A publisher packet the relay has not received.
#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    asked: Option<Instant>,
    tries: u8,
}

/// Uplink repair bounds: gaps larger than this are a new start, not loss;
/// a packet is asked for at most [`NACK_TRIES`] times, [`NACK_INTERVAL`]
/// apart, and given up after [`NACK_GIVE_UP`].
const MAX_GAP: u16 = 256;
const NACK_TRIES: u8 = 10;
pub const NACK_INTERVAL: Duration = Duration::from_millis(20);
const NACK_GIVE_UP: Duration = Duration::from_secs(1);

impl SourceTrack {
    /// Notes `seq` arriving at `now`: a gap becomes missing packets; a
    /// missing one that arrives is no longer. False for a duplicate.
    fn arrived(&mut self, now: Instant, seq: u16) -> bool {
        match self.highest {
            None => self.highest = Some(seq),
            Some(h) => {
                let ahead = seq.wrapping_sub(h);
                if ahead == 0 {
                    return false;
                }
                if ahead < 0x8000 {
                    if self.nack && ahead <= MAX_GAP {
                        for m in 1..ahead {
                            self.missing.insert(
                                h.wrapping_add(m),
                                Missing {
                                    since: now,
                                    asked: None,
                                    tries: 0,
                                },
                            );
                        }
                    } else {
                        self.missing.clear();
                    }
                    self.highest = Some(seq);
                } else if self.missing.remove(&seq).is_none() {
                    // Older and not missing: a duplicate, or too old to matter.
                    return false;
                }
            }
        }
        // Bounded: the oldest missing packets go first.
        while self.missing.len() > usize::from(MAX_GAP) {
            let first = self.missing.keys().next().copied();
            if let Some(k) = first {
                self.missing.remove(&k);
            }
        }
        true
    }

    /// The missing packets to ask for now (and marks them asked).
    fn due(&mut self, now: Instant) -> Vec<u16> {
        self.missing.retain(|_, m| {
            m.tries < NACK_TRIES && now.saturating_duration_since(m.since) < NACK_GIVE_UP
        });
        let mut out = Vec::new();
        for (seq, m) in &mut self.missing {
            if m.asked
                .is_none_or(|t| now.saturating_duration_since(t) >= NACK_INTERVAL)
            {
                m.asked = Some(now);
                m.tries += 1;
                out.push(*seq);
            }
        }
        out
    }

    /// When a missing packet is next due to be asked for.
    fn next_nack(&self) -> Option<Instant> {
        self.missing
            .values()
            .map(|m| m.asked.map_or(m.since, |t| t + NACK_INTERVAL))
            .min()
    }
}

struct Stream {
    owner: Principal,
    publisher: Option<PeerId>,
    live: bool,
    tracks: Vec<SourceTrack>,
    viewers: BTreeSet<PeerId>,
    /// The publisher left: the stream ends then unless one comes back.
    grace_until: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    /// A keyframe was asked for within the interval: sent when it ends.
    keyframe_pending: bool,
    packets_in: u64,
    bytes_in: u64,
}

/// One track of a viewer.
struct SinkTrack {
    kind: MediaKind,
    mid: String,
    codecs: Vec<Codec>,
    extensions: Vec<(u16, String)>,
    rewriter: Rewriter,
    rtx_ssrc: Option<u32>,
    /// Viewer media payload type → its RTX payload type.
    rtx_pts: Vec<(u8, u8)>,
    rtx_seq: u16,
    packets: u32,
    octets: u32,
}

struct Viewer {
    stream: String,
    who: String,
    auth: crate::AuthMethod,
    tracks: Vec<SinkTrack>,
    connected: bool,
    /// RTX budget: the window's start and what it spent.
    rtx_window: Option<Instant>,
    rtx_in_window: u32,
    packets: u64,
    bytes: u64,
    retransmitted: u64,
    not_resent: u64,
}

/// The relay: streams, publishers and viewers.
pub struct Relay {
    limits: MediaLimits,
    streams: BTreeMap<String, Stream>,
    publishers: HashMap<PeerId, String>,
    viewers: HashMap<PeerId, Viewer>,
    events: Vec<MediaEvent>,
}

impl Relay {
    /// Peer connections of the relay: publishers and viewers.
    pub fn peer_count(&self) -> usize {
        self.publishers.len() + self.viewers.len()
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("streams", &self.streams.len())
            .field("viewers", &self.viewers.len())
            .finish_non_exhaustive()
    }
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn is_rtx(c: &Codec) -> bool {
    c.encoding.eq_ignore_ascii_case("rtx")
}

fn ext_pairs(t: &MediaTrack) -> Vec<(u16, String)> {
    t.extensions.iter().map(|e| (e.id, e.uri.clone())).collect()
}

/// A viewer track's payload type map and header extension map from the
/// publisher's track.
fn mapping(src: &SourceTrack, sink: &SinkTrack) -> (Vec<(u8, u8)>, ExtensionMap) {
    let mut pts = Vec::new();
    for c in src.codecs.iter().filter(|c| !is_rtx(c)) {
        if let Some(v) = codecs::find_payload_type(
            &codecs::Negotiated {
                codecs: sink.codecs.iter().filter(|c| !is_rtx(c)).cloned().collect(),
                extensions: Vec::new(),
            },
            &c.encoding,
            c.fmtp.as_deref(),
        ) {
            pts.push((c.payload_type, v));
        }
    }
    let small = |id: u16| u8::try_from(id).ok();
    let id_of = |list: &[(u16, String)], uri: &str| {
        list.iter()
            .find(|(_, u)| u == uri)
            .and_then(|(i, _)| small(*i))
    };
    let mut map = ExtensionMap {
        mid: id_of(&sink.extensions, MID_URI).map(|id| (id, sink.mid.as_bytes().to_vec())),
        source_mid: id_of(&src.extensions, MID_URI),
        ids: Vec::new(),
    };
    for (id, uri) in &src.extensions {
        if uri == MID_URI {
            continue;
        }
        if let (Some(from), Some(to)) = (small(*id), id_of(&sink.extensions, uri)) {
            map.ids.push((from, to));
        }
    }
    (pts, map)
}

impl Relay {
    pub fn new(limits: MediaLimits) -> Self {
        Self {
            limits,
            streams: BTreeMap::new(),
            publishers: HashMap::new(),
            viewers: HashMap::new(),
            events: Vec::new(),
        }
    }

    pub fn limits(&self) -> &MediaLimits {
        &self.limits
    }

    /// Whether `peer` is a publisher or a viewer.
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.publishers.contains_key(&peer) || self.viewers.contains_key(&peer)
    }

    /// Reported events, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, MediaEvent> {
        self.events.drain(..)
    }

    /// Streams with their publisher and viewers.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.streams
            .iter()
            .map(|(name, s)| StreamInfo {
                stream: name.clone(),
                publisher: s.publisher.map(|p| p.0),
                live: s.live,
                tracks: s
                    .tracks
                    .iter()
                    .map(|t| kind_name(t.kind).to_owned())
                    .collect(),
                viewers: s
                    .viewers
                    .iter()
                    .filter_map(|p| self.viewers.get(p).map(|v| (p, v)))
                    .map(|(p, v)| ViewerInfo {
                        peer: p.0,
                        packets: v.packets,
                        bytes: v.bytes,
                        retransmitted: v.retransmitted,
                        not_resent: v.not_resent,
                    })
                    .collect(),
                packets_in: s.packets_in,
                bytes_in: s.bytes_in,
            })
            .collect()
    }

    /// WHIP: a publisher's offer for `stream`. A stream whose publisher left
    /// within the grace period continues with this one (same credential only).
    pub fn publish(
        &mut self,
        now: Instant,
        host: &mut Host,
        stream: &str,
        offer: &str,
        owner: Principal,
    ) -> Result<Result<(PeerId, String), MediaRefusal>, softbus_rtc::host::HostError> {
        if let Err(r) = check_stream_name(stream) {
            return Ok(Err(r));
        }
        match self.streams.get(stream) {
            Some(s) if s.publisher.is_some() || s.owner != owner => {
                return Ok(Err(MediaRefusal::Busy(stream.to_owned())))
            }
            None if self.streams.len() >= self.limits.max_streams => {
                return Ok(Err(MediaRefusal::TooManyStreams(self.limits.max_streams)))
            }
            _ => {}
        }
        let (peer, answer) = host.answer_media(now, offer, MediaAnswer::Receive)?;
        let tracks: Vec<SourceTrack> = host
            .media(peer)
            .unwrap_or_default()
            .iter()
            .map(|t| SourceTrack {
                kind: t.kind,
                codecs: t.codecs.clone(),
                extensions: ext_pairs(t),
                source_ssrc: t.remote_ssrcs.first().copied(),
                cache: PacketCache::new(self.limits.cache_packets),
                highest: None,
                missing: BTreeMap::new(),
                nack: t
                    .codecs
                    .iter()
                    .any(|c| c.feedback.iter().any(|f| f == "nack")),
            })
            .collect();
        self.publishers.insert(peer, stream.to_owned());
        let s = self
            .streams
            .entry(stream.to_owned())
            .or_insert_with(|| Stream {
                owner,
                publisher: None,
                live: false,
                tracks: Vec::new(),
                viewers: BTreeSet::new(),
                grace_until: None,
                last_keyframe_request: None,
                keyframe_pending: false,
                packets_in: 0,
                bytes_in: 0,
            });
        s.publisher = Some(peer);
        s.tracks = tracks;
        // Viewers follow the new publisher: its payload types and extension
        // ids may differ, its numbering does; theirs continues.
        for p in &s.viewers {
            let Some(v) = self.viewers.get_mut(p) else {
                continue;
            };
            for sink in &mut v.tracks {
                if let Some(src) = s.tracks.iter().find(|t| t.kind == sink.kind) {
                    let (pts, ext) = mapping(src, sink);
                    sink.rewriter.payload_types = pts;
                    sink.rewriter.extensions = Some(ext);
                    sink.rewriter.switch_source();
                }
            }
        }
        Ok(Ok((peer, answer)))
    }

    /// WHEP: a viewer's offer for `stream`, answered with the publisher's tracks.
    pub fn play(
        &mut self,
        now: Instant,
        host: &mut Host,
        stream: &str,
        offer: &str,
        who: &Principal,
    ) -> Result<Result<(PeerId, String), MediaRefusal>, softbus_rtc::host::HostError> {
        if let Err(r) = check_stream_name(stream) {
            return Ok(Err(r));
        }
        let Some(s) = self.streams.get(stream).filter(|s| !s.tracks.is_empty()) else {
            return Ok(Err(MediaRefusal::NoSuchStream(stream.to_owned())));
        };
        if s.viewers.len() >= self.limits.max_viewers {
            return Ok(Err(MediaRefusal::TooManyViewers(self.limits.max_viewers)));
        }
        if self.viewers.len() >= self.limits.max_viewers_total {
            return Ok(Err(MediaRefusal::TooManyViewersInAll(
                self.limits.max_viewers_total,
            )));
        }
        let mut tracks = Vec::new();
        for t in &s.tracks {
            let ssrc = host.random_u32();
            let rtx_ssrc = (t.kind == MediaKind::Video).then(|| host.random_u32());
            tracks.push(SendTrack {
                kind: t.kind,
                formats: t
                    .codecs
                    .iter()
                    .filter(|c| !is_rtx(c))
                    .map(|c| (c.encoding.clone(), c.fmtp.clone()))
                    .collect(),
                ssrc,
                rtx_ssrc,
            });
        }
        let plan = SendPlan {
            tracks,
            extensions: RELAYED_EXTENSIONS.iter().map(|u| (*u).to_owned()).collect(),
            stream: stream.to_owned(),
        };
        let (peer, answer) = host.answer_media(now, offer, MediaAnswer::Send(plan))?;
        let mut sinks = Vec::new();
        for t in host.media(peer).unwrap_or_default() {
            let Some((ssrc, rtx_ssrc)) = t.send_ssrc else {
                continue;
            };
            let rtx_pts = t
                .codecs
                .iter()
                .filter(|c| is_rtx(c))
                .filter_map(|c| Some((codecs::rtx_apt(c)?, c.payload_type)))
                .collect();
            let mut sink = SinkTrack {
                kind: t.kind,
                mid: t.mid.clone(),
                codecs: t.codecs.clone(),
                extensions: ext_pairs(t),
                rewriter: Rewriter::new(ssrc, Vec::new()),
                rtx_ssrc,
                rtx_pts,
                rtx_seq: 0,
                packets: 0,
                octets: 0,
            };
            if t.kind == MediaKind::Audio {
                sink.rewriter.gap_ticks = 960;
            }
            if let Some(src) = s.tracks.iter().find(|x| x.kind == t.kind) {
                let (pts, ext) = mapping(src, &sink);
                sink.rewriter.payload_types = pts;
                sink.rewriter.extensions = Some(ext);
            }
            sinks.push(sink);
        }
        if let Some(s) = self.streams.get_mut(stream) {
            s.viewers.insert(peer);
        }
        self.viewers.insert(
            peer,
            Viewer {
                stream: stream.to_owned(),
                who: who.name().to_owned(),
                auth: who.method(),
                tracks: sinks,
                connected: false,
                rtx_window: None,
                rtx_in_window: 0,
                packets: 0,
                bytes: 0,
                retransmitted: 0,
                not_resent: 0,
            },
        );
        Ok(Ok((peer, answer)))
    }

    /// A media peer connected.
    pub fn connected(&mut self, now: Instant, host: &mut Host, peer: PeerId) {
        if let Some(name) = self.publishers.get(&peer) {
            let Some(s) = self.streams.get_mut(name) else {
                return;
            };
            let resumed = s.grace_until.take().is_some();
            s.live = true;
            self.events.push(MediaEvent::PublisherJoined {
                stream: name.clone(),
                peer,
                who: s.owner.name().to_owned(),
                auth: s.owner.method(),
                resumed,
                tracks: s
                    .tracks
                    .iter()
                    .map(|t| kind_name(t.kind).to_owned())
                    .collect(),
            });
            if !s.viewers.is_empty() {
                let name = name.clone();
                self.request_keyframe(now, host, &name);
            }
            return;
        }
        let Some(v) = self.viewers.get_mut(&peer) else {
            return;
        };
        v.connected = true;
        let name = v.stream.clone();
        self.events.push(MediaEvent::ViewerJoined {
            stream: name.clone(),
            peer,
            who: v.who.clone(),
            auth: v.auth,
        });
        // A new viewer can decode nothing before a keyframe.
        self.request_keyframe(now, host, &name);
    }

    /// A PLI to the stream's publisher for its video, at most one per interval.
    fn request_keyframe(&mut self, now: Instant, host: &mut Host, name: &str) {
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        let (Some(publisher), true) = (s.publisher, s.live) else {
            return;
        };
        if s.last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_INTERVAL)
        {
            s.keyframe_pending = true;
            return;
        }
        s.keyframe_pending = false;
        s.last_keyframe_request = Some(now);
        for t in s.tracks.iter().filter(|t| t.kind == MediaKind::Video) {
            if let Some(src) = t.source_ssrc {
                if let Err(e) = host.send_rtcp(publisher, &rtp::build_pli(RELAY_SSRC, src)) {
                    tracing::debug!(error = %e, "keyframe request not sent");
                }
            }
        }
    }

    /// RTP from a media peer.
    pub fn rtp(&mut self, now: Instant, host: &mut Host, peer: PeerId, packet: &[u8]) {
        let Some(name) = self.publishers.get(&peer) else {
            return; // viewers send no media
        };
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        if s.publisher != Some(peer) {
            return;
        }
        let Ok(p) = RtpPacket::parse(packet) else {
            return;
        };
        let pt = p.payload_type();
        // A retransmission we asked for (RFC 4588): the original again.
        let restored;
        let packet = match s.tracks.iter().find_map(|t| {
            t.codecs
                .iter()
                .find(|c| c.payload_type == pt && is_rtx(c))
                .and_then(codecs::rtx_apt)
                .map(|apt| (apt, t.source_ssrc))
        }) {
            Some((apt, Some(ssrc))) => match rtx_restore(&p, apt, ssrc) {
                Some(r) => {
                    restored = r;
                    restored.as_slice()
                }
                None => return,
            },
            Some((_, None)) => return,
            None => packet,
        };
        let Ok(p) = RtpPacket::parse(packet) else {
            return;
        };
        let pt = p.payload_type();
        let Some(track) = s
            .tracks
            .iter_mut()
            .find(|t| t.codecs.iter().any(|c| c.payload_type == pt && !is_rtx(c)))
        else {
            return; // padding of the publisher, or unknown
        };
        if track.source_ssrc != Some(p.ssrc()) {
            // A new source: its numbering starts over.
            track.highest = None;
            track.missing.clear();
        }
        track.source_ssrc = Some(p.ssrc());
        if !track.arrived(now, p.sequence()) {
            return;
        }
        track.cache.insert(packet);
        s.packets_in += 1;
        s.bytes_in += packet.len() as u64;
        let kind = track.kind;
        for vp in &s.viewers {
            let Some(v) = self.viewers.get_mut(vp) else {
                continue;
            };
            if !v.connected {
                continue;
            }
            let Some(sink) = v.tracks.iter_mut().find(|t| t.kind == kind) else {
                continue;
            };
            let Ok(Some(out)) = sink.rewriter.rewrite(packet) else {
                continue;
            };
            sink.packets = sink.packets.wrapping_add(1);
            sink.octets = sink
                .octets
                .wrapping_add(out.len().saturating_sub(12) as u32);
            // Each viewer's send stands alone: one that fails costs only itself.
            let len = out.len() as u64;
            if host.send_rtp(*vp, out).is_ok() {
                v.packets += 1;
                v.bytes += len;
            }
        }
    }

    /// RTCP from a media peer: a publisher's sender reports are translated
    /// for each viewer; a viewer's keyframe requests and NACKs are served.
    pub fn rtcp(&mut self, now: Instant, host: &mut Host, peer: PeerId, packet: &[u8]) {
        let Ok(parts) = rtp::parse_rtcp(packet) else {
            return;
        };
        if let Some(name) = self.publishers.get(&peer).cloned() {
            for part in parts {
                if let Rtcp::SenderReport {
                    ssrc,
                    ntp,
                    rtp_timestamp,
                    ..
                } = part
                {
                    self.translate_sr(host, &name, ssrc, ntp, rtp_timestamp);
                }
            }
            return;
        }
        let Some(name) = self.viewers.get(&peer).map(|v| v.stream.clone()) else {
            return;
        };
        let mut keyframe = false;
        for part in parts {
            match part {
                Rtcp::Pli { .. } | Rtcp::Fir { .. } => keyframe = true,
                Rtcp::Nack { media, pairs, .. } => {
                    self.resend(now, host, peer, &name, media, &rtp::nack_lost(&pairs))
                }
                _ => {}
            }
        }
        if keyframe {
            self.request_keyframe(now, host, &name);
        }
    }

    fn translate_sr(&mut self, host: &mut Host, name: &str, ssrc: u32, ntp: u64, ts: u32) {
        let Some(s) = self.streams.get(name) else {
            return;
        };
        for vp in &s.viewers {
            let Some(v) = self.viewers.get_mut(vp).filter(|v| v.connected) else {
                continue;
            };
            for sink in v
                .tracks
                .iter()
                .filter(|t| t.rewriter.source() == Some(ssrc))
            {
                let sr = rtp::build_sr(
                    sink.rewriter.ssrc,
                    ntp,
                    sink.rewriter.viewer_timestamp(ts),
                    sink.packets,
                    sink.octets,
                );
                let _ = host.send_rtcp(*vp, &sr);
            }
        }
    }

    /// NACKed packets of a viewer's track, from the cache, within its budget.
    fn resend(
        &mut self,
        now: Instant,
        host: &mut Host,
        peer: PeerId,
        name: &str,
        media: u32,
        lost: &[u16],
    ) {
        let (Some(s), Some(v)) = (self.streams.get(name), self.viewers.get_mut(&peer)) else {
            return;
        };
        if v.rtx_window
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            v.rtx_window = Some(now);
            v.rtx_in_window = 0;
        }
        let Some(sink) = v.tracks.iter_mut().find(|t| t.rewriter.ssrc == media) else {
            return;
        };
        let Some(src) = s.tracks.iter().find(|t| t.kind == sink.kind) else {
            return;
        };
        // One NACK names at most 17 packets per pair; 64 per message is plenty.
        for &seq in lost.iter().take(64) {
            if v.rtx_in_window >= self.limits.rtx_per_second {
                v.not_resent += 1;
                continue;
            }
            let source_seq = sink.rewriter.source_sequence(seq);
            let cached = src
                .cache
                .get(source_seq)
                .filter(|p| rtp::ssrc_and_sequence(p).map(|x| x.0) == sink.rewriter.source());
            let Some(out) = cached.and_then(|p| sink.rewriter.rewrite(p).ok().flatten()) else {
                v.not_resent += 1;
                continue;
            };
            let pt = out[1] & 0x7F;
            let packet = match (sink.rtx_ssrc, sink.rtx_pts.iter().find(|(m, _)| *m == pt)) {
                (Some(rtx_ssrc), Some(&(_, rtx_pt))) => {
                    sink.rtx_seq = sink.rtx_seq.wrapping_add(1);
                    match rtx_packet(&out, rtx_ssrc, rtx_pt, sink.rtx_seq) {
                        Ok(p) => p,
                        Err(_) => continue,
                    }
                }
                // No RTX negotiated: the packet again, as it was.
                _ => out,
            };
            if host.send_rtp(peer, packet).is_ok() {
                v.rtx_in_window += 1;
                v.retransmitted += 1;
            }
        }
    }

    /// A media peer closed. A publisher leaves its stream waiting for the
    /// grace period; a viewer just leaves.
    pub fn closed(&mut self, now: Instant, peer: PeerId, reason: &CloseReason) {
        if let Some(name) = self.publishers.remove(&peer) {
            if let Some(s) = self.streams.get_mut(&name) {
                if s.publisher == Some(peer) {
                    s.publisher = None;
                    s.live = false;
                    // A publisher that fails to connect while the stream waits
                    // does not extend its wait.
                    s.grace_until.get_or_insert(now + self.limits.grace);
                    self.events.push(MediaEvent::PublisherLeft {
                        stream: name,
                        peer,
                        reason: reason.clone(),
                    });
                }
            }
            return;
        }
        if let Some(v) = self.viewers.remove(&peer) {
            if let Some(s) = self.streams.get_mut(&v.stream) {
                s.viewers.remove(&peer);
            }
            if v.connected {
                self.events.push(MediaEvent::ViewerLeft {
                    stream: v.stream,
                    peer,
                    reason: reason.clone(),
                });
            }
        }
    }

    /// Ends streams whose grace ran out (BYE, then each viewer closed) and
    /// sends keyframe requests held back by the interval.
    pub fn handle_timeout(&mut self, now: Instant, host: &mut Host) {
        let due: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.live && s.grace_until.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(s) = self.streams.remove(&name) else {
                continue;
            };
            for vp in &s.viewers {
                if let Some(v) = self.viewers.remove(vp) {
                    let ssrcs: Vec<u32> = v
                        .tracks
                        .iter()
                        .flat_map(|t| std::iter::once(t.rewriter.ssrc).chain(t.rtx_ssrc))
                        .collect();
                    let _ = host.send_rtcp(*vp, &rtp::build_bye(&ssrcs));
                    if v.connected {
                        self.events.push(MediaEvent::ViewerLeft {
                            stream: name.clone(),
                            peer: *vp,
                            reason: CloseReason::StreamEnded,
                        });
                    }
                }
                host.close(now, *vp, CloseReason::StreamEnded);
            }
            // A publisher still connecting when the wait ran out goes too.
            if let Some(p) = s.publisher {
                self.publishers.remove(&p);
                host.close(now, p, CloseReason::StreamEnded);
            }
            self.events.push(MediaEvent::StreamEnded { stream: name });
        }
        let pending: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                s.keyframe_pending
                    && s.last_keyframe_request
                        .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in pending {
            self.request_keyframe(now, host, &name);
        }
        // Uplink repair: NACK the publisher for what it lost on the way.
        for s in self.streams.values_mut() {
            let (Some(publisher), true) = (s.publisher, s.live) else {
                continue;
            };
            for t in &mut s.tracks {
                let (Some(ssrc), true) = (t.source_ssrc, t.next_nack().is_some_and(|at| at <= now))
                else {
                    continue;
                };
                let lost = t.due(now);
                for chunk in lost.chunks(64) {
                    let _ = host.send_rtcp(publisher, &rtp::build_nack(RELAY_SSRC, ssrc, chunk));
                }
            }
        }
    }

    /// The relay's next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .flat_map(|s| {
                [
                    s.grace_until.filter(|_| !s.live),
                    s.keyframe_pending
                        .then(|| s.last_keyframe_request.map(|t| t + KEYFRAME_INTERVAL))
                        .flatten(),
                    s.tracks
                        .iter()
                        .filter_map(SourceTrack::next_nack)
                        .min()
                        .filter(|_| s.live),
                ]
            })
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> SourceTrack {
        SourceTrack {
            kind: MediaKind::Video,
            codecs: Vec::new(),
            extensions: Vec::new(),
            source_ssrc: Some(1),
            cache: PacketCache::new(8),
            highest: None,
            missing: BTreeMap::new(),
            nack: true,
        }
    }

    /// Uplink repair is bounded: a gap of more than 256 is a new start, not
    /// loss; a packet is asked for every 20 ms, 10 times at most.
    #[test]
    fn missing_publisher_packets_are_bounded() {
        let now = softbus_testkit::VirtualClock::new().now();
        let mut t = track();
        assert!(t.arrived(now, 10));
        assert!(t.arrived(now, 20));
        assert_eq!(t.missing.len(), 9, "11..=19");
        assert!(t.arrived(now, 15), "a missing one arrives");
        assert!(!t.arrived(now, 15), "and again is a duplicate");
        assert!(!t.arrived(now, 20), "the newest again too");
        assert!(t.arrived(now, 20 + MAX_GAP + 1), "a jump");
        assert!(t.missing.is_empty(), "is a new start, not loss");
        // Every other packet lost, 300 times: the oldest go first.
        for i in 1..=300u16 {
            t.arrived(now, 20 + MAX_GAP + 1 + 2 * i);
        }
        assert_eq!(t.missing.len(), usize::from(MAX_GAP));
        let mut u = track();
        u.arrived(now, 0);
        u.arrived(now, 2);
        let tries: usize = (0..30u32)
            .map(|i| u.due(now + NACK_INTERVAL * i).len())
            .sum();
        assert_eq!(tries, usize::from(NACK_TRIES), "seq 1 asked for 10 times");
    }
}
