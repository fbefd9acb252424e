//! DTLS 1.2 over OpenSSL, driven through memory (no sockets): the backend of
//! [`softbus_rtc::dtls::DtlsTransport`].
//!
//! Certificates are ECDSA P-256, self-signed, generated per identity or read
//! from PEM. Peer certificates are not checked against any CA: WebRTC
//! authenticates them by the SDP fingerprint, which the transport checks once the
//! handshake completes. The use_srtp extension offers the four profiles.
//!
//! OpenSSL's own retransmission timer reads the wall clock, which a sans-IO
//! engine must not depend on: the transport decides when a flight is resent, on
//! the caller's clock, and asks this backend to re-encrypt it
//! ([`DtlsBackend::retransmit`]), so the copy has fresh record sequence numbers.
//! OpenSSL re-encrypts only from its timeout path, so its timer is kept short
//! with `DTLS_set_timer_cb`, and what it writes from that path on its own (when
//! a read finds the timer run out) is held back, not sent: only the transport's
//! call releases a retransmission (docs/adr/0006).

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509NameBuilder, X509};
use softbus_rtc::dtls::{DtlsBackend, DtlsError, DtlsFactory, SrtpProfile};
use softbus_rtc::sdp::Fingerprint;
use std::collections::VecDeque;
use std::io::{Read, Write};

/// Datagram MTU given to OpenSSL (fits a 1280-byte IPv6 path with UDP and TURN).
pub const DTLS_MTU: u32 = 1200;
/// Received datagrams queued before the oldest is dropped.
const MAX_RX: usize = 64;

/// OpenSSL's retransmission timeout, constant (no doubling: the transport keeps
/// the schedule). Shorter than the transport's first timeout (1 s), so when the
/// transport asks for a retransmission the library's timer has run out and it
/// re-encrypts the flight; longer than libssl's 15 ms slack, so it has not run
/// out again right after it restarts.
const LIBRARY_TIMER_US: std::os::raw::c_uint = 250_000;

#[allow(unsafe_code)]
mod timer {
    use std::os::raw::{c_long, c_uint, c_void};

    extern "C" {
        // libssl since 1.1.1: `void DTLS_set_timer_cb(SSL *s, DTLS_timer_cb cb)`.
        fn DTLS_set_timer_cb(
            s: *mut c_void,
            cb: Option<unsafe extern "C" fn(*mut c_void, c_uint) -> c_uint>,
        );
        // `long SSL_ctrl(SSL *s, int cmd, long larg, void *parg)`.
        fn SSL_ctrl(
            s: *mut c_void,
            cmd: std::os::raw::c_int,
            larg: c_long,
            parg: *mut c_void,
        ) -> c_long;
    }

    /// `DTLSv1_handle_timeout` is `SSL_ctrl(s, DTLS_CTRL_HANDLE_TIMEOUT, 0, NULL)`.
    const DTLS_CTRL_HANDLE_TIMEOUT: std::os::raw::c_int = 74;

    /// libssl calls this with 0 when it starts the timer of a new flight, and
    /// with the last timeout right before it retransmits: everything it then
    /// writes until its next read is a retransmission (see `super::MemIo`).
    unsafe extern "C" fn library_timer(_s: *mut c_void, previous_us: c_uint) -> c_uint {
        if previous_us != 0 {
            super::RETRANSMITTING.with(|r| r.set(true));
        }
        super::LIBRARY_TIMER_US
    }

    /// Replaces the library's doubling timer with [`super::LIBRARY_TIMER_US`].
    pub(super) fn install(ssl: &mut openssl::ssl::SslRef) {
        use foreign_types::ForeignTypeRef;
        // SAFETY: `ssl` is a live SSL owned by the caller; the callback is a plain
        // function with the C signature libssl expects and touches only a
        // thread-local flag.
        unsafe { DTLS_set_timer_cb(ssl.as_ptr().cast(), Some(library_timer)) }
    }

