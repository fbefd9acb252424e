//! The only crate that links OpenSSL. It implements [`softbus_bus::crypto::Crypto`]:
//! AES-GCM (128/256, 12-byte IV, no AAD), HMAC-SHA256, HKDF-SHA256 (RFC 5869),
//! modular exponentiation on big numbers, constant-time comparison and
//! randomness.
//!
//! Two randomness sources: [`OpenSslCrypto::new`] draws from OpenSSL's CSPRNG;
//! [`OpenSslCrypto::seeded`] is deterministic for tests and must never be used
//! for real keys.
//!
//! Errors are reported as [`CryptoError`] and never say which byte failed.

pub mod dtls;
pub mod tls;

use openssl::bn::{BigNum, BigNumContext};
use openssl::cipher::CipherRef;
use openssl::cipher_ctx::CipherCtx;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use rand::{RngCore, SeedableRng};
use softbus_bus::crypto::{Crypto, CryptoError, GcmKey};

/// Where random bytes come from.
enum Source {
    /// ChaCha12 (`rand`'s `StdRng`) keyed from OpenSSL's CSPRNG and re-keyed from
    /// it after every [`RESEED_BYTES`]: OpenSSL 3's `RAND_bytes` costs about a
    /// microsecond of locking and parameter lookups per call, which matters when
    /// every session packet draws 8 IV bytes.
    Drbg {
        rng: Box<rand::rngs::StdRng>,
        drawn: usize,
    },
    /// Deterministic, for tests.
    Seeded(Box<rand::rngs::StdRng>),
}

/// Output drawn from one ChaCha key before re-keying from OpenSSL.
pub const RESEED_BYTES: usize = 1 << 20;

fn drbg_from_openssl() -> Box<rand::rngs::StdRng> {
    let mut seed = [0u8; 32];
    // OpenSSL's CSPRNG failing leaves no safe way to make keys.
    openssl::rand::rand_bytes(&mut seed).expect("OpenSSL's CSPRNG is seeded");
    let rng = rand::rngs::StdRng::from_seed(seed);
    seed.fill(0);
    Box::new(rng)
}

/// Which library seals and opens session packets (`Crypto::gcm_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadBackend {
    /// ring's AES-GCM (BoringSSL's assembly): about twice OpenSSL 3.0's speed at
    /// 4 KiB on CPUs with VAES (docs/adr/0004). The default.
    Ring,
    /// OpenSSL's AES-GCM with a context kept per key.
    OpenSsl,
}

/// The engines' crypto: OpenSSL for everything, with the per-session packet
/// AEAD from [`AeadBackend`].
pub struct OpenSslCrypto {
    source: Source,
    aead: AeadBackend,
}

impl std::fmt::Debug for OpenSslCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::Drbg { .. } => "openssl-seeded chacha12",
            Source::Seeded(_) => "seeded",
        };
        f.debug_struct("OpenSslCrypto")
            .field("random", &kind)
            .field("aead", &self.aead)
            .finish()
    }
}

impl Default for OpenSslCrypto {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenSslCrypto {
    /// Randomness from OpenSSL's CSPRNG (through a re-keyed ChaCha12 stream).
    pub fn new() -> Self {
        Self {
            source: Source::Drbg {
                rng: drbg_from_openssl(),
                drawn: 0,
            },
            aead: AeadBackend::Ring,
        }
    }

    /// Deterministic randomness from `seed` (tests and virtual-time runs only).
    pub fn seeded(seed: u64) -> Self {
        Self {
            source: Source::Seeded(Box::new(rand::rngs::StdRng::seed_from_u64(seed))),
            aead: AeadBackend::Ring,
        }
    }

    /// The same, with session packets sealed by `aead`.
    pub fn with_aead(mut self, aead: AeadBackend) -> Self {
        self.aead = aead;
        self
    }
}

const TAG: usize = 16;

fn raw32(v: &[u8]) -> Result<[u8; 32], CryptoError> {
    v.try_into().map_err(|_| CryptoError::Backend)
}

/// One key schedule per direction, re-initialised with a new IV per packet.
struct OpenSslGcmKey {
    enc: CipherCtx,
    dec: CipherCtx,
}

fn gcm_cipher(key: &[u8]) -> Result<&'static CipherRef, CryptoError> {
    match key.len() {
        16 => Ok(openssl::cipher::Cipher::aes_128_gcm()),
        32 => Ok(openssl::cipher::Cipher::aes_256_gcm()),
        _ => Err(CryptoError::BadLength),
    }
}

