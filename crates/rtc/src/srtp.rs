//! SRTP and SRTCP (RFC 3711) with the profiles WebRTC negotiates over
//! DTLS-SRTP (RFC 5764, RFC 7714): AES_CM_128_HMAC_SHA1_80,
//! AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM and AEAD_AES_256_GCM.
//!
//! Session keys come from the master key and salt through the AES-CM key
//! derivation (§4.3); the rollover counter is estimated per SSRC (Appendix A);
//! every stream has a 64-packet replay window (§3.3.2). The ciphers come in
//! through [`SrtpCrypto`]: this module only arranges bytes.

use crate::rtp::{self, RtpError};
use std::collections::HashMap;

/// Hashes an SSRC with one multiplication. SipHash's DoS resistance is not
/// needed: a stream is entered only after a packet of it authenticated, and
/// there are at most [`MAX_STREAMS`].
#[derive(Default, Clone, Copy)]
struct SsrcHasher(u64);

impl std::hash::Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ 0xA076_1D64_78BD_642F).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SsrcMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<SsrcHasher>>;

pub use crate::dtls::{SrtpKeys, SrtpProfile as Profile};

impl Profile {
    /// From the `use_srtp` id (RFC 5764 §4.1.2, RFC 7714 §14.2).
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            0x0001 => Profile::Aes128CmSha1_80,
            0x0002 => Profile::Aes128CmSha1_32,
            0x0007 => Profile::AeadAes128Gcm,
            0x0008 => Profile::AeadAes256Gcm,
            _ => return None,
        })
    }

    pub fn key_len(self) -> usize {
        self.key_salt_len().0
    }

    pub fn salt_len(self) -> usize {
        self.key_salt_len().1
    }

    fn is_gcm(self) -> bool {
        matches!(self, Profile::AeadAes128Gcm | Profile::AeadAes256Gcm)
    }

    /// Authentication tag bytes on RTP.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Profile::Aes128CmSha1_80 => 10,
            Profile::Aes128CmSha1_32 => 4,
            _ => 16,
        }
    }

    /// On RTCP (the `_32` profile keeps an 80-bit tag there, RFC 5764 §4.1.2).
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_gcm() {
            16
        } else {
            10
        }
    }
}

/// A cryptographic failure (never says which byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SRTP crypto backend failure")]
pub struct CryptoFailure;

/// The ciphers SRTP needs.
pub trait SrtpCrypto: Send {
    /// XORs `data` with the AES-CTR keystream of `key` (16 or 32 bytes) from `iv`.
    fn aes_ctr(&self, key: &[u8], iv: &[u8; 16], data: &mut [u8]) -> Result<(), CryptoFailure>;
    /// HMAC-SHA1 over the concatenation of `parts`.
    fn hmac_sha1(&self, key: &[u8], parts: &[&[u8]]) -> Result<[u8; 20], CryptoFailure>;
    /// AES-GCM: encrypts `buf[start..]` in place and appends the 16-byte tag.
    fn gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoFailure>;
    /// AES-GCM: `buf[start..]` is ciphertext and tag; decrypts in place and
    /// removes the tag. On failure nothing of the plaintext is left.
    fn gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoFailure>;
    /// Constant-time equality.
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool;
}

/// Why a packet was not protected or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    #[error("not RTP/RTCP: {0}")]
    Packet(#[from] RtpError),
    #[error("shorter than its authentication tag")]
    Truncated,
    #[error("authentication failed")]
    AuthFailed,
    #[error("replayed packet")]
    Replay,
    #[error("older than the replay window")]
    TooOld,
    #[error("master key or salt of the wrong length")]
    KeyLength,
    #[error("too many streams (SSRCs) in one context")]
    TooManyStreams,
    #[error(transparent)]
    Crypto(#[from] CryptoFailure),
}

/// Session keys of one direction (RTP and RTCP).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub rtp_key: Vec<u8>,
    pub rtp_salt: Vec<u8>,
    pub rtp_auth: Vec<u8>,
    pub rtcp_key: Vec<u8>,
    pub rtcp_salt: Vec<u8>,
    pub rtcp_auth: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// The AES-CM key derivation of RFC 3711 §4.3.1 (key derivation rate 0):
/// `len` bytes for `label`.
pub fn kdf(
    c: &dyn SrtpCrypto,
    master_key: &[u8],
    master_salt: &[u8],
    label: u8,
    len: usize,
) -> Result<Vec<u8>, CryptoFailure> {
    // x = (label || 0^48) XOR master_salt, as 112 bits; IV = x * 2^16. A
    // 96-bit (GCM) master salt is padded with zeros on the right (RFC 7714 §11).
    let mut iv = [0u8; 16];
    iv[..master_salt.len().min(14)].copy_from_slice(&master_salt[..master_salt.len().min(14)]);
    iv[7] ^= label;
    let mut out = vec![0u8; len];
    c.aes_ctr(master_key, &iv, &mut out)?;
    Ok(out)
}

/// The session keys of `profile` from a master key and salt.
pub fn derive(
    c: &dyn SrtpCrypto,
    profile: Profile,
    master_key: &[u8],
    master_salt: &[u8],
) -> Result<SessionKeys, SrtpError> {
    if master_key.len() != profile.key_len() || master_salt.len() != profile.salt_len() {
        return Err(SrtpError::KeyLength);
    }
    let (k, s) = (profile.key_len(), profile.salt_len());
    let auth = if profile.is_gcm() { 0 } else { 20 };
    Ok(SessionKeys {
        rtp_key: kdf(c, master_key, master_salt, 0, k)?,
        rtp_auth: kdf(c, master_key, master_salt, 1, auth)?,
        rtp_salt: kdf(c, master_key, master_salt, 2, s)?,
        rtcp_key: kdf(c, master_key, master_salt, 3, k)?,
        rtcp_auth: kdf(c, master_key, master_salt, 4, auth)?,
        rtcp_salt: kdf(c, master_key, master_salt, 5, s)?,
    })
}

/// The replay window of one stream: the highest index seen and a bitmap of
/// the 64 before it.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    top: Option<u64>,
    bits: u64,
}

