//! Primitives the WebRTC engines need, implemented by `softbus-crypto`.

/// HMAC-SHA1 for STUN MESSAGE-INTEGRITY (RFC 8489 §14.5).
pub trait Hmac {
    /// HMAC-SHA1 of the concatenation of `parts` under `key`.
    fn hmac_sha1(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 20];
    /// MD5 of the concatenation of `parts`: only for TURN's long-term
    /// credential key, `MD5(username ":" realm ":" password)` (RFC 8489 §9.2.2).
    fn md5(&self, parts: &[&[u8]]) -> [u8; 16];
}

/// Randomness for ICE credentials and identifiers.
pub trait Random: Send {
    /// Fills `buf` with cryptographically strong random bytes.
    fn fill(&mut self, buf: &mut [u8]);
    /// An independent source for one peer connection's engines.
    fn fork(&mut self) -> Box<dyn Random>;
}

/// `len` random ICE characters (RFC 8839 ice-char).
pub fn ice_chars(r: &mut dyn Random, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b = vec![0u8; len];
    r.fill(&mut b);
    b.iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % 64]))
        .collect()
}

/// Makes the SRTP cipher backend of each SRTP context.
pub type SrtpBackends = std::sync::Arc<dyn Fn() -> Box<dyn crate::srtp::SrtpCrypto> + Send + Sync>;

/// What an engine is given at construction: HMAC, randomness, DTLS sessions
/// and SRTP ciphers.
pub struct Provider {
    pub hmac: Box<dyn Hmac + Send>,
    pub random: Box<dyn Random>,
    pub dtls: Box<dyn crate::dtls::DtlsFactory>,
    pub srtp: SrtpBackends,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").finish_non_exhaustive()
    }
}

/// A TLS client over memory for TURN over TLS (`turns:`): ciphertext in and
/// out, plaintext for the TURN client. The library checks the server's
/// certificate and name.
pub trait TlsClient: Send + std::fmt::Debug {
    /// Starts the handshake (the ClientHello is then in [`TlsClient::poll_output`]).
    fn start(&mut self) -> Result<(), String>;
    /// Plaintext to send; held until the handshake is done.
    fn write(&mut self, plain: &[u8]) -> Result<(), String>;
    /// Ciphertext from the server; the plaintext it completes.
    fn handle_input(&mut self, cipher: &[u8]) -> Result<Vec<u8>, String>;
    /// Ciphertext for the server.
    fn poll_output(&mut self) -> Option<Vec<u8>>;
}

/// Makes TLS clients for a server name (checked against its certificate).
pub trait TlsConnector: Send {
    fn client(&self, server_name: &str) -> Result<Box<dyn TlsClient>, String>;
}
