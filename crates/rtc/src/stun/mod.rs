//! STUN messages (RFC 8489) with the ICE attributes (RFC 8445 §16).
//!
//! [`Message`] is a checked view over a datagram (header, every attribute in
//! bounds); [`MessageBuilder`] writes one, adding MESSAGE-INTEGRITY and
//! FINGERPRINT last. Attribute types are open: unknown comprehension-optional
//! attributes (such as Chromium's GOOG-NETWORK-INFO) are skipped by readers.

use crate::crypto::Hmac;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Header length.
pub const HEADER_LEN: usize = 20;
/// Largest message accepted (one UDP datagram on a typical path).
pub const MAX_MESSAGE: usize = 1500;
/// XORed into the CRC-32 of FINGERPRINT.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Attribute types used here.
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    // TURN (RFC 8656 §18).
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// STUN errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    #[error("not a STUN message")]
    NotStun,
    #[error("length field does not match the datagram")]
    BadLength,
    #[error("attribute runs past the end")]
    Truncated,
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("malformed attribute {0:#06x}")]
    BadAttribute(u16),
    #[error("no such attribute")]
    Missing,
    #[error("MESSAGE-INTEGRITY does not verify")]
    IntegrityFailed,
    #[error("FINGERPRINT does not verify")]
    FingerprintFailed,
}

/// Message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// The Binding method.
pub const BINDING: u16 = 0x001;
/// TURN methods (RFC 8656 §17).
pub const ALLOCATE: u16 = 0x003;
pub const REFRESH: u16 = 0x004;
pub const SEND: u16 = 0x006;
pub const DATA_METHOD: u16 = 0x007;
pub const CREATE_PERMISSION: u16 = 0x008;
pub const CHANNEL_BIND: u16 = 0x009;

fn message_type(class: Class, method: u16) -> u16 {
    let c = match class {
        Class::Request => 0,
        Class::Indication => 1,
        Class::Success => 2,
        Class::Error => 3,
    };
    (method & 0xF80) << 2 | (method & 0x070) << 1 | (method & 0x00F) | (c & 2) << 7 | (c & 1) << 4
}

/// A checked view of a STUN message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
}

/// Iterates `(type, value)` of every attribute.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Attributes<'a> {
    /// `(type, value, offset of the attribute header)`.
    type Item = (u16, &'a [u8], usize);

    fn next(&mut self) -> Option<Self::Item> {
        // Bounds were checked by `Message::parse`.
        let b = self.buf;
        if self.pos + 4 > b.len() {
            return None;
        }
        let t = u16::from_be_bytes([b[self.pos], b[self.pos + 1]]);
        let len = usize::from(u16::from_be_bytes([b[self.pos + 2], b[self.pos + 3]]));
        let at = self.pos;
        let v = b.get(self.pos + 4..self.pos + 4 + len)?;
        self.pos += 4 + len.div_ceil(4) * 4;
        Some((t, v, at))
    }
}

/// Whether a datagram looks like STUN (RFC 7983: first byte 0..=3, then the cookie).
pub fn is_stun(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN && b[0] < 4 && b[4..8] == MAGIC_COOKIE.to_be_bytes()
}

