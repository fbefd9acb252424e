//! The per-packet pieces of a media relay (sans-IO, no crypto): rewriting a
//! publisher's RTP for one viewer (SSRC, payload type, sequence numbers and
//! timestamps that stay continuous when the publisher reconnects), a bounded
//! cache of recent packets, and RTX retransmissions from it (RFC 4588).

use crate::rtp::{RtpError, RtpPacket};

/// One viewer's view of one media stream: what its packets are rewritten to.
#[derive(Debug, Clone)]
pub struct Rewriter {
    /// The SSRC the viewer sees (stable for the viewer's life).
    pub ssrc: u32,
    /// Publisher payload type → the viewer's (from its negotiated answer).
    pub payload_types: Vec<(u8, u8)>,
    /// Offsets added to the source's sequence numbers and timestamps.
    seq_offset: u16,
    ts_offset: u32,
    /// The last packet written (viewer numbering), and the source's.
    last: Option<(u16, u32)>,
    source_last: Option<(u32, u16, u32)>,
    /// A new source was announced: the next packet re-bases the offsets.
    rebase: bool,
    /// Clock ticks between the last packet of one source and the first of the
    /// next (one 30 fps frame at 90 kHz by default).
    pub gap_ticks: u32,
    /// Header extensions as the viewer negotiated them; `None` keeps the
    /// publisher's block as it is.
    pub extensions: Option<ExtensionMap>,
}

/// How one viewer's header extensions differ from the publisher's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionMap {
    /// Publisher id → viewer id, for the URIs both negotiated; others are dropped.
    pub ids: Vec<(u8, u8)>,
    /// The viewer's `sdes:mid` id and its mid: written in place of the publisher's.
    pub mid: Option<(u8, Vec<u8>)>,
    /// The publisher's `sdes:mid` id (its value is replaced, never copied).
    pub source_mid: Option<u8>,
}

impl Rewriter {
    pub fn new(ssrc: u32, payload_types: Vec<(u8, u8)>) -> Self {
        Self {
            ssrc,
            payload_types,
            seq_offset: 0,
            ts_offset: 0,
            last: None,
            source_last: None,
            rebase: false,
            gap_ticks: 3000,
            extensions: None,
        }
    }

    /// The source's sequence number of a packet the viewer numbers `seq`
    /// (for a NACK): valid for the current source.
    pub fn source_sequence(&self, seq: u16) -> u16 {
        seq.wrapping_sub(self.seq_offset)
    }

    /// The viewer's RTP timestamp for a source timestamp (a sender report's).
    pub fn viewer_timestamp(&self, ts: u32) -> u32 {
        ts.wrapping_add(self.ts_offset)
    }

    /// The source SSRC the viewer's numbering follows now.
    pub fn source(&self) -> Option<u32> {
        self.source_last.map(|(s, _, _)| s)
    }

    /// The publisher changed (it reconnected): the next packet continues the
    /// viewer's numbering from where the old source stopped.
    pub fn switch_source(&mut self) {
        self.rebase = true;
    }

