//! RTP (RFC 3550) with header extensions (RFC 8285, one-byte and two-byte
//! forms, mixed per `extmap-allow-mixed`), and RTCP compound packets (RFC 3550,
//! 4585, 5104): SR, RR, SDES, BYE, generic NACK, PLI, FIR; other feedback
//! (REMB, transport-wide congestion control, …) is passed through intact.
//!
//! The views borrow the packet: nothing is copied to read a header. Every
//! parser returns a typed [`RtpError`] and never panics.

/// Why a packet is not RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    #[error("shorter than its header")]
    Truncated,
    #[error("version {0}, not 2")]
    Version(u8),
    #[error("padding longer than the packet")]
    Padding,
    #[error("header extension runs past the packet")]
    Extension,
    #[error("RTCP length field runs past the compound packet")]
    Length,
    #[error("RTCP {0} body too short for its count")]
    Body(u8),
}

/// A read-only view of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Where the payload starts and ends (padding excluded).
    payload: (usize, usize),
    /// The extension block: profile and its data.
    extension: Option<(u16, (usize, usize))>,
}

/// `0xBEDE`: the one-byte header extension form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// `0x100X`: the two-byte form (the low 4 bits are application bits).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The length of an RTP header (fixed part, CSRCs, extension block), with
/// no look at the payload: for SRTP, whose padding is encrypted.
pub fn header_len(buf: &[u8]) -> Result<usize, RtpError> {
    if buf.len() < 12 {
        return Err(RtpError::Truncated);
    }
    let v = buf[0] >> 6;
    if v != 2 {
        return Err(RtpError::Version(v));
    }
    let mut at = 12 + 4 * usize::from(buf[0] & 0x0F);
    if buf.len() < at {
        return Err(RtpError::Truncated);
    }
    if buf[0] & 0x10 != 0 {
        if buf.len() < at + 4 {
            return Err(RtpError::Extension);
        }
        at += 4 + 4 * usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        if at > buf.len() {
            return Err(RtpError::Extension);
        }
    }
    Ok(at)
}

/// The SSRC and sequence number of an RTP header (at least 12 bytes).
pub fn ssrc_and_sequence(buf: &[u8]) -> Option<(u32, u16)> {
    let b = buf.get(..12)?;
    Some((
        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

impl<'a> RtpPacket<'a> {
    /// Parses `buf` as RTP.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let v = buf[0] >> 6;
        if v != 2 {
            return Err(RtpError::Version(v));
        }
        let cc = usize::from(buf[0] & 0x0F);
        let mut at = 12 + 4 * cc;
        if buf.len() < at {
            return Err(RtpError::Truncated);
        }
        let mut extension = None;
        if buf[0] & 0x10 != 0 {
            if buf.len() < at + 4 {
                return Err(RtpError::Extension);
            }
            let profile = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let words = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
            let start = at + 4;
            let end = start + 4 * words;
            if end > buf.len() {
                return Err(RtpError::Extension);
            }
            extension = Some((profile, (start, end)));
            at = end;
        }
        let mut end = buf.len();
        if buf[0] & 0x20 != 0 {
            let pad = usize::from(buf[buf.len() - 1]);
            if pad == 0 || at + pad > end {
                return Err(RtpError::Padding);
            }
            end -= pad;
        }
        Ok(Self {
            buf,
            payload: (at, end),
            extension,
        })
    }

    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }
    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let cc = usize::from(self.buf[0] & 0x0F);
        self.buf[12..12 + 4 * cc]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// The whole packet.
    pub fn raw(&self) -> &'a [u8] {
        self.buf
    }
    /// The payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload.0..self.payload.1]
    }
    /// The header's length: everything before the payload.
    pub fn header_len(&self) -> usize {
        self.payload.0
    }
    /// The extension block's profile, if there is one.
    pub fn extension_profile(&self) -> Option<u16> {
        self.extension.map(|(p, _)| p)
    }
    /// The RFC 8285 elements `(id, data)` of a one-byte or two-byte block
    /// (none for another profile). A malformed element ends the list.
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension {
            Some((profile, (s, e))) if profile == ONE_BYTE_PROFILE => Extensions {
                data: &self.buf[s..e],
                two_byte: false,
            },
            Some((profile, (s, e))) if profile & 0xFFF0 == TWO_BYTE_PROFILE => Extensions {
                data: &self.buf[s..e],
                two_byte: true,
            },
            _ => Extensions {
                data: &[],
                two_byte: false,
            },
        }
    }
    /// The element with this id.
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        self.extensions().find(|(i, _)| *i == id).map(|(_, d)| d)
    }
}