/// A GCM context for `key`, ready for a per-packet IV.
fn gcm_ctx(key: &[u8], encrypt: bool) -> Result<CipherCtx, CryptoError> {
    let cipher = gcm_cipher(key)?;
    let mut ctx = CipherCtx::new().map_err(|_| CryptoError::Backend)?;
    let r = if encrypt {
        ctx.encrypt_init(Some(cipher), Some(key), None)
    } else {
        ctx.decrypt_init(Some(cipher), Some(key), None)
    };
    r.map_err(|_| CryptoError::Backend)?;
    Ok(ctx)
}

/// Encrypts `buf[start..]` in place with `ctx` and appends the tag.
fn seal_with(
    ctx: &mut CipherCtx,
    iv: &[u8; 12],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<(), CryptoError> {
    if start > buf.len() {
        return Err(CryptoError::BadLength);
    }
    let r = (|| {
        ctx.encrypt_init(None, None, Some(iv))?;
        let n = buf.len() - start;
        // GCM has no padding: the output is as long as the input.
        ctx.cipher_update_inplace(&mut buf[start..], n)?;
        let mut tail = [0u8; 16];
        ctx.cipher_final(&mut tail)?;
        let mut tag = [0u8; TAG];
        ctx.tag(&mut tag)?;
        buf.extend_from_slice(&tag);
        Ok::<_, openssl::error::ErrorStack>(())
    })();
    r.map_err(|_| {
        buf.truncate(start);
        CryptoError::Backend
    })
}

/// `buf[start..]` must hold at least a tag; if not, `buf` is cut to `start`.
fn check_sealed(buf: &mut Vec<u8>, start: usize) -> Result<(), CryptoError> {
    if start > buf.len() || buf.len() - start < TAG {
        buf.truncate(start.min(buf.len()));
        return Err(CryptoError::AuthFailed);
    }
    Ok(())
}

/// Opens `buf[start..]` (`ciphertext || tag`) in place with `ctx`; on failure
/// `buf` is truncated to `start`.
fn open_with(
    ctx: &mut CipherCtx,
    iv: &[u8; 12],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<(), CryptoError> {
    check_sealed(buf, start)?;
    let ct_end = buf.len() - TAG;
    let mut tag = [0u8; TAG];
    tag.copy_from_slice(&buf[ct_end..]);
    buf.truncate(ct_end);
    let r = (|| {
        ctx.decrypt_init(None, None, Some(iv))?;
        ctx.set_tag(&tag)?;
        let n = buf.len() - start;
        ctx.cipher_update_inplace(&mut buf[start..], n)?;
        let mut tail = [0u8; 16];
        ctx.cipher_final(&mut tail)?;
        Ok::<_, openssl::error::ErrorStack>(())
    })();
    r.map_err(|_| {
        // Never hand out unauthenticated plaintext.
        buf.truncate(start);
        CryptoError::AuthFailed
    })
}

impl GcmKey for OpenSslGcmKey {
    fn seal_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        seal_with(&mut self.enc, iv, buf, start)
    }

    fn open_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        open_with(&mut self.dec, iv, buf, start)
    }
}

/// ring's AES-GCM for one key.
struct RingGcmKey(ring::aead::LessSafeKey);

/// A ring AES-GCM key (16 or 32 bytes).
fn ring_gcm(key: &[u8]) -> Result<ring::aead::LessSafeKey, CryptoError> {
    let alg = match key.len() {
        16 => &ring::aead::AES_128_GCM,
        32 => &ring::aead::AES_256_GCM,
        _ => return Err(CryptoError::BadLength),
    };
    let k = ring::aead::UnboundKey::new(alg, key).map_err(|_| CryptoError::BadLength)?;
    Ok(ring::aead::LessSafeKey::new(k))
}

