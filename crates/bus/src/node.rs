//! The [`Bus`] facade: one node's discovery responder/discoverer, auth server
//! and session server, composed behind one sans-IO interface.

use crate::auth::hichain::{Identity, Pairings};
use crate::auth::{
    AuthClient, AuthConn, AuthConnEvent, AuthMethod, Authenticated, ClientAuth, IdProof,
    LocalAuthInfo, PeerInfo, PinPolicy,
};
use crate::crypto::Crypto;
use crate::discovery::{
    Datagram, Discovery, DiscoveryConfig, DiscoveryError, DiscoveryEvent, LocalDevice,
};
use crate::frame::{self, Frame, FrameError, Module, FLAG_REPLY};
use crate::session::{self, ClientEvent, DataChannel, SessionClient, SessionConn, SessionError};
use crate::ConnId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Node settings; defaults are softbus_lite's limits.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub discovery: DiscoveryConfig,
    pub pin: PinPolicy,
    /// Auth connections held at once (softbus_lite's `AUTH_CONN_MAX_NUM` is 32;
    /// unauthenticated ones are evicted for new ones after [`EVICT_AFTER`]).
    pub max_auth_conns: usize,
    /// Session connections that have not opened yet.
    pub max_pending_session_conns: usize,
    /// Connections of each kind one IP may hold before finishing its handshake, so a
    /// single address cannot take every slot.
    pub max_pending_per_ip: usize,
    /// Time an auth connection has to finish VerifyIp, and a session connection to open.
    pub handshake_timeout: Duration,
    /// Largest auth-channel body accepted (softbus_lite: 1512).
    pub auth_max_data: usize,
    /// Auth connections one address may hold (of `max_auth_conns`).
    pub max_auth_per_ip: usize,
    /// A verified auth connection with no traffic and no session opened with its
    /// key for this long is closed (the peer authenticates again when it needs to).
    pub auth_idle_timeout: Duration,
    /// How PIN guessing is bounded.
    pub guard: PinGuardConfig,
}

/// Bounds on PIN guessing and on unauthenticated key agreements.
#[derive(Debug, Clone)]
pub struct PinGuardConfig {
    /// Failed key confirmations one address may cause per `window`; then its auth
    /// connections are refused until the window has room again.
    pub failures_per_address: usize,
    pub window: Duration,
    /// Failed confirmations (from any address) in a burst: after that many PIN
    /// pairing pauses for `cool_down`, doubled for each further burst (reset
    /// once a whole day passes without a failure).
    pub failures_per_burst: u32,
    /// The first pause; the longest is a day.
    pub cool_down: Duration,
    /// Failed confirmations in any 24 hours; then a renewable (random) PIN is
    /// replaced, and an operator's PIN pauses until the oldest of them is a
    /// day old.
    pub failures_per_day: u32,
    /// The PIN was drawn at random (and may be replaced when locked).
    pub renewable: bool,
    /// Auth connections (each may start key agreements) accepted from one
    /// address: a burst, then this many per second.
    pub accepts_per_address: RateLimit,
    /// The same, for all addresses together.
    pub accepts_total: RateLimit,
    /// Key agreements (PAKE requests: two modular exponentiations each) started
    /// node-wide, so a flood of them cannot take the node's thread from paired
    /// devices (STS is not counted: it is cheap and needs no PIN).
    pub key_agreements_total: RateLimit,
    /// Addresses whose failures and rates are remembered at once.
    pub table_limit: usize,
}

/// A token bucket: `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: u32,
}

impl Default for PinGuardConfig {
    fn default() -> Self {
        Self {
            failures_per_address: 5,
            window: Duration::from_secs(60),
            failures_per_burst: 10,
            cool_down: Duration::from_secs(60),
            failures_per_day: 100,
            renewable: false,
            accepts_per_address: RateLimit {
                burst: 16,
                per_second: 4,
            },
            accepts_total: RateLimit {
                burst: 512,
                per_second: 256,
            },
            key_agreements_total: RateLimit {
                burst: 64,
                per_second: 64,
            },
            table_limit: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    /// Takes one token if there is one.
    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * f64::from(limit.per_second)).min(f64::from(limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the guard remembers of one address.
#[derive(Debug)]
struct AddressRecord {
    failures: VecDeque<Instant>,
    accepts: Bucket,
    /// When a refusal of this address was last reported (`AuthRefused`).
    reported: Option<Instant>,
}

/// How long a locked-out address's connection is kept to hear its first
/// packet and answer it with the refusal, at most.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(2);
/// Refused connections held at once, node-wide; more are closed at once.
pub const MAX_REFUSING: usize = 64;
/// One `AuthRefused` event per address per this long, at most.
pub const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Files `public` under `id`, replacing what was filed under it in any case.
fn file_pairing(pairings: &mut Arc<Pairings>, id: &str, public: [u8; 32]) {
    let p = Arc::make_mut(pairings);
    p.retain(|k, _| !k.eq_ignore_ascii_case(id));
    p.insert(id.to_owned(), public);
}

/// How far `device_id` is proved by a key agreed by `method`: a paired id
/// derived from the key on file for it is proved; any other is what the peer said.
pub fn id_proof(
    c: &dyn Crypto,
    pairings: &Pairings,
    device_id: &str,
    method: AuthMethod,
) -> IdProof {
    match method {
        AuthMethod::WebToken => IdProof::Token,
        AuthMethod::Paired => match crate::auth::hichain::filed(pairings, device_id) {
            Some(k) if crate::auth::hichain::id_is_derived(c, device_id, k) => IdProof::Key,
            _ => IdProof::Claimed,
        },
        AuthMethod::Pin | AuthMethod::EmptyPin => IdProof::Claimed,
    }
}

/// Whole seconds, rounded up.
fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The window of `PinGuardConfig::failures_per_day`.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The PIN guard's state.
#[derive(Debug)]
struct PinGuard {
    by_ip: HashMap<IpAddr, AddressRecord>,
    total: Option<Bucket>,
    key_agreements: Option<Bucket>,
    /// Failures of this PIN in all (reported).
    pin_failures: u32,
    /// Failures in the last 24 hours (at most `failures_per_day`).
    day: VecDeque<Instant>,
    /// Failures since the last pause.
    burst: u32,
    /// Pauses since the day window was last empty (each doubles the next).
    pauses: u32,
    /// PIN pairing is paused until then.
    paused_until: Option<Instant>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            discovery: DiscoveryConfig::default(),
            pin: PinPolicy {
                pin: None,
                allow_empty: false,
            },
            max_auth_conns: 128,
            max_pending_session_conns: 16,
            max_pending_per_ip: 4,
            handshake_timeout: Duration::from_secs(10),
            auth_max_data: frame::LITE_MAX_AUTH_DATA,
            max_auth_per_ip: 8,
            auth_idle_timeout: Duration::from_secs(600),
            guard: PinGuardConfig::default(),
        }
    }
}

/// Which listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Auth,
    Session,
}

/// Output for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A discovery datagram.
    Udp(Datagram),
    /// Bytes for a TCP connection, one write.
    Tcp { conn: ConnId, bytes: Vec<u8> },
    /// Close this TCP connection.
    Close { conn: ConnId },
    /// Open a TCP connection to `addr` for `conn` (a client role); answer with
    /// [`Bus::handle_dialed`]. Write its packets one per write: softbus_lite's
    /// receive path needs that.
    Dial { conn: ConnId, addr: SocketAddr },
}