impl<'a> Message<'a> {
    /// Checks the header and that every attribute lies within the message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        Self::parse_up_to(buf, MAX_MESSAGE)
    }

    /// As [`Message::parse`], for messages up to `limit` bytes (a TURN Data
    /// indication carries a whole relayed datagram).
    pub fn parse_up_to(buf: &'a [u8], limit: usize) -> Result<Self, StunError> {
        if buf.len() > limit {
            return Err(StunError::TooLarge);
        }
        if !is_stun(buf) {
            return Err(StunError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len % 4 != 0 || HEADER_LEN + len != buf.len() {
            return Err(StunError::BadLength);
        }
        let mut pos = HEADER_LEN;
        while pos < buf.len() {
            if pos + 4 > buf.len() {
                return Err(StunError::Truncated);
            }
            let alen = usize::from(u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]));
            pos += 4 + alen.div_ceil(4) * 4;
            if pos > buf.len() {
                return Err(StunError::Truncated);
            }
        }
        Ok(Self { buf })
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Method (12 bits).
    pub fn method(&self) -> u16 {
        let t = u16::from_be_bytes([self.buf[0], self.buf[1]]);
        (t & 0x3E00) >> 2 | (t & 0x00E0) >> 1 | (t & 0x000F)
    }

    /// Class.
    pub fn class(&self) -> Class {
        let t = u16::from_be_bytes([self.buf[0], self.buf[1]]);
        match ((t >> 7) & 2) | ((t >> 4) & 1) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        }
    }

    /// Transaction id.
    pub fn transaction_id(&self) -> [u8; 12] {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        t
    }

    /// Every attribute in order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            buf: self.buf,
            pos: HEADER_LEN,
        }
    }

    /// The first attribute of `typ` (before MESSAGE-INTEGRITY, as RFC 8489 §14 says
    /// later ones other than FINGERPRINT are ignored).
    pub fn get(&self, typ: u16) -> Option<&'a [u8]> {
        for (t, v, _) in self.attributes() {
            if t == typ {
                return Some(v);
            }
            if t == attr::MESSAGE_INTEGRITY && typ != attr::FINGERPRINT {
                return None;
            }
        }
        None
    }

    /// USERNAME as text.
    pub fn username(&self) -> Option<&'a str> {
        self.get(attr::USERNAME)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// PRIORITY.
    pub fn priority(&self) -> Result<u32, StunError> {
        let v = self.get(attr::PRIORITY).ok_or(StunError::Missing)?;
        Ok(u32::from_be_bytes(
            v.try_into()
                .map_err(|_| StunError::BadAttribute(attr::PRIORITY))?,
        ))
    }

    /// ICE-CONTROLLING or ICE-CONTROLLED tie-breaker of `typ`.
    pub fn tie_breaker(&self, typ: u16) -> Result<u64, StunError> {
        let v = self.get(typ).ok_or(StunError::Missing)?;
        Ok(u64::from_be_bytes(
            v.try_into().map_err(|_| StunError::BadAttribute(typ))?,
        ))
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Result<SocketAddr, StunError> {
        let v = self
            .get(attr::XOR_MAPPED_ADDRESS)
            .ok_or(StunError::Missing)?;
        decode_xor_address(v, &self.transaction_id())
    }

    /// An XOR-encoded address attribute of `typ` (XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).
    pub fn xor_address(&self, typ: u16) -> Result<SocketAddr, StunError> {
        let v = self.get(typ).ok_or(StunError::Missing)?;
        decode_xor_address(v, &self.transaction_id()).map_err(|_| StunError::BadAttribute(typ))
    }

    /// ERROR-CODE as `(code, reason)`.
    pub fn error_code(&self) -> Result<(u16, &'a str), StunError> {
        let v = self.get(attr::ERROR_CODE).ok_or(StunError::Missing)?;
        if v.len() < 4 || !(3..=6).contains(&v[2]) || v[3] > 99 {
            return Err(StunError::BadAttribute(attr::ERROR_CODE));
        }
        let reason = std::str::from_utf8(&v[4..]).unwrap_or("");
        Ok((u16::from(v[2]) * 100 + u16::from(v[3]), reason))
    }

    /// Verifies MESSAGE-INTEGRITY with `key` (the ICE password for short-term credentials).
    pub fn verify_integrity(&self, h: &dyn Hmac, key: &[u8]) -> Result<(), StunError> {
        let (v, at) = self
            .attributes()
            .find(|(t, _, _)| *t == attr::MESSAGE_INTEGRITY)
            .map(|(_, v, at)| (v, at))
            .ok_or(StunError::Missing)?;
        if v.len() != 20 {
            return Err(StunError::BadAttribute(attr::MESSAGE_INTEGRITY));
        }
        let mac = integrity(h, key, &self.buf[..at]);
        if constant_time_eq(&mac, v) {
            Ok(())
        } else {
            Err(StunError::IntegrityFailed)
        }
    }

    /// Verifies FINGERPRINT, which must be the last attribute.
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let (v, at) = self
            .attributes()
            .last()
            .filter(|(t, _, _)| *t == attr::FINGERPRINT)
            .map(|(_, v, at)| (v, at))
            .ok_or(StunError::Missing)?;
        let want = u32::from_be_bytes(
            v.try_into()
                .map_err(|_| StunError::BadAttribute(attr::FINGERPRINT))?,
        );
        if fingerprint(&self.buf[..at]) == want {
            Ok(())
        } else {
            Err(StunError::FingerprintFailed)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA1 over `prefix` (the message up to MESSAGE-INTEGRITY) with the length
/// field set as if the message ended after MESSAGE-INTEGRITY.
fn integrity(h: &dyn Hmac, key: &[u8], prefix: &[u8]) -> [u8; 20] {
    let len = (prefix.len() - HEADER_LEN + 24) as u16;
    h.hmac_sha1(key, &[&prefix[..2], &len.to_be_bytes(), &prefix[4..]])
}

/// CRC-32 of `prefix` with the length set to end after FINGERPRINT, XOR 0x5354554e.
fn fingerprint(prefix: &[u8]) -> u32 {
    let len = (prefix.len() - HEADER_LEN + 8) as u16;
    let mut c = crc32fast::Hasher::new();
    c.update(&prefix[..2]);
    c.update(&len.to_be_bytes());
    c.update(&prefix[4..]);
    c.finalize() ^ FINGERPRINT_XOR
}

/// Decodes an XOR-MAPPED-ADDRESS value.
pub fn decode_xor_address(v: &[u8], tid: &[u8; 12]) -> Result<SocketAddr, StunError> {
    let bad = StunError::BadAttribute(attr::XOR_MAPPED_ADDRESS);
    if v.len() < 4 {
        return Err(bad);
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (v[1], v.len()) {
        (1, 8) => IpAddr::V4(Ipv4Addr::from(
            u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE,
        )),
        (2, 20) => {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(tid);
            let mut a = [0u8; 16];
            for i in 0..16 {
                a[i] = v[4 + i] ^ key[i];
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(bad),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Encodes an XOR-MAPPED-ADDRESS value.
pub fn encode_xor_address(a: SocketAddr, tid: &[u8; 12]) -> Vec<u8> {
    let port = a.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = Vec::with_capacity(20);
    match a.ip() {
        IpAddr::V4(ip) => {
            v.extend_from_slice(&[0, 1]);
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&(u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes());
        }
        IpAddr::V6(ip) => {
            v.extend_from_slice(&[0, 2]);
            v.extend_from_slice(&port.to_be_bytes());
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            key[4..].copy_from_slice(tid);
            for (b, k) in ip.octets().iter().zip(key) {
                v.push(b ^ k);
            }
        }
    }
    v
}

/// Writes a STUN message.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    padding: u8,
}

impl MessageBuilder {
    /// A message of `class` and `method` with transaction id `tid`.
    pub fn new(class: Class, method: u16, tid: [u8; 12]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid);
        Self { buf, padding: 0 }
    }

    /// Pads values with `byte` instead of zero (RFC 5389 allowed any; RFC 5769 uses spaces).
    pub fn padding(mut self, byte: u8) -> Self {
        self.padding = byte;
        self
    }

    fn set_len(&mut self) {
        let len = (self.buf.len() - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends an attribute (value up to 65535 bytes).
    pub fn attribute(mut self, typ: u16, value: &[u8]) -> Self {
        let len = value.len().min(usize::from(u16::MAX));
        self.buf.extend_from_slice(&typ.to_be_bytes());
        self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        self.buf.extend_from_slice(&value[..len]);
        let pad = len.div_ceil(4) * 4 - len;
        self.buf.extend(std::iter::repeat_n(self.padding, pad));
        self.set_len();
        self
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(self, a: SocketAddr) -> Self {
        self.xor_address(attr::XOR_MAPPED_ADDRESS, a)
    }

    /// An XOR-encoded address attribute of `typ`.
    pub fn xor_address(self, typ: u16, a: SocketAddr) -> Self {
        let tid: [u8; 12] = self.buf[8..20]
            .try_into()
            .expect("header holds a 12-byte transaction id");
        let v = encode_xor_address(a, &tid);
        self.attribute(typ, &v)
    }

    /// ERROR-CODE (RFC 8489 §14.8).
    pub fn error_code(self, code: u16, reason: &str) -> Self {
        let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        self.attribute(attr::ERROR_CODE, &v)
    }

    /// Appends MESSAGE-INTEGRITY computed with `key`.
    pub fn message_integrity(mut self, h: &dyn Hmac, key: &[u8]) -> Self {
        let mac = integrity(h, key, &self.buf);
        self.buf
            .extend_from_slice(&attr::MESSAGE_INTEGRITY.to_be_bytes());
        self.buf.extend_from_slice(&20u16.to_be_bytes());
        self.buf.extend_from_slice(&mac);
        self.set_len();
        self
    }

    /// Appends FINGERPRINT and returns the message.
    pub fn fingerprint(mut self) -> Vec<u8> {
        let crc = fingerprint(&self.buf);
        self.buf.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&crc.to_be_bytes());
        self.set_len();
        self.buf
    }

    /// The message as it stands.
    pub fn build(self) -> Vec<u8> {
        self.buf
    }
}