/// Seals `buf[start..]` in place with `aad` and appends the tag; on failure
/// `buf` is truncated to `start`.
fn ring_seal(
    k: &ring::aead::LessSafeKey,
    iv: &[u8; 12],
    aad: &[u8],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<(), CryptoError> {
    if start > buf.len() {
        return Err(CryptoError::BadLength);
    }
    // Nonce uniqueness is the protocol's: a sequence number per packet.
    let nonce = ring::aead::Nonce::assume_unique_for_key(*iv);
    match k.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), &mut buf[start..]) {
        Ok(tag) => {
            buf.extend_from_slice(tag.as_ref());
            Ok(())
        }
        Err(_) => {
            buf.truncate(start);
            Err(CryptoError::Backend)
        }
    }
}

/// Opens `buf[start..]` (`ciphertext || tag`) in place with `aad` and removes
/// the tag; on failure `buf` is truncated to `start`.
fn ring_open(
    k: &ring::aead::LessSafeKey,
    iv: &[u8; 12],
    aad: &[u8],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<(), CryptoError> {
    check_sealed(buf, start)?;
    let nonce = ring::aead::Nonce::assume_unique_for_key(*iv);
    match k.open_in_place(nonce, ring::aead::Aad::from(aad), &mut buf[start..]) {
        Ok(plain) => {
            let n = plain.len();
            buf.truncate(start + n);
            Ok(())
        }
        Err(_) => {
            // Never hand out unauthenticated plaintext.
            buf.truncate(start);
            Err(CryptoError::AuthFailed)
        }
    }
}

impl GcmKey for RingGcmKey {
    fn seal_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        ring_seal(&self.0, iv, &[], buf, start)
    }

    fn open_in_place(
        &mut self,
        iv: &[u8; 12],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        ring_open(&self.0, iv, &[], buf, start)
    }
}

impl Crypto for OpenSslCrypto {
    fn gcm_key(&self, key: &[u8]) -> Result<Box<dyn GcmKey>, CryptoError> {
        if self.aead == AeadBackend::Ring {
            return Ok(Box::new(RingGcmKey(ring_gcm(key)?)));
        }
        Ok(Box::new(OpenSslGcmKey {
            enc: gcm_ctx(key, true)?,
            dec: gcm_ctx(key, false)?,
        }))
    }

    fn aes_gcm_seal(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut ctx = gcm_ctx(key, true)?;
        let start = out.len();
        out.extend_from_slice(plaintext);
        seal_with(&mut ctx, iv, out, start)
    }