/// The elements of a header extension block.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    two_byte: bool,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, rest) = self.data.split_first()?;
            if first == 0 {
                // Padding between elements.
                self.data = rest;
                continue;
            }
            let (id, len, rest) = if self.two_byte {
                let (&len, rest) = rest.split_first()?;
                (first, usize::from(len), rest)
            } else {
                let id = first >> 4;
                if id == 15 {
                    // Reserved: stop reading (RFC 8285 §4.2).
                    self.data = &[];
                    return None;
                }
                (id, usize::from(first & 0x0F) + 1, rest)
            };
            if rest.len() < len {
                self.data = &[];
                return None;
            }
            self.data = &rest[len..];
            return Some((id, &rest[..len]));
        }
    }
}

/// Writes an RTP packet: header fields, extension elements and payload.
/// The extension block uses the one-byte form when every element fits it
/// (id 1..=14, 1..=16 bytes), else the two-byte form (RFC 8285 §4.3, which
/// `extmap-allow-mixed` permits).
#[derive(Debug, Clone, Default)]
pub struct RtpBuilder<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrcs: &'a [u32],
    pub extensions: &'a [(u8, &'a [u8])],
    pub payload: &'a [u8],
}

impl RtpBuilder<'_> {
    /// The packet, or `None` if an element cannot be written (id 0 or over
    /// 255, empty data in the one-byte form, data over 255 bytes, over 15 CSRCs).
    pub fn build(&self) -> Option<Vec<u8>> {
        if self.csrcs.len() > 15 || self.payload_type > 127 {
            return None;
        }
        let one_byte = self
            .extensions
            .iter()
            .all(|(id, d)| (1..=14).contains(id) && (1..=16).contains(&d.len()));
        let mut ext = Vec::new();
        for (id, d) in self.extensions {
            if *id == 0 || d.len() > 255 {
                return None;
            }
            if one_byte {
                ext.push((id << 4) | (d.len() as u8 - 1));
            } else {
                ext.push(*id);
                ext.push(d.len() as u8);
            }
            ext.extend_from_slice(d);
        }
        while ext.len() % 4 != 0 {
            ext.push(0);
        }
        let mut out =
            Vec::with_capacity(16 + 4 * self.csrcs.len() + ext.len() + self.payload.len());
        let x = if self.extensions.is_empty() { 0 } else { 0x10 };
        out.push(0x80 | x | self.csrcs.len() as u8);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in self.csrcs {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if !self.extensions.is_empty() {
            let profile = if one_byte {
                ONE_BYTE_PROFILE
            } else {
                TWO_BYTE_PROFILE
            };
            out.extend_from_slice(&profile.to_be_bytes());
            out.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
            out.extend_from_slice(&ext);
        }
        out.extend_from_slice(self.payload);
        Some(out)
    }
}

/// RTCP packet types.
pub mod pt {
    pub const SR: u8 = 200;
    pub const RR: u8 = 201;
    pub const SDES: u8 = 202;
    pub const BYE: u8 = 203;
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585): FMT 1 generic NACK, 15 transport-wide CC.
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback: FMT 1 PLI, 4 FIR, 15 application layer (REMB).
    pub const PSFB: u8 = 206;
}

/// One report block of an SR or RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// Signed 24-bit.
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    pub jitter: u32,
    pub last_sr: u32,
    pub delay_since_last_sr: u32,
}

