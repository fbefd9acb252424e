//! `0xBABEFACE` framing of the auth and session TCP channels (softbus-wire.md §2).
//!
//! All integers are little-endian. Three packet variants:
//! - auth header (24 B) + plaintext body (modules 1-4, 8, 9);
//! - auth header (24 B) + `keyIndex | IV | AES-128-GCM(body) | tag` (modules 5, 6, 7, others);
//! - session header (16 B) + `IV | AES-256-GCM(data) | tag`.

use crate::crypto::{Crypto, CryptoError};

/// The frame identifier, `CE FA BE BA` on the wire.
pub const MAGIC: u32 = 0xBABE_FACE;
/// Auth-channel header length.
pub const AUTH_HEADER_LEN: usize = 24;
/// Session data header length.
pub const SESSION_HEADER_LEN: usize = 16;
/// GCM IV length.
pub const IV_LEN: usize = 12;
/// GCM tag length.
pub const TAG_LEN: usize = 16;
/// `flags` bit 0.
pub const FLAG_REPLY: i32 = 1;
/// softbus_lite never processes auth packets with a larger dataLen (1536-byte buffer − 24).
pub const LITE_MAX_AUTH_DATA: usize = 1512;
/// Largest `SendBytes` payload softbus_lite accepts (4096 − 4 − 16 − 28).
pub const MAX_SEND_BYTES: usize = 4048;
/// Largest inbound session payload softbus_lite handles in one receive.
pub const MAX_RECV_BYTES: usize = 4080;
/// Largest session-open dataLen (24 + dataLen < 4096).
pub const MAX_SESSION_OPEN_DATA: usize = 4096 - AUTH_HEADER_LEN - 1;

/// Module numbers of the auth header. Open: unknown values survive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Module(pub i32);

impl Module {
    pub const NONE: Self = Self(0);
    pub const TRUST_ENGINE: Self = Self(1);
    pub const HICHAIN: Self = Self(2);
    pub const AUTH_SDK: Self = Self(3);
    pub const HICHAIN_SYNC: Self = Self(4);
    pub const CONNECTION: Self = Self(5);
    pub const SESSION: Self = Self(6);
    pub const SMART_COMM: Self = Self(7);
    pub const AUTH_CHANNEL: Self = Self(8);
    pub const AUTH_MSG: Self = Self(9);

    /// Whether softbus_lite sends and expects this module's body in plaintext.
    pub fn is_plaintext(self) -> bool {
        matches!(self.0, 1..=4 | 8 | 9)
    }
}

/// Errors of the framing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("need more bytes")]
    Truncated,
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    #[error("dataLen {len} outside 0..={max}")]
    BadLength { len: i64, max: usize },
    #[error("encrypted body shorter than index, IV and tag")]
    ShortBody,
    #[error("unknown key index")]
    UnknownKey,
    #[error("payload of {0} bytes outside the allowed range")]
    BadPayloadSize(usize),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The 24-byte auth-channel header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader {
    pub module: Module,
    pub seq: i64,
    pub flags: i32,
    pub data_len: u32,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl AuthHeader {
    /// Parses the first 24 bytes; checks magic and that dataLen fits `max_data`.
    pub fn parse(b: &[u8], max_data: usize) -> Result<Self, FrameError> {
        if b.len() < AUTH_HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        let magic = le_u32(b, 0);
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let len = le_u32(b, 20) as i32;
        if len < 0 || len as usize > max_data {
            return Err(FrameError::BadLength {
                len: len.into(),
                max: max_data,
            });
        }
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[8..16]);
        Ok(Self {
            module: Module(le_u32(b, 4) as i32),
            seq: i64::from_le_bytes(seq),
            flags: le_u32(b, 16) as i32,
            data_len: len as u32,
        })
    }

    /// Appends the 24 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&self.module.0.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.data_len.to_le_bytes());
    }
}

/// The 16-byte session data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHeader {
    pub seq: i32,
    pub flags: i32,
    pub data_len: u32,
}