    fn aes_gcm_open(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let mut ctx = gcm_ctx(key, false)?;
        let start = out.len();
        out.extend_from_slice(sealed);
        open_with(&mut ctx, iv, out, start)
    }

    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
        // HMAC zero-pads keys to the block size, so an empty key equals a single
        // zero byte; OpenSSL refuses the empty one.
        let key = if key.is_empty() { &[0u8][..] } else { key };
        let pkey = PKey::hmac(key).map_err(|_| CryptoError::Backend)?;
        let mut s =
            Signer::new(MessageDigest::sha256(), &pkey).map_err(|_| CryptoError::Backend)?;
        for p in parts {
            s.update(p).map_err(|_| CryptoError::Backend)?;
        }
        let mut out = [0u8; 32];
        s.sign(&mut out).map_err(|_| CryptoError::Backend)?;
        Ok(out)
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        // RFC 5869 over OpenSSL's HMAC. OpenSSL's own HKDF refuses an empty
        // input key, which the hichain protocol uses for the empty PIN.
        if out.len() > 255 * 32 {
            return Err(CryptoError::BadLength);
        }
        let prk = self.hmac_sha256(salt, &[ikm])?;
        let mut t: Vec<u8> = Vec::new();
        let mut filled = 0;
        let mut counter = 1u8;
        while filled < out.len() {
            let block = self.hmac_sha256(&prk, &[&t, info, &[counter]])?;
            let n = (out.len() - filled).min(32);
            out[filled..filled + n].copy_from_slice(&block[..n]);
            filled += n;
            t = block.to_vec();
            counter = counter.wrapping_add(1);
        }
        Ok(())
    }

    fn mod_exp(&self, base: &[u8], exp: &[u8], modulus: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let b = BigNum::from_slice(base).map_err(|_| CryptoError::Backend)?;
        let e = BigNum::from_slice(exp).map_err(|_| CryptoError::Backend)?;
        let m = BigNum::from_slice(modulus).map_err(|_| CryptoError::Backend)?;
        let mut ctx = BigNumContext::new().map_err(|_| CryptoError::Backend)?;
        let mut r = BigNum::new().map_err(|_| CryptoError::Backend)?;
        r.mod_exp(&b, &e, &m, &mut ctx)
            .map_err(|_| CryptoError::Backend)?;
        let width = i32::try_from(modulus.len()).map_err(|_| CryptoError::BadLength)?;
        r.to_vec_padded(width).map_err(|_| CryptoError::Backend)
    }

    fn aes_gcm_seal_aad(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let k = ring_gcm(key)?;
        let start = out.len();
        out.extend_from_slice(plaintext);
        ring_seal(&k, iv, aad, out, start)
    }

    fn aes_gcm_open_aad(
        &self,
        key: &[u8],
        iv: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let k = ring_gcm(key)?;
        let start = out.len();
        out.extend_from_slice(sealed);
        ring_open(&k, iv, aad, out, start)
    }

    fn sha256(&self, parts: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
        let mut h = openssl::sha::Sha256::new();
        for p in parts {
            h.update(p);
        }
        Ok(h.finish())
    }

    fn ed25519_public(&self, seed: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        let k = PKey::private_key_from_raw_bytes(seed, openssl::pkey::Id::ED25519)
            .map_err(|_| CryptoError::BadLength)?;
        raw32(&k.raw_public_key().map_err(|_| CryptoError::Backend)?)
    }

    fn ed25519_sign(&self, seed: &[u8; 32], msg: &[u8]) -> Result<[u8; 64], CryptoError> {
        let k = PKey::private_key_from_raw_bytes(seed, openssl::pkey::Id::ED25519)
            .map_err(|_| CryptoError::BadLength)?;
        let mut s = Signer::new_without_digest(&k).map_err(|_| CryptoError::Backend)?;
        let sig = s
            .sign_oneshot_to_vec(msg)
            .map_err(|_| CryptoError::Backend)?;
        sig.try_into().map_err(|_| CryptoError::Backend)
    }

    fn ed25519_verify(&self, public: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
        let Ok(k) = PKey::public_key_from_raw_bytes(public, openssl::pkey::Id::ED25519) else {
            return false;
        };
        openssl::sign::Verifier::new_without_digest(&k)
            .and_then(|mut v| v.verify_oneshot(sig, msg))
            .unwrap_or(false)
    }

    fn x25519_public(&self, secret: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        let k = PKey::private_key_from_raw_bytes(secret, openssl::pkey::Id::X25519)
            .map_err(|_| CryptoError::BadLength)?;
        raw32(&k.raw_public_key().map_err(|_| CryptoError::Backend)?)
    }

    fn x25519(&self, secret: &[u8; 32], peer: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        let k = PKey::private_key_from_raw_bytes(secret, openssl::pkey::Id::X25519)
            .map_err(|_| CryptoError::BadLength)?;
        let p = PKey::public_key_from_raw_bytes(peer, openssl::pkey::Id::X25519)
            .map_err(|_| CryptoError::BadLength)?;
        let mut d = openssl::derive::Deriver::new(&k).map_err(|_| CryptoError::Backend)?;
        d.set_peer(&p).map_err(|_| CryptoError::Backend)?;
        let shared = raw32(&d.derive_to_vec().map_err(|_| CryptoError::Backend)?)?;
        // A low-order peer point gives all zeros (RFC 7748 §6.1).
        if openssl::memcmp::eq(&shared, &[0u8; 32]) {
            return Err(CryptoError::BadLength);
        }
        Ok(shared)
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && openssl::memcmp::eq(a, b)
    }

    fn random(&mut self, buf: &mut [u8]) {
        match &mut self.source {
            Source::Drbg { rng, drawn } => {
                if *drawn >= RESEED_BYTES {
                    *rng = drbg_from_openssl();
                    *drawn = 0;
                }
                rng.fill_bytes(buf);
                *drawn += buf.len();
            }
            Source::Seeded(r) => r.fill_bytes(buf),
        }
    }
}

