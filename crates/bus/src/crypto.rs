//! The primitives the engines need, declared here and implemented elsewhere
//! (`softbus-crypto` links OpenSSL). Randomness comes through the same trait so
//! that tests can inject a seeded source.

/// A cryptographic failure. Deliberately says nothing about which byte was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The authentication tag did not verify (tampered, wrong key, or truncated).
    #[error("authentication failed")]
    AuthFailed,
    /// A key or input of an unusable length.
    #[error("bad key or input length")]
    BadLength,
    /// The backend itself failed.
    #[error("crypto backend failure")]
    Backend,
}

/// An AES-GCM key prepared once and used for many packets (no AAD, 12-byte IV,
/// 16-byte tag), e.g. one per session. Works in place: no output buffer is zeroed
/// or allocated per packet.
pub trait GcmKey: Send {
    /// Encrypts `buf[start..]` in place and appends the tag.
    fn seal_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError>;
    /// `buf[start..]` is `ciphertext || tag`: decrypts it in place and removes the
    /// tag. On failure `buf` is truncated to `start`, so no unauthenticated
    /// plaintext is left behind.
    fn open_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError>;

    /// Appends `ciphertext || tag` of `plaintext` to `out`.
    fn seal(
        &mut self,
        iv: &[u8; 12],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        self.seal_in_place(iv, out, start)
    }
    /// Opens `ciphertext || tag`, appending the plaintext to `out` (nothing on failure).
    fn open(&mut self, iv: &[u8; 12], sealed: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let start = out.len();
        out.extend_from_slice(sealed);
        self.open_in_place(iv, out, start)
    }
}

/// Primitives used by the soft bus engines.
pub trait Crypto: Send {
    /// Prepares `key` (16 or 32 bytes) for repeated AES-GCM use.
    fn gcm_key(&self, key: &[u8]) -> Result<Box<dyn GcmKey>, CryptoError>;
    /// AES-GCM (key length 16 or 32 selects AES-128/256), 12-byte IV, no AAD.
    /// Appends `ciphertext || tag(16)` to `out`.
    fn aes_gcm_seal(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;
    /// Opens `ciphertext || tag(16)`; appends the plaintext to `out`.
    fn aes_gcm_open(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;
    /// HMAC-SHA256 over the concatenation of `parts`.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError>;
    /// HKDF-SHA256 (RFC 5869) extract-and-expand into `out`. `ikm` may be empty.
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
    /// `base ^ exp mod modulus` on big-endian unsigned integers; the result is
    /// left-padded to the modulus width.
    fn mod_exp(&self, base: &[u8], exp: &[u8], modulus: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// AES-GCM with additional authenticated data (hichain's exchange and STS
    /// seals): appends `ciphertext || tag(16)` to `out`.
    fn aes_gcm_seal_aad(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;
    /// Opens `ciphertext || tag(16)` sealed with `aad`; appends the plaintext to `out`.
    fn aes_gcm_open_aad(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError>;
    /// SHA-256 over the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> Result<[u8; 32], CryptoError>;
    /// The Ed25519 public key of the private key `seed` (RFC 8032).
    fn ed25519_public(&self, seed: &[u8; 32]) -> Result<[u8; 32], CryptoError>;
    /// An Ed25519 signature of `msg` (pure Ed25519, no pre-hash).
    fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> Result<[u8; 64], CryptoError>;
    /// Whether `sig` is `public`'s Ed25519 signature of `msg`.
    fn ed25519_verify(&self, public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool;
    /// The X25519 public key of `secret` (RFC 7748).
    fn x25519_public(&self, secret: &[u8; 32]) -> Result<[u8; 32], CryptoError>;
    /// The X25519 shared secret; an all-zero result (a low-order peer key) is an error.
    fn x25519(&self, secret: &[u8; 32], peer: &[u8; 32]) -> Result<[u8; 32], CryptoError>;
    /// Constant-time equality.
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool;
    /// Fills `buf` with random bytes.
    fn random(&mut self, buf: &mut [u8]);
}