    /// The packet as the viewer receives it, or `None` for a payload type the
    /// viewer did not negotiate.
    pub fn rewrite(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, RtpError> {
        let p = RtpPacket::parse(packet)?;
        let Some(&(_, pt)) = self
            .payload_types
            .iter()
            .find(|(from, _)| *from == p.payload_type())
        else {
            return Ok(None);
        };
        let (src_ssrc, seq, ts) = (p.ssrc(), p.sequence(), p.timestamp());
        let new_source = self.source_last.is_some_and(|(s, _, _)| s != src_ssrc);
        if (self.rebase || new_source) && self.last.is_some() {
            if let Some((last_seq, last_ts)) = self.last {
                self.seq_offset = last_seq.wrapping_add(1).wrapping_sub(seq);
                self.ts_offset = last_ts.wrapping_add(self.gap_ticks).wrapping_sub(ts);
            }
        }
        self.rebase = false;
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_ts = ts.wrapping_add(self.ts_offset);
        let mut out = match &self.extensions {
            Some(map) => map.rewrite(&p, packet)?,
            None => {
                // Room for an SRTP tag: protecting in place then needs no reallocation.
                let mut v = Vec::with_capacity(packet.len() + 16);
                v.extend_from_slice(packet);
                v
            }
        };
        out[1] = (out[1] & 0x80) | pt;
        out[2..4].copy_from_slice(&out_seq.to_be_bytes());
        out[4..8].copy_from_slice(&out_ts.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        // Newer (by sequence, with wrap) moves the high-water mark.
        let newer = self
            .last
            .is_none_or(|(l, _)| out_seq.wrapping_sub(l) < 0x8000 && out_seq != l);
        if newer {
            self.last = Some((out_seq, out_ts));
            self.source_last = Some((src_ssrc, seq, ts));
        }
        Ok(Some(out))
    }
}

impl ExtensionMap {
    /// `packet` with its extension block in the viewer's ids (payload and
    /// padding as they were).
    fn rewrite(&self, p: &RtpPacket<'_>, packet: &[u8]) -> Result<Vec<u8>, RtpError> {
        let mut ext: Vec<(u8, &[u8])> = Vec::with_capacity(4);
        if let Some((id, mid)) = &self.mid {
            ext.push((*id, mid.as_slice()));
        }
        for (id, data) in p.extensions() {
            if Some(id) == self.source_mid {
                continue;
            }
            if let Some(&(_, to)) = self.ids.iter().find(|(from, _)| *from == id) {
                if !ext.iter().any(|(i, _)| *i == to) {
                    ext.push((to, data));
                }
            }
        }
        let csrcs: Vec<u32> = p.csrcs().collect();
        let mut out = crate::rtp::RtpBuilder {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            csrcs: &csrcs,
            extensions: &ext,
            payload: &[],
        }
        .build()
        .ok_or(RtpError::Extension)?;
        out[0] |= packet[0] & 0x20;
        let tail = &packet[p.header_len()..];
        out.reserve(tail.len() + 16);
        out.extend_from_slice(tail);
        Ok(out)
    }
}

/// The last packets of a stream by sequence number, at most `capacity`: a
/// ring indexed by sequence number, so a lookup (a NACK, which a viewer
/// controls) costs one slot whatever the capacity.
#[derive(Debug, Clone)]
pub struct PacketCache {
    slots: Vec<Option<(u16, Vec<u8>)>>,
    len: usize,
}

/// Packets a stream's cache keeps by default (about 2 s of 720p video).
pub const CACHE_PACKETS: usize = 512;

impl PacketCache {
    /// A cache of `capacity` packets (1 to 65536).
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: vec![None; capacity.clamp(1, 65_536)],
            len: 0,
        }
    }

    /// Keeps `packet` (an RTP packet), in place of whatever had its slot.
    pub fn insert(&mut self, packet: &[u8]) {
        let Some(seq) = crate::rtp::ssrc_and_sequence(packet).map(|(_, s)| s) else {
            return;
        };
        let n = self.slots.len();
        let slot = &mut self.slots[usize::from(seq) % n];
        if slot.is_none() {
            self.len += 1;
        }
        *slot = Some((seq, packet.to_vec()));
    }