/// An open session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub session_id: i32,
    /// `GetMySessionName`; `GetPeerSessionName` returns the same (by design).
    pub session: String,
    /// `GetPeerDeviceId`: `TEData` of the auth connection whose key opened it.
    pub peer_device_id: String,
    pub peer: SocketAddr,
    pub transport: &'static str,
    /// How the peer proved who it is.
    pub auth: AuthMethod,
    /// Whether `peer_device_id` is proved (derived from the key the peer
    /// proved) or only claimed.
    pub id: IdProof,
}

/// A peer asks to open a session: its open packet decrypted under the key of an
/// auth connection of the same address. The application decides with
/// [`Bus::accept_session`] or [`Bus::refuse_session`]; until then the connection
/// holds what the peer sent after the open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub conn: ConnId,
    /// The session server asked for (`BUS_NAME`).
    pub server: String,
    /// `TEData` of the auth connection whose key opened it.
    pub peer_device_id: String,
    pub peer: SocketAddr,
    /// How that auth connection's key was agreed.
    pub method: AuthMethod,
}

/// Connection ids the engine gives to connections it dials (the driver numbers
/// accepted ones below this).
pub const DIALED: u64 = 1 << 63;

/// An unauthenticated auth connection older than this gives way to a new one
/// when the table is full.
pub const EVICT_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Frames a connection holds while its open request awaits a decision.
const MAX_HELD_FRAMES: usize = 16;

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    Discovery(DiscoveryEvent),
    /// A peer finished VerifyIp.
    PeerVerified {
        conn: ConnId,
        ip: IpAddr,
        peer: PeerInfo,
    },
    /// A device paired with this one (BIND, either role): keep its key.
    Paired {
        conn: ConnId,
        ip: IpAddr,
        device_id: String,
        public_key: [u8; 32],
        /// `Key` when the id is derived from the key; `Claimed` otherwise (a
        /// softbus_lite device's random id).
        id: IdProof,
    },
    /// A key agreement failed (17 = wrong PIN); the connection is closed.
    PakeFailed {
        conn: ConnId,
        ip: IpAddr,
        code: u32,
    },
    /// Too many failed key confirmations for this PIN: PIN pairing pauses for
    /// `retry_after` (a burst's cool-down, or until the day's bound has room).
    /// A renewable PIN that reached the day's bound was replaced instead
    /// (`retry_after` zero, `PinReplaced` follows).
    PinLocked {
        failures: u32,
        retry_after: Duration,
    },
    /// An auth connection was refused at accept because its address failed
    /// the PIN too often; it may try again after `retry_after`. Reported once
    /// per address per [`REFUSAL_REPORT_EVERY`], however many it opens.
    AuthRefused {
        ip: IpAddr,
        retry_after: Duration,
    },
    /// A new random PIN replaces the locked one; show it to the operator.
    PinReplaced {
        pin: zeroize::Zeroizing<String>,
    },
    /// A session opened; close it to refuse.
    SessionOpened(SessionInfo),
    BytesReceived {
        session_id: i32,
        data: Vec<u8>,
    },
    SessionClosed {
        session_id: i32,
        session: String,
        reason: ConnClosed,
    },
    /// A connection we dialed finished the key agreement and verification: the
    /// peer's identity; sessions can be opened with [`Bus::open_session_to`].
    Authenticated {
        conn: ConnId,
        peer: PeerInfo,
    },
    /// A connection was dropped because its peer misbehaved or timed out.
    ConnDropped {
        conn: ConnId,
        ip: IpAddr,
        reason: ConnClosed,
    },
}

/// Why a connection (and the session on it) ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnClosed {
    #[error("peer closed")]
    PeerClosed,
    #[error("closed locally")]
    Local,
    #[error("server removed")]
    ServerRemoved,
    #[error("handshake timed out")]
    Timeout,
    #[error("idle")]
    Idle,
    /// The auth table was full and this connection had not authenticated.
    #[error("evicted unauthenticated (the connection table was full)")]
    Evicted,
    /// A dialed connection did not connect (the system's error text).
    #[error("connect failed: {0}")]
    ConnectFailed(String),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The application refused the session (its reason).
    #[error("{0}")]
    Refused(String),
}

/// Errors of the facade's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("connection limit reached")]
    TooManyConnections,
    /// Too many failed key confirmations from this address lately; it may try
    /// again after `retry_after`.
    #[error("too many failed PIN attempts from this address; try again in {} s", retry_after.as_secs().max(1))]
    TooManyFailures { retry_after: Duration },
    /// Auth connections come faster than the rate limit allows.
    #[error("auth connections over the rate limit")]
    RateLimited,
    #[error("unknown connection")]
    UnknownConn,
    /// Pairing needs this device's long-term key ([`Bus::set_identity`]).
    #[error("this device has no long-term identity to pair with")]
    NoIdentity,
}

#[derive(Debug)]
enum ConnState {
    Auth(Box<AuthConn>),
    /// An auth connection from a locked-out address: its first packet is
    /// answered with the refusal (why, and when to try again), then it closes.
    Refusing {
        retry_after: Duration,
    },
    /// Our auth client on a dialed connection; `done` once verified (the key
    /// lives as long as the connection).
    AuthClient {
        client: Box<AuthClient>,
        done: Option<Box<Authenticated>>,
    },
    /// Our session client on a dialed connection.
    SessionClient {
        engine: Box<SessionClient>,
        session: i32,
        server: String,
        peer_device_id: String,
        method: AuthMethod,
        opened: bool,
    },
    Session {
        conn: SessionConn,
        session: Option<i32>,
        /// An open request awaiting the application's decision, and the frames
        /// that followed it.
        awaiting: Option<Box<AwaitingOpen>>,
    },
}

struct AwaitingOpen {
    request: session::OpenRequest,
    auth_key: zeroize::Zeroizing<[u8; 16]>,
    index: i32,
    peer_device_id: String,
    method: AuthMethod,
    held: Vec<Frame>,
}

impl AwaitingOpen {
    /// The open reply `body` (accepting or refusing), sealed under the auth
    /// key the open came under.
    fn seal_reply(&self, c: &mut dyn Crypto, body: &[u8]) -> Result<Vec<u8>, FrameError> {
        frame::auth_sealed(
            c,
            self.auth_key.as_slice(),
            self.index,
            Module::SESSION,
            session::OPEN_REPLY_SEQ,
            FLAG_REPLY,
            body,
        )
    }
}

impl std::fmt::Debug for AwaitingOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitingOpen")
            .field("server", &self.request.bus_name)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Conn {
    peer: SocketAddr,
    deadline: Option<Instant>,
    /// Last traffic (for an auth connection: also the last session opened with
    /// its key); a verified auth connection idle for `auth_idle_timeout` is closed.
    active: Instant,
    state: ConnState,
}

#[derive(Debug)]
struct Session {
    info: SessionInfo,
    conn: ConnId,
}

/// This node's identity.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: std::net::Ipv4Addr,
}

