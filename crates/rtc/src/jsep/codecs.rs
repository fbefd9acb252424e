//! Codec negotiation for answers (RFC 8829 §5.3.1, RFC 3264 §6.1): the
//! answer keeps the offered payload types of the codecs we accept, in the
//! offer's order; RTX for a kept codec (`apt=`); the feedback and header
//! extensions both sides know, with the offer's extension ids.
//!
//! H264 matches on packetization-mode and profile (RFC 6184 §8.2.2, as
//! libwebrtc compares `profile-level-id`), VP9 and AV1 on their profile.

use crate::sdp::{MediaSection, SdpError};

/// A codec we can carry: encoding name (case-insensitive), clock rate and
/// channels (audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecCap {
    pub encoding: &'static str,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// What the media answer policy accepts: Opus; VP8, VP9, H264 and AV1 (a
/// relay forwards them without decoding).
pub const AUDIO_CODECS: &[CodecCap] = &[CodecCap {
    encoding: "opus",
    clock_rate: 48_000,
    channels: Some(2),
}];
pub const VIDEO_CODECS: &[CodecCap] = &[
    CodecCap {
        encoding: "VP8",
        clock_rate: 90_000,
        channels: None,
    },
    CodecCap {
        encoding: "VP9",
        clock_rate: 90_000,
        channels: None,
    },
    CodecCap {
        encoding: "H264",
        clock_rate: 90_000,
        channels: None,
    },
    CodecCap {
        encoding: "AV1",
        clock_rate: 90_000,
        channels: None,
    },
];

/// Feedback we answer (RFC 4585, 5104, transport-wide CC, REMB).
pub const FEEDBACK: &[&str] = &["nack", "nack pli", "ccm fir", "goog-remb", "transport-cc"];

/// Header extensions we answer (by URI).
pub const EXTENSIONS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "urn:3gpp:video-orientation",
];

/// One codec of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    pub fmtp: Option<String>,
    pub feedback: Vec<String>,
}

impl Codec {
    /// Its `a=rtpmap`, `a=rtcp-fb` and `a=fmtp` lines.
    pub fn lines(&self) -> String {
        let ch = self.channels.map(|c| format!("/{c}")).unwrap_or_default();
        let mut s = format!(
            "a=rtpmap:{} {}/{}{ch}\r\n",
            self.payload_type, self.encoding, self.clock_rate
        );
        for f in &self.feedback {
            s.push_str(&format!("a=rtcp-fb:{} {f}\r\n", self.payload_type));
        }
        if let Some(p) = &self.fmtp {
            s.push_str(&format!("a=fmtp:{} {p}\r\n", self.payload_type));
        }
        s
    }
}

/// A header extension of an answer: the offer's id and the URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub id: u16,
    pub uri: String,
}

/// What an answer's media section carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    pub codecs: Vec<Codec>,
    pub extensions: Vec<Extension>,
}

/// `key=value;…` of an fmtp line.
fn param<'a>(fmtp: Option<&'a str>, key: &str) -> Option<&'a str> {
    fmtp?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim())
}

/// An H264 profile as libwebrtc tells them apart: `profile_idc` and whether
/// `constraint_set1` (constrained baseline/high) or, for high, set 3 is on.
fn h264_profile(fmtp: Option<&str>) -> Option<(u8, bool)> {
    // RFC 6184 §8.1: the default is 42000A (Baseline, level 1).
    let hex = param(fmtp, "profile-level-id").unwrap_or("42000a");
    if hex.len() != 6 {
        return None;
    }
    let b = u32::from_str_radix(hex, 16).ok()?.to_be_bytes();
    let (idc, iop) = (b[1], b[2]);
    let constrained = match idc {
        0x42 | 0x4D | 0x58 => iop & 0x40 != 0,
        0x64 => iop & 0x0C == 0x0C,
        _ => false,
    };
    Some((idc, constrained))
}

/// Whether two H264 fmtps describe the same profile and packetization mode.
pub fn h264_compatible(a: Option<&str>, b: Option<&str>) -> bool {
    let mode = |f| param(f, "packetization-mode").unwrap_or("0").to_owned();
    mode(a) == mode(b) && h264_profile(a).is_some() && h264_profile(a) == h264_profile(b)
}

/// Whether two fmtps of `encoding` describe the same format (H264 profile
/// and mode; VP9's `profile-id`, AV1's `profile`, absent meaning 0).
pub fn same_format(encoding: &str, a: Option<&str>, b: Option<&str>) -> bool {
    let zero = |f: Option<&str>, k: &str| param(f, k).unwrap_or("0").to_owned();
    match encoding.to_ascii_uppercase().as_str() {
        "H264" => h264_compatible(a, b),
        "VP9" => zero(a, "profile-id") == zero(b, "profile-id"),
        "AV1" => zero(a, "profile") == zero(b, "profile"),
        _ => true,
    }
}