    /// `DTLSv1_handle_timeout`: retransmits the flight if the library timer ran
    /// out; > 0 when it did.
    pub(super) fn handle_timeout(ssl: &openssl::ssl::SslRef) -> c_long {
        use foreign_types::ForeignTypeRef;
        // SAFETY: `ssl` is a live SSL; this control takes no argument.
        unsafe {
            SSL_ctrl(
                ssl.as_ptr().cast(),
                DTLS_CTRL_HANDLE_TIMEOUT,
                0,
                std::ptr::null_mut(),
            )
        }
    }
}

thread_local! {
    /// Set by the library's timer callback right before it retransmits, cleared
    /// by its next read and around every backend call: while set, what the
    /// library writes is a retransmission. Backend calls run to completion on
    /// one thread, so the flag never crosses two sessions.
    static RETRANSMITTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> DtlsError {
    DtlsError::Backend(softbus_rtc::dtls::BackendError::new(e))
}

/// A fingerprint asked for with a hash OpenSSL is not given here.
#[derive(Debug)]
struct UnknownHash(String);

impl std::fmt::Display for UnknownHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown fingerprint hash {:?}", self.0)
    }
}

impl std::error::Error for UnknownHash {}

/// Days a generated certificate is valid; the WebRTC host renews it before.
pub const CERT_DAYS: u32 = 30;

/// A certificate and its key.
#[derive(Clone)]
pub struct DtlsIdentity {
    key: PKey<Private>,
    cert: X509,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity").finish_non_exhaustive()
    }
}

/// OpenSSL's digest for an SDP hash name.
pub fn digest_for(algorithm: &str) -> Option<MessageDigest> {
    Some(match algorithm {
        "sha-1" => MessageDigest::sha1(),
        "sha-224" => MessageDigest::sha224(),
        "sha-256" => MessageDigest::sha256(),
        "sha-384" => MessageDigest::sha384(),
        "sha-512" => MessageDigest::sha512(),
        _ => return None,
    })
}

impl DtlsIdentity {
    /// A fresh ECDSA P-256 key and a self-signed certificate valid for
    /// [`CERT_DAYS`] days.
    pub fn generate() -> Result<Self, DtlsError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(err)?;
        let key = PKey::from_ec_key(EcKey::generate(&group).map_err(err)?).map_err(err)?;
        let mut name = X509NameBuilder::new().map_err(err)?;
        name.append_entry_by_nid(Nid::COMMONNAME, "softbus")
            .map_err(err)?;
        let name = name.build();
        let mut b = X509::builder().map_err(err)?;
        b.set_version(2).map_err(err)?;
        let mut serial = BigNum::new().map_err(err)?;
        serial.rand(64, MsbOption::MAYBE_ZERO, false).map_err(err)?;
        let serial = serial.to_asn1_integer().map_err(err)?;
        b.set_serial_number(&serial).map_err(err)?;
        b.set_subject_name(&name).map_err(err)?;
        b.set_issuer_name(&name).map_err(err)?;
        b.set_pubkey(&key).map_err(err)?;
        let (from, until) = (
            Asn1Time::days_from_now(0).map_err(err)?,
            Asn1Time::days_from_now(CERT_DAYS).map_err(err)?,
        );
        b.set_not_before(&from).map_err(err)?;
        b.set_not_after(&until).map_err(err)?;
        b.sign(&key, MessageDigest::sha256()).map_err(err)?;
        Ok(Self {
            key,
            cert: b.build(),
        })
    }

    /// From PEM files' contents.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, DtlsError> {
        Ok(Self {
            cert: X509::from_pem(cert).map_err(err)?,
            key: PKey::private_key_from_pem(key).map_err(err)?,
        })
    }

    /// The certificate fingerprint with `algorithm` (`sha-1` … `sha-512`), for `a=fingerprint`.
    pub fn fingerprint(&self, algorithm: &str) -> Result<Fingerprint, DtlsError> {
        let md = digest_for(algorithm).ok_or_else(|| err(UnknownHash(algorithm.to_owned())))?;
        Ok(Fingerprint {
            algorithm: algorithm.to_owned(),
            digest: self.cert.digest(md).map_err(err)?.to_vec(),
        })
    }

    /// A factory of DTLS sessions with this identity.
    pub fn factory(&self) -> Result<OpenSslDtlsFactory, DtlsError> {
        let mut b = SslContextBuilder::new(SslMethod::dtls()).map_err(err)?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(err)?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))
            .map_err(err)?;
        b.set_private_key(&self.key).map_err(err)?;
        b.set_certificate(&self.cert).map_err(err)?;
        b.check_private_key().map_err(err)?;
        b.set_tlsext_use_srtp(SrtpProfile::OFFER).map_err(err)?;
        // The memory BIO cannot answer an MTU query; without this OpenSSL ignores
        // `set_mtu` and cuts flights into 256-byte datagrams.
        b.set_options(SslOptions::NO_QUERY_MTU);
        // Any certificate is accepted here; the transport compares it with the SDP fingerprint.
        b.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            |_, _| true,
        );
        Ok(OpenSslDtlsFactory {
            ctx: b.build(),
            identity: self.clone(),
        })
    }
}