/// The soft bus of one node.
pub struct Bus {
    config: BusConfig,
    crypto: Box<dyn Crypto>,
    discovery: Discovery,
    local: LocalConfig,
    auth_port: u16,
    session_port: u16,
    conns: HashMap<ConnId, Conn>,
    /// Connections with a handshake deadline (unverified auth, unopened session):
    /// few, bounded by the pending limits, so timers and limits never scan the
    /// (possibly many thousand) open sessions.
    pending: BTreeSet<ConnId>,
    /// Auth connections (at most `max_auth_conns`), where session keys live.
    auth_conns: BTreeSet<ConnId>,
    sessions: BTreeMap<i32, Session>,
    requests: VecDeque<SessionRequest>,
    /// Dialed connections (client roles) held at once.
    dialed: BTreeSet<ConnId>,
    guard: PinGuard,
    /// This device's long-term key (pairing and STS), once set.
    identity: Option<Arc<Identity>>,
    /// Paired devices and their keys.
    pairings: Arc<Pairings>,
    /// Session opens refused as replays.
    replayed_opens: u64,
    next_dial: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<BusEvent>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("device", &crate::redact(&self.local.device_id))
            .field("conns", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// `DEVICE_TYPE` string of the auth channel: softbus_lite sends the constant for
/// its class, not the configured type.
fn device_type_string(t: u8) -> &'static str {
    if t == 0xF1 {
        "DEV_L0"
    } else {
        "DEV_L1"
    }
}

impl Bus {
    /// A node; call [`Bus::set_ports`] once the driver has bound its listeners.
    pub fn new(config: BusConfig, local: LocalConfig, crypto: Box<dyn Crypto>) -> Self {
        let discovery = Discovery::new(
            config.discovery.clone(),
            LocalDevice {
                device_id: local.device_id.clone(),
                name: local.name.clone(),
                device_type: local.device_type,
                ip: local.ip,
                auth_port: None,
            },
        );
        Self {
            config,
            crypto,
            discovery,
            local,
            auth_port: 0,
            session_port: 0,
            conns: HashMap::new(),
            pending: BTreeSet::new(),
            auth_conns: BTreeSet::new(),
            sessions: BTreeMap::new(),
            requests: VecDeque::new(),
            dialed: BTreeSet::new(),
            guard: PinGuard {
                by_ip: HashMap::new(),
                total: None,
                key_agreements: None,
                pin_failures: 0,
                day: VecDeque::new(),
                burst: 0,
                pauses: 0,
                paused_until: None,
            },
            identity: None,
            pairings: Arc::new(Pairings::new()),
            replayed_opens: 0,
            next_dial: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Gives this device its long-term Ed25519 key (`seed`): from then on it
    /// pairs (BIND) and authenticates paired devices without a PIN (STS).
    pub fn set_identity(&mut self, seed: [u8; 32]) -> Result<(), crate::auth::AuthError> {
        let id = Identity::new(self.crypto.as_ref(), &self.local.device_id, seed)?;
        self.identity = Some(Arc::new(id));
        Ok(())
    }

    /// This device's long-term identity, if set.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// Replaces the paired devices (e.g. loaded from disk, or after an unpair).
    pub fn set_pairings(&mut self, pairings: Pairings) {
        self.pairings = Arc::new(pairings);
    }

    /// The paired devices.
    pub fn pairings(&self) -> &Pairings {
        &self.pairings
    }

    /// Signs the concatenation of `parts` with this device's long-term key.
    pub fn sign(&self, parts: &[&[u8]]) -> Result<[u8; 64], BusError> {
        let id = self.identity.as_ref().ok_or(BusError::NoIdentity)?;
        id.sign(self.crypto.as_ref(), parts)
            .map_err(|_| BusError::NoIdentity)
    }

    /// Whether `sig` is the paired device `device_id`'s signature of the
    /// concatenation of `parts`; false for a device that is not paired.
    pub fn verify_paired(&self, device_id: &str, parts: &[&[u8]], sig: &[u8]) -> bool {
        self.pairings
            .get(device_id)
            .is_some_and(|pk| crate::auth::hichain::verify(self.crypto.as_ref(), pk, parts, sig))
    }

    /// Forgets a paired device; true if it was paired. Its open auth
    /// connections keep their keys until they close.
    pub fn unpair(&mut self, device_id: &str) -> bool {
        Arc::make_mut(&mut self.pairings)
            .remove(device_id)
            .is_some()
    }

    /// Whether an auth connection from `ip` may start: not after too many
    /// failures from it lately, not over the per-address or node-wide rate.
    fn guard_accept(&mut self, now: Instant, ip: IpAddr) -> Result<(), BusError> {
        let cfg = &self.config.guard;
        let g = &mut self.guard;
        if g.by_ip.len() >= cfg.table_limit && !g.by_ip.contains_key(&ip) {
            // Forget addresses with no recent failure first, else any one.
            let window = cfg.window;
            g.by_ip.retain(|_, r| {
                r.failures
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
            });
            if g.by_ip.len() >= cfg.table_limit {
                if let Some(k) = g.by_ip.keys().next().copied() {
                    g.by_ip.remove(&k);
                }
            }
        }
        let rec = g.by_ip.entry(ip).or_insert_with(|| AddressRecord {
            failures: VecDeque::new(),
            accepts: Bucket::full(cfg.accepts_per_address, now),
            reported: None,
        });
        while rec
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= cfg.window)
        {
            rec.failures.pop_front();
        }
        if rec.failures.len() >= cfg.failures_per_address {
            // Until the oldest failure leaves the window.
            let retry = rec.failures.front().map_or(cfg.window, |t| {
                cfg.window.saturating_sub(now.saturating_duration_since(*t))
            });
            return Err(BusError::TooManyFailures { retry_after: retry });
        }
        if !rec.accepts.take(cfg.accepts_per_address, now) {
            return Err(BusError::RateLimited);
        }
        let total = g
            .total
            .get_or_insert_with(|| Bucket::full(cfg.accepts_total, now));
        if !total.take(cfg.accepts_total, now) {
            return Err(BusError::RateLimited);
        }
        Ok(())
    }

    /// A failed key confirmation from `ip`: counted for the address and the PIN.
    fn count_failure(&mut self, now: Instant, ip: IpAddr) {
        let cfg = self.config.guard.clone();
        if let Some(r) = self.guard.by_ip.get_mut(&ip) {
            if r.failures.len() >= cfg.failures_per_address {
                r.failures.pop_front();
            }
            r.failures.push_back(now);
        }
        let g = &mut self.guard;
        g.pin_failures += 1;
        while g
            .day
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= DAY)
        {
            g.day.pop_front();
        }
        if g.day.is_empty() {
            g.pauses = 0;
        }
        g.day.push_back(now);
        while g.day.len() > cfg.failures_per_day.max(1) as usize {
            g.day.pop_front();
        }
        g.burst += 1;
        let day_full = g.day.len() >= cfg.failures_per_day as usize;
        if day_full && cfg.renewable {
            // A new PIN makes every guess so far worthless: no pause.
            g.pin_failures = 0;
            g.day.clear();
            g.burst = 0;
            g.pauses = 0;
            let mut b = [0u8; 4];
            self.crypto.random(&mut b);
            let pin = zeroize::Zeroizing::new(format!("{:06}", u32::from_le_bytes(b) % 1_000_000));
            self.config.pin = PinPolicy::pin(&pin);
            tracing::warn!(
                "PIN replaced after {} failures in a day",
                cfg.failures_per_day
            );
            self.events.push_back(BusEvent::PinLocked {
                failures: cfg.failures_per_day,
                retry_after: Duration::ZERO,
            });
            self.events.push_back(BusEvent::PinReplaced { pin });
            return;
        }
        // Until the oldest failure of the day is a day old.
        let day_pause = day_full.then(|| {
            g.day.front().map_or(DAY, |t| {
                DAY.saturating_sub(now.saturating_duration_since(*t))
            })
        });
        let burst_pause = (g.burst >= cfg.failures_per_burst).then(|| {
            g.pauses += 1;
            cfg.cool_down
                .saturating_mul(1u32 << (g.pauses - 1).min(16))
                .min(DAY)
        });
        let Some(pause) = day_pause.max(burst_pause) else {
            return;
        };
        g.burst = 0;
        let until = now + pause;
        g.paused_until = Some(g.paused_until.map_or(until, |u| u.max(until)));
        let failures = g.pin_failures;
        tracing::warn!(failures, pause_s = pause.as_secs(), "PIN pairing paused");
        self.events.push_back(BusEvent::PinLocked {
            failures,
            retry_after: pause,
        });
        // Guesses under way would land in the pause: their exchanges end now
        // (their peers are told), and no connection starts another.
        let mut under_way = Vec::new();
        for id in &self.auth_conns {
            if let Some(Conn {
                state: ConnState::Auth(a),
                ..
            }) = self.conns.get_mut(id)
            {
                a.pause_pairing(secs_up(pause));
                if a.pin_exchanges() > 0 {
                    under_way.push(*id);
                }
            }
        }
        for id in under_way {
            let e = crate::auth::AuthError::PinPaused {
                retry_after_s: secs_up(pause),
            };
            self.drop_conn(id, ConnClosed::Auth(e));
        }
    }