/// Negotiates an offered media section against `caps`: the answer's codecs
/// (the offer's payload types and order, RTX of kept ones), feedback and
/// header extensions. H264 is kept only with packetization-mode 0 or 1.
pub fn negotiate(offer: &MediaSection, caps: &[CodecCap]) -> Result<Negotiated, SdpError> {
    let fmtps = offer.fmtps()?;
    let fbs = offer.rtcp_fbs()?;
    let fmtp_of = |pt: u8| {
        fmtps
            .iter()
            .find(|f| f.payload_type == pt)
            .map(|f| f.params.clone())
    };
    let feedback_of = |pt: u8| -> Vec<String> {
        let mut v: Vec<String> = fbs
            .iter()
            .filter(|f| f.payload_type.is_none_or(|p| p == pt))
            .map(|f| f.feedback.clone())
            .filter(|f| FEEDBACK.contains(&f.as_str()))
            .collect();
        v.dedup();
        v
    };
    let maps = offer.rtpmaps()?;
    let mut kept: Vec<Codec> = Vec::new();
    for m in &maps {
        let known = caps.iter().any(|c| {
            c.encoding.eq_ignore_ascii_case(&m.encoding)
                && c.clock_rate == m.clock_rate
                && c.channels.is_none_or(|ch| m.channels.unwrap_or(1) == ch)
        });
        if !known {
            continue;
        }
        let fmtp = fmtp_of(m.payload_type);
        if m.encoding.eq_ignore_ascii_case("H264")
            && !matches!(
                param(fmtp.as_deref(), "packetization-mode").unwrap_or("0"),
                "0" | "1"
            )
        {
            continue;
        }
        kept.push(Codec {
            payload_type: m.payload_type,
            encoding: m.encoding.clone(),
            clock_rate: m.clock_rate,
            channels: m.channels,
            fmtp,
            feedback: feedback_of(m.payload_type),
        });
    }
    // RTX of the kept codecs, each after its codec.
    let mut codecs = Vec::new();
    for c in kept {
        let pt = c.payload_type;
        codecs.push(c);
        for m in maps
            .iter()
            .filter(|m| m.encoding.eq_ignore_ascii_case("rtx"))
        {
            let fmtp = fmtp_of(m.payload_type);
            if param(fmtp.as_deref(), "apt").and_then(|a| a.parse::<u8>().ok()) == Some(pt) {
                codecs.push(Codec {
                    payload_type: m.payload_type,
                    encoding: m.encoding.clone(),
                    clock_rate: m.clock_rate,
                    channels: None,
                    fmtp,
                    feedback: Vec::new(),
                });
            }
        }
    }
    let extensions = offer
        .extmaps()?
        .into_iter()
        .filter(|e| EXTENSIONS.contains(&e.uri.as_str()))
        .map(|e| Extension {
            id: e.id,
            uri: e.uri,
        })
        .collect();
    Ok(Negotiated { codecs, extensions })
}

/// How readily browsers decode a format, lower first: VP8; H264 constrained
/// baseline with packetization-mode 1 (what every browser decodes, and what
/// Chromium's own answer lists first); other H264 with mode 1, baseline and
/// main before high; H264 with mode 0; VP9; AV1. Audio keeps its order.
fn decodable_rank(c: &Codec) -> u8 {
    let f = c.fmtp.as_deref();
    match c.encoding.to_ascii_uppercase().as_str() {
        "VP8" => 0,
        "H264" => {
            let mode1 = param(f, "packetization-mode") == Some("1");
            match (h264_profile(f), mode1) {
                (Some((0x42, true)), true) => 0,
                (Some((0x42 | 0x4D, _)), true) => 1,
                (_, true) => 2,
                _ => 3,
            }
        }
        "VP9" => 4,
        "AV1" => 5,
        _ => 0,
    }
}

/// Reorders `n`'s codecs so the formats browsers decode come first (see
/// [`decodable_rank`]; equal ones keep the offer's order), each RTX right
/// after its codec. A publisher sends the first format of the answer: this
/// way it sends one its viewers can play (RFC 3264 §6.1 lets the answerer's
/// order say what it prefers).
pub fn prefer_decodable(n: &mut Negotiated) {
    let (rtx, mut primary): (Vec<Codec>, Vec<Codec>) = std::mem::take(&mut n.codecs)
        .into_iter()
        .partition(|c| c.encoding.eq_ignore_ascii_case("rtx"));
    primary.sort_by_key(decodable_rank);
    for c in primary {
        let pt = c.payload_type;
        n.codecs.push(c);
        n.codecs
            .extend(rtx.iter().filter(|r| rtx_apt(r) == Some(pt)).cloned());
    }
}

/// The value of `key` in an fmtp's `key=value;…`, lower-cased.
pub fn fmtp_param(fmtp: &str, key: &str) -> Option<String> {
    param(Some(fmtp), key).map(str::to_ascii_lowercase)
}

/// A format as a person reads it: `H264 (profile-level-id=640032;packetization-mode=1)`.
pub fn format_name(encoding: &str, fmtp: Option<&str>) -> String {
    match fmtp {
        Some(p) if !p.is_empty() => format!("{encoding} ({p})"),
        _ => encoding.to_owned(),
    }
}

/// The `apt=` of an RTX codec: the payload type it retransmits.
pub fn rtx_apt(c: &Codec) -> Option<u8> {
    param(c.fmtp.as_deref(), "apt").and_then(|a| a.parse().ok())
}

/// In `negotiated`, the payload type whose format is `encoding` with `fmtp`
/// (to map a stream's codec to what a viewer's offer calls it).
pub fn find_payload_type(
    negotiated: &Negotiated,
    encoding: &str,
    fmtp: Option<&str>,
) -> Option<u8> {
    negotiated
        .codecs
        .iter()
        .find(|c| {
            c.encoding.eq_ignore_ascii_case(encoding)
                && same_format(encoding, c.fmtp.as_deref(), fmtp)
        })
        .map(|c| c.payload_type)
}
