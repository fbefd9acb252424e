//! The DTLS transport (RFC 6347 DTLS 1.2 with RFC 5764 DTLS-SRTP), with the role
//! logic of mediasoup's DtlsTransport: the role is `auto`, `client` or `server`
//! from the SDP `setup` attributes; the handshake runs only once ICE is connected,
//! `auto` becoming server; a role change resets the session. When the handshake
//! completes, the remote certificate must match the SDP fingerprint or the
//! transport fails; then the SRTP keys are exported with `EXTRACTOR-dtls_srtp`
//! and split by role.
//!
//! The record layer and handshake are a backend ([`DtlsBackend`], OpenSSL in
//! `softbus-crypto`); this engine owns the state machine and does no I/O.
//!
//! Retransmission (RFC 6347 §4.2.4) runs on the caller's clock, not the
//! library's: the datagrams a backend writes in answer to one input are a
//! flight; while connecting, the last flight is sent again when its timer (1 s,
//! doubling to 60 s) fires or at once when the peer repeats a flight of its own
//! (it lacks ours), and once connected it is sent again when the peer repeats
//! handshake records that the backend does not answer (our final flight was
//! lost). A resent flight is re-encrypted by the backend with fresh record
//! sequence numbers (RFC 6347 §4.2.4, [`DtlsBackend::retransmit`]): a peer that
//! already has the first copy takes the second as a retransmission and answers
//! it, instead of discarding it as a replay (§4.1.2.6). Only a backend that
//! cannot re-encrypt gets the stored bytes sent again.

use crate::sdp::{Fingerprint, Setup};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// First retransmission timeout of a flight (RFC 6347 §4.2.4.1).
pub const INITIAL_RTO: Duration = Duration::from_secs(1);
/// The timeout doubles up to this.
pub const MAX_RTO: Duration = Duration::from_secs(60);
/// Times the final flight is sent again after the handshake, at most; also the
/// bound of flights resent at once because the peer repeated its own.
pub const MAX_FINAL_RESENDS: u32 = 8;
/// Handshake fragments (msg_type, message_seq, fragment_offset) remembered per handshake
/// to recognise a peer's repeated flight.
const MAX_SEEN_FRAGMENTS: usize = 64;
/// The handshake fails if not done within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of the output queues.
pub const MAX_QUEUE: usize = 256;

/// How often a transport resent a flight, and how.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetransmitStats {
    /// Re-encrypted by the backend with fresh record sequence numbers.
    pub renumbered: u32,
    /// The stored bytes (a backend that could not re-encrypt).
    pub stored: u32,
}

/// An error of the DTLS library behind [`DtlsFactory`], kept whole: a caller
/// may downcast [`BackendError::get`] to the backend's own type (for the
/// OpenSSL backend, `openssl::error::ErrorStack`).
#[derive(Debug, Clone)]
pub struct BackendError(std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl BackendError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(e))
    }

    /// The backend's error.
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The same error, not an equal one: backend errors have no equality of their own.
impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for BackendError {}

/// DTLS errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    #[error("DTLS backend: {0}")]
    Backend(BackendError),
    #[error("the remote certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    #[error("no remote fingerprint to check against")]
    NoRemoteFingerprint,
    #[error("no SRTP profile was negotiated")]
    NoSrtpProfile,
    #[error("transport not connected")]
    NotConnected,
    #[error("handshake timed out")]
    Timeout,
    /// The peer sent close_notify: an orderly close, not a failure.
    #[error("closed by the peer (close_notify)")]
    PeerClosed,
}

/// Local DTLS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// Decided when the handshake starts: server.
    Auto,
    Client,
    Server,
}

impl DtlsRole {
    /// Our role implied by the remote `a=setup`: `active` makes us server,
    /// `passive` client, `actpass` leaves it to us (`auto`).
    pub fn from_remote_setup(s: Setup) -> Option<Self> {
        match s {
            Setup::Active => Some(DtlsRole::Server),
            Setup::Passive => Some(DtlsRole::Client),
            Setup::ActPass => Some(DtlsRole::Auto),
            Setup::HoldConn => None,
        }
    }
}