/// Makes OpenSSL DTLS sessions. Cloning shares the context (certificate, key, settings).
#[derive(Clone)]
pub struct OpenSslDtlsFactory {
    ctx: SslContext,
    identity: DtlsIdentity,
}

impl std::fmt::Debug for OpenSslDtlsFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSslDtlsFactory").finish_non_exhaustive()
    }
}

/// Datagram queues standing in for a socket.
#[derive(Default)]
struct MemIo {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    /// The library's latest retransmission of the current flight, held until
    /// the transport asks for one; any new flight makes it stale.
    retx: Vec<Vec<u8>>,
    /// `retx` is being written (the datagrams of one retransmission).
    in_retx: bool,
}

impl Read for MemIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        RETRANSMITTING.with(|r| r.set(false));
        self.in_retx = false;
        // One datagram per read, as a UDP socket gives them.
        match self.rx.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for MemIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if RETRANSMITTING.with(|r| r.get()) {
            if !self.in_retx {
                self.retx.clear();
                self.in_retx = true;
            }
            if self.retx.len() < MAX_RX {
                self.retx.push(buf.to_vec());
            }
        } else {
            self.in_retx = false;
            self.retx.clear();
            self.tx.push_back(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One OpenSSL DTLS session.
pub struct OpenSslDtls {
    stream: SslStream<MemIo>,
    done: bool,
    app: VecDeque<Vec<u8>>,
}

impl std::fmt::Debug for OpenSslDtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSslDtls")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl DtlsFactory for OpenSslDtlsFactory {
    fn clone_box(&self) -> Box<dyn DtlsFactory> {
        Box::new(self.clone())
    }

    fn fingerprint(&self, algorithm: &str) -> Result<Fingerprint, DtlsError> {
        self.identity.fingerprint(algorithm)
    }

    fn lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(CERT_DAYS) * 86_400)
    }

    fn renew(&self) -> Result<Box<dyn DtlsFactory>, DtlsError> {
        Ok(Box::new(DtlsIdentity::generate()?.factory()?))
    }

    fn create(&self, client: bool) -> Result<Box<dyn DtlsBackend>, DtlsError> {
        let mut ssl = Ssl::new(&self.ctx).map_err(err)?;
        ssl.set_mtu(DTLS_MTU).map_err(err)?;
        timer::install(&mut ssl);
        if client {
            ssl.set_connect_state();
        } else {
            ssl.set_accept_state();
        }
        let stream = SslStream::new(ssl, MemIo::default()).map_err(err)?;
        Ok(Box::new(OpenSslDtls {
            stream,
            done: false,
            app: VecDeque::new(),
        }))
    }
}

/// Clears [`RETRANSMITTING`] when a backend call starts and when it ends.
struct Quiet;

impl Quiet {
    fn new() -> Self {
        RETRANSMITTING.with(|r| r.set(false));
        Quiet
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        RETRANSMITTING.with(|r| r.set(false));
    }
}

fn retry(e: &openssl::ssl::Error) -> bool {
    e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE
}

impl DtlsBackend for OpenSslDtls {
    fn handle_datagram(&mut self, datagram: &[u8]) -> Result<(), DtlsError> {
        let rx = &mut self.stream.get_mut().rx;
        if rx.len() >= MAX_RX {
            rx.pop_front();
        }
        rx.push_back(datagram.to_vec());
        Ok(())
    }