impl softbus_rtc::crypto::Random for OpenSslCrypto {
    fn fill(&mut self, buf: &mut [u8]) {
        softbus_bus::crypto::Crypto::random(self, buf);
    }

    fn fork(&mut self) -> Box<dyn softbus_rtc::crypto::Random> {
        match self.source {
            // Tests: a seeded source forks into seeded sources, reproducibly.
            Source::Seeded(_) => {
                let mut seed = [0u8; 8];
                self.fill(&mut seed);
                Box::new(OpenSslCrypto::seeded(u64::from_le_bytes(seed)))
            }
            Source::Drbg { .. } => Box::new(OpenSslCrypto::new()),
        }
    }
}

impl softbus_rtc::crypto::Hmac for OpenSslCrypto {
    fn hmac_sha1(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
        // HMAC zero-pads keys, so an empty key equals one zero byte (OpenSSL refuses empty).
        let key = if key.is_empty() { &[0u8][..] } else { key };
        let mut out = [0u8; 20];
        let r = (|| {
            let pkey = PKey::hmac(key)?;
            let mut s = Signer::new(MessageDigest::sha1(), &pkey)?;
            for p in parts {
                s.update(p)?;
            }
            s.sign(&mut out)
        })();
        // HMAC-SHA1 with a valid key cannot fail short of memory exhaustion.
        r.expect("HMAC-SHA1 over memory buffers");
        out
    }

    fn md5(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut h = openssl::hash::Hasher::new(MessageDigest::md5()).expect("MD5 is available");
        for p in parts {
            h.update(p).expect("MD5 over memory buffers");
        }
        let d = h.finish().expect("MD5 over memory buffers");
        let mut out = [0u8; 16];
        out.copy_from_slice(&d);
        out
    }
}

/// The SRTP backend for [`softbus_rtc::crypto::Provider::srtp`]: one
/// [`SrtpBackend`] per context.
pub fn srtp_backends() -> softbus_rtc::crypto::SrtpBackends {
    std::sync::Arc::new(|| Box::new(SrtpBackend::default()))
}

/// SRTP's ciphers for one context: AES-CTR and HMAC-SHA1 from RustCrypto,
/// AES-GCM from ring (docs/adr/0010 has the measurements). A context uses a
/// handful of keys for its whole life, so each key's expanded form (AES key
/// schedule, HMAC pads, GCM key) is kept instead of rebuilt per packet.
#[derive(Default)]
pub struct SrtpBackend {
    /// The last two keys' AES schedules (RTP's and RTCP's), per key size.
    ctr128: std::cell::RefCell<Vec<(Vec<u8>, aes::Aes128)>>,
    ctr256: std::cell::RefCell<Vec<(Vec<u8>, aes::Aes256)>>,
    /// The last two HMAC keys (RTP's and RTCP's).
    hmac: std::cell::RefCell<Vec<(Vec<u8>, hmac::Hmac<sha1::Sha1>)>>,
    gcm: std::cell::RefCell<Vec<(Vec<u8>, ring::aead::LessSafeKey)>>,
}

impl std::fmt::Debug for SrtpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpBackend(..)")
    }
}

/// Runs `f` on the cached value for `key` in a list of at most two, made by
/// `make` when missing.
fn with_cached<T, R>(
    list: &std::cell::RefCell<Vec<(Vec<u8>, T)>>,
    key: &[u8],
    make: impl FnOnce() -> Option<T>,
    f: impl FnOnce(&T) -> R,
) -> Option<R> {
    let mut l = list.borrow_mut();
    if let Some((_, v)) = l.iter().find(|(k, _)| k.as_slice() == key) {
        return Some(f(v));
    }
    let v = make()?;
    if l.len() >= 2 {
        l.remove(0);
    }
    let r = f(&v);
    l.push((key.to_vec(), v));
    Some(r)
}