/// Transport state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsState {
    New,
    Connecting,
    Connected,
    Failed,
    Closed,
}

/// SRTP protection profiles (RFC 5764, RFC 7714).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpProfile {
    Aes128CmSha1_80,
    Aes128CmSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// The profile's OpenSSL name.
    pub fn name(self) -> &'static str {
        match self {
            SrtpProfile::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            SrtpProfile::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            SrtpProfile::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            SrtpProfile::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// By name.
    pub fn from_name(n: &str) -> Option<Self> {
        [
            Self::Aes128CmSha1_80,
            Self::Aes128CmSha1_32,
            Self::AeadAes128Gcm,
            Self::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|p| p.name() == n)
    }

    /// (master key, master salt) lengths.
    pub fn key_salt_len(self) -> (usize, usize) {
        match self {
            SrtpProfile::Aes128CmSha1_80 | SrtpProfile::Aes128CmSha1_32 => (16, 14),
            SrtpProfile::AeadAes128Gcm => (16, 12),
            SrtpProfile::AeadAes256Gcm => (32, 12),
        }
    }

    /// The list offered in the use_srtp extension, most preferred first.
    pub const OFFER: &'static str =
        "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";
}

/// SRTP master keys for both directions.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub profile: SrtpProfile,
    pub local_key: Vec<u8>,
    pub local_salt: Vec<u8>,
    pub remote_key: Vec<u8>,
    pub remote_salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Splits `EXTRACTOR-dtls_srtp` output (client key | server key | client salt |
/// server salt, RFC 5764 §4.2) into our keys and the peer's.
pub fn split_srtp_keys(
    profile: SrtpProfile,
    material: &[u8],
    we_are_client: bool,
) -> Option<SrtpKeys> {
    let (k, s) = profile.key_salt_len();
    if material.len() != 2 * (k + s) {
        return None;
    }
    let (ck, rest) = material.split_at(k);
    let (sk, rest) = rest.split_at(k);
    let (cs, ss) = rest.split_at(s);
    let (lk, ls, rk, rs) = if we_are_client {
        (ck, cs, sk, ss)
    } else {
        (sk, ss, ck, cs)
    };
    Some(SrtpKeys {
        profile,
        local_key: lk.to_vec(),
        local_salt: ls.to_vec(),
        remote_key: rk.to_vec(),
        remote_salt: rs.to_vec(),
    })
}

/// One DTLS session of a backend library, driven through memory.
pub trait DtlsBackend: Send {
    /// Feeds one received datagram.
    fn handle_datagram(&mut self, datagram: &[u8]) -> Result<(), DtlsError>;
    /// Advances the handshake (writes the first flight as client, the next
    /// flight after input). The backend does not retransmit on a timer of its
    /// own: the transport does. Returns whether the handshake is complete.
    fn drive(&mut self) -> Result<bool, DtlsError>;
    /// Next datagram to send.
    fn poll_datagram(&mut self) -> Option<Vec<u8>>;
    /// DER of the peer's certificate.
    fn peer_certificate(&self) -> Option<Vec<u8>>;
    /// Digest of a DER certificate with a hash named as in SDP (`sha-256`).
    fn digest(&self, algorithm: &str, der: &[u8]) -> Result<Vec<u8>, DtlsError>;
    /// The negotiated SRTP profile name.
    fn srtp_profile(&self) -> Option<String>;
    /// RFC 5705 exporter.
    fn export(&self, label: &str, len: usize) -> Result<Vec<u8>, DtlsError>;
    /// Encrypts application data (one record).
    fn send(&mut self, data: &[u8]) -> Result<(), DtlsError>;
    /// Decrypted application data received.
    fn recv(&mut self) -> Option<Vec<u8>>;
    /// Sends close_notify (the datagram comes out of `poll_datagram`).
    fn close(&mut self);
    /// Writes the last flight again, re-encrypted with fresh record sequence
    /// numbers (the datagrams come out of `poll_datagram`). Returns whether it
    /// wrote anything; `false` (a backend that cannot, or has no flight to
    /// resend) makes the transport send the stored bytes instead.
    fn retransmit(&mut self) -> bool {
        false
    }
}

/// Makes backend sessions (one per handshake; a role change makes a new one).
pub trait DtlsFactory: Send {
    /// A session as client or server.
    fn create(&self, client: bool) -> Result<Box<dyn DtlsBackend>, DtlsError>;
    /// The same factory (same certificate) for another peer connection.
    fn clone_box(&self) -> Box<dyn DtlsFactory>;
    /// The local certificate's fingerprint with a hash named as in SDP (`sha-256`).
    fn fingerprint(&self, algorithm: &str) -> Result<crate::sdp::Fingerprint, DtlsError>;
    /// How long the certificate was made valid for, from its creation.
    fn lifetime(&self) -> std::time::Duration;
    /// A factory with a fresh certificate (the old one keeps serving the
    /// connections made with it).
    fn renew(&self) -> Result<Box<dyn DtlsFactory>, DtlsError>;
}

/// What the transport reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    StateChanged(DtlsState),
    /// Handshake done and fingerprint verified: keys for SRTP/SRTCP.
    SrtpKeys(SrtpKeys),
    /// Handshake done and fingerprint verified, no SRTP negotiated (data channels only).
    Connected,
    /// Application data (SCTP packets), only after the fingerprint is verified.
    Data(Vec<u8>),
    /// Why the transport failed.
    Failed(DtlsError),
    /// The peer closed the association with close_notify.
    Closed,
}