    /// How far `device_id` is proved by a key agreed by `method` ([`id_proof`]).
    pub fn id_proof(&self, device_id: &str, method: AuthMethod) -> IdProof {
        id_proof(self.crypto.as_ref(), &self.pairings, device_id, method)
    }

    /// How long PIN pairing stays paused after too many failures, if it is.
    pub fn pin_paused(&self, now: Instant) -> Option<Duration> {
        self.guard
            .paused_until
            .filter(|u| *u > now)
            .map(|u| u - now)
    }

    /// Session opens refused as replays so far.
    pub fn replayed_opens(&self) -> u64 {
        self.replayed_opens
    }

    /// What this node says about itself on the auth channel.
    fn local_auth_info(&self) -> LocalAuthInfo {
        LocalAuthInfo {
            device_id: self.local.device_id.clone(),
            device_name: self.local.name.clone(),
            device_type: device_type_string(self.local.device_type).to_owned(),
            auth_port: self.auth_port,
            session_port: self.session_port,
        }
    }

    /// Records the bound ports (advertised in discovery and VerifyIp).
    pub fn set_ports(&mut self, auth_port: u16, session_port: u16) {
        self.auth_port = auth_port;
        self.session_port = session_port;
        self.discovery.set_auth_port(Some(auth_port));
    }

    /// The discovery engine (publish, discover, devices).
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// softbus_lite's `SetCommonDeviceInfo`: the name and type set here are
    /// what discovery answers and what VerifyIp says from then on (the device
    /// id stays the auth identity's).
    pub fn set_common_device_info(&mut self, entries: &[(i32, &str)]) -> Result<(), i32> {
        self.discovery.set_common_device_info(entries)?;
        let d = self.discovery.local();
        self.local.name = d.name.clone();
        self.local.device_type = d.device_type;
        Ok(())
    }

    /// The discovery engine, mutably.
    pub fn discovery_mut(&mut self) -> &mut Discovery {
        &mut self.discovery
    }

    /// This node's identity.
    pub fn local(&self) -> &LocalConfig {
        &self.local
    }

    /// Starts discovery requests to `targets`.
    pub fn start_discovery(&mut self, now: Instant, targets: Vec<std::net::SocketAddrV4>) {
        self.discovery.start_discovery(now, targets);
        self.drain_discovery();
    }

    /// Closes every session open on `server` (RemoveSessionServer).
    pub fn close_sessions_of(&mut self, server: &str, reason: ConnClosed) {
        let ids: Vec<i32> = self
            .sessions
            .values()
            .filter(|s| s.info.session == server)
            .map(|s| s.info.session_id)
            .collect();
        for id in ids {
            self.close_session_with(id, reason.clone());
        }
    }

    /// Open sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions.values().map(|s| s.info.clone()).collect()
    }

    /// One session's info (GetMySessionName, GetPeerSessionName, GetPeerDeviceId).
    pub fn session(&self, id: i32) -> Option<&SessionInfo> {
        self.sessions.get(&id).map(|s| &s.info)
    }

    /// SendBytes: 1..=4048 bytes, one packet.
    pub fn send_bytes(&mut self, id: i32, data: &[u8]) -> Result<(), SessionError> {
        let s = self.sessions.get(&id).ok_or(SessionError::NoSession)?;
        let conn_id = s.conn;
        let conn = self
            .conns
            .get_mut(&conn_id)
            .ok_or(SessionError::NoSession)?;
        match &mut conn.state {
            ConnState::Session { conn: sc, .. } => {
                let ch = sc.channel.as_mut().ok_or(SessionError::NotOpen)?;
                let bytes = ch.seal(self.crypto.as_mut(), data)?;
                self.transmits.push_back(Transmit::Tcp {
                    conn: conn_id,
                    bytes,
                });
            }
            ConnState::SessionClient { engine, .. } => {
                engine.send(self.crypto.as_mut(), data)?;
                while let Some(bytes) = engine.poll_transmit() {
                    self.transmits.push_back(Transmit::Tcp {
                        conn: conn_id,
                        bytes,
                    });
                }
            }
            _ => return Err(SessionError::NoSession),
        }
        Ok(())
    }

    /// CloseSession: closes the connection; no message goes on the wire.
    pub fn close_session(&mut self, id: i32) -> Result<(), SessionError> {
        if !self.sessions.contains_key(&id) {
            return Err(SessionError::NoSession);
        }
        self.close_session_with(id, ConnClosed::Local);
        Ok(())
    }

    fn close_session_with(&mut self, id: i32, reason: ConnClosed) {
        if let Some(conn) = self.sessions.get(&id).map(|s| s.conn) {
            self.forget_conn(conn, reason);
            self.transmits.push_back(Transmit::Close { conn });
        }
    }

    fn remove_conn(&mut self, conn: ConnId) -> Option<Conn> {
        self.pending.remove(&conn);
        self.dialed.remove(&conn);
        self.requests.retain(|r| r.conn != conn);
        self.auth_conns.remove(&conn);
        self.conns.remove(&conn)
    }

    /// Counts pending connections matching `f`.
    fn count_pending(&self, f: impl Fn(&Conn) -> bool) -> usize {
        self.pending
            .iter()
            .filter_map(|id| self.conns.get(id))
            .filter(|c| f(c))
            .count()
    }