/// XORs `data` with the AES-CTR keystream of `key` from `iv`, the key's
/// schedule kept in `cache`.
fn ctr_apply<C>(
    cache: &std::cell::RefCell<Vec<(Vec<u8>, C)>>,
    key: &[u8],
    iv: &[u8; 16],
    data: &mut [u8],
) -> Result<(), softbus_rtc::srtp::CryptoFailure>
where
    C: aes::cipher::BlockEncryptMut
        + aes::cipher::BlockCipher
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>
        + aes::cipher::KeyInit
        + Clone,
{
    use ctr::cipher::{InnerIvInit, StreamCipher};
    with_cached(
        cache,
        key,
        || C::new_from_slice(key).ok(),
        |c| {
            ctr::Ctr128BE::<C>::from_core(ctr::CtrCore::inner_iv_init(c.clone(), iv.into()))
                .apply_keystream(data)
        },
    )
    .ok_or(softbus_rtc::srtp::CryptoFailure)
}

impl softbus_rtc::srtp::SrtpCrypto for SrtpBackend {
    fn aes_ctr(
        &self,
        key: &[u8],
        iv: &[u8; 16],
        data: &mut [u8],
    ) -> Result<(), softbus_rtc::srtp::CryptoFailure> {
        // RustCrypto's AES (AES-NI when the CPU has it): no per-call context
        // to build, unlike OpenSSL 3's EVP layer.
        match key.len() {
            16 => ctr_apply(&self.ctr128, key, iv, data),
            32 => ctr_apply(&self.ctr256, key, iv, data),
            _ => Err(softbus_rtc::srtp::CryptoFailure),
        }
    }

    fn hmac_sha1(
        &self,
        key: &[u8],
        parts: &[&[u8]],
    ) -> Result<[u8; 20], softbus_rtc::srtp::CryptoFailure> {
        // RustCrypto's SHA-1 uses the CPU's SHA extensions: OpenSSL 3's HMAC
        // spends more on setting up each call than on 1200 bytes of data.
        use hmac::Mac;
        // The keyed state (both pads hashed) is kept; each packet starts from a copy.
        let mut m = with_cached(
            &self.hmac,
            key,
            || hmac::Hmac::<sha1::Sha1>::new_from_slice(key).ok(),
            Clone::clone,
        )
        .ok_or(softbus_rtc::srtp::CryptoFailure)?;
        for p in parts {
            m.update(p);
        }
        Ok(m.finalize().into_bytes().into())
    }

