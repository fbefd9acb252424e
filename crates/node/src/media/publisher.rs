//! A stream's source: the publisher's tracks, the packet cache each keeps for
//! viewers' retransmissions, uplink repair (the relay NACKs what the publisher's
//! packets lost on the way) and keyframe requests, at most one per
//! [`KEYFRAME_INTERVAL`].
//!
//! The tracks outlive the publisher's connection: during the grace period a
//! viewer may still join, and a publisher that comes back replaces them.

use super::{ext_pairs, is_rtx, kind_name, KEYFRAME_INTERVAL, RELAY_SSRC};
use softbus_rtc::jsep::codecs::{self, Codec};
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::MediaTrack;
use softbus_rtc::rewrite::PacketCache;
use softbus_rtc::rtp::{self, Rtcp, RtpPacket};
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Uplink repair bounds: gaps larger than this are a new start, not loss;
/// a packet is asked for at most [`NACK_TRIES`] times, [`NACK_INTERVAL`]
/// apart, and given up after [`NACK_GIVE_UP`].
const MAX_GAP: u16 = 256;
const NACK_TRIES: u8 = 10;
pub const NACK_INTERVAL: Duration = Duration::from_millis(20);
const NACK_GIVE_UP: Duration = Duration::from_secs(1);

/// RTCP for the publisher queued at most (drained after every call).
const MAX_OUT: usize = 256;

/// One track of the publisher.
pub(super) struct SourceTrack {
    pub(super) kind: MediaKind,
    pub(super) codecs: Vec<Codec>,
    /// Publisher header extensions `(id, uri)`.
    pub(super) extensions: Vec<(u16, String)>,
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

/// A publisher's sender report, for the router to translate per viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SenderReport {
    pub(super) ssrc: u32,
    pub(super) ntp: u64,
    pub(super) rtp_timestamp: u32,
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

impl SourceTrack {
    fn new(t: &MediaTrack, cache_packets: usize) -> Self {
        SourceTrack {
            kind: t.kind,
            codecs: t.codecs.clone(),
            extensions: ext_pairs(t),
            source_ssrc: t.remote_ssrcs.first().copied(),
            cache: PacketCache::new(cache_packets),
            highest: None,
            missing: BTreeMap::new(),
            nack: t
                .codecs
                .iter()
                .any(|c| c.feedback.iter().any(|f| f == "nack")),
        }
    }

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

/// The source of one stream.
pub(super) struct Publisher {
    tracks: Vec<SourceTrack>,
    last_keyframe_request: Option<Instant>,
    /// A keyframe was asked for within the interval: sent when it ends.
    keyframe_pending: bool,
    /// RTCP for the publisher's peer.
    out: VecDeque<Vec<u8>>,
}

impl Publisher {
    /// A source with no tracks yet (a stream whose publisher has not answered).
    pub(super) fn empty() -> Self {
        Self {
            tracks: Vec::new(),
            last_keyframe_request: None,
            keyframe_pending: false,
            out: VecDeque::new(),
        }
    }

    /// Takes the tracks a publisher negotiated; the keyframe state stays.
    pub(super) fn set_tracks(&mut self, media: &[MediaTrack], cache_packets: usize) {
        self.tracks = media
            .iter()
            .map(|t| SourceTrack::new(t, cache_packets))
            .collect();
    }

    pub(super) fn tracks(&self) -> &[SourceTrack] {
        &self.tracks
    }

    pub(super) fn track(&self, kind: MediaKind) -> Option<&SourceTrack> {
        self.tracks.iter().find(|t| t.kind == kind)
    }

    /// The kinds of its tracks, in order ("audio", "video").
    pub(super) fn kinds(&self) -> Vec<String> {
        self.tracks
            .iter()
            .map(|t| kind_name(t.kind).to_owned())
            .collect()
    }

