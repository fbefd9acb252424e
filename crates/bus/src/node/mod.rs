//! The [`Bus`] facade: one node's discovery responder/discoverer, auth server
//! and session server, composed behind one sans-IO interface.

mod client;
mod guard;
mod sessions;
mod types;

use guard::*;
pub use guard::{PinGuardConfig, RateLimit, MAX_REFUSING, REFUSAL_HOLD, REFUSAL_REPORT_EVERY};
pub use types::*;

use crate::auth::hichain::{Identity, Pairings};
use crate::auth::{
    AuthClient, AuthConn, AuthConnEvent, AuthMethod, Authenticated, ClientAuth, IdProof,
    LocalAuthInfo, PeerInfo, PinPolicy,
};
use crate::crypto::Crypto;
use crate::discovery::publish::CommandError;
use crate::discovery::{Discovery, DiscoveryConfig, DiscoveryError, DiscoveryEvent, LocalDevice};
use crate::frame::{self, Frame, FrameError, Module, FLAG_REPLY};
use crate::session::{self, ClientEvent, DataChannel, SessionClient, SessionConn, SessionError};
use crate::{ConnId, SessionId, Transmit};
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
        session: SessionId,
        server: String,
        peer_device_id: String,
        method: AuthMethod,
        opened: bool,
    },
    Session {
        conn: SessionConn,
        session: Option<SessionId>,
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
    sessions: BTreeMap<SessionId, Session>,
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

    /// How far `device_id` is proved by a key agreed by `method` ([`id_proof`]).
    pub fn id_proof(&self, device_id: &str, method: AuthMethod) -> IdProof {
        id_proof(self.crypto.as_ref(), &self.pairings, device_id, method)
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
    pub fn set_common_device_info(&mut self, entries: &[(i32, &str)]) -> Result<(), CommandError> {
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
                self.drop_conn(conn, ConnClosed::LockedOut);
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
                let events: Vec<AuthConnEvent> = std::iter::from_fn(|| a.poll_event()).collect();
                match r {
                    Ok(()) => {
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
                                    transport: Transport::Tcp,
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
            self.transmits.push_back(Transmit::Datagram(d));
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