    /// An auth connection from an address locked out by its failed PINs: kept
    /// for at most [`REFUSAL_HOLD`] to answer its first packet with the
    /// refusal (softbus clients then say why and when to try again; a lite
    /// client just sees the close), and reported once per address per
    /// [`REFUSAL_REPORT_EVERY`].
    fn refuse_locked_out(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        retry_after: Duration,
    ) {
        let refusing = self.count_pending(|c| matches!(c.state, ConnState::Refusing { .. }));
        if refusing >= MAX_REFUSING {
            self.transmits.push_back(Transmit::Close { conn });
            return;
        }
        if let Some(r) = self.guard.by_ip.get_mut(&peer.ip()) {
            if r.reported
                .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_REPORT_EVERY)
            {
                r.reported = Some(now);
                tracing::info!(ip = %peer.ip(), ?retry_after, "auth refused: too many failed PINs");
                self.events.push_back(BusEvent::AuthRefused {
                    ip: peer.ip(),
                    retry_after,
                });
            }
        }
        self.conns.insert(
            conn,
            Conn {
                peer,
                deadline: Some(now + REFUSAL_HOLD),
                active: now,
                state: ConnState::Refusing { retry_after },
            },
        );
        self.pending.insert(conn);
    }

    /// A listener accepted `conn` from `peer`. Over a limit, the connection is
    /// closed at once (a locked-out address's is answered first: see
    /// `refuse_locked_out`).
    pub fn handle_accept(
        &mut self,
        now: Instant,
        conn: ConnId,
        listener: Listener,
        peer: SocketAddr,
    ) -> Result<(), BusError> {
        let deadline = Some(now + self.config.handshake_timeout);
        let same_kind = |c: &Conn| {
            matches!(
                (&c.state, listener),
                (
                    ConnState::Auth(_) | ConnState::Refusing { .. },
                    Listener::Auth
                ) | (ConnState::Session { .. }, Listener::Session)
            )
        };
        let pending_here = self.count_pending(|c| c.peer.ip() == peer.ip() && same_kind(c));
        if pending_here >= self.config.max_pending_per_ip {
            self.transmits.push_back(Transmit::Close { conn });
            return Err(BusError::TooManyConnections);
        }
        let state = match listener {
            Listener::Auth => {
                let from_here = self
                    .auth_conns
                    .iter()
                    .filter_map(|id| self.conns.get(id))
                    .filter(|c| c.peer.ip() == peer.ip())
                    .count();
                if from_here >= self.config.max_auth_per_ip {
                    self.transmits.push_back(Transmit::Close { conn });
                    return Err(BusError::TooManyConnections);
                }
                match self.guard_accept(now, peer.ip()) {
                    Ok(()) => {}
                    Err(BusError::TooManyFailures { retry_after }) => {
                        self.refuse_locked_out(now, conn, peer, retry_after);
                        return Ok(());
                    }
                    Err(e) => {
                        self.transmits.push_back(Transmit::Close { conn });
                        return Err(e);
                    }
                }
                if self.auth_conns.len() >= self.config.max_auth_conns {
                    // Full: the oldest connection still unauthenticated after
                    // EVICT_AFTER gives way, so idle connections cannot hold
                    // every slot; a handshake in progress is left alone.
                    match self.evictable_auth_conn(now) {
                        Some(victim) => self.drop_conn(victim, ConnClosed::Evicted),
                        None => {
                            self.transmits.push_back(Transmit::Close { conn });
                            return Err(BusError::TooManyConnections);
                        }
                    }
                }
                let mut a = AuthConn::new(
                    self.local_auth_info(),
                    &self.config.pin,
                    self.config.auth_max_data,
                    self.identity.clone(),
                );
                if let Some(left) = self.pin_paused(now) {
                    // No key agreement can succeed here until the pause ends.
                    a.pause_pairing(secs_up(left));
                }
                ConnState::Auth(Box::new(a))
            }
            Listener::Session => {
                if self.count_pending(|c| matches!(c.state, ConnState::Session { .. }))
                    >= self.config.max_pending_session_conns
                {
                    self.transmits.push_back(Transmit::Close { conn });
                    return Err(BusError::TooManyConnections);
                }
                ConnState::Session {
                    conn: SessionConn::new(),
                    session: None,
                    awaiting: None,
                }
            }
        };
        if listener == Listener::Auth {
            self.auth_conns.insert(conn);
        }
        self.pending.insert(conn);
        self.conns.insert(
            conn,
            Conn {
                peer,
                deadline,
                active: now,
                state,
            },
        );
        Ok(())
    }

    /// The oldest auth connection that has been unauthenticated for at least
    /// [`EVICT_AFTER`].
    fn evictable_auth_conn(&self, now: Instant) -> Option<ConnId> {
        let hold = self.config.handshake_timeout.saturating_sub(EVICT_AFTER);
        self.auth_conns
            .iter()
            .filter(|id| self.pending.contains(id))
            .filter_map(|id| Some((*id, self.conns.get(id)?.deadline?)))
            .filter(|(_, deadline)| *deadline <= now + hold)
            .min_by_key(|(_, deadline)| *deadline)
            .map(|(id, _)| id)
    }

    /// The peer closed `conn` (or the socket failed). For a connection we
    /// dialed that had not finished its handshake, `ConnDropped` says so.
    pub fn handle_tcp_closed(&mut self, _now: Instant, conn: ConnId) {
        let unfinished = self.dialed.contains(&conn) && self.pending.contains(&conn);
        if let Some(c) = self.forget_conn(conn, ConnClosed::PeerClosed) {
            if unfinished {
                self.events.push_back(BusEvent::ConnDropped {
                    conn,
                    ip: c.peer.ip(),
                    reason: ConnClosed::PeerClosed,
                });
            }
        }
    }

    /// Forgets `conn`; a session open on it is closed with `reason`.
    fn forget_conn(&mut self, conn: ConnId, reason: ConnClosed) -> Option<Conn> {
        let c = self.remove_conn(conn)?;
        let open_session = match &c.state {
            ConnState::Session {
                session: Some(id), ..
            } => Some(id),
            ConnState::SessionClient {
                session,
                opened: true,
                ..
            } => Some(session),
            _ => None,
        };
        if let Some(id) = open_session {
            if let Some(s) = self.sessions.remove(id) {
                self.events.push_back(BusEvent::SessionClosed {
                    session_id: *id,
                    session: s.info.session,
                    reason,
                });
            }
        }
        Some(c)
    }

    fn drop_conn(&mut self, conn: ConnId, reason: ConnClosed) {
        let Some(mut c) = self.forget_conn(conn, reason.clone()) else {
            return;
        };
        tracing::debug!(conn = conn.0, %reason, "dropping connection");
        if let ConnState::Refusing { .. } = c.state {
            // Reported once per address already (AuthRefused), not per connection.
            self.transmits.push_back(Transmit::Close { conn });
            return;
        }
        // Giving up on a peer whose hichain instance holds our exchange: its
        // error message goes out before the close, or a lite device keeps the
        // exchange (and one of its two slots) until it restarts.
        let code = match &reason {
            ConnClosed::Auth(e) => Some(crate::auth::abort_code(e)),
            ConnClosed::PeerClosed | ConnClosed::ConnectFailed(_) => None,
            _ => Some(crate::auth::pake::errcode::ABORTED),
        };
        if let (ConnState::Auth(a), Some(code)) = (&mut c.state, code) {
            // The same toward a client whose exchange this node gives up.
            if a.abort(code) > 0 {
                while let Some(bytes) = a.poll_transmit() {
                    self.transmits.push_back(Transmit::Tcp { conn, bytes });
                }
            }
        }
        if let ConnState::AuthClient { client, done: None } = &mut c.state {
            if code.is_some_and(|code| client.abort(code)) {
                tracing::debug!(
                    conn = conn.0,
                    code,
                    "hichain exchange aborted with an error message"
                );
                while let Some(bytes) = client.poll_transmit() {
                    self.transmits.push_back(Transmit::Tcp { conn, bytes });
                }
            }
        }
        self.transmits.push_back(Transmit::Close { conn });
        self.events.push_back(BusEvent::ConnDropped {
            conn,
            ip: c.peer.ip(),
            reason,
        });
    }

    /// Bytes arrived on `conn`.
    pub fn handle_tcp_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
    ) -> Result<(), BusError> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(BusError::UnknownConn);
        };
        c.active = now;
        let peer = c.peer;
        match &mut c.state {
            ConnState::Refusing { retry_after } => {
                // The refusal answers the first packet (its seq), whatever it is.
                let seq = crate::frame::AuthHeader::parse(data, crate::frame::LITE_MAX_AUTH_DATA)
                    .map_or(0, |h| h.seq);
                let secs = retry_after.as_secs().max(1);
                self.transmits.push_back(Transmit::Tcp {
                    conn,
                    bytes: crate::auth::refusal_packet(seq, peer.ip(), secs),
                });
                self.drop_conn(conn, ConnClosed::Refused("locked out".into()));
            }
            ConnState::Auth(a) => {
                let mut failed = false;
                let mut sts_failed = None;
                let limit = self.config.guard.key_agreements_total;
                let bucket = self
                    .guard
                    .key_agreements
                    .get_or_insert_with(|| Bucket::full(limit, now));
                let r =
                    a.handle_data_within(self.crypto.as_mut(), data, &self.pairings, &mut || {
                        bucket.take(limit, now)
                    });
                while let Some(bytes) = a.poll_transmit() {
                    self.transmits.push_back(Transmit::Tcp { conn, bytes });
                }
                match r {
                    Ok(events) => {
                        for e in events {
                            match e {
                                AuthConnEvent::Verified(p) => {
                                    c.deadline = None;
                                    self.pending.remove(&conn);
                                    self.events.push_back(BusEvent::PeerVerified {
                                        conn,
                                        ip: peer.ip(),
                                        peer: p,
                                    });
                                }
                                AuthConnEvent::PakeFailed { code } => {
                                    self.events.push_back(BusEvent::PakeFailed {
                                        conn,
                                        ip: peer.ip(),
                                        code,
                                    });
                                    failed = true;
                                }
                                AuthConnEvent::StsFailed { code } => {
                                    sts_failed = Some(code);
                                }
                                AuthConnEvent::Paired(key) => {
                                    file_pairing(&mut self.pairings, &key.auth_id, key.public);
                                    let id = id_proof(
                                        self.crypto.as_ref(),
                                        &self.pairings,
                                        &key.auth_id,
                                        AuthMethod::Paired,
                                    );
                                    self.events.push_back(BusEvent::Paired {
                                        conn,
                                        ip: peer.ip(),
                                        device_id: key.auth_id,
                                        public_key: key.public,
                                        id,
                                    });
                                }
                                AuthConnEvent::KeyEstablished { .. } => {}
                            }
                        }
                    }
                    Err(e) => self.drop_conn(conn, e.into()),
                }
                if let Some(code) = sts_failed {
                    // Not a PIN guess: the connection ends, the PIN is not charged.
                    self.events.push_back(BusEvent::PakeFailed {
                        conn,
                        ip: peer.ip(),
                        code,
                    });
                    self.drop_conn(
                        conn,
                        ConnClosed::Auth(crate::auth::AuthError::Refused("not a paired device")),
                    );
                }
                if failed {
                    // A failed key confirmation costs the connection (the error
                    // reply is queued before the close) and counts against the PIN.
                    self.drop_conn(conn, ConnClosed::Auth(crate::auth::AuthError::WrongPin));
                    self.count_failure(now, peer.ip());
                }
            }
            ConnState::Session { .. } => {
                if let Err(e) = self.handle_session_data(now, conn, peer, data) {
                    self.drop_conn(conn, e.into());
                }
            }
            ConnState::AuthClient { client, done } => {
                if done.is_some() {
                    // Nothing more is expected on a verified auth connection.
                    return Ok(());
                }
                match client.handle_data(self.crypto.as_mut(), data) {
                    Ok(result) => {
                        while let Some(bytes) = client.poll_transmit() {
                            self.transmits.push_back(Transmit::Tcp { conn, bytes });
                        }
                        if let Some(auth) = result {
                            let peer = auth.peer.clone();
                            if let Some(key) = &auth.paired {
                                // The same rule as the server's: a key that
                                // does not derive the id never displaces the
                                // one on file for it.
                                if !crate::auth::hichain::may_file(
                                    self.crypto.as_ref(),
                                    &key.auth_id,
                                    &key.public,
                                    crate::auth::hichain::filed(&self.pairings, &key.auth_id),
                                ) {
                                    self.drop_conn(
                                        conn,
                                        ConnClosed::Auth(crate::auth::AuthError::Misbehaved(
                                            "another key is on file for the id this device paired under",
                                        )),
                                    );
                                    return Ok(());
                                }
                                file_pairing(&mut self.pairings, &key.auth_id, key.public);
                                self.events.push_back(BusEvent::Paired {
                                    conn,
                                    ip: c.peer.ip(),
                                    device_id: key.auth_id.clone(),
                                    public_key: key.public,
                                    id: id_proof(
                                        self.crypto.as_ref(),
                                        &self.pairings,
                                        &key.auth_id,
                                        AuthMethod::Paired,
                                    ),
                                });
                            }
                            *done = Some(Box::new(auth));
                            c.deadline = None;
                            self.pending.remove(&conn);
                            self.events
                                .push_back(BusEvent::Authenticated { conn, peer });
                        }
                    }
                    Err(e) => self.drop_conn(conn, e.into()),
                }
            }
            ConnState::SessionClient {
                engine,
                session,
                server,
                peer_device_id,
                method,
                opened,
            } => match engine.handle_data(self.crypto.as_mut(), data) {
                Ok(events) => {
                    let id = *session;
                    for e in events {
                        match e {
                            ClientEvent::Opened(_) if !*opened => {
                                *opened = true;
                                c.deadline = None;
                                let info = SessionInfo {
                                    session_id: id,
                                    session: server.clone(),
                                    peer_device_id: peer_device_id.clone(),
                                    peer,
                                    transport: "tcp",
                                    auth: *method,
                                    id: id_proof(
                                        self.crypto.as_ref(),
                                        &self.pairings,
                                        peer_device_id,
                                        *method,
                                    ),
                                };
                                self.pending.remove(&conn);
                                self.sessions.insert(
                                    id,
                                    Session {
                                        info: info.clone(),
                                        conn,
                                    },
                                );
                                self.events.push_back(BusEvent::SessionOpened(info));
                            }
                            ClientEvent::Opened(_) => {}
                            ClientEvent::Bytes(data) => {
                                self.events.push_back(BusEvent::BytesReceived {
                                    session_id: id,
                                    data,
                                })
                            }
                        }
                    }
                }
                Err(e) => self.drop_conn(conn, e.into()),
            },
        }
        Ok(())
    }

    /// Dials `addr` and runs the auth client there (getAuthInfo, the PIN key
    /// agreement with `pin`, VerifyIp, VerifyDeviceId; a random auth seq becomes
    /// the key index). `Authenticated` or `ConnDropped` follows for the returned id.
    pub fn connect_auth(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, BusError> {
        self.connect_with(
            now,
            addr,
            ClientAuth::Pin(zeroize::Zeroizing::new(pin.to_vec())),
        )
    }

    /// Dials `addr` and pairs with it (BIND with `pin`), then verifies as
    /// [`Bus::connect_auth`]. `Paired` and `Authenticated` follow.
    pub fn connect_pair(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, BusError> {
        let identity = self.identity.clone().ok_or(BusError::NoIdentity)?;
        self.connect_with(
            now,
            addr,
            ClientAuth::Pair {
                pin: zeroize::Zeroizing::new(pin.to_vec()),
                identity,
            },
        )
    }

    /// Dials `addr` and authenticates as a paired device (STS, no PIN). The
    /// connection is dropped if the device there is not paired with us.
    pub fn connect_paired(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnId, BusError> {
        let identity = self.identity.clone().ok_or(BusError::NoIdentity)?;
        self.connect_with(
            now,
            addr,
            ClientAuth::Paired {
                identity,
                pairings: self.pairings.clone(),
            },
        )
    }

    fn connect_with(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        auth: ClientAuth,
    ) -> Result<ConnId, BusError> {
        let mut r = [0u8; 4];
        self.crypto.random(&mut r);
        // 1..=i32::MAX: the key index is the seq as an i32.
        let seq = i64::from((u32::from_le_bytes(r) >> 1).max(1));
        if self.dialed.len() >= self.config.max_auth_conns {
            return Err(BusError::TooManyConnections);
        }
        let state = ConnState::AuthClient {
            client: Box::new(AuthClient::with_auth(self.local_auth_info(), auth, seq)),
            done: None,
        };
        Ok(self.dial(now, addr, state))
    }

    /// Opens a session to `server` on the peer verified on `auth` (a connection
    /// from [`Bus::connect_auth`]), as `session_id` of the application's id
    /// space. `SessionOpened` or `ConnDropped` (of the returned id) follows.
    pub fn open_session_to(
        &mut self,
        now: Instant,
        auth: ConnId,
        server: &str,
        session_id: i32,
    ) -> Result<ConnId, BusError> {
        let Some(Conn {
            peer,
            state: ConnState::AuthClient { done: Some(a), .. },
            ..
        }) = self.conns.get(&auth)
        else {
            return Err(BusError::UnknownConn);
        };
        let addr = SocketAddr::new(peer.ip(), a.peer.session_port);
        let peer_device_id = a.peer.device_id.clone();
        let method = a.method;
        let engine = SessionClient::new(self.crypto.as_mut(), server, a.key_index, &a.key)?;
        if self.dialed.len() >= self.config.max_auth_conns + self.config.max_pending_session_conns {
            return Err(BusError::TooManyConnections);
        }
        let state = ConnState::SessionClient {
            engine: Box::new(engine),
            session: session_id,
            server: server.to_owned(),
            peer_device_id,
            method,
            opened: false,
        };
        Ok(self.dial(now, addr, state))
    }

    fn dial(&mut self, now: Instant, addr: SocketAddr, state: ConnState) -> ConnId {
        self.next_dial += 1;
        let conn = ConnId(DIALED | self.next_dial);
        self.conns.insert(
            conn,
            Conn {
                peer: addr,
                deadline: Some(now + self.config.handshake_timeout),
                active: now,
                state,
            },
        );
        self.pending.insert(conn);
        self.dialed.insert(conn);
        self.transmits.push_back(Transmit::Dial { conn, addr });
        conn
    }

    /// The driver connected (or failed to connect) a [`Transmit::Dial`].
    pub fn handle_dialed(&mut self, _now: Instant, conn: ConnId, result: Result<(), String>) {
        if let Err(reason) = result {
            return self.drop_conn(conn, ConnClosed::ConnectFailed(reason));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let first = match &mut c.state {
            ConnState::AuthClient { client, .. } => client.poll_transmit(),
            ConnState::SessionClient { engine, .. } => engine.poll_transmit(),
            _ => None,
        };
        if let Some(bytes) = first {
            self.transmits.push_back(Transmit::Tcp { conn, bytes });
        }
    }

    /// The peer verified on a dialed auth connection.
    pub fn authenticated(&self, conn: ConnId) -> Option<&PeerInfo> {
        match self.conns.get(&conn).map(|c| &c.state) {
            Some(ConnState::AuthClient { done: Some(a), .. }) => Some(&a.peer),
            _ => None,
        }
    }

    /// Keys with this index held by auth connections from the same IP. Two
    /// clients may pick the same index; the open packet's tag tells which key is right.
    fn candidate_keys(
        &self,
        ip: IpAddr,
        index: i32,
    ) -> Vec<(ConnId, [u8; 16], String, AuthMethod)> {
        self.auth_conns
            .iter()
            .filter_map(|id| Some((*id, self.conns.get(id)?)))
            .filter(|(_, c)| c.peer.ip() == ip)
            .filter_map(|(id, c)| match &c.state {
                ConnState::Auth(a) => Some((
                    id,
                    *a.key(index)?,
                    a.peer_device_id().unwrap_or_default().to_owned(),
                    a.method(index)?,
                )),
                _ => None,
            })
            .collect()
    }

    fn handle_session_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let frames = {
            let Some(Conn {
                state: ConnState::Session { conn: sc, .. },
                ..
            }) = self.conns.get_mut(&conn)
            else {
                return Ok(());
            };
            sc.push(data)?
        };
        self.handle_session_frames(now, conn, peer, frames)
    }

    fn handle_session_frames(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        frames: Vec<Frame>,
    ) -> Result<(), SessionError> {
        for f in frames {
            // While the open awaits its decision, what follows it waits too.
            if let Some(Conn {
                state:
                    ConnState::Session {
                        awaiting: Some(a), ..
                    },
                ..
            }) = self.conns.get_mut(&conn)
            {
                if a.held.len() >= MAX_HELD_FRAMES {
                    return Err(SessionError::Malformed("packets before the session opened"));
                }
                a.held.push(f);
                continue;
            }
            match f {
                Frame::Auth(_, body) => self.request_session(now, conn, peer, &body)?,
                Frame::Session(h, body) => {
                    let Some(Conn {
                        state:
                            ConnState::Session {
                                conn: sc, session, ..
                            },
                        ..
                    }) = self.conns.get_mut(&conn)
                    else {
                        return Ok(());
                    };
                    let (Some(ch), Some(id)) = (sc.channel.as_mut(), *session) else {
                        return Err(SessionError::NotOpen);
                    };
                    match ch.open(h.seq, body) {
                        Ok(plain) => self.events.push_back(BusEvent::BytesReceived {
                            session_id: id,
                            data: plain,
                        }),
                        Err(e) if ch.exhausted() => return Err(e),
                        Err(e) => {
                            tracing::debug!(session = id, error = %e, "dropped session packet")
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decrypts an open request with the keys of this address's auth
    /// connections and asks the application.
    fn request_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        body: &[u8],
    ) -> Result<(), SessionError> {
        if let Some(Conn {
            state: ConnState::Session {
                session: Some(_), ..
            },
            ..
        }) = self.conns.get(&conn)
        {
            return Err(SessionError::Malformed("a second open on one connection"));
        }
        let index = frame::auth_key_index(body)?;
        let candidates = self.candidate_keys(peer.ip(), index);
        if candidates.is_empty() {
            return Err(SessionError::UnknownKey(index));
        }
        let mut opened = Err(SessionError::UnknownKey(index));
        for (auth, key, peer_device_id, method) in candidates {
            opened = SessionConn::open_request(self.crypto.as_ref(), body, &key)
                .map(|r| (r, auth, key, peer_device_id, method));
            if opened.is_ok() {
                break;
            }
        }
        let (request, auth, key, peer_device_id, method) = opened?;
        // A session key is drawn afresh for every open: one seen before under
        // this auth key is a recorded open played again (issue 7, item 6).
        if let Some(Conn {
            state: ConnState::Auth(a),
            active,
            ..
        }) = self.conns.get_mut(&auth)
        {
            *active = now;
            if !a.first_open(&request.key) {
                self.replayed_opens += 1;
                return Err(SessionError::Replay);
            }
        }
        let Some(Conn {
            state: ConnState::Session { awaiting, .. },
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return Ok(());
        };
        self.requests.push_back(SessionRequest {
            conn,
            server: request.bus_name.clone(),
            peer_device_id: peer_device_id.clone(),
            peer,
            method,
        });
        *awaiting = Some(Box::new(AwaitingOpen {
            request,
            auth_key: zeroize::Zeroizing::new(key),
            index,
            peer_device_id,
            method,
            held: Vec::new(),
        }));
        Ok(())
    }

    /// Next session open awaiting a decision.
    pub fn poll_session_request(&mut self) -> Option<SessionRequest> {
        self.requests.pop_front()
    }

    /// Opens the session `conn` asked for, as `session_id` (the application's id
    /// space): the open reply goes out, `SessionOpened` follows, and the packets
    /// held since the open are delivered.
    pub fn accept_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        session_id: i32,
    ) -> Result<SessionInfo, BusError> {
        let Some(Conn {
            peer,
            state:
                ConnState::Session {
                    conn: sc,
                    session,
                    awaiting,
                },
            deadline,
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return Err(BusError::UnknownConn);
        };
        let a = awaiting.take().ok_or(BusError::UnknownConn)?;
        let peer = *peer;
        let reply = session::open_reply_json(&self.local.device_id, &a.request.bus_name);
        let sealed = a
            .seal_reply(self.crypto.as_mut(), &reply)
            .map_err(SessionError::from)
            .and_then(|bytes| {
                DataChannel::new(self.crypto.as_ref(), &a.request.key).map(|ch| (bytes, ch))
            });
        let (bytes, channel) = match sealed {
            Ok(x) => x,
            Err(e) => {
                self.drop_conn(conn, e.clone().into());
                return Err(e.into());
            }
        };
        sc.channel = Some(channel);
        *session = Some(session_id);
        *deadline = None;
        self.pending.remove(&conn);
        self.requests.retain(|r| r.conn != conn);
        let info = SessionInfo {
            session_id,
            session: a.request.bus_name.clone(),
            peer_device_id: a.peer_device_id.clone(),
            peer,
            transport: "tcp",
            auth: a.method,
            id: id_proof(
                self.crypto.as_ref(),
                &self.pairings,
                &a.peer_device_id,
                a.method,
            ),
        };
        self.sessions.insert(
            session_id,
            Session {
                info: info.clone(),
                conn,
            },
        );
        self.transmits.push_back(Transmit::Tcp { conn, bytes });
        self.events.push_back(BusEvent::SessionOpened(info.clone()));
        if let Err(e) = self.handle_session_frames(now, conn, peer, a.held) {
            self.drop_conn(conn, e.into());
        }
        tracing::trace!(?now, session = session_id, "session accepted");
        Ok(info)
    }

    /// Refuses the session `conn` asked for: an open reply with a `CODE` other
    /// than 1 and `reason` as its `REASON` goes out under the auth key (a
    /// softbus_lite server only closes; a client reads any other code as a
    /// refusal), then the connection is closed and `ConnDropped` carries `reason`.
    pub fn refuse_session(&mut self, conn: ConnId, reason: &str) {
        self.requests.retain(|r| r.conn != conn);
        if let Some(Conn {
            state: ConnState::Session {
                awaiting: Some(a), ..
            },
            ..
        }) = self.conns.get(&conn)
        {
            if let Ok(bytes) = a.seal_reply(self.crypto.as_mut(), &session::refusal_json(reason)) {
                self.transmits.push_back(Transmit::Tcp { conn, bytes });
            }
        }
        self.drop_conn(conn, ConnClosed::Refused(reason.to_owned()));
    }

    /// A discovery datagram from `from` arrived, addressed to `to` when the driver
    /// knows it (a node bound to 0.0.0.0 hears every address of its host). Only
    /// datagrams to this node's address or to a broadcast address are handled.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: Option<IpAddr>,
        data: &[u8],
    ) -> Result<(), DiscoveryError> {
        if let Some(IpAddr::V4(dst)) = to {
            let ours = dst == self.local.ip
                || dst.is_broadcast()
                || Some(dst) == self.config.discovery.directed_broadcast;
            if !ours {
                self.discovery.count_dropped();
                return Err(DiscoveryError::NotForUs(IpAddr::V4(dst)));
            }
        }
        let r = self.discovery.handle_datagram(now, from, data);
        self.drain_discovery();
        r
    }

    fn drain_discovery(&mut self) {
        while let Some(d) = self.discovery.poll_transmit() {
            self.transmits.push_back(Transmit::Udp(d));
        }
        while let Some(e) = self.discovery.poll_event() {
            self.events.push_back(BusEvent::Discovery(e));
        }
    }

    /// Timers: discovery schedule and expiry, handshake deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.discovery.handle_timeout(now);
        self.drain_discovery();
        let late: Vec<ConnId> = self
            .pending
            .iter()
            .filter(|id| {
                self.conns
                    .get(id)
                    .and_then(|c| c.deadline)
                    .is_some_and(|d| d <= now)
            })
            .copied()
            .collect();
        for conn in late {
            self.drop_conn(conn, ConnClosed::Timeout);
        }
        let idle: Vec<ConnId> = self
            .auth_conns
            .iter()
            .filter(|id| !self.pending.contains(id))
            .filter(|id| {
                self.conns
                    .get(id)
                    .is_some_and(|c| c.active + self.config.auth_idle_timeout <= now)
            })
            .copied()
            .collect();
        for conn in idle {
            self.drop_conn(conn, ConnClosed::Idle);
        }
    }

    /// When to call [`Bus::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self
            .pending
            .iter()
            .filter_map(|id| self.conns.get(id)?.deadline)
            .min();
        let idle = self
            .auth_conns
            .iter()
            .filter(|id| !self.pending.contains(id))
            .filter_map(|id| Some(self.conns.get(id)?.active + self.config.auth_idle_timeout))
            .min();
        crate::earliest(self.discovery.poll_timeout(), crate::earliest(conns, idle))
    }

    /// Next output for the driver.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next application event.
    pub fn poll_event(&mut self) -> Option<BusEvent> {
        self.events.pop_front()
    }

    /// Crypto provider (for drivers that run client engines with the same source).
    pub fn crypto_mut(&mut self) -> &mut dyn Crypto {
        self.crypto.as_mut()
    }
}

/// Errors a frame error maps to at the facade.
impl From<FrameError> for BusError {
    fn from(e: FrameError) -> Self {
        BusError::Session(SessionError::Frame(e))
    }
}