    /// RTP from the publisher: the media packet to forward (an RTX packet
    /// restored to its original) and its kind; `None` for a duplicate, padding
    /// or a payload type it did not negotiate.
    pub(super) fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        packet: &'a [u8],
    ) -> Option<(MediaKind, Cow<'a, [u8]>)> {
        let p = RtpPacket::parse(packet).ok()?;
        let pt = p.payload_type();
        // A retransmission we asked for (RFC 4588): the original again.
        let packet: Cow<'a, [u8]> = match self.tracks.iter().find_map(|t| {
            t.codecs
                .iter()
                .find(|c| c.payload_type == pt && is_rtx(c))
                .and_then(codecs::rtx_apt)
                .map(|apt| (apt, t.source_ssrc))
        }) {
            Some((apt, Some(ssrc))) => Cow::Owned(rtx_restore(&p, apt, ssrc)?),
            Some((_, None)) => return None,
            None => Cow::Borrowed(packet),
        };
        let p = RtpPacket::parse(&packet).ok()?;
        let pt = p.payload_type();
        // Else padding of the publisher, or unknown.
        let track = self
            .tracks
            .iter_mut()
            .find(|t| t.codecs.iter().any(|c| c.payload_type == pt && !is_rtx(c)))?;
        if track.source_ssrc != Some(p.ssrc()) {
            // A new source: its numbering starts over.
            track.highest = None;
            track.missing.clear();
        }
        track.source_ssrc = Some(p.ssrc());
        if !track.arrived(now, p.sequence()) {
            return None;
        }
        track.cache.insert(&packet);
        Some((track.kind, packet))
    }

    /// RTCP from the publisher: its sender reports.
    pub(super) fn handle_rtcp(&mut self, packet: &[u8]) -> Vec<SenderReport> {
        let Ok(parts) = rtp::parse_rtcp(packet) else {
            return Vec::new();
        };
        parts
            .into_iter()
            .filter_map(|part| match part {
                Rtcp::SenderReport {
                    ssrc,
                    ntp,
                    rtp_timestamp,
                    ..
                } => Some(SenderReport {
                    ssrc,
                    ntp,
                    rtp_timestamp,
                }),
                _ => None,
            })
            .collect()
    }

    /// A PLI for its video, at most one per interval; a request within the
    /// interval is sent when it ends. Only for a connected publisher.
    pub(super) fn request_keyframe(&mut self, now: Instant) {
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_INTERVAL)
        {
            self.keyframe_pending = true;
            return;
        }
        self.keyframe_pending = false;
        self.last_keyframe_request = Some(now);
        let sources: Vec<u32> = self
            .tracks
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .filter_map(|t| t.source_ssrc)
            .collect();
        for src in sources {
            self.push(rtp::build_pli(RELAY_SSRC, src));
        }
    }

    /// A held-back keyframe request whose interval ended.
    pub(super) fn keyframe_due(&self, now: Instant) -> bool {
        self.keyframe_pending
            && self
                .last_keyframe_request
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_INTERVAL)
    }

    /// Uplink repair of a connected publisher: NACKs for what is missing and due.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let mut nacks = Vec::new();
        for t in &mut self.tracks {
            let (Some(ssrc), true) = (t.source_ssrc, t.next_nack().is_some_and(|at| at <= now))
            else {
                continue;
            };
            let lost = t.due(now);
            for chunk in lost.chunks(64) {
                nacks.push(rtp::build_nack(RELAY_SSRC, ssrc, chunk));
            }
        }
        for n in nacks {
            self.push(n);
        }
    }

    /// Its next timer while connected: a held-back keyframe request, or a NACK.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let keyframe = self
            .keyframe_pending
            .then(|| self.last_keyframe_request.map(|t| t + KEYFRAME_INTERVAL))
            .flatten();
        let nack = self.tracks.iter().filter_map(SourceTrack::next_nack).min();
        softbus_proto::earliest(keyframe, nack)
    }

    /// The cached packet `seq` of the `kind` track from source `ssrc`.
    pub(super) fn cached(&self, kind: MediaKind, seq: u16, ssrc: Option<u32>) -> Option<&[u8]> {
        self.track(kind)?
            .cache
            .get(seq)
            .filter(|p| rtp::ssrc_and_sequence(p).map(|x| x.0) == ssrc)
    }

    /// Next RTCP for the publisher.
    pub(super) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    fn push(&mut self, packet: Vec<u8>) {
        if self.out.len() < MAX_OUT {
            self.out.push_back(packet);
        }
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