/// One SDES chunk: an SSRC and its items `(type, text)`.
pub type SdesChunk<'a> = (u32, Vec<(u8, &'a [u8])>);

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp<'a> {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_timestamp: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        reports: Vec<ReportBlock>,
    },
    Sdes(Vec<SdesChunk<'a>>),
    Bye {
        ssrcs: Vec<u32>,
        reason: Option<&'a [u8]>,
    },
    /// Generic NACK: lost packets as `(pid, blp)` pairs.
    Nack {
        sender: u32,
        media: u32,
        pairs: Vec<(u16, u16)>,
    },
    Pli {
        sender: u32,
        media: u32,
    },
    /// Full intra request: `(ssrc, sequence number)` entries.
    Fir {
        sender: u32,
        entries: Vec<(u32, u8)>,
    },
    /// Anything else (APP, REMB, transport-wide CC, unknown types), whole.
    Other {
        packet_type: u8,
        fmt: u8,
        raw: &'a [u8],
    },
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn report_blocks(body: &[u8], count: usize, pt: u8) -> Result<Vec<ReportBlock>, RtpError> {
    if body.len() < 24 * count {
        return Err(RtpError::Body(pt));
    }
    Ok(body
        .chunks_exact(24)
        .take(count)
        .map(|b| ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: (i32::from_be_bytes([b[5], b[6], b[7], 0])) >> 8,
            highest_sequence: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        })
        .collect())
}

/// The packets of an RTCP compound packet, in order.
pub fn parse_rtcp(buf: &[u8]) -> Result<Vec<Rtcp<'_>>, RtpError> {
    let mut out = Vec::new();
    let mut rest = buf;
    if rest.is_empty() {
        return Err(RtpError::Truncated);
    }
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtpError::Truncated);
        }
        let v = rest[0] >> 6;
        if v != 2 {
            return Err(RtpError::Version(v));
        }
        let count = usize::from(rest[0] & 0x1F);
        let packet_type = rest[1];
        let len = 4 * (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1);
        if len > rest.len() {
            return Err(RtpError::Length);
        }
        let (packet, tail) = rest.split_at(len);
        rest = tail;
        let mut body = &packet[4..];
        if packet[0] & 0x20 != 0 {
            let pad = usize::from(*packet.last().unwrap_or(&0));
            if pad == 0 || pad > body.len() {
                return Err(RtpError::Padding);
            }
            body = &body[..body.len() - pad];
        }
        let short = || RtpError::Body(packet_type);
        out.push(match packet_type {
            pt::SR => {
                if body.len() < 24 {
                    return Err(short());
                }
                Rtcp::SenderReport {
                    ssrc: be32(body, 0),
                    ntp: u64::from(be32(body, 4)) << 32 | u64::from(be32(body, 8)),
                    rtp_timestamp: be32(body, 12),
                    packets: be32(body, 16),
                    octets: be32(body, 20),
                    reports: report_blocks(&body[24..], count, packet_type)?,
                }
            }
            pt::RR => {
                if body.len() < 4 {
                    return Err(short());
                }
                Rtcp::ReceiverReport {
                    ssrc: be32(body, 0),
                    reports: report_blocks(&body[4..], count, packet_type)?,
                }
            }
            pt::SDES => {
                let mut chunks = Vec::new();
                let mut b = body;
                for _ in 0..count {
                    if b.len() < 4 {
                        return Err(short());
                    }
                    let ssrc = be32(b, 0);
                    let mut i = 4;
                    let mut items = Vec::new();
                    loop {
                        let Some(&t) = b.get(i) else {
                            return Err(short());
                        };
                        if t == 0 {
                            // END, then padding to the next 32-bit boundary.
                            i = (i + 4) & !3;
                            break;
                        }
                        let Some(&l) = b.get(i + 1) else {
                            return Err(short());
                        };
                        let end = i + 2 + usize::from(l);
                        let Some(text) = b.get(i + 2..end) else {
                            return Err(short());
                        };
                        items.push((t, text));
                        i = end;
                    }
                    chunks.push((ssrc, items));
                    b = b.get(i..).unwrap_or(&[]);
                }
                Rtcp::Sdes(chunks)
            }
            pt::BYE => {
                if body.len() < 4 * count {
                    return Err(short());
                }
                let ssrcs = (0..count).map(|k| be32(body, 4 * k)).collect();
                let reason = body
                    .get(4 * count)
                    .and_then(|&l| body.get(4 * count + 1..4 * count + 1 + usize::from(l)));
                Rtcp::Bye { ssrcs, reason }
            }
            pt::RTPFB if count == 1 => {
                if body.len() < 8 {
                    return Err(short());
                }
                Rtcp::Nack {
                    sender: be32(body, 0),
                    media: be32(body, 4),
                    pairs: body[8..]
                        .chunks_exact(4)
                        .map(|c| {
                            (
                                u16::from_be_bytes([c[0], c[1]]),
                                u16::from_be_bytes([c[2], c[3]]),
                            )
                        })
                        .collect(),
                }
            }
            pt::PSFB if count == 1 => {
                if body.len() < 8 {
                    return Err(short());
                }
                Rtcp::Pli {
                    sender: be32(body, 0),
                    media: be32(body, 4),
                }
            }
            pt::PSFB if count == 4 => {
                if body.len() < 8 {
                    return Err(short());
                }
                Rtcp::Fir {
                    sender: be32(body, 0),
                    entries: body[8..]
                        .chunks_exact(8)
                        .map(|c| (be32(c, 0), c[4]))
                        .collect(),
                }
            }
            _ => Rtcp::Other {
                packet_type,
                fmt: packet[0] & 0x1F,
                raw: packet,
            },
        });
    }
    Ok(out)
}