    fn drive(&mut self) -> Result<bool, DtlsError> {
        let _quiet = Quiet::new();
        if !self.done {
            match self.stream.do_handshake() {
                Ok(()) => self.done = true,
                Err(e) if retry(&e) => return Ok(false),
                // The error text names the alert or library reason.
                Err(e) => return Err(err(e)),
            }
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(n) => self.app.push_back(buf[..n].to_vec()),
                Err(e) if retry(&e) => break,
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => return Err(DtlsError::PeerClosed),
                Err(e) => return Err(err(e)),
            }
            if self.stream.get_ref().rx.is_empty() && self.app.len() > 1024 {
                break;
            }
        }
        Ok(true)
    }

    fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.stream.get_mut().tx.pop_front()
    }

    fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.stream
            .ssl()
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
    }

    fn digest(&self, algorithm: &str, der: &[u8]) -> Result<Vec<u8>, DtlsError> {
        let md = digest_for(algorithm).ok_or_else(|| err(UnknownHash(algorithm.to_owned())))?;
        Ok(openssl::hash::hash(md, der).map_err(err)?.to_vec())
    }

    fn srtp_profile(&self) -> Option<String> {
        self.stream
            .ssl()
            .selected_srtp_profile()
            .map(|p| p.name().to_owned())
    }

    fn export(&self, label: &str, len: usize) -> Result<Vec<u8>, DtlsError> {
        let mut out = vec![0u8; len];
        self.stream
            .ssl()
            .export_keying_material(&mut out, label, None)
            .map_err(err)?;
        Ok(out)
    }

    fn send(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        let _quiet = Quiet::new();
        self.stream.ssl_write(data).map(|_| ()).map_err(err)
    }

    fn retransmit(&mut self) -> bool {
        let _quiet = Quiet::new();
        let io = self.stream.get_mut();
        io.in_retx = false;
        if io.retx.is_empty() && !self.done {
            // The library retransmits only if its (short) timer ran out; the
            // transport's own timeout is longer, so in real time it has.
            timer::handle_timeout(self.stream.ssl());
            RETRANSMITTING.with(|r| r.set(false));
        }
        let io = self.stream.get_mut();
        io.in_retx = false;
        if io.retx.is_empty() {
            return false;
        }
        let flight = std::mem::take(&mut io.retx);
        io.tx.extend(flight);
        true
    }

    fn recv(&mut self) -> Option<Vec<u8>> {
        self.app.pop_front()
    }

    fn close(&mut self) {
        let _quiet = Quiet::new();
        // One call writes close_notify; the peer's reply is not waited for (RFC 5246 §7.2.1).
        let _ = self.stream.shutdown();
    }
}

/// Fuzz entry point: datagrams (split at 0xA5) into a DTLS server transport.
pub fn fuzz_server(now: std::time::Instant, data: &[u8]) {
    use softbus_rtc::dtls::{DtlsRole, DtlsTransport};
    thread_local! {
        static ID: Option<DtlsIdentity> = DtlsIdentity::generate().ok();
    }
    let Some(factory) = ID.with(|id| id.as_ref().and_then(|i| i.factory().ok())) else {
        return;
    };
    let mut t = DtlsTransport::new(Box::new(factory), DtlsRole::Server);
    t.set_ice_connected(now, true);
    for d in data.split(|b| *b == 0xA5).take(8) {
        t.handle_datagram(now, d);
    }
    while t.poll_transmit().is_some() {}
    while t.poll_event().is_some() {}
}

/// One DTLS identity per fuzzing thread: its factory and fingerprint.
fn fuzz_identity() -> Option<(OpenSslDtlsFactory, Fingerprint)> {
    thread_local! {
        static ID: Option<DtlsIdentity> = DtlsIdentity::generate().ok();
    }
    ID.with(|id| {
        let id = id.as_ref()?;
        Some((id.factory().ok()?, id.fingerprint("sha-256").ok()?))
    })
}

/// A provider for fuzz targets: seeded randomness, the thread's DTLS identity.
pub fn fuzz_provider() -> Option<softbus_rtc::crypto::Provider> {
    let (factory, _) = fuzz_identity()?;
    Some(softbus_rtc::crypto::Provider {
        hmac: Box::new(crate::OpenSslCrypto::seeded(1)),
        random: Box::new(crate::OpenSslCrypto::seeded(2)),
        dtls: Box::new(factory),
        srtp: crate::srtp_backends(),
    })
}

