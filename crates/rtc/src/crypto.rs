//! Primitives the WebRTC engines need, implemented by `softbus-crypto`.

/// HMAC-SHA1 for STUN MESSAGE-INTEGRITY (RFC 8489 §14.5).
pub trait Hmac {
    /// HMAC-SHA1 of the concatenation of `parts` under `key`.
    fn hmac_sha1(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 20];
}