    fn gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), softbus_rtc::srtp::CryptoFailure> {
        with_cached(
            &self.gcm,
            key,
            || ring_gcm(key).ok(),
            |k| ring_seal(k, nonce, aad, buf, start),
        )
        .and_then(Result::ok)
        .ok_or(softbus_rtc::srtp::CryptoFailure)
    }

    fn gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), softbus_rtc::srtp::CryptoFailure> {
        with_cached(
            &self.gcm,
            key,
            || ring_gcm(key).ok(),
            |k| ring_open(k, nonce, aad, buf, start),
        )
        .and_then(Result::ok)
        .ok_or(softbus_rtc::srtp::CryptoFailure)
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && openssl::memcmp::eq(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a32(s: &str) -> [u8; 32] {
        h(s).try_into().unwrap()
    }

    /// RFC 8032 §7.1, test 2 (one-byte message).
    #[test]
    fn ed25519_rfc8032_vector() {
        let c = OpenSslCrypto::new();
        let seed = a32("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let public = c.ed25519_public(&seed).unwrap();
        assert_eq!(
            public.to_vec(),
            h("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        );
        let sig = c.ed25519_sign(&seed, &[0x72]).unwrap();
        assert_eq!(sig.to_vec(), h("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"));
        assert!(c.ed25519_verify(&public, &[0x72], &sig));
        assert!(!c.ed25519_verify(&public, &[0x73], &sig));
        assert!(!c.ed25519_verify(&public, &[0x72], &sig[..63]));
    }

    /// RFC 7748 §6.1: Alice and Bob agree; a low-order point is refused.
    #[test]
    fn x25519_rfc7748_vector() {
        let c = OpenSslCrypto::new();
        let a = a32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let b = a32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let pa = c.x25519_public(&a).unwrap();
        let pb = c.x25519_public(&b).unwrap();
        assert_eq!(
            pa.to_vec(),
            h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        assert_eq!(c.x25519(&a, &pb).unwrap().to_vec(), h(k));
        assert_eq!(c.x25519(&b, &pa).unwrap().to_vec(), h(k));
        assert!(c.x25519(&a, &[0u8; 32]).is_err());
    }

    /// GCM with AAD: round trip; a wrong AAD or a flipped bit does not open.
    #[test]
    fn gcm_with_aad() {
        let c = OpenSslCrypto::new();
        let key = [7u8; 16];
        let iv = [1u8; 12];
        let mut sealed = Vec::new();
        c.aes_gcm_seal_aad(
            &key,
            &iv,
            b"hichain_exchange_request",
            b"hello",
            &mut sealed,
        )
        .unwrap();
        assert_eq!(sealed.len(), 5 + 16);
        let mut out = Vec::new();
        c.aes_gcm_open_aad(&key, &iv, b"hichain_exchange_request", &sealed, &mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let mut out = Vec::new();
        assert_eq!(
            c.aes_gcm_open_aad(&key, &iv, b"hichain_exchange_response", &sealed, &mut out),
            Err(CryptoError::AuthFailed)
        );
        assert!(out.is_empty());
        sealed[0] ^= 1;
        assert!(c
            .aes_gcm_open_aad(&key, &iv, b"hichain_exchange_request", &sealed, &mut out)
            .is_err());
        // The same as the no-AAD path when the AAD is empty.
        let mut a = Vec::new();
        let mut b = Vec::new();
        c.aes_gcm_seal_aad(&key, &iv, b"", b"xyz", &mut a).unwrap();
        c.aes_gcm_seal(&key, &iv, b"xyz", &mut b).unwrap();
        assert_eq!(a, b);
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// RFC 5869 Appendix A.1.
    #[test]
    fn hkdf_rfc5869_case1() {
        let c = OpenSslCrypto::new();
        let mut okm = [0u8; 42];
        c.hkdf_sha256(
            &h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
            &h("000102030405060708090a0b0c"),
            &h("f0f1f2f3f4f5f6f7f8f9"),
            &mut okm,
        )
        .unwrap();
        assert_eq!(okm.to_vec(), h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
    }

    /// RFC 5869 Appendix A.3 (empty salt and info).
    #[test]
    fn hkdf_rfc5869_case3() {
        let c = OpenSslCrypto::new();
        let mut okm = [0u8; 42];
        c.hkdf_sha256(
            &h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
            &[],
            &[],
            &mut okm,
        )
        .unwrap();
        assert_eq!(okm.to_vec(), h("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"));
    }

    /// NIST GCM test case 4 (AES-128, 60-byte plaintext) without AAD is not in the
    /// spec, so use test case 3 (no AAD, 64 bytes).
    #[test]
    fn gcm_nist_case3() {
        let c = OpenSslCrypto::new();
        let key = h("feffe9928665731c6d6a8f9467308308");
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let pt = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255");
        let mut out = Vec::new();
        c.aes_gcm_seal(&key, &iv, &pt, &mut out).unwrap();
        assert_eq!(out, h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f59854d5c2af327cd64a62cf35abd2ba6fab4"));
        let mut back = Vec::new();
        c.aes_gcm_open(&key, &iv, &out, &mut back).unwrap();
        assert_eq!(back, pt);
        out[3] ^= 1;
        let mut back = Vec::new();
        assert_eq!(
            c.aes_gcm_open(&key, &iv, &out, &mut back),
            Err(CryptoError::AuthFailed)
        );
        assert!(back.is_empty());
        assert_eq!(
            c.aes_gcm_seal(&[0; 15], &iv, &pt, &mut Vec::new()),
            Err(CryptoError::BadLength)
        );
    }

    #[test]
    fn prepared_key_matches_one_shot_and_rejects_tampering() {
        let c = OpenSslCrypto::new();
        for key in [vec![3u8; 16], vec![4u8; 32]] {
            let mut k = c.gcm_key(&key).unwrap();
            for (i, len) in [0usize, 1, 15, 16, 4048].into_iter().enumerate() {
                let iv = [i as u8; 12];
                let pt = vec![0x42; len];
                let (mut a, mut b) = (Vec::new(), Vec::new());
                c.aes_gcm_seal(&key, &iv, &pt, &mut a).unwrap();
                k.seal(&iv, &pt, &mut b).unwrap();
                assert_eq!(a, b);
                let mut back = Vec::new();
                k.open(&iv, &a, &mut back).unwrap();
                assert_eq!(back, pt);
                a[0] ^= 1;
                let mut back = vec![9];
                assert_eq!(k.open(&iv, &a, &mut back), Err(CryptoError::AuthFailed));
                assert_eq!(back, vec![9]);
            }
        }
        assert!(c.gcm_key(&[0; 24]).is_err());
    }

    /// The two AEAD backends are independent implementations: they must agree byte
    /// for byte and open each other's packets.
    #[test]
    fn ring_and_openssl_agree() {
        let mut c = OpenSslCrypto::seeded(5);
        for (i, klen) in [16usize, 32, 32, 16].into_iter().enumerate() {
            let mut key = vec![0u8; klen];
            c.random(&mut key);
            let mut r = c.gcm_key(&key).unwrap();
            let mut o = OpenSslCrypto::new()
                .with_aead(AeadBackend::OpenSsl)
                .gcm_key(&key)
                .unwrap();
            for len in [0usize, 1, 17, 4048, 4080] {
                let mut iv = [0u8; 12];
                c.random(&mut iv);
                let mut pt = vec![0u8; len];
                c.random(&mut pt);
                let (mut a, mut b) = (vec![i as u8], vec![i as u8]);
                r.seal(&iv, &pt, &mut a).unwrap();
                o.seal(&iv, &pt, &mut b).unwrap();
                assert_eq!(a, b, "key {klen} len {len}");
                let (mut x, mut y) = (Vec::new(), Vec::new());
                r.open(&iv, &b[1..], &mut x).unwrap();
                o.open(&iv, &a[1..], &mut y).unwrap();
                assert_eq!((x.as_slice(), y.as_slice()), (pt.as_slice(), pt.as_slice()));
                if len > 0 {
                    a[1] ^= 4;
                    let mut z = vec![7];
                    assert_eq!(r.open(&iv, &a[1..], &mut z), Err(CryptoError::AuthFailed));
                    assert_eq!(z, vec![7]);
                }
            }
        }
        assert!(c.gcm_key(&[0; 24]).is_err());
    }

    #[test]
    fn mod_exp_pads_to_modulus_width() {
        let c = OpenSslCrypto::new();
        assert_eq!(c.mod_exp(&[2], &[3], &[0, 0, 0xff]).unwrap(), vec![0, 0, 8]);
        assert_eq!(
            c.mod_exp(&[2], &[10], &[0x03, 0xe9]).unwrap(),
            vec![0x00, 0x17]
        ); // 1024 mod 1001 = 23
    }

    #[test]
    fn os_source_differs_between_instances_and_reseeds() {
        let (mut a, mut b) = (OpenSslCrypto::new(), OpenSslCrypto::new());
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.random(&mut x);
        b.random(&mut y);
        assert_ne!(x, y);
        let mut big = vec![0u8; RESEED_BYTES];
        a.random(&mut big);
        a.random(&mut x); // crosses the re-key
        assert!(matches!(a.source, Source::Drbg { drawn: 32, .. }));
    }

    #[test]
    fn seeded_is_deterministic() {
        let (mut a, mut b) = (OpenSslCrypto::seeded(7), OpenSslCrypto::seeded(7));
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        a.random(&mut x);
        b.random(&mut y);
        assert_eq!(x, y);
        assert!(c_ne(&x));
    }

    fn c_ne(x: &[u8]) -> bool {
        x.iter().any(|&b| b != 0)
    }
}