impl SessionHeader {
    /// Parses the first 16 bytes; checks magic and that dataLen fits `max_data`.
    pub fn parse(b: &[u8], max_data: usize) -> Result<Self, FrameError> {
        if b.len() < SESSION_HEADER_LEN {
            return Err(FrameError::Truncated);
        }
        let magic = le_u32(b, 0);
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
        let len = le_u32(b, 12) as i32;
        if len < 0 || len as usize > max_data {
            return Err(FrameError::BadLength {
                len: len.into(),
                max: max_data,
            });
        }
        Ok(Self {
            seq: le_u32(b, 4) as i32,
            flags: le_u32(b, 8) as i32,
            data_len: len as u32,
        })
    }

    /// Appends the 16 header bytes.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.data_len.to_le_bytes());
    }
}

/// Builds a plaintext auth packet (modules 1-4, 8, 9).
pub fn auth_plain(module: Module, seq: i64, flags: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUTH_HEADER_LEN + body.len());
    AuthHeader {
        module,
        seq,
        flags,
        data_len: body.len() as u32,
    }
    .emit(&mut out);
    out.extend_from_slice(body);
    out
}

/// Builds an auth-key-encrypted packet: header, key index, IV (`seq` i64 LE ‖ 4 random), ciphertext, tag.
pub fn auth_sealed(
    crypto: &mut dyn Crypto,
    key: &[u8],
    key_index: i32,
    module: Module,
    seq: i64,
    flags: i32,
    plaintext: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let mut iv = [0u8; IV_LEN];
    iv[..8].copy_from_slice(&seq.to_le_bytes());
    crypto.random(&mut iv[8..]);
    auth_sealed_with_iv(crypto, key, key_index, module, seq, flags, &iv, plaintext)
}

/// As [`auth_sealed`] with a given IV (known-answer tests).
#[allow(clippy::too_many_arguments)]
pub fn auth_sealed_with_iv(
    crypto: &dyn Crypto,
    key: &[u8],
    key_index: i32,
    module: Module,
    seq: i64,
    flags: i32,
    iv: &[u8; IV_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let data_len = 4 + IV_LEN + plaintext.len() + TAG_LEN;
    let mut out = Vec::with_capacity(AUTH_HEADER_LEN + data_len);
    AuthHeader {
        module,
        seq,
        flags,
        data_len: data_len as u32,
    }
    .emit(&mut out);
    out.extend_from_slice(&key_index.to_le_bytes());
    out.extend_from_slice(iv);
    crypto.aes_gcm_seal(key, iv, plaintext, &mut out)?;
    Ok(out)
}

/// Splits an encrypted auth body into its key index and the rest.
pub fn auth_key_index(body: &[u8]) -> Result<i32, FrameError> {
    if body.len() < 4 + IV_LEN + TAG_LEN {
        return Err(FrameError::ShortBody);
    }
    Ok(le_u32(body, 0) as i32)
}

/// Opens an encrypted auth body (`keyIndex | IV | ct | tag`) with the key for its index.
pub fn auth_open(crypto: &dyn Crypto, body: &[u8], key: &[u8]) -> Result<Vec<u8>, FrameError> {
    auth_key_index(body)?;
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&body[4..16]);
    let mut out = Vec::with_capacity(body.len() - 32);
    crypto.aes_gcm_open(key, &iv, &body[16..], &mut out)?;
    Ok(out)
}

/// Builds a session data packet: header (seq, flags 0), IV (`seq` i32 LE ‖ 8 random), ct, tag.
pub fn session_sealed(
    crypto: &mut dyn Crypto,
    key: &[u8; 32],
    seq: i32,
    data: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let mut iv = [0u8; IV_LEN];
    iv[..4].copy_from_slice(&seq.to_le_bytes());
    crypto.random(&mut iv[4..]);
    session_sealed_with_iv(crypto, key, seq, &iv, data)
}