/// Packets of one stream accepted this far behind the newest.
pub const REPLAY_WINDOW: u64 = 64;

impl Window {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(top) = self.top else { return Ok(()) };
        if index > top {
            return Ok(());
        }
        let age = top - index;
        if age >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld);
        }
        if self.bits & (1 << age) != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => self.bits |= 1 << (top - index),
            Some(top) => {
                let shift = index - top;
                self.bits = if shift >= 64 { 0 } else { self.bits << shift };
                self.bits |= 1;
                self.top = Some(index);
            }
            None => {
                self.top = Some(index);
                self.bits = 1;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct RtpStream {
    /// Sender: the last sequence number sent and the rollover counter.
    /// Receiver: the highest accepted sequence number and its ROC.
    seq: Option<u16>,
    roc: u32,
    window: Window,
}

impl RtpStream {
    /// The index a sender gives `seq` (the ROC grows when seq wraps).
    fn send_index(&mut self, seq: u16) -> u64 {
        if let Some(last) = self.seq {
            if seq < last && last - seq > 0x8000 {
                self.roc = self.roc.wrapping_add(1);
            }
        }
        if self.seq.is_none_or(|l| seq > l || l - seq > 0x8000) {
            self.seq = Some(seq);
        }
        (u64::from(self.roc) << 16) | u64::from(seq)
    }

    /// The receiver's estimate of `seq`'s ROC (RFC 3711 Appendix A).
    fn guess_roc(&self, seq: u16) -> u32 {
        let Some(s_l) = self.seq else { return self.roc };
        if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if s_l - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    fn accepted(&mut self, seq: u16, roc: u32) {
        let index = (u64::from(roc) << 16) | u64::from(seq);
        self.window.accept(index);
        let newest = (u64::from(self.roc) << 16) | u64::from(self.seq.unwrap_or(0));
        if self.seq.is_none() || index > newest {
            self.seq = Some(seq);
            self.roc = roc;
        }
    }
}

/// A copy of an RTP header, the AAD of GCM while the packet is sealed or
/// opened in place: on the stack for all but very long headers.
enum Header {
    Short([u8; 64], usize),
    Long(Vec<u8>),
}

impl Header {
    fn of(h: &[u8]) -> Self {
        if h.len() <= 64 {
            let mut b = [0u8; 64];
            b[..h.len()].copy_from_slice(h);
            Header::Short(b, h.len())
        } else {
            Header::Long(h.to_vec())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Header::Short(b, n) => &b[..*n],
            Header::Long(v) => v,
        }
    }
}

/// Protects or unprotects one direction of a session.
pub struct Context {
    profile: Profile,
    keys: SessionKeys,
    crypto: Box<dyn SrtpCrypto>,
    rtp: SsrcMap<RtpStream>,
    /// Outbound SRTCP index, and inbound windows per SSRC.
    rtcp_index: u32,
    rtcp: SsrcMap<Window>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile)
            .field("streams", &self.rtp.len())
            .finish_non_exhaustive()
    }
}

/// Streams (SSRCs) one context follows at most; more are refused, so a peer
/// cannot grow it without bound.
pub const MAX_STREAMS: usize = 1024;

impl Context {
    /// A context for `profile` from a master key and salt.
    pub fn new(
        profile: Profile,
        master_key: &[u8],
        master_salt: &[u8],
        crypto: Box<dyn SrtpCrypto>,
    ) -> Result<Self, SrtpError> {
        let keys = derive(crypto.as_ref(), profile, master_key, master_salt)?;
        Ok(Self {
            profile,
            keys,
            crypto,
            rtp: SsrcMap::default(),
            rtcp_index: 0,
            rtcp: SsrcMap::default(),
        })
    }