/// The fixed offer the fuzz targets answer (RFC 5769's remote credentials).
fn fuzz_offer(fingerprint: &Fingerprint) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:h6vY\r\na=ice-pwd:remote-password-000000\r\na=fingerprint:{}\r\n\
         a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n",
        fingerprint.to_value()
    )
}

/// Fuzz entry point for a whole answered peer (RFC 7983 demux into ICE-lite, DTLS
/// and SCTP): `data` is datagrams, each prefixed by its big-endian u16 length. The
/// ICE credentials are RFC 5769's, so its sample request is a valid check. Returns
/// how many datagrams the peer sent, for tests.
pub fn fuzz_peer(now: std::time::Instant, data: &[u8]) -> usize {
    use softbus_rtc::peer::{LocalParams, Peer};
    use softbus_rtc::sdp::SdpOffer;
    let Some((factory, fingerprint)) = fuzz_identity() else {
        return 0;
    };
    let offer = fuzz_offer(&fingerprint);
    let Ok(offer) = SdpOffer::parse(&offer) else {
        return 0;
    };
    let local = LocalParams {
        candidate: std::net::SocketAddr::from(([127, 0, 0, 1], 5000)),
        ice_ufrag: "evtj".into(),
        ice_pwd: "VOkJxbRl1RmTxUk/WvJxBt".into(),
        fingerprint,
        session_id: 1,
        full_ice: None,
    };
    let mut r = crate::OpenSslCrypto::seeded(1);
    let random = Box::new(move |n| softbus_rtc::crypto::ice_chars(&mut r, n));
    let Ok((mut peer, _)) = Peer::answer(&offer, &local, Box::new(factory), random) else {
        return 0;
    };
    let h = crate::OpenSslCrypto::new();
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 6000));
    let (mut rest, mut sent) = (data, 0);
    for _ in 0..16 {
        let [a, b, tail @ ..] = rest else { break };
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        peer.handle_datagram(now, from, &tail[..n], &h);
        peer.handle_timeout(now, &h);
        rest = &tail[n..];
        while peer.poll_transmit().is_some() {
            sent += 1;
        }
        while peer.poll_event().is_some() {}
    }
    sent
}

/// Fuzz entry point for the WebRTC host of a node (routing by address and ufrag,
/// the answers to checks on a closed peer): two answered peers on one port, one
/// of them closed; `data` is datagrams, each a source byte (one of four
/// addresses) and a big-endian u16 length before it. Returns how many datagrams
/// the host sent, for tests.
pub fn fuzz_host(now: std::time::Instant, data: &[u8]) -> usize {
    use softbus_rtc::crypto::Provider;
    use softbus_rtc::host::{Host, HostConfig};
    use softbus_rtc::peer::CloseReason;
    let Some((factory, fingerprint)) = fuzz_identity() else {
        return 0;
    };
    let mut host = Host::new(
        HostConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 5000))),
        Provider {
            hmac: Box::new(crate::OpenSslCrypto::seeded(1)),
            random: Box::new(crate::OpenSslCrypto::seeded(2)),
            dtls: Box::new(factory),
            srtp: crate::srtp_backends(),
        },
    );
    let offer = fuzz_offer(&fingerprint);
    let (Ok(_), Ok((second, _))) = (host.answer(now, &offer), host.answer(now, &offer)) else {
        return 0;
    };
    host.close(now, second, CloseReason::Deleted);
    let (mut rest, mut sent) = (data, 0);
    for i in 0..16u32 {
        let [src, a, b, tail @ ..] = rest else { break };
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let from = std::net::SocketAddr::from(([127, 0, 0, 2], 6000 + u16::from(*src % 4)));
        let t = now + std::time::Duration::from_millis(u64::from(i) * 100);
        host.handle_datagram(t, from, &tail[..n]);
        host.handle_timeout(t);
        rest = &tail[n..];
        while host.poll_transmit().is_some() {
            sent += 1;
        }
        while host.poll_event().is_some() {}
    }
    sent
}
