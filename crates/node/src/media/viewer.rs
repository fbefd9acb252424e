//! A viewer: its sink tracks, each rewriting the stream's packets to the
//! viewer's SSRC, payload types and header extension ids (numbering that
//! continues across publishers), its sender reports, and retransmission of
//! what it NACKs from the publisher's cache, within its own budget.

use super::publisher::{Publisher, SenderReport, SourceTrack};
use super::{ext_pairs, is_rtx, ViewerInfo, RELAYED_EXTENSIONS};
use crate::Principal;
use softbus_rtc::host::PeerId;
use softbus_rtc::jsep::codecs::{self, Codec};
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{MediaTrack, SendPlan, SendTrack};
use softbus_rtc::rewrite::{rtx_packet, ExtensionMap, Rewriter};
use softbus_rtc::rtp::{self, Rtcp};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// What one viewer call may queue at most (drained after every call).
const MAX_OUT: usize = 256;

/// One packet for the viewer's peer.
#[derive(Debug)]
pub(super) enum Out {
    Rtp(Vec<u8>),
    Rtcp(Vec<u8>),
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

/// What a viewer is sent: for each source track, its formats and fresh SSRCs
/// (an RTX SSRC for video).
pub(super) fn plan(stream: &str, source: &Publisher, mut ssrc: impl FnMut() -> u32) -> SendPlan {
    let mut tracks = Vec::new();
    for t in source.tracks() {
        let main = ssrc();
        let rtx_ssrc = (t.kind == MediaKind::Video).then(&mut ssrc);
        tracks.push(SendTrack {
            kind: t.kind,
            formats: t
                .codecs
                .iter()
                .filter(|c| !is_rtx(c))
                .map(|c| (c.encoding.clone(), c.fmtp.clone()))
                .collect(),
            ssrc: main,
            rtx_ssrc,
        });
    }
    SendPlan {
        tracks,
        extensions: RELAYED_EXTENSIONS.iter().map(|u| (*u).to_owned()).collect(),
        stream: stream.to_owned(),
    }
}

/// One viewer of a stream.
pub(super) struct Viewer {
    pub(super) stream: String,
    pub(super) who: String,
    pub(super) auth: crate::AuthMethod,
    tracks: Vec<SinkTrack>,
    pub(super) connected: bool,
    /// RTX budget: the window's start and what it spent.
    rtx_window: Option<Instant>,
    rtx_in_window: u32,
    packets: u64,
    bytes: u64,
    retransmitted: u64,
    not_resent: u64,
    out: VecDeque<Out>,
}

impl Viewer {
    /// A viewer whose peer negotiated `media`, fed from `source`.
    pub(super) fn new(
        stream: &str,
        who: &Principal,
        media: &[MediaTrack],
        source: &Publisher,
    ) -> Self {
        let mut tracks = Vec::new();
        for t in media {
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
            if let Some(src) = source.track(t.kind) {
                let (pts, ext) = mapping(src, &sink);
                sink.rewriter.payload_types = pts;
                sink.rewriter.extensions = Some(ext);
            }
            tracks.push(sink);
        }
        Viewer {
            stream: stream.to_owned(),
            who: who.name().to_owned(),
            auth: who.method(),
            tracks,
            connected: false,
            rtx_window: None,
            rtx_in_window: 0,
            packets: 0,
            bytes: 0,
            retransmitted: 0,
            not_resent: 0,
            out: VecDeque::new(),
        }
    }

    /// A new publisher feeds the stream: its payload types and extension ids
    /// may differ, its numbering does; the viewer's continues.
    pub(super) fn follow(&mut self, source: &Publisher) {
        for sink in &mut self.tracks {
            if let Some(src) = source.track(sink.kind) {
                let (pts, ext) = mapping(src, sink);
                sink.rewriter.payload_types = pts;
                sink.rewriter.extensions = Some(ext);
                sink.rewriter.switch_source();
            }
        }
    }