    /// The context that protects what we send (`outbound`) or unprotects
    /// what we receive, from the keys DTLS-SRTP exported.
    pub fn from_dtls(
        keys: &SrtpKeys,
        outbound: bool,
        crypto: Box<dyn SrtpCrypto>,
    ) -> Result<Self, SrtpError> {
        let (k, s) = if outbound {
            (&keys.local_key, &keys.local_salt)
        } else {
            (&keys.remote_key, &keys.remote_salt)
        };
        Self::new(keys.profile, k, s, crypto)
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    fn stream(&mut self, ssrc: u32) -> Result<&mut RtpStream, SrtpError> {
        // The length first: the lookup is paid only when the table is full.
        if self.rtp.len() >= MAX_STREAMS && !self.rtp.contains_key(&ssrc) {
            return Err(SrtpError::TooManyStreams);
        }
        Ok(self.rtp.entry(ssrc).or_default())
    }

    fn cm_iv(salt: &[u8], ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&salt[..14]);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        iv
    }

    fn gcm_iv(salt: &[u8], ssrc: u32, high: u32, low: u16) -> [u8; 12] {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&high.to_be_bytes());
        iv[10..12].copy_from_slice(&low.to_be_bytes());
        for (a, b) in iv.iter_mut().zip(salt) {
            *a ^= b;
        }
        iv
    }

    /// SRTP-protects an RTP packet.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        // Room for the tag up front: one allocation per packet.
        let mut out = Vec::with_capacity(packet.len() + 16);
        out.extend_from_slice(packet);
        self.protect_rtp_owned(out)
    }

    /// SRTP-protects an RTP packet the caller gives away, in place (no copy;
    /// the tag is appended, so spare capacity of 16 saves a reallocation).
    pub fn protect_rtp_owned(&mut self, mut out: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        let hlen = rtp::header_len(&out)?;
        let (ssrc, seq) = rtp::ssrc_and_sequence(&out).ok_or(RtpError::Truncated)?;
        let index = self.stream(ssrc)?.send_index(seq);
        let roc = (index >> 16) as u32;
        if self.profile.is_gcm() {
            let iv = Self::gcm_iv(&self.keys.rtp_salt, ssrc, roc, seq);
            let aad = Header::of(&out[..hlen]);
            self.crypto
                .gcm_seal(&self.keys.rtp_key, &iv, aad.as_slice(), &mut out, hlen)?;
        } else {
            let iv = Self::cm_iv(&self.keys.rtp_salt, ssrc, index);
            self.crypto
                .aes_ctr(&self.keys.rtp_key, &iv, &mut out[hlen..])?;
            let tag = self
                .crypto
                .hmac_sha1(&self.keys.rtp_auth, &[&out, &roc.to_be_bytes()])?;
            out.extend_from_slice(&tag[..self.profile.rtp_tag_len()]);
        }
        Ok(out)
    }

    /// Checks and decrypts an SRTP packet: the RTP packet, or why not. A
    /// packet that fails changes nothing (its ROC guess and window stay).
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.unprotect_rtp_owned(packet.to_vec())
    }

    /// [`Context::unprotect_rtp`] of a datagram the caller gives away,
    /// decrypted in place (no copy).
    pub fn unprotect_rtp_owned(&mut self, mut packet: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.profile.rtp_tag_len();
        if packet.len() < 12 + tag_len {
            return Err(SrtpError::Truncated);
        }
        let body_len = packet.len() - tag_len;
        let body = &packet[..body_len];
        let hlen = rtp::header_len(body)?;
        let (ssrc, seq) = rtp::ssrc_and_sequence(body).ok_or(RtpError::Truncated)?;
        if hlen > body.len() {
            return Err(SrtpError::Truncated);
        }
        // A stream is entered only once a packet of it authenticates, so
        // forged packets from made-up SSRCs cannot fill the table.
        if !self.rtp.contains_key(&ssrc) && self.rtp.len() >= MAX_STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        let stream = self.rtp.get(&ssrc).copied().unwrap_or_default();
        let roc = stream.guess_roc(seq);
        let index = (u64::from(roc) << 16) | u64::from(seq);
        stream.window.check(index)?;
        if self.profile.is_gcm() {
            let iv = Self::gcm_iv(&self.keys.rtp_salt, ssrc, roc, seq);
            let aad = Header::of(&packet[..hlen]);
            self.crypto
                .gcm_open(&self.keys.rtp_key, &iv, aad.as_slice(), &mut packet, hlen)
                .map_err(|_| SrtpError::AuthFailed)?;
        } else {
            let want = self
                .crypto
                .hmac_sha1(&self.keys.rtp_auth, &[body, &roc.to_be_bytes()])?;
            if !self.crypto.ct_eq(&want[..tag_len], &packet[body_len..]) {
                return Err(SrtpError::AuthFailed);
            }
            packet.truncate(body_len);
            let iv = Self::cm_iv(&self.keys.rtp_salt, ssrc, index);
            self.crypto
                .aes_ctr(&self.keys.rtp_key, &iv, &mut packet[hlen..])?;
        }
        self.rtp.entry(ssrc).or_default().accepted(seq, roc);
        Ok(packet)
    }

    /// SRTCP-protects an RTCP compound packet.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        if packet.len() < 8 {
            return Err(RtpError::Truncated.into());
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        self.rtcp_index = (self.rtcp_index + 1) & 0x7FFF_FFFF;
        let e_index = (0x8000_0000 | self.rtcp_index).to_be_bytes();
        let mut out = Vec::with_capacity(packet.len() + 4 + 16);
        out.extend_from_slice(packet);
        if self.profile.is_gcm() {
            let iv = Self::gcm_iv(&self.keys.rtcp_salt, ssrc, 0, 0);
            let iv = Self::gcm_rtcp_iv(iv, self.rtcp_index);
            let mut aad = packet[..8].to_vec();
            aad.extend_from_slice(&e_index);
            self.crypto
                .gcm_seal(&self.keys.rtcp_key, &iv, &aad, &mut out, 8)?;
            out.extend_from_slice(&e_index);
        } else {
            let iv = Self::cm_iv(&self.keys.rtcp_salt, ssrc, u64::from(self.rtcp_index));
            self.crypto
                .aes_ctr(&self.keys.rtcp_key, &iv, &mut out[8..])?;
            out.extend_from_slice(&e_index);
            let tag = self.crypto.hmac_sha1(&self.keys.rtcp_auth, &[&out])?;
            out.extend_from_slice(&tag[..self.profile.rtcp_tag_len()]);
        }
        Ok(out)
    }

    /// The GCM SRTCP IV: `0 || SSRC || 0 || index` XOR salt (RFC 7714 §9.1).
    fn gcm_rtcp_iv(ssrc_part: [u8; 12], index: u32) -> [u8; 12] {
        let mut iv = ssrc_part;
        for (i, b) in index.to_be_bytes().iter().enumerate() {
            iv[8 + i] ^= b;
        }
        iv
    }

    /// Checks and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let gcm = self.profile.is_gcm();
        let tag_len = self.profile.rtcp_tag_len();
        if packet.len() < 8 + 4 + tag_len {
            return Err(SrtpError::Truncated);
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        // CM: header+payload || E+index || tag.  GCM: header || ct+tag || E+index.
        let (sealed_end, e_at) = if gcm {
            (packet.len() - 4, packet.len() - 4)
        } else {
            (packet.len() - tag_len, packet.len() - tag_len - 4)
        };
        let e_index: [u8; 4] = packet[e_at..e_at + 4]
            .try_into()
            .map_err(|_| SrtpError::Truncated)?;
        let word = u32::from_be_bytes(e_index);
        let (encrypted, index) = (word & 0x8000_0000 != 0, word & 0x7FFF_FFFF);
        if !self.rtcp.contains_key(&ssrc) && self.rtcp.len() >= MAX_STREAMS {
            return Err(SrtpError::TooManyStreams);
        }
        let window = self.rtcp.get(&ssrc).copied().unwrap_or_default();
        window.check(u64::from(index))?;
        let mut out;
        if gcm {
            let iv = Self::gcm_rtcp_iv(Self::gcm_iv(&self.keys.rtcp_salt, ssrc, 0, 0), index);
            let mut aad = packet[..8].to_vec();
            aad.extend_from_slice(&e_index);
            out = packet[..sealed_end].to_vec();
            if !encrypted {
                return Err(SrtpError::AuthFailed);
            }
            self.crypto
                .gcm_open(&self.keys.rtcp_key, &iv, &aad, &mut out, 8)
                .map_err(|_| SrtpError::AuthFailed)?;
        } else {
            let want = self
                .crypto
                .hmac_sha1(&self.keys.rtcp_auth, &[&packet[..sealed_end]])?;
            if !self.crypto.ct_eq(&want[..tag_len], &packet[sealed_end..]) {
                return Err(SrtpError::AuthFailed);
            }
            out = packet[..e_at].to_vec();
            if encrypted {
                let iv = Self::cm_iv(&self.keys.rtcp_salt, ssrc, u64::from(index));
                self.crypto
                    .aes_ctr(&self.keys.rtcp_key, &iv, &mut out[8..])?;
            }
        }
        self.rtcp.entry(ssrc).or_default().accept(u64::from(index));
        Ok(out)
    }
}