/// As [`session_sealed`] with a given IV.
pub fn session_sealed_with_iv(
    crypto: &dyn Crypto,
    key: &[u8; 32],
    seq: i32,
    iv: &[u8; IV_LEN],
    data: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let data_len = IV_LEN + data.len() + TAG_LEN;
    let mut out = Vec::with_capacity(SESSION_HEADER_LEN + data_len);
    SessionHeader {
        seq,
        flags: 0,
        data_len: data_len as u32,
    }
    .emit(&mut out);
    out.extend_from_slice(iv);
    crypto.aes_gcm_seal(key, iv, data, &mut out)?;
    Ok(out)
}

/// Opens a session body (`IV | ct | tag`); returns the IV's sequence prefix and the plaintext.
pub fn session_open(
    crypto: &dyn Crypto,
    key: &[u8; 32],
    body: &[u8],
) -> Result<(i32, Vec<u8>), FrameError> {
    if body.len() < IV_LEN + TAG_LEN {
        return Err(FrameError::ShortBody);
    }
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&body[..IV_LEN]);
    let mut out = Vec::with_capacity(body.len() - IV_LEN - TAG_LEN);
    crypto.aes_gcm_open(key, &iv, &body[IV_LEN..], &mut out)?;
    Ok((le_u32(&iv, 0) as i32, out))
}

/// Which header the next frame on a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// 24-byte auth header.
    Auth,
    /// 16-byte session header.
    Session,
}

/// A complete frame cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Auth(AuthHeader, Vec<u8>),
    Session(SessionHeader, Vec<u8>),
}

/// Cuts frames out of a TCP byte stream. The length is checked against the
/// limit as soon as a header is complete, before any body is buffered, so a
/// peer can never make it hold more than one header plus `max_data` bytes
/// beyond what it has already delivered in complete frames.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf` (frames are consumed by offset and
    /// the buffer compacted only when it is mostly consumed).
    start: usize,
    kind: HeaderKind,
    max_data: usize,
}

impl Deframer {
    /// A deframer expecting `kind` headers with bodies of at most `max_data` bytes.
    pub fn new(kind: HeaderKind, max_data: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            kind,
            max_data,
        }
    }

    /// Switches header kind and limit for the next frame (session channel after open).
    pub fn set_kind(&mut self, kind: HeaderKind, max_data: usize) {
        self.kind = kind;
        self.max_data = max_data;
    }

    /// Bytes held but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends stream bytes. Call [`Deframer::next_frame`] until it returns `Ok(None)`.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete frame, `None` if more bytes are needed, or an
    /// error after which the stream is unusable (the caller closes it).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let b = &self.buf[self.start..];
        let (hlen, body_len) = match self.kind {
            HeaderKind::Auth => {
                if b.len() < AUTH_HEADER_LEN {
                    return early_magic_check(b);
                }
                (
                    AUTH_HEADER_LEN,
                    AuthHeader::parse(b, self.max_data)?.data_len as usize,
                )
            }
            HeaderKind::Session => {
                if b.len() < SESSION_HEADER_LEN {
                    return early_magic_check(b);
                }
                (
                    SESSION_HEADER_LEN,
                    SessionHeader::parse(b, self.max_data)?.data_len as usize,
                )
            }
        };
        if b.len() < hlen + body_len {
            return Ok(None);
        }
        let body = b[hlen..hlen + body_len].to_vec();
        let frame = match self.kind {
            HeaderKind::Auth => Frame::Auth(AuthHeader::parse(b, self.max_data)?, body),
            HeaderKind::Session => Frame::Session(SessionHeader::parse(b, self.max_data)?, body),
        };
        self.start += hlen + body_len;
        if self.start == self.buf.len() {
            // Everything consumed: give back the capacity of large reads while idle.
            self.start = 0;
            if self.buf.capacity() > 64 * 1024 {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
        }
        Ok(Some(frame))
    }
}

/// Rejects a wrong identifier as soon as its four bytes are in.
fn early_magic_check(b: &[u8]) -> Result<Option<Frame>, FrameError> {
    if b.len() >= 4 {
        let magic = le_u32(b, 0);
        if magic != MAGIC {
            return Err(FrameError::BadMagic(magic));
        }
    }
    Ok(None)
}