/// Lost sequence numbers a NACK's `(pid, blp)` pairs name.
pub fn nack_lost(pairs: &[(u16, u16)]) -> Vec<u16> {
    let mut lost = Vec::new();
    for &(pid, blp) in pairs {
        lost.push(pid);
        for bit in 0..16 {
            if blp & (1 << bit) != 0 {
                lost.push(pid.wrapping_add(bit + 1));
            }
        }
    }
    lost
}

/// A generic NACK (RFC 4585 §6.2.1) for `lost` sequence numbers.
pub fn build_nack(sender: u32, media: u32, lost: &[u16]) -> Vec<u8> {
    let mut pairs: Vec<(u16, u16)> = Vec::new();
    for &s in lost {
        match pairs.last_mut() {
            Some((pid, blp)) if s.wrapping_sub(*pid).wrapping_sub(1) < 16 && s != *pid => {
                *blp |= 1 << s.wrapping_sub(*pid).wrapping_sub(1);
            }
            _ => pairs.push((s, 0)),
        }
    }
    let mut out = vec![0x80 | 1, pt::RTPFB, 0, 0];
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&media.to_be_bytes());
    for (pid, blp) in pairs {
        out.extend_from_slice(&pid.to_be_bytes());
        out.extend_from_slice(&blp.to_be_bytes());
    }
    let words = (out.len() / 4 - 1) as u16;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    out
}

/// A sender report without report blocks (RFC 3550 §6.4.1).
pub fn build_sr(ssrc: u32, ntp: u64, rtp_timestamp: u32, packets: u32, octets: u32) -> Vec<u8> {
    let mut out = vec![0x80, pt::SR, 0, 6];
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&ntp.to_be_bytes());
    out.extend_from_slice(&rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&packets.to_be_bytes());
    out.extend_from_slice(&octets.to_be_bytes());
    out
}

/// A BYE for up to 31 sources (RFC 3550 §6.6), no reason.
pub fn build_bye(ssrcs: &[u32]) -> Vec<u8> {
    let ssrcs = &ssrcs[..ssrcs.len().min(31)];
    let mut out = vec![0x80 | ssrcs.len() as u8, pt::BYE, 0, ssrcs.len() as u8];
    for s in ssrcs {
        out.extend_from_slice(&s.to_be_bytes());
    }
    out
}

/// `packet` as a compound RTCP packet (RFC 3550 §6.1) for a peer that did not
/// negotiate reduced-size RTCP (RFC 5506): an SR or RR first and an SDES
/// CNAME after it. A packet led by neither (a bare PLI, NACK or BYE) gets an
/// empty receiver report and the SDES in front, from its sender SSRC; an SR or
/// RR without an SDES gets one right after it.
pub fn compound(packet: &[u8], cname: &str) -> Vec<u8> {
    if packet.len() < 8 {
        return packet.to_vec();
    }
    // Where the first sub-packet ends, and whether any is an SDES.
    let (mut at, mut first_end, mut has_sdes) = (0, None, false);
    while at + 4 <= packet.len() {
        has_sdes |= packet[at + 1] == pt::SDES;
        at += 4 * (usize::from(u16::from_be_bytes([packet[at + 2], packet[at + 3]])) + 1);
        first_end.get_or_insert(at.min(packet.len()));
    }
    let first_end = first_end.unwrap_or(packet.len());
    let sender: [u8; 4] = [packet[4], packet[5], packet[6], packet[7]];
    let led = matches!(packet[1], pt::SR | pt::RR);
    if led && has_sdes {
        return packet.to_vec();
    }
    let mut out = Vec::with_capacity(packet.len() + 32);
    if led {
        out.extend_from_slice(&packet[..first_end]);
    } else {
        out.extend_from_slice(&[0x80, pt::RR, 0, 1]);
        out.extend_from_slice(&sender);
    }
    // SDES: one chunk, CNAME item, END, padded to 32 bits.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = sender.to_vec();
    chunk.extend_from_slice(&[1, cname.len() as u8]);
    chunk.extend_from_slice(cname);
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    out.extend_from_slice(&[0x81, pt::SDES]);
    out.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(if led { &packet[first_end..] } else { packet });
    out
}