/// The DTLS transport of one peer connection.
pub struct DtlsTransport {
    factory: Box<dyn DtlsFactory>,
    role: DtlsRole,
    running_as_client: Option<bool>,
    state: DtlsState,
    backend: Option<Box<dyn DtlsBackend>>,
    remote_fingerprint: Option<Fingerprint>,
    ice_connected: bool,
    started: Option<Instant>,
    /// The last flight we wrote, kept for retransmission.
    flight: Vec<Vec<u8>>,
    rto: Duration,
    retransmit_at: Option<Instant>,
    final_resends: u32,
    /// Flights resent at once because the peer repeated one of its own.
    early_resends: u32,
    /// The peer's handshake fragments seen in this handshake: a datagram made
    /// only of these is a repeated flight.
    seen_fragments: Vec<(u8, u16, u32)>,
    /// Flights the backend re-encrypted, and those it could not (stored bytes).
    stats: RetransmitStats,
    /// Application data that arrived before the peer's certificate was checked
    /// against the SDP fingerprint: delivered after the check, dropped if it fails.
    unverified: VecDeque<Vec<u8>>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<DtlsEvent>,
}

impl std::fmt::Debug for DtlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsTransport")
            .field("role", &self.role)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DtlsTransport {
    /// A transport with `role`, waiting for ICE.
    pub fn new(factory: Box<dyn DtlsFactory>, role: DtlsRole) -> Self {
        Self {
            factory,
            role,
            running_as_client: None,
            state: DtlsState::New,
            backend: None,
            remote_fingerprint: None,
            ice_connected: false,
            started: None,
            flight: Vec::new(),
            rto: INITIAL_RTO,
            retransmit_at: None,
            final_resends: 0,
            early_resends: 0,
            seen_fragments: Vec::new(),
            stats: RetransmitStats::default(),
            unverified: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// The role asked for.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Whether we run (or will run) as client.
    pub fn is_client(&self) -> Option<bool> {
        self.running_as_client
    }

    fn set_state(&mut self, s: DtlsState) {
        if self.state != s {
            self.state = s;
            self.events.push_back(DtlsEvent::StateChanged(s));
        }
    }

    fn fail(&mut self, e: DtlsError) {
        if e == DtlsError::PeerClosed {
            tracing::debug!("DTLS closed by the peer");
            self.backend = None;
            self.retransmit_at = None;
            self.flight.clear();
            self.unverified.clear();
            self.events.push_back(DtlsEvent::Closed);
            return self.set_state(DtlsState::Closed);
        }
        self.unverified.clear();
        // The backend's error text names the alert (sent or received) or the library reason.
        tracing::warn!(error = %e, role = ?self.running_as_client.map(|c| if c { "client" } else { "server" }), "DTLS failed");
        self.backend = None;
        self.retransmit_at = None;
        self.flight.clear();
        self.events.push_back(DtlsEvent::Failed(e));
        self.set_state(DtlsState::Failed);
    }

    /// The fingerprint from the remote description.
    pub fn set_remote_fingerprint(&mut self, fp: Fingerprint) {
        self.remote_fingerprint = Some(fp);
    }

    /// Sets the role (from negotiation). A change of an already running role
    /// resets the session, and it starts again if ICE is connected.
    pub fn set_role(&mut self, now: Instant, role: DtlsRole) {
        if role == self.role {
            return;
        }
        self.role = role;
        let wanted = self.resolve();
        if self.running_as_client.is_some() && self.running_as_client != Some(wanted) {
            self.backend = None;
            self.running_as_client = None;
            self.retransmit_at = None;
            self.flight.clear();
            self.seen_fragments.clear();
            self.early_resends = 0;
            self.set_state(DtlsState::New);
        }
        self.maybe_start(now);
    }

    fn resolve(&self) -> bool {
        matches!(self.role, DtlsRole::Client)
    }

    /// ICE connected (or completed) or not. The handshake starts on the first.
    pub fn set_ice_connected(&mut self, now: Instant, connected: bool) {
        self.ice_connected = connected;
        self.maybe_start(now);
    }

    fn maybe_start(&mut self, now: Instant) {
        if !self.ice_connected || self.backend.is_some() || self.state != DtlsState::New {
            return;
        }
        let client = self.resolve();
        match self.factory.create(client) {
            Ok(b) => {
                self.backend = Some(b);
                self.running_as_client = Some(client);
                self.started = Some(now);
                self.set_state(DtlsState::Connecting);
                self.pump(now);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Runs the backend; returns whether it wrote any datagram.
    fn pump(&mut self, now: Instant) -> bool {
        let Some(b) = self.backend.as_mut() else {
            return false;
        };
        let done = match b.drive() {
            Ok(d) => d,
            Err(e) => {
                // Records that came before the peer's close_notify are still delivered.
                if e == DtlsError::PeerClosed && self.state == DtlsState::Connected {
                    while let Some(d) = b.recv() {
                        if self.events.len() < MAX_QUEUE {
                            self.events.push_back(DtlsEvent::Data(d));
                        }
                    }
                }
                self.fail(e);
                return false;
            }
        };
        let connecting = self.state == DtlsState::Connecting;
        let mut wrote = Vec::new();
        while let Some(d) = b.poll_datagram() {
            if connecting && wrote.len() < MAX_QUEUE {
                wrote.push(d.clone());
            }
            if self.transmits.len() < MAX_QUEUE {
                self.transmits.push_back(d);
            }
        }
        let verified = self.state == DtlsState::Connected;
        while let Some(d) = b.recv() {
            if verified {
                if self.events.len() < MAX_QUEUE {
                    self.events.push_back(DtlsEvent::Data(d));
                }
            } else if self.unverified.len() < MAX_QUEUE {
                self.unverified.push_back(d);
            }
        }
        let any = !wrote.is_empty();
        if any {
            // A new flight replaces the last one and restarts its timer.
            self.flight = wrote;
            self.rto = INITIAL_RTO;
            self.retransmit_at = Some(now + self.rto);
        }
        if done && connecting {
            self.retransmit_at = None;
            match self.finish() {
                Ok(ev) => {
                    self.events.push_back(ev);
                    self.set_state(DtlsState::Connected);
                    while let Some(d) = self.unverified.pop_front() {
                        self.events.push_back(DtlsEvent::Data(d));
                    }
                }
                Err(e) => self.fail(e),
            }
        }
        any
    }

    /// Queues the last flight again: re-encrypted by the backend with fresh
    /// record sequence numbers, or (a backend that cannot) the stored bytes.
    fn resend_flight(&mut self) {
        if let Some(b) = self.backend.as_mut() {
            if b.retransmit() {
                self.stats.renumbered += 1;
                while let Some(d) = b.poll_datagram() {
                    if self.transmits.len() < MAX_QUEUE {
                        self.transmits.push_back(d);
                    }
                }
                return;
            }
        }
        self.stats.stored += 1;
        for d in &self.flight {
            if self.transmits.len() < MAX_QUEUE {
                self.transmits.push_back(d.clone());
            }
        }
    }

    /// Flights resent so far: re-encrypted, and from the stored bytes.
    pub fn retransmit_stats(&self) -> RetransmitStats {
        self.stats
    }

    /// Whether `datagram` holds handshake fragments and every one of them was
    /// seen before in this handshake (the peer repeated a flight); remembers the
    /// new ones. Encrypted records (epoch > 0) are not looked into. A peer's
    /// final flight (with a NewSessionTicket or ChangeCipherSpec) repeated is
    /// no trigger: the peer has finished, so it has our flight.
    fn repeats_seen_fragments(&mut self, datagram: &[u8]) -> bool {
        let mut rest = datagram;
        let (mut any, mut all_seen, mut finishing) = (false, true, false);
        while rest.len() >= 13 {
            let (kind, epoch) = (rest[0], u16::from_be_bytes([rest[3], rest[4]]));
            let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
            let Some(body) = rest.get(13..13 + len) else {
                return false;
            };
            rest = &rest[13 + len..];
            finishing |= kind == 20 || (kind == 22 && epoch == 0 && body.first() == Some(&4));
            if kind != 22 || epoch != 0 || body.len() < 12 {
                continue;
            }
            // A HelloVerifyRequest and the ServerHello after it may share
            // message_seq 0: the message type tells them apart.
            let key = (
                body[0],
                u16::from_be_bytes([body[4], body[5]]),
                u32::from_be_bytes([0, body[6], body[7], body[8]]),
            );
            any = true;
            if !self.seen_fragments.contains(&key) {
                all_seen = false;
                if self.seen_fragments.len() < MAX_SEEN_FRAGMENTS {
                    self.seen_fragments.push(key);
                }
            }
        }
        any && all_seen && !finishing
    }

    /// Verifies the peer certificate against the SDP fingerprint and exports keys.
    fn finish(&mut self) -> Result<DtlsEvent, DtlsError> {
        let b = self.backend.as_ref().ok_or(DtlsError::NotConnected)?;
        let fp = self
            .remote_fingerprint
            .as_ref()
            .ok_or(DtlsError::NoRemoteFingerprint)?;
        let der = b.peer_certificate().ok_or(DtlsError::FingerprintMismatch)?;
        if b.digest(&fp.algorithm, &der)? != fp.digest {
            return Err(DtlsError::FingerprintMismatch);
        }
        let Some(profile) = b.srtp_profile().as_deref().and_then(SrtpProfile::from_name) else {
            return Ok(DtlsEvent::Connected);
        };
        let (k, s) = profile.key_salt_len();
        let material = b.export("EXTRACTOR-dtls_srtp", 2 * (k + s))?;
        let client = self.running_as_client.unwrap_or(false);
        split_srtp_keys(profile, &material, client)
            .map(DtlsEvent::SrtpKeys)
            .ok_or(DtlsError::NoSrtpProfile)
    }

    /// A DTLS datagram arrived (after RFC 7983 demux).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if let Some(b) = self.backend.as_mut() {
            if let Err(e) = b.handle_datagram(datagram) {
                return self.fail(e);
            }
            let was_connected = self.state == DtlsState::Connected;
            let repeated = !was_connected && self.repeats_seen_fragments(datagram);
            let wrote = self.pump(now);
            // Handshake (22) or ChangeCipherSpec (20) records after we finished,
            // not answered by the backend: the peer lacks our final flight.
            if !wrote
                && was_connected
                && matches!(datagram.first(), Some(20 | 22))
                && self.final_resends < MAX_FINAL_RESENDS
            {
                self.final_resends += 1;
                self.resend_flight();
            }
            // While connecting, a flight the peer sends again (every fragment
            // seen before) says it lacks ours: answer at once, not at our timer.
            if !wrote
                && repeated
                && self.state == DtlsState::Connecting
                && !self.flight.is_empty()
                && self.early_resends < MAX_FINAL_RESENDS
            {
                self.early_resends += 1;
                tracing::debug!("DTLS peer repeated its flight: ours resent at once");
                self.resend_flight();
            }
        }
    }

    /// Retransmission timer and handshake deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != DtlsState::Connecting {
            return;
        }
        if self
            .started
            .is_some_and(|t| now.saturating_duration_since(t) >= HANDSHAKE_TIMEOUT)
        {
            return self.fail(DtlsError::Timeout);
        }
        if self.retransmit_at.is_some_and(|t| t <= now) {
            self.rto = (self.rto * 2).min(MAX_RTO);
            self.retransmit_at = Some(now + self.rto);
            tracing::debug!(datagrams = self.flight.len(), rto = ?self.rto, "DTLS flight retransmitted");
            self.resend_flight();
        }
    }

    /// Next timer: the flight's retransmission or the handshake deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != DtlsState::Connecting {
            return None;
        }
        let deadline = self.started.map(|t| t + HANDSHAKE_TIMEOUT);
        match (self.retransmit_at, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends application data (one record).
    pub fn send(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        if self.state != DtlsState::Connected {
            return Err(DtlsError::NotConnected);
        }
        let b = self.backend.as_mut().ok_or(DtlsError::NotConnected)?;
        b.send(data)?;
        self.pump(now);
        Ok(())
    }

    /// Next datagram to send to the selected ICE pair.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Closes the transport. A connected one first sends close_notify (take it
    /// from [`DtlsTransport::poll_transmit`]), so the peer sees an orderly close.
    pub fn close(&mut self) {
        if let Some(b) = self.backend.as_mut() {
            if self.state == DtlsState::Connected {
                b.close();
                while let Some(d) = b.poll_datagram() {
                    if self.transmits.len() < MAX_QUEUE {
                        self.transmits.push_back(d);
                    }
                }
            }
        }
        self.backend = None;
        self.retransmit_at = None;
        self.flight.clear();
        self.unverified.clear();
        self.set_state(DtlsState::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_split_by_role() {
        let m: Vec<u8> = (0..60).collect();
        let c = split_srtp_keys(SrtpProfile::Aes128CmSha1_80, &m, true).unwrap();
        let s = split_srtp_keys(SrtpProfile::Aes128CmSha1_80, &m, false).unwrap();
        assert_eq!(
            (c.local_key.as_slice(), c.local_salt.as_slice()),
            (&m[0..16], &m[32..46])
        );
        assert_eq!(
            (c.remote_key.as_slice(), c.remote_salt.as_slice()),
            (&m[16..32], &m[46..60])
        );
        assert_eq!(
            (s.local_key.clone(), s.remote_key.clone()),
            (c.remote_key.clone(), c.local_key.clone())
        );
        assert!(split_srtp_keys(SrtpProfile::AeadAes256Gcm, &m, true).is_none());
        assert_eq!(SrtpProfile::AeadAes256Gcm.key_salt_len(), (32, 12));
        assert_eq!(
            SrtpProfile::from_name("SRTP_AEAD_AES_128_GCM"),
            Some(SrtpProfile::AeadAes128Gcm)
        );
        assert_eq!(
            DtlsRole::from_remote_setup(Setup::Active),
            Some(DtlsRole::Server)
        );
        assert_eq!(
            DtlsRole::from_remote_setup(Setup::Passive),
            Some(DtlsRole::Client)
        );
        assert_eq!(
            DtlsRole::from_remote_setup(Setup::ActPass),
            Some(DtlsRole::Auto)
        );
    }
}