    /// A packet of the stream's `kind` track, rewritten for this viewer.
    pub(super) fn handle_rtp(&mut self, kind: MediaKind, packet: &[u8]) {
        let Some(sink) = self.tracks.iter_mut().find(|t| t.kind == kind) else {
            return;
        };
        let Ok(Some(out)) = sink.rewriter.rewrite(packet) else {
            return;
        };
        sink.packets = sink.packets.wrapping_add(1);
        sink.octets = sink
            .octets
            .wrapping_add(out.len().saturating_sub(12) as u32);
        self.packets += 1;
        self.bytes += out.len() as u64;
        self.out.push_back(Out::Rtp(out));
    }

    /// RTCP from the viewer: NACKed packets are resent from `source`'s cache
    /// within `rtx_per_second`; true when it asks for a keyframe.
    pub(super) fn handle_rtcp(
        &mut self,
        now: Instant,
        packet: &[u8],
        source: &Publisher,
        rtx_per_second: u32,
    ) -> bool {
        let Ok(parts) = rtp::parse_rtcp(packet) else {
            return false;
        };
        let mut keyframe = false;
        for part in parts {
            match part {
                Rtcp::Pli { .. } | Rtcp::Fir { .. } => keyframe = true,
                Rtcp::Nack { media, pairs, .. } => {
                    self.resend(now, source, media, &rtp::nack_lost(&pairs), rtx_per_second)
                }
                _ => {}
            }
        }
        keyframe
    }

    /// NACKed packets of a track, from the cache, within the budget.
    fn resend(
        &mut self,
        now: Instant,
        source: &Publisher,
        media: u32,
        lost: &[u16],
        rtx_per_second: u32,
    ) {
        if self
            .rtx_window
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.rtx_window = Some(now);
            self.rtx_in_window = 0;
        }
        let Some(sink) = self.tracks.iter_mut().find(|t| t.rewriter.ssrc == media) else {
            return;
        };
        if source.track(sink.kind).is_none() {
            return;
        }
        // One NACK names at most 17 packets per pair; 64 per message is plenty.
        for &seq in lost.iter().take(64) {
            if self.rtx_in_window >= rtx_per_second {
                self.not_resent += 1;
                continue;
            }
            let source_seq = sink.rewriter.source_sequence(seq);
            let cached = source.cached(sink.kind, source_seq, sink.rewriter.source());
            let Some(out) = cached.and_then(|p| sink.rewriter.rewrite(p).ok().flatten()) else {
                self.not_resent += 1;
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
            if self.out.len() < MAX_OUT {
                self.out.push_back(Out::Rtp(packet));
                self.rtx_in_window += 1;
                self.retransmitted += 1;
            }
        }
    }

    /// The publisher's sender report, in this viewer's SSRC and timestamps.
    pub(super) fn sender_report(&mut self, sr: &SenderReport) {
        for sink in self
            .tracks
            .iter()
            .filter(|t| t.rewriter.source() == Some(sr.ssrc))
        {
            let packet = rtp::build_sr(
                sink.rewriter.ssrc,
                sr.ntp,
                sink.rewriter.viewer_timestamp(sr.rtp_timestamp),
                sink.packets,
                sink.octets,
            );
            if self.out.len() < MAX_OUT {
                self.out.push_back(Out::Rtcp(packet));
            }
        }
    }

    /// RTCP BYE for every SSRC the viewer was sent.
    pub(super) fn bye(&mut self) {
        let ssrcs: Vec<u32> = self
            .tracks
            .iter()
            .flat_map(|t| std::iter::once(t.rewriter.ssrc).chain(t.rtx_ssrc))
            .collect();
        self.out.push_back(Out::Rtcp(rtp::build_bye(&ssrcs)));
    }

    /// Its counters.
    pub(super) fn info(&self, peer: PeerId) -> ViewerInfo {
        ViewerInfo {
            peer: peer.0,
            packets: self.packets,
            bytes: self.bytes,
            retransmitted: self.retransmitted,
            not_resent: self.not_resent,
        }
    }

    /// Next packet for the viewer's peer.
    pub(super) fn poll_transmit(&mut self) -> Option<Out> {
        self.out.pop_front()
    }
}