/// A picture loss indication (RFC 4585 §6.3.1).
pub fn build_pli(sender: u32, media: u32) -> Vec<u8> {
    let mut out = vec![0x80 | 1, pt::PSFB, 0, 2];
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&media.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_puts_a_report_and_cname_before_feedback() {
        let pli = build_pli(0xAABB_CCDD, 7);
        let c = compound(&pli, "softbus");
        let parsed = parse_rtcp(&c).unwrap();
        assert_eq!(parsed.len(), 3, "{parsed:?}");
        assert_eq!(c[1], pt::RR);
        assert_eq!(&c[4..8], &0xAABB_CCDDu32.to_be_bytes());
        assert_eq!(c[9], pt::SDES);
        assert_eq!(&c[c.len() - pli.len()..], &pli[..]);
        assert!(c.len().is_multiple_of(4));
        // An SR gets its SDES right after it, before what followed it.
        let mut sr = build_sr(1, 0, 0, 0, 0);
        sr.extend(build_bye(&[1]));
        let c = compound(&sr, "softbus");
        let kinds: Vec<u8> = parse_rtcp(&c)
            .unwrap()
            .iter()
            .map(|r| match r {
                Rtcp::SenderReport { .. } => pt::SR,
                Rtcp::Sdes(_) => pt::SDES,
                Rtcp::Bye { .. } => pt::BYE,
                _ => 0,
            })
            .collect();
        assert_eq!(kinds, vec![pt::SR, pt::SDES, pt::BYE]);
        // With an SDES already, nothing changes.
        assert_eq!(compound(&c, "softbus"), c);
    }

    #[test]
    fn sender_report_and_bye_parse_back() {
        let mut c = build_sr(7, 0x0102_0304_0506_0708, 90_000, 10, 12_000);
        c.extend(build_bye(&[7, 8]));
        assert_eq!(
            parse_rtcp(&c).unwrap(),
            vec![
                Rtcp::SenderReport {
                    ssrc: 7,
                    ntp: 0x0102_0304_0506_0708,
                    rtp_timestamp: 90_000,
                    packets: 10,
                    octets: 12_000,
                    reports: vec![],
                },
                Rtcp::Bye {
                    ssrcs: vec![7, 8],
                    reason: None,
                },
            ]
        );
    }

    #[test]
    fn rtp_round_trips_with_both_extension_forms() {
        let csrcs = [7u32, 8];
        let ext: [(u8, &[u8]); 2] = [(1, &[0xAA]), (3, &[1, 2, 3])];
        let b = RtpBuilder {
            marker: true,
            payload_type: 96,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 0x1234_5678,
            csrcs: &csrcs,
            extensions: &ext,
            payload: b"frame",
        };
        let bytes = b.build().unwrap();
        let p = RtpPacket::parse(&bytes).unwrap();
        assert!(p.marker());
        assert_eq!(
            (p.payload_type(), p.sequence(), p.timestamp(), p.ssrc()),
            (96, 65535, 0xDEAD_BEEF, 0x1234_5678)
        );
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(p.extension_profile(), Some(ONE_BYTE_PROFILE));
        assert_eq!(p.extensions().collect::<Vec<_>>(), ext.to_vec());
        assert_eq!(p.payload(), b"frame");
        // An element of 17 bytes, or id 15+, needs the two-byte form.
        let long = [9u8; 17];
        let ext2: [(u8, &[u8]); 2] = [(1, &[0xAA]), (20, &long)];
        let bytes = RtpBuilder {
            extensions: &ext2,
            payload: b"x",
            ..Default::default()
        }
        .build()
        .unwrap();
        let p = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(p.extension_profile(), Some(TWO_BYTE_PROFILE));
        assert_eq!(p.extension(20), Some(&long[..]));
        assert_eq!(p.extension(1), Some(&[0xAA][..]));
    }

    #[test]
    fn padding_and_bad_packets() {
        let mut bytes = RtpBuilder {
            payload: b"abc",
            ..Default::default()
        }
        .build()
        .unwrap();
        bytes[0] |= 0x20;
        bytes.extend_from_slice(&[0, 0, 3]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload(), b"abc");
        let last = bytes.len() - 1;
        bytes[last] = 200;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Padding));
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version(1)));
        // 15 CSRCs claimed, none there.
        assert_eq!(RtpPacket::parse(&[0x8F; 12]), Err(RtpError::Truncated));
        // An extension longer than the packet.
        let mut x = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 9];
        assert_eq!(RtpPacket::parse(&x), Err(RtpError::Extension));
        x.truncate(14);
        assert_eq!(RtpPacket::parse(&x), Err(RtpError::Extension));
    }

    /// A compound packet as Chromium sends it: RR + SDES, then feedback.
    #[test]
    fn rtcp_compound_packets() {
        let mut c = vec![0x81, pt::RR, 0, 7];
        c.extend_from_slice(&1u32.to_be_bytes());
        c.extend_from_slice(&[
            0, 0, 0, 2, 25, 0xFF, 0xFF, 0xFE, 0, 0, 0, 100, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7,
        ]);
        c.extend_from_slice(&[
            0x81,
            pt::SDES,
            0,
            3,
            0,
            0,
            0,
            1,
            1,
            4,
            b'c',
            b'n',
            b'a',
            b'm',
            0,
            0,
        ]);
        c.extend(build_nack(1, 2, &[10, 11, 13, 40]));
        c.extend(build_pli(1, 2));
        c.extend_from_slice(&[
            0x84,
            pt::PSFB,
            0,
            4,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
            9,
            0,
            0,
            0,
        ]);
        c.extend_from_slice(&[
            0x8F,
            pt::PSFB,
            0,
            4,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            b'R',
            b'E',
            b'M',
            b'B',
            1,
            0,
            0,
            0,
        ]);
        c.extend_from_slice(&[0x81, pt::BYE, 0, 2, 0, 0, 0, 2, 2, b'o', b'k', 0]);
        let p = parse_rtcp(&c).unwrap();
        assert_eq!(p.len(), 7);
        let Rtcp::ReceiverReport { ssrc: 1, reports } = &p[0] else {
            panic!("{:?}", p[0])
        };
        assert_eq!(
            (
                reports[0].ssrc,
                reports[0].fraction_lost,
                reports[0].cumulative_lost
            ),
            (2, 25, -2)
        );
        assert_eq!(p[1], Rtcp::Sdes(vec![(1, vec![(1, &b"cnam"[..])])]));
        let Rtcp::Nack { pairs, .. } = &p[2] else {
            panic!()
        };
        assert_eq!(nack_lost(pairs), vec![10, 11, 13, 40]);
        assert_eq!(
            p[3],
            Rtcp::Pli {
                sender: 1,
                media: 2
            }
        );
        assert_eq!(
            p[4],
            Rtcp::Fir {
                sender: 1,
                entries: vec![(2, 9)]
            }
        );
        assert!(
            matches!(p[5], Rtcp::Other { packet_type: pt::PSFB, fmt: 15, raw } if raw.len() == 20)
        );
        assert_eq!(
            p[6],
            Rtcp::Bye {
                ssrcs: vec![2],
                reason: Some(&b"ok"[..])
            }
        );
        // Broken ones: typed errors.
        assert_eq!(parse_rtcp(&c[..c.len() - 1]), Err(RtpError::Length));
        assert_eq!(
            parse_rtcp(&[0x81, pt::RR, 0, 0]),
            Err(RtpError::Body(pt::RR))
        );
        assert_eq!(parse_rtcp(&[0x40, 200, 0, 0]), Err(RtpError::Version(1)));
        assert_eq!(parse_rtcp(&[]), Err(RtpError::Truncated));
    }
}