    /// The packet with this sequence number, if still kept.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        match &self.slots[usize::from(seq) % self.slots.len()] {
            Some((s, p)) if *s == seq => Some(p),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An RTX retransmission of `original` (RFC 4588 §4): the RTX SSRC, payload
/// type and sequence number, and the original sequence number as the first
/// two payload bytes.
pub fn rtx_packet(
    original: &[u8],
    rtx_ssrc: u32,
    rtx_pt: u8,
    rtx_seq: u16,
) -> Result<Vec<u8>, RtpError> {
    let p = RtpPacket::parse(original)?;
    let hlen = p.header_len();
    let mut out = Vec::with_capacity(original.len() + 2);
    out.extend_from_slice(&original[..hlen]);
    // Padding is not carried over: the payload is re-framed.
    out[0] &= !0x20;
    out[1] = (out[1] & 0x80) | rtx_pt;
    out[2..4].copy_from_slice(&rtx_seq.to_be_bytes());
    out[8..12].copy_from_slice(&rtx_ssrc.to_be_bytes());
    out.extend_from_slice(&p.sequence().to_be_bytes());
    out.extend_from_slice(p.payload());
    Ok(out)
}

/// The original sequence number and payload of an RTX packet.
pub fn rtx_original(rtx: &[u8]) -> Result<(u16, &[u8]), RtpError> {
    let p = RtpPacket::parse(rtx)?;
    let payload = p.payload();
    if payload.len() < 2 {
        return Err(RtpError::Truncated);
    }
    Ok((u16::from_be_bytes([payload[0], payload[1]]), &payload[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpBuilder;

    fn pkt(ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpBuilder {
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc,
            payload,
            ..Default::default()
        }
        .build()
        .expect("builds")
    }

    fn fields(p: &[u8]) -> (u32, u8, u16, u32) {
        let r = RtpPacket::parse(p).expect("parses");
        (r.ssrc(), r.payload_type(), r.sequence(), r.timestamp())
    }

    #[test]
    fn ssrc_and_payload_type_are_the_viewers() {
        let mut w = Rewriter::new(0xAAAA, vec![(96, 100), (111, 109)]);
        let out = w.rewrite(&pkt(1, 96, 10, 1000, b"v")).unwrap().unwrap();
        assert_eq!(fields(&out), (0xAAAA, 100, 10, 1000));
        assert_eq!(RtpPacket::parse(&out).unwrap().payload(), b"v");
        assert_eq!(
            w.rewrite(&pkt(1, 97, 11, 1000, b"x")).unwrap(),
            None,
            "not negotiated"
        );
    }

    /// A publisher reconnects with a new SSRC and its own numbering: the viewer
    /// sees sequence numbers and timestamps continue.
    #[test]
    fn a_reconnected_publisher_continues_the_numbering() {
        let mut w = Rewriter::new(7, vec![(96, 96)]);
        for i in 0..3u16 {
            w.rewrite(&pkt(
                1,
                96,
                65_534u16.wrapping_add(i),
                90_000 + u32::from(i) * 3000,
                b"a",
            ))
            .unwrap();
        }
        // Last out: seq 0 (wrapped), ts 96000.
        w.switch_source();
        let out = w.rewrite(&pkt(2, 96, 5000, 123, b"b")).unwrap().unwrap();
        assert_eq!(fields(&out), (7, 96, 1, 99_000));
        let out = w.rewrite(&pkt(2, 96, 5001, 3123, b"b")).unwrap().unwrap();
        assert_eq!(fields(&out), (7, 96, 2, 102_000));
        // A new SSRC without an announcement is a new source too.
        let out = w.rewrite(&pkt(3, 96, 9, 9, b"c")).unwrap().unwrap();
        assert_eq!(fields(&out).2, 3);
        // A late packet of the current source keeps its place, not the mark.
        let late = w.rewrite(&pkt(3, 96, 8, 6, b"c")).unwrap().unwrap();
        assert_eq!(fields(&late).2, 2);
        let next = w.rewrite(&pkt(3, 96, 10, 12, b"c")).unwrap().unwrap();
        assert_eq!(fields(&next).2, 4);
    }

    #[test]
    fn extensions_take_the_viewers_ids_and_mid() {
        let ext: [(u8, &[u8]); 3] = [(1, b"0"), (3, &[9, 9, 9]), (5, &[1, 2])];
        let src = RtpBuilder {
            payload_type: 96,
            sequence: 1,
            ssrc: 1,
            extensions: &ext,
            payload: b"frame",
            ..Default::default()
        }
        .build()
        .unwrap();
        let mut w = Rewriter::new(2, vec![(96, 98)]);
        w.extensions = Some(ExtensionMap {
            ids: vec![(3, 7)],
            mid: Some((4, b"video".to_vec())),
            source_mid: Some(1),
        });
        let out = w.rewrite(&src).unwrap().unwrap();
        let p = RtpPacket::parse(&out).unwrap();
        let got: Vec<(u8, Vec<u8>)> = p.extensions().map(|(i, d)| (i, d.to_vec())).collect();
        assert_eq!(got, vec![(4, b"video".to_vec()), (7, vec![9, 9, 9])]);
        assert_eq!(
            (p.payload_type(), p.ssrc(), p.payload()),
            (98, 2, &b"frame"[..])
        );
        assert_eq!(w.source_sequence(p.sequence()), 1);
    }

    #[test]
    fn the_cache_is_bounded_and_rtx_carries_the_original() {
        let mut c = PacketCache::new(4);
        for s in 0..6u16 {
            c.insert(&pkt(5, 96, s, 0, &[s as u8; 3]));
        }
        assert_eq!(c.len(), 4);
        assert!(c.get(1).is_none(), "evicted");
        let orig = c.get(4).unwrap().to_vec();
        let rtx = rtx_packet(&orig, 0x5555, 97, 77).unwrap();
        assert_eq!(fields(&rtx), (0x5555, 97, 77, 0));
        let (osn, payload) = rtx_original(&rtx).unwrap();
        assert_eq!((osn, payload), (4, &[4u8, 4, 4][..]));
        assert_eq!(
            rtx_original(&pkt(1, 97, 1, 0, b"x")),
            Err(RtpError::Truncated)
        );
    }
}
