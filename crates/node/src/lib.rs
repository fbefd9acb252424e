//! The node core: one sans-IO engine that decides every session of a softbus
//! node, over TCP (the soft bus) or WebRTC (data channels).
//!
//! [`Node`] owns the [`Bus`] (discovery, auth, TCP sessions), the WebRTC
//! [`Host`] (many peers on one UDP port) and the built-in services (echo,
//! discard, and the bridge from a data channel to the session server named by
//! its label). It keeps **one** session table with one id space ([`SessionId`]),
//! **one** limits table ([`Limits`]) and **one** decision point,
//! [`Node::admit`]: may this peer, authenticated this way, open this session
//! over this transport? Every refusal has a typed [`Refusal`].
//!
//! Same vocabulary as the engines it composes: `handle_*(now, ..)` for input,
//! commands that only change state and queue output, `poll_transmit`,
//! `poll_event`, `poll_timeout`, `handle_timeout(now)`. No clock, socket, tokio
//! or OpenSSL here: crypto comes in when the engines are built.
//!
//! ```no_run
//! # fn drive(node: &mut softbus_node::Node, now: std::time::Instant) {
//! // after any input or command:
//! while let Some(t) = node.poll_transmit() { /* write it */ let _ = t; }
//! while let Some(e) = node.poll_event() { /* report it */ let _ = e; }
//! let _sleep_until = node.poll_timeout();
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod fuzzing;
pub mod media;

use media::Relay;
pub use media::{MediaEvent, MediaLimits, MediaRefusal, StreamInfo, ViewerInfo};
use softbus_bus::discovery::DiscoveryError;
pub use softbus_bus::node::ConnClosed;
use softbus_bus::node::{Bus, BusError, BusEvent, Listener, SessionInfo};
use softbus_bus::session::{self, SessionError};
use softbus_bus::ConnId;
use softbus_rtc::host::{ChannelId, Host, HostError, HostEvent, PeerId};
use softbus_rtc::peer::CloseReason;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub use softbus_bus::node::Transmit as BusTransmit;

/// One session, whatever its transport. Ids count from 1 and are never reused
/// while the session is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i32);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How a session reaches the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    WebRtc,
}

impl Transport {
    /// As JSON events and the API name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::WebRtc => "webrtc",
        }
    }
}

pub use softbus_bus::auth::AuthMethod;

/// Who posted a WebRTC offer to the node's signaling, as the web side proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// A holder of the node's web token. `name` is what sessions show;
    /// `credential` tells the bearer token from each dashboard session made
    /// from it (only the credential that created a peer may delete it).
    WebToken { name: String, credential: String },
    /// A paired device that signed the offer's DTLS fingerprint with its
    /// long-term key (node-to-node WebRTC).
    Device { device_id: String },
}

impl Principal {
    /// The identity sessions show (`peer_device_id`).
    pub fn name(&self) -> &str {
        match self {
            Principal::WebToken { name, .. } => name,
            Principal::Device { device_id } => device_id,
        }
    }

    /// How it authenticated.
    pub fn method(&self) -> AuthMethod {
        match self {
            Principal::WebToken { .. } => AuthMethod::WebToken,
            Principal::Device { .. } => AuthMethod::Paired,
        }
    }
}

/// How the peer asking for a session proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authenticated {
    /// A soft bus key agreement: the session open decrypted under the key of an
    /// auth connection of this device, agreed by `method`.
    Device {
        device_id: String,
        method: AuthMethod,
    },
    /// A WebRTC peer whose offer came through the node's signaling from `principal`.
    Signaling { peer: PeerId, principal: Principal },
}

impl Authenticated {
    /// How it authenticated.
    pub fn method(&self) -> AuthMethod {
        match self {
            Authenticated::Device { method, .. } => *method,
            Authenticated::Signaling { principal, .. } => principal.method(),
        }
    }
}

/// Whether `who`'s sessions count toward its address's limit: every device
/// (a PIN, a pairing or a signed offer proves a device, not that one address
/// is one device), but not the operator's web token.
fn counts_per_address(who: &Authenticated) -> bool {
    !matches!(who.method(), AuthMethod::WebToken)
}

/// The per-peer limit's key of an identity: a device (over any transport) or
/// one WebRTC peer connection.
fn peer_key(who: &Authenticated) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match who {
        Authenticated::Device { device_id, .. }
        | Authenticated::Signaling {
            principal: Principal::Device { device_id },
            ..
        } => (0u8, device_id).hash(&mut h),
        Authenticated::Signaling { peer, .. } => (1u8, peer.0).hash(&mut h),
    }
    h.finish()
}

/// Who may open sessions, beyond the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only paired devices (and the operator's web token): a PIN key agreement
    /// without pairing opens no session (`--paired-only`).
    pub paired_only: bool,
}

/// What a session server does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// Nothing built in: the application reacts to events.
    App,
    /// Sends every message back on the same session (text as text, binary as binary).
    Echo,
    /// Counts and drops messages; a message `?` is answered with the count in decimal.
    Discard,
}

/// The one limits table of a node.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open sessions, TCP and WebRTC together (softbus_lite: 24).
    pub max_sessions: usize,
    /// Session servers (softbus_lite: 8).
    pub max_session_servers: usize,
    /// Sessions one peer (a device over TCP, a peer connection over WebRTC) may
    /// open to this node, so no single peer takes every slot.
    pub max_sessions_per_peer: usize,
    /// Sessions opened to this node from one IP address, by however many
    /// device ids or peer connections it shows (the operator's web token is
    /// not counted), so one address never holds every slot.
    pub max_sessions_per_address: usize,
    /// WebRTC peer connections for data channels (offers posted to
    /// `/rtc/offer` and our own), apart from the media relay's publishers
    /// (one per stream) and viewers, which have budgets of their own.
    pub max_rtc_peers: usize,
    /// The media relay's streams, viewers, grace period and budgets.
    pub media: MediaLimits,
}

impl Limits {
    /// The peer connections the WebRTC host must hold for every budget to be
    /// reachable at once: data-channel peers, one publisher per stream, and
    /// every viewer.
    pub fn rtc_peers_needed(&self) -> usize {
        self.max_rtc_peers
            .saturating_add(self.media.max_streams)
            .saturating_add(self.media.max_viewers_total)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: session::DEFAULT_MAX_SESSIONS,
            max_session_servers: session::DEFAULT_MAX_SERVERS,
            max_sessions_per_peer: 16,
            max_sessions_per_address: 16,
            max_rtc_peers: 64,
            media: MediaLimits::default(),
        }
    }
}

/// Why a session was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("no session server named {0:?}")]
    UnknownServer(String),
    #[error("node full: session limit of {0} reached")]
    TooManySessions(usize),
    #[error("node full for this peer: its session limit of {0} reached")]
    TooManyForPeer(usize),
    /// The sessions from one IP address reached `max_sessions_per_address`.
    #[error("node full for {address}: its session limit of {limit} per address reached")]
    TooManyFromAddress { address: IpAddr, limit: usize },
    /// `--paired-only`: the peer authenticated with a PIN but is not paired.
    #[error("this node accepts paired devices only (pair with softbus pair)")]
    NotPaired,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionClosed {
    #[error("closed locally")]
    Local,
    #[error("server removed")]
    ServerRemoved,
    #[error("channel closed")]
    ChannelClosed,
    /// The WebRTC peer connection ended.
    #[error("{0}")]
    PeerConnection(CloseReason),
    /// The TCP connection ended (the soft bus engine's reason).
    #[error("{0}")]
    Connection(ConnClosed),
}

/// Which of the node's UDP sockets a datagram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// CoAP discovery (port 5684).
    Discovery,
    /// WebRTC (ICE, DTLS, SCTP), one port for every peer.
    Rtc,
}

/// Output for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A datagram from one of the node's sockets.
    Datagram {
        socket: Socket,
        destination: SocketAddr,
        payload: Vec<u8>,
    },
    /// Bytes for a TCP connection, one write.
    Tcp { conn: ConnId, bytes: Vec<u8> },
    /// Close this TCP connection.
    Close { conn: ConnId },
    /// Connect to `addr` for `conn` (a client role); answer with
    /// [`Node::handle_dialed`]. Its packets go one per write.
    Dial { conn: ConnId, addr: SocketAddr },
}

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Discovery, verification and connection events of the soft bus.
    Bus(BusEvent),
    SessionOpened(SessionInfo),
    BytesReceived {
        session: SessionId,
        binary: bool,
        data: Vec<u8>,
    },
    SessionClosed {
        session: SessionId,
        server: String,
        reason: SessionClosed,
        /// What the session carried, over its life.
        traffic: Traffic,
    },
    /// A session was asked for and refused.
    SessionRefused {
        transport: Transport,
        server: String,
        peer: Option<IpAddr>,
        reason: Refusal,
    },
    /// A WebRTC peer connection ended.
    PeerClosed {
        peer: PeerId,
        reason: CloseReason,
    },
    /// A session this node asked for did not open.
    OpenFailed {
        session: SessionId,
        reason: SessionClosed,
    },
    /// Streams, publishers and viewers of the media relay.
    Media(MediaEvent),
}

/// Errors of the node's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("WebRTC: {0}")]
    Rtc(#[from] HostError),
    /// Only the credential that created a peer connection may end it.
    #[error("this peer connection belongs to another credential")]
    NotOwner,
    /// A node-to-node offer or answer whose signature is not a paired
    /// device's over its DTLS fingerprint.
    #[error("not signed by a paired device")]
    BadSignature,
    /// A WHIP or WHEP request the relay refused.
    #[error("{0}")]
    Media(#[from] MediaRefusal),
    /// `--paired-only` refuses credentials that are only a PIN.
    #[error("{0}")]
    Refused(Refusal),
}

/// What a paired device signs with an offer: this text and the offer's
/// `a=fingerprint` value.
const RTC_OFFER_CONTEXT: &[u8] = b"softbus webrtc offer\0";
/// What a node signs with its answer: this, the answer's and the offer's fingerprints.
const RTC_ANSWER_CONTEXT: &[u8] = b"softbus webrtc answer\0";

/// The `a=fingerprint:` value of an SDP (`sha-256 ab:cd:…`). Every
/// fingerprint line must agree, so a signed one cannot sit beside another that
/// DTLS would check instead.
fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let mut all = sdp
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_ascii_lowercase());
    let first = all.next().filter(|v| !v.is_empty())?;
    all.all(|v| v == first).then_some(first)
}

/// A session this node asked for, on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Opening {
    /// A session connection dialed to the peer's session port.
    Tcp(ConnId),
    /// A data channel on an offering peer; `None` until the peer connects.
    Rtc {
        peer: PeerId,
        label: String,
        channel: Option<ChannelId>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Tcp,
    Rtc { peer: PeerId, channel: ChannelId },
}

/// Bytes of a session's messages, each way (payloads, as SendBytes sees them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A session in the table. A TCP session's info lives in the soft bus engine
/// (kept once: this table holds many thousand sessions); a WebRTC one's here.
#[derive(Debug)]
struct Entry {
    rtc_info: Option<Box<SessionInfo>>,
    route: Route,
    /// We opened it to a server of the peer (client role): no built-in service
    /// of ours answers on it.
    outgoing: bool,
    /// Which peer opened it, for the per-peer limit (none for our own).
    peer_key: Option<u64>,
    /// The address it was opened from, for the per-address limit (none for
    /// our own and for the operator's).
    address: Option<IpAddr>,
    /// Bytes a discard server has counted.
    discarded: u64,
    /// Whether the last message received was binary (over WebRTC, SendBytes
    /// answers in the same kind, so a page that sends text gets text).
    last_binary: bool,
    traffic: Traffic,
}

/// The node core.
pub struct Node {
    bus: Bus,
    host: Host,
    limits: Limits,
    servers: BTreeMap<String, ServerMode>,
    sessions: BTreeMap<SessionId, Entry>,
    /// Sessions this node asked for that have not opened yet.
    opening: BTreeMap<SessionId, Opening>,
    /// WebRTC peers whose SCTP association is up.
    connected: std::collections::BTreeSet<PeerId>,
    by_channel: HashMap<(PeerId, ChannelId), SessionId>,
    /// Sessions each peer has opened to us.
    per_peer: HashMap<u64, usize>,
    /// Sessions opened to us from each address.
    per_address: HashMap<IpAddr, usize>,
    policy: Policy,
    /// Who created each peer connection the node answered.
    principals: HashMap<PeerId, Principal>,
    /// The paired node at the other end of each peer connection we offered
    /// and whose signed answer we checked.
    answered_by: HashMap<PeerId, String>,
    /// WHIP publishers and WHEP viewers.
    relay: Relay,
    next_session: i32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("bus", &self.bus)
            .field("host", &self.host)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node over a built soft bus and WebRTC host.
    pub fn new(bus: Bus, host: Host, limits: Limits) -> Self {
        Self {
            bus,
            host,
            relay: Relay::new(limits.media.clone()),
            limits,
            servers: BTreeMap::new(),
            sessions: BTreeMap::new(),
            opening: BTreeMap::new(),
            connected: std::collections::BTreeSet::new(),
            by_channel: HashMap::new(),
            per_peer: HashMap::new(),
            per_address: HashMap::new(),
            policy: Policy::default(),
            principals: HashMap::new(),
            answered_by: HashMap::new(),
            next_session: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The soft bus engine (discovery table, identity).
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The WebRTC host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Sets who may open sessions.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The policy in force.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The soft bus engine, to change its identity and pairings.
    pub fn bus_mut(&mut self) -> &mut Bus {
        &mut self.bus
    }

    /// The one decision point: may a peer, authenticated as `who` and seen at
    /// `from`, open a session on `server` over `transport`?
    pub fn admit(
        &self,
        transport: Transport,
        who: &Authenticated,
        from: IpAddr,
        server: &str,
    ) -> Result<(), Refusal> {
        let _ = transport;
        if self.policy.paired_only && matches!(who.method(), AuthMethod::Pin | AuthMethod::EmptyPin)
        {
            return Err(Refusal::NotPaired);
        }
        if !self.servers.contains_key(server) {
            return Err(Refusal::UnknownServer(server.to_owned()));
        }
        self.has_room()?;
        if self.per_peer.get(&peer_key(who)).copied().unwrap_or(0)
            >= self.limits.max_sessions_per_peer
        {
            return Err(Refusal::TooManyForPeer(self.limits.max_sessions_per_peer));
        }
        if counts_per_address(who)
            && self.per_address.get(&from).copied().unwrap_or(0)
                >= self.limits.max_sessions_per_address
        {
            return Err(Refusal::TooManyFromAddress {
                address: from,
                limit: self.limits.max_sessions_per_address,
            });
        }
        Ok(())
    }

    /// Whether this node may ask for a session to `server` (name, limit).
    fn may_open(&self, server: &str) -> Result<(), NodeError> {
        session::check_name(server)?;
        self.has_room()
            .map_err(|r| SessionError::Refused(r.to_string()).into())
    }

    /// The session limit, counting sessions open and being opened by us.
    fn has_room(&self) -> Result<(), Refusal> {
        if self.sessions.len() + self.opening.len() >= self.limits.max_sessions {
            return Err(Refusal::TooManySessions(self.limits.max_sessions));
        }
        Ok(())
    }

    // ---- input ----

    /// A datagram arrived on one of the node's sockets, from `from`, sent to
    /// `to` when the driver knows it.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: Socket,
        from: SocketAddr,
        to: Option<IpAddr>,
        data: &[u8],
    ) -> Result<(), DiscoveryError> {
        let r = match socket {
            Socket::Discovery => self.bus.handle_datagram(now, from, to, data),
            Socket::Rtc => {
                self.host.handle_datagram(now, from, data);
                Ok(())
            }
        };
        self.process(now);
        r
    }

    /// A listener accepted `conn` from `peer`. Over a limit it is closed at once.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        conn: ConnId,
        listener: Listener,
        peer: SocketAddr,
    ) -> Result<(), NodeError> {
        let r = self.bus.handle_accept(now, conn, listener, peer);
        self.process(now);
        Ok(r?)
    }

    /// Bytes arrived on `conn`.
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        // An unknown connection was closed by the engine already; nothing to do.
        let _ = self.bus.handle_tcp_data(now, conn, data);
        self.process(now);
    }

    /// The peer closed `conn`, or the socket failed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.bus.handle_tcp_closed(now, conn);
        self.process(now);
    }

    /// Timers of every engine.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.bus.handle_timeout(now);
        self.host.handle_timeout(now);
        self.relay.handle_timeout(now, &mut self.host);
        self.process(now);
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        softbus_proto::earliest(
            softbus_proto::earliest(self.bus.poll_timeout(), self.host.poll_timeout()),
            self.relay.poll_timeout(),
        )
    }

    /// Next output for the driver.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- commands ----

    /// CreateSessionServer with a built-in behaviour, or `App` for events only.
    /// Unlike softbus_lite, a duplicate name is refused.
    pub fn create_session_server(&mut self, name: &str, mode: ServerMode) -> Result<(), NodeError> {
        session::check_name(name)?;
        if self.servers.contains_key(name) {
            return Err(SessionError::DuplicateServer(name.to_owned()).into());
        }
        if self.servers.len() >= self.limits.max_session_servers {
            return Err(SessionError::TooManyServers(self.limits.max_session_servers).into());
        }
        self.servers.insert(name.to_owned(), mode);
        Ok(())
    }

    /// RemoveSessionServer: every session of that server is closed first.
    pub fn remove_session_server(&mut self, now: Instant, name: &str) -> Result<(), NodeError> {
        if self.servers.remove(name).is_none() {
            return Err(SessionError::UnknownServer(name.to_owned()).into());
        }
        let ids: Vec<SessionId> = self
            .sessions
            .keys()
            .copied()
            .filter(|id| self.session(*id).is_some_and(|i| i.session == name))
            .collect();
        for id in ids {
            self.close_with(now, id, SessionClosed::ServerRemoved);
        }
        self.process(now);
        Ok(())
    }

    /// The built-in mode of session server `name`.
    pub fn server_mode(&self, name: &str) -> Option<ServerMode> {
        self.servers.get(name).copied()
    }

    /// Whether this node asked for session `id` (client role).
    pub fn is_outgoing(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|e| e.outgoing)
    }

    /// Names of the session servers, in order.
    pub fn session_servers(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// Open sessions, both transports.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .keys()
            .filter_map(|id| self.session(*id).cloned())
            .collect()
    }

    /// What an open session has carried so far.
    pub fn traffic(&self, id: SessionId) -> Option<Traffic> {
        self.sessions.get(&id).map(|e| e.traffic)
    }

    /// The WebRTC peer connection a session runs on (None over TCP).
    pub fn rtc_peer_of(&self, id: SessionId) -> Option<PeerId> {
        match self.sessions.get(&id)?.route {
            Route::Rtc { peer, .. } => Some(peer),
            Route::Tcp => None,
        }
    }

    /// One session (GetMySessionName, GetPeerSessionName, GetPeerDeviceId).
    pub fn session(&self, id: SessionId) -> Option<&SessionInfo> {
        let e = self.sessions.get(&id)?;
        match e.route {
            Route::Tcp => self.bus.session(id.0),
            Route::Rtc { .. } => e.rtc_info.as_deref(),
        }
    }

    /// SendBytes: one message on a session, whatever its transport. Over WebRTC the message goes as text when the last one received on the
    /// session was text (before any, as binary).
    pub fn send_bytes(
        &mut self,
        now: Instant,
        id: SessionId,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let binary = self.sessions.get(&id).is_none_or(|e| e.last_binary);
        self.send_as(now, id, binary, data)?;
        self.process(now);
        Ok(())
    }

    fn send_as(
        &mut self,
        now: Instant,
        id: SessionId,
        binary: bool,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let e = self.sessions.get(&id).ok_or(SessionError::NoSession)?;
        match e.route {
            Route::Tcp => self.bus.send_bytes(id.0, data)?,
            Route::Rtc { peer, channel } => self.host.send(now, peer, channel, binary, data)?,
        }
        if let Some(e) = self.sessions.get_mut(&id) {
            e.traffic.bytes_out += data.len() as u64;
        }
        Ok(())
    }

    /// CloseSession.
    pub fn close_session(&mut self, now: Instant, id: SessionId) -> Result<(), NodeError> {
        if !self.sessions.contains_key(&id) {
            return Err(SessionError::NoSession.into());
        }
        self.close_with(now, id, SessionClosed::Local);
        self.process(now);
        Ok(())
    }

    /// Client role: dials `addr` and authenticates with the PIN key agreement.
    /// `Event::Bus(BusEvent::Authenticated)` or `ConnDropped` follows for the
    /// returned connection.
    pub fn connect(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_auth(now, addr, pin)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: pairs with the device at `addr` (BIND with `pin`), then
    /// verifies. `Bus(Paired)` and `Bus(Authenticated)` follow, or `ConnDropped`.
    pub fn connect_pair(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_pair(now, addr, pin)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: authenticates to a paired device at `addr` with no PIN (STS).
    pub fn connect_paired(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_paired(now, addr)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: opens a session to `server` on the peer authenticated on
    /// `auth`, in this node's one session table and limit. `SessionOpened` or
    /// `OpenFailed` follows for the returned id.
    pub fn open_session(
        &mut self,
        now: Instant,
        auth: ConnId,
        server: &str,
    ) -> Result<SessionId, NodeError> {
        self.may_open(server)?;
        let id = self.allocate();
        let conn = self.bus.open_session_to(now, auth, server, id.0)?;
        self.opening.insert(id, Opening::Tcp(conn));
        self.process(now);
        Ok(id)
    }

    /// Offering role (node to node over WebRTC): an offer from this node's
    /// WebRTC port; send it to the other node's signaling, then
    /// [`Node::rtc_apply_answer`].
    pub fn rtc_offer(&mut self, now: Instant) -> Result<(PeerId, String), NodeError> {
        self.has_rtc_room()?;
        Ok(self.host.offer(now)?)
    }

    /// The answer to an offer of ours.
    pub fn rtc_apply_answer(
        &mut self,
        now: Instant,
        peer: PeerId,
        answer: &str,
    ) -> Result<(), NodeError> {
        self.host.apply_answer(now, peer, answer)?;
        self.process(now);
        Ok(())
    }

    /// Opens a session to the session server `server` of the node at the other
    /// end of an offering peer (a data channel labelled so), in this node's one
    /// table and limit; the channel opens once the peer connects.
    /// `SessionOpened` or `OpenFailed` follows for the returned id.
    pub fn open_rtc_session(
        &mut self,
        now: Instant,
        peer: PeerId,
        server: &str,
    ) -> Result<SessionId, NodeError> {
        self.may_open(server)?;
        if !self.host.has_peer(peer) {
            return Err(HostError::UnknownPeer.into());
        }
        let id = self.allocate();
        self.opening.insert(
            id,
            Opening::Rtc {
                peer,
                label: server.to_owned(),
                channel: None,
            },
        );
        if self.connected.contains(&peer) {
            self.open_waiting_channels(now, peer);
        }
        self.process(now);
        Ok(id)
    }

    fn open_waiting_channels(&mut self, now: Instant, peer: PeerId) {
        let waiting: Vec<(SessionId, String)> = self
            .opening
            .iter()
            .filter_map(|(id, o)| match o {
                Opening::Rtc {
                    peer: p,
                    label,
                    channel: None,
                } if *p == peer => Some((*id, label.clone())),
                _ => None,
            })
            .collect();
        for (id, label) in waiting {
            match self.host.open_channel(now, peer, &label) {
                Ok(c) => {
                    if let Some(Opening::Rtc { channel, .. }) = self.opening.get_mut(&id) {
                        *channel = Some(c);
                    }
                }
                Err(e) => {
                    tracing::debug!(session = id.0, error = %e, "data channel not opened");
                    self.opening.remove(&id);
                    self.events.push_back(Event::OpenFailed {
                        session: id,
                        reason: SessionClosed::ChannelClosed,
                    });
                }
            }
        }
    }

    /// The driver connected (or failed to connect) a [`Transmit::Dial`].
    pub fn handle_dialed(&mut self, now: Instant, conn: ConnId, result: Result<(), String>) {
        self.bus.handle_dialed(now, conn, result);
        self.process(now);
    }

    /// Sends discovery requests to `targets`.
    pub fn start_discovery(&mut self, now: Instant, targets: Vec<std::net::SocketAddrV4>) {
        self.bus.start_discovery(now, targets);
        self.process(now);
    }

    /// Answers a WebRTC offer posted by `principal`: the peer and the answer
    /// SDP. Its sessions carry the principal's identity.
    pub fn rtc_answer(
        &mut self,
        now: Instant,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.has_rtc_room()?;
        let (peer, answer) = self.host.answer(now, offer)?;
        self.principals.insert(peer, principal);
        Ok((peer, answer))
    }

    /// The data-channel peers' budget (the relay's peers are not counted).
    fn has_rtc_room(&self) -> Result<(), NodeError> {
        let data_peers = self
            .host
            .peer_count()
            .saturating_sub(self.relay.peer_count());
        if data_peers >= self.limits.max_rtc_peers {
            return Err(NodeError::Rtc(softbus_rtc::host::HostError::TooManyPeers(
                self.limits.max_rtc_peers,
            )));
        }
        Ok(())
    }

    /// Answers an offer from a paired device that signed its DTLS fingerprint
    /// (node-to-node WebRTC): the peer, the answer, and our signature binding
    /// the answer's fingerprint to the offer's. The DTLS handshake then proves
    /// each side holds the certificate it signed for.
    pub fn rtc_answer_paired(
        &mut self,
        now: Instant,
        offer: &str,
        device_id: &str,
        signature: &[u8],
    ) -> Result<(PeerId, String, [u8; 64]), NodeError> {
        let offer_fp = sdp_fingerprint(offer).ok_or(NodeError::BadSignature)?;
        if !self.bus.verify_paired(
            device_id,
            &[RTC_OFFER_CONTEXT, offer_fp.as_bytes()],
            signature,
        ) {
            return Err(NodeError::BadSignature);
        }
        let (peer, answer) = self.rtc_answer(
            now,
            offer,
            Principal::Device {
                device_id: device_id.to_owned(),
            },
        )?;
        let answer_fp = sdp_fingerprint(&answer).ok_or(NodeError::BadSignature)?;
        let sig = self.bus.sign(&[
            RTC_ANSWER_CONTEXT,
            answer_fp.as_bytes(),
            offer_fp.as_bytes(),
        ])?;
        Ok((peer, answer, sig))
    }

    /// Client role: our signature of an offer of ours, for a paired node.
    pub fn rtc_sign_offer(&self, offer: &str) -> Result<[u8; 64], NodeError> {
        let fp = sdp_fingerprint(offer).ok_or(NodeError::BadSignature)?;
        Ok(self.bus.sign(&[RTC_OFFER_CONTEXT, fp.as_bytes()])?)
    }

    /// Client role: applies the answer of the paired node `device_id` to our
    /// `offer`, after checking its signature over both fingerprints.
    pub fn rtc_apply_answer_paired(
        &mut self,
        now: Instant,
        peer: PeerId,
        offer: &str,
        answer: &str,
        device_id: &str,
        signature: &[u8],
    ) -> Result<(), NodeError> {
        let (Some(offer_fp), Some(answer_fp)) = (sdp_fingerprint(offer), sdp_fingerprint(answer))
        else {
            return Err(NodeError::BadSignature);
        };
        if !self.bus.verify_paired(
            device_id,
            &[
                RTC_ANSWER_CONTEXT,
                answer_fp.as_bytes(),
                offer_fp.as_bytes(),
            ],
            signature,
        ) {
            return Err(NodeError::BadSignature);
        }
        self.rtc_apply_answer(now, peer, answer)?;
        self.answered_by.insert(peer, device_id.to_owned());
        Ok(())
    }

    /// WHIP: answers a publisher's offer for `stream` (receive only). A stream
    /// whose publisher left less than the grace period ago continues with it.
    pub fn whip(
        &mut self,
        now: Instant,
        stream: &str,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.admit_media(&principal)?;
        let (peer, answer) =
            self.relay
                .publish(now, &mut self.host, stream, offer, principal.clone())??;
        self.principals.insert(peer, principal);
        self.process(now);
        Ok((peer, answer))
    }

    /// WHEP: answers a viewer's offer for `stream` with its publisher's tracks
    /// (send only).
    pub fn whep(
        &mut self,
        now: Instant,
        stream: &str,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.admit_media(&principal)?;
        let (peer, answer) = self
            .relay
            .play(now, &mut self.host, stream, offer, &principal)??;
        self.principals.insert(peer, principal);
        self.process(now);
        Ok((peer, answer))
    }

    /// Who may publish or play media: the access policy, as for sessions.
    fn admit_media(&self, principal: &Principal) -> Result<(), NodeError> {
        if self.policy.paired_only
            && matches!(principal.method(), AuthMethod::Pin | AuthMethod::EmptyPin)
        {
            return Err(NodeError::Refused(Refusal::NotPaired));
        }
        Ok(())
    }

    /// The relay's streams, publishers and viewers.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.relay.streams()
    }

    /// Whether `by` created the peer connection `peer` and it is still there.
    pub fn rtc_owned_by(&self, peer: PeerId, by: &Principal) -> bool {
        self.host.has_peer(peer) && self.principals.get(&peer) == Some(by)
    }

    /// The principal that created an answered peer connection.
    pub fn rtc_principal(&self, peer: PeerId) -> Option<&Principal> {
        self.principals.get(&peer)
    }

    /// Closes a WebRTC peer connection and its sessions (the signaling side's
    /// `DELETE`); false if unknown.
    pub fn rtc_close(&mut self, now: Instant, peer: PeerId) -> bool {
        let closed = self.host.close(now, peer, CloseReason::Deleted);
        self.process(now);
        closed
    }

    /// `DELETE` by `by`: only the credential that created the peer connection
    /// may end it. Ok(false) if unknown.
    pub fn rtc_close_as(
        &mut self,
        now: Instant,
        peer: PeerId,
        by: &Principal,
    ) -> Result<bool, NodeError> {
        match self.principals.get(&peer) {
            Some(owner) if owner != by => Err(NodeError::NotOwner),
            // A peer we offered (node to node) has no principal: not theirs.
            None if self.host.has_peer(peer) => Err(NodeError::NotOwner),
            _ => Ok(self.rtc_close(now, peer)),
        }
    }

    /// Shutting down: every WebRTC peer is told (SCTP SHUTDOWN, DTLS
    /// close_notify) and every TCP connection closed. Flush the transmits after.
    pub fn shutdown(&mut self, now: Instant) {
        self.host.close_all(now);
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close_with(now, id, SessionClosed::Local);
        }
        self.process(now);
    }

    // ---- inside ----

    fn close_with(&mut self, now: Instant, id: SessionId, reason: SessionClosed) {
        let server = self
            .session(id)
            .map(|i| i.session.clone())
            .unwrap_or_default();
        let Some(e) = self.remove_session(&id) else {
            return;
        };
        match e.route {
            // The bus reports its own SessionClosed, which finds no entry then.
            Route::Tcp => {
                let _ = self.bus.close_session(id.0);
            }
            Route::Rtc { peer, channel } => {
                self.by_channel.remove(&(peer, channel));
                self.host.close_channel(now, peer, channel);
            }
        }
        self.events.push_back(Event::SessionClosed {
            session: id,
            server,
            reason,
            traffic: e.traffic,
        });
    }

    fn allocate(&mut self) -> SessionId {
        loop {
            self.next_session = if self.next_session == i32::MAX {
                1
            } else {
                self.next_session + 1
            };
            let id = SessionId(self.next_session);
            if !self.sessions.contains_key(&id) && !self.opening.contains_key(&id) {
                return id;
            }
        }
    }

    /// Moves every engine's output on, deciding what asks for a decision.
    fn process(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(r) = self.bus.poll_session_request() {
                progressed = true;
                let who = Authenticated::Device {
                    device_id: r.peer_device_id.clone(),
                    method: r.method,
                };
                match self.admit(Transport::Tcp, &who, r.peer.ip(), &r.server) {
                    Ok(()) => {
                        let id = self.allocate();
                        if let Ok(info) = self.bus.accept_session(now, r.conn, id.0) {
                            self.insert_session(
                                id,
                                Entry {
                                    rtc_info: None,
                                    route: Route::Tcp,
                                    outgoing: false,
                                    peer_key: Some(peer_key(&who)),
                                    address: Some(r.peer.ip()),
                                    discarded: 0,
                                    last_binary: true,
                                    traffic: Traffic::default(),
                                },
                            );
                            self.events.push_back(Event::SessionOpened(info));
                        }
                    }
                    Err(reason) => {
                        self.bus.refuse_session(r.conn, &reason.to_string());
                        self.events.push_back(Event::SessionRefused {
                            transport: Transport::Tcp,
                            server: r.server,
                            peer: Some(r.peer.ip()),
                            reason,
                        });
                    }
                }
            }
            while let Some(t) = self.bus.poll_transmit() {
                progressed = true;
                self.transmits.push_back(match t {
                    BusTransmit::Udp(d) => Transmit::Datagram {
                        socket: Socket::Discovery,
                        destination: SocketAddr::V4(d.dst),
                        payload: d.payload,
                    },
                    BusTransmit::Tcp { conn, bytes } => Transmit::Tcp { conn, bytes },
                    BusTransmit::Close { conn } => Transmit::Close { conn },
                    BusTransmit::Dial { conn, addr } => Transmit::Dial { conn, addr },
                });
            }
            while let Some(e) = self.bus.poll_event() {
                progressed = true;
                self.bus_event(now, e);
            }
            while let Some(e) = self.host.poll_event() {
                progressed = true;
                self.host_event(now, e);
            }
            for e in self.relay.drain_events() {
                progressed = true;
                self.events.push_back(Event::Media(e));
            }
            while let Some(t) = self.host.poll_transmit() {
                progressed = true;
                self.transmits.push_back(Transmit::Datagram {
                    socket: Socket::Rtc,
                    destination: t.destination,
                    payload: t.payload,
                });
            }
            if !progressed {
                break;
            }
        }
    }

    fn bus_event(&mut self, now: Instant, e: BusEvent) {
        match e {
            // A session we asked for opened; those we accepted are registered already.
            BusEvent::SessionOpened(info) => {
                let id = SessionId(info.session_id);
                if self.opening.remove(&id).is_some() {
                    self.insert_session(
                        id,
                        Entry {
                            rtc_info: None,
                            route: Route::Tcp,
                            outgoing: true,
                            peer_key: None,
                            address: None,
                            discarded: 0,
                            last_binary: true,
                            traffic: Traffic::default(),
                        },
                    );
                    self.events.push_back(Event::SessionOpened(info));
                }
            }
            BusEvent::ConnDropped { conn, ip, reason } => {
                self.fail_openings(
                    |o| *o == Opening::Tcp(conn),
                    SessionClosed::Connection(reason.clone()),
                );
                self.events
                    .push_back(Event::Bus(BusEvent::ConnDropped { conn, ip, reason }));
            }
            BusEvent::BytesReceived { session_id, data } => {
                self.received(now, SessionId(session_id), true, data)
            }
            BusEvent::SessionClosed {
                session_id,
                session,
                reason,
            } => {
                if let Some(e) = self.remove_session(&SessionId(session_id)) {
                    self.events.push_back(Event::SessionClosed {
                        session: SessionId(session_id),
                        server: session,
                        reason: SessionClosed::Connection(reason),
                        traffic: e.traffic,
                    });
                }
            }
            other => self.events.push_back(Event::Bus(other)),
        }
    }

    fn host_event(&mut self, now: Instant, e: HostEvent) {
        match e {
            HostEvent::Moved { peer, remote } => {
                for e in self.sessions.values_mut() {
                    if let (Route::Rtc { peer: p, .. }, Some(info)) = (e.route, e.rtc_info.as_mut())
                    {
                        if p == peer {
                            info.peer = remote;
                        }
                    }
                }
            }
            HostEvent::Connected { peer } if self.relay.has_peer(peer) => {
                self.relay.connected(now, &mut self.host, peer);
            }
            HostEvent::Connected { peer } => {
                self.connected.insert(peer);
                self.open_waiting_channels(now, peer);
            }
            HostEvent::Rtp { peer, packet } => self.relay.rtp(now, &mut self.host, peer, &packet),
            HostEvent::Rtcp { peer, packet } => self.relay.rtcp(now, &mut self.host, peer, &packet),
            HostEvent::ChannelOpen {
                peer,
                channel,
                label,
            } => {
                // A channel we opened and the other side acknowledged: our outgoing
                // session is up. Any other is the remote's request, decided here.
                let ours = self
                    .opening
                    .iter()
                    .find(|(_, o)| matches!(o, Opening::Rtc { peer: p, channel: Some(c), .. } if *p == peer && *c == channel))
                    .map(|(id, _)| *id);
                if let Some(id) = ours {
                    self.opening.remove(&id);
                    return self.add_rtc_session(id, peer, channel, label, true);
                }
                self.decide_channel(now, peer, channel, label);
            }
            HostEvent::Message {
                peer,
                channel,
                binary,
                data,
            } => {
                if let Some(id) = self.by_channel.get(&(peer, channel)).copied() {
                    self.received(now, id, binary, data);
                }
            }
            HostEvent::ChannelClosed { peer, channel } => {
                self.fail_openings(
                    |o| matches!(o, Opening::Rtc { peer: p, channel: Some(c), .. } if *p == peer && *c == channel),
                    SessionClosed::ChannelClosed,
                );
                if let Some(id) = self.by_channel.remove(&(peer, channel)) {
                    if let Some(e) = self.remove_session(&id) {
                        self.events.push_back(Event::SessionClosed {
                            session: id,
                            server: e.rtc_info.map(|i| i.session).unwrap_or_default(),
                            reason: SessionClosed::ChannelClosed,
                            traffic: e.traffic,
                        });
                    }
                }
            }
            HostEvent::PeerClosed { peer, reason } => {
                self.relay.closed(now, peer, &reason);
                self.connected.remove(&peer);
                self.fail_openings(
                    |o| matches!(o, Opening::Rtc { peer: p, .. } if *p == peer),
                    SessionClosed::PeerConnection(reason.clone()),
                );
                let ids: Vec<SessionId> = self
                    .by_channel
                    .iter()
                    .filter(|((p, _), _)| *p == peer)
                    .map(|(_, id)| *id)
                    .collect();
                for id in ids {
                    if let Some(e) = self.remove_session(&id) {
                        if let Route::Rtc { peer, channel } = e.route {
                            self.by_channel.remove(&(peer, channel));
                        }
                        self.events.push_back(Event::SessionClosed {
                            session: id,
                            server: e.rtc_info.map(|i| i.session).unwrap_or_default(),
                            reason: SessionClosed::PeerConnection(reason.clone()),
                            traffic: e.traffic,
                        });
                    }
                }
                self.principals.remove(&peer);
                self.answered_by.remove(&peer);
                self.events.push_back(Event::PeerClosed { peer, reason });
            }
        }
    }

    /// Into the table, counted for the peer that opened it.
    fn insert_session(&mut self, id: SessionId, e: Entry) {
        if let Some(k) = e.peer_key {
            *self.per_peer.entry(k).or_default() += 1;
        }
        if let Some(a) = e.address {
            *self.per_address.entry(a).or_default() += 1;
        }
        self.sessions.insert(id, e);
    }

    /// Out of the table, and out of its peer's count.
    fn remove_session(&mut self, id: &SessionId) -> Option<Entry> {
        let e = self.sessions.remove(id)?;
        if let Some(k) = e.peer_key {
            if let Some(n) = self.per_peer.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(&k);
                }
            }
        }
        if let Some(a) = e.address {
            if let Some(n) = self.per_address.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&a);
                }
            }
        }
        Some(e)
    }

    /// Sessions we asked for that match `which` will not open: `OpenFailed`.
    fn fail_openings(&mut self, which: impl Fn(&Opening) -> bool, reason: SessionClosed) {
        let failed: Vec<SessionId> = self
            .opening
            .iter()
            .filter(|(_, o)| which(o))
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            self.opening.remove(&id);
            self.events.push_back(Event::OpenFailed {
                session: id,
                reason: reason.clone(),
            });
        }
    }

    /// A session over a data channel, into the table.
    fn add_rtc_session(
        &mut self,
        id: SessionId,
        peer: PeerId,
        channel: ChannelId,
        label: String,
        outgoing: bool,
    ) {
        let principal = self.principals.get(&peer);
        // Our own offer: the paired node that signed the answer, or (offered
        // with the other node's web token) nobody we can name.
        let (peer_device_id, auth) = match (principal, self.answered_by.get(&peer)) {
            (Some(p), _) => (p.name().to_owned(), p.method()),
            (None, Some(device)) => (device.clone(), AuthMethod::Paired),
            (None, None) => (String::new(), AuthMethod::WebToken),
        };
        let info = SessionInfo {
            session_id: id.0,
            session: label,
            id: self.bus.id_proof(&peer_device_id, auth),
            peer_device_id,
            auth,
            peer: self
                .host
                .remote(peer)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            transport: Transport::WebRtc.as_str(),
        };
        self.by_channel.insert((peer, channel), id);
        self.insert_session(
            id,
            Entry {
                rtc_info: Some(Box::new(info.clone())),
                route: Route::Rtc { peer, channel },
                outgoing,
                peer_key: match (outgoing, principal) {
                    (false, Some(p)) => Some(peer_key(&Authenticated::Signaling {
                        peer,
                        principal: p.clone(),
                    })),
                    _ => None,
                },
                address: match (outgoing, principal) {
                    (false, Some(p)) if p.method() != AuthMethod::WebToken => Some(info.peer.ip()),
                    _ => None,
                },
                discarded: 0,
                last_binary: true,
                traffic: Traffic::default(),
            },
        );
        self.events.push_back(Event::SessionOpened(info));
    }

    /// The remote opened a data channel: accepted (ACKed) and bridged to the
    /// server its label names, or reset.
    fn decide_channel(&mut self, now: Instant, peer: PeerId, channel: ChannelId, label: String) {
        // A peer we offered to has no principal: the other node's services are
        // not ours to expose, and it may not open sessions here.
        let decision = match self.principals.get(&peer) {
            Some(p) => self.admit(
                Transport::WebRtc,
                &Authenticated::Signaling {
                    peer,
                    principal: p.clone(),
                },
                self.host
                    .remote(peer)
                    .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
                &label,
            ),
            None => Err(Refusal::NotPaired),
        };
        match decision {
            Ok(()) => {
                if let Err(e) = self.host.accept_channel(now, peer, channel) {
                    tracing::debug!(error = %e, "data channel gone before it was accepted");
                    return;
                }
                let id = self.allocate();
                self.add_rtc_session(id, peer, channel, label, false);
            }
            Err(reason) => {
                // A data channel has no refusal message: it is closed.
                self.host.close_channel(now, peer, channel);
                let remote = self.host.remote(peer).map(|a| a.ip());
                self.events.push_back(Event::SessionRefused {
                    transport: Transport::WebRtc,
                    server: label,
                    peer: remote,
                    reason,
                });
            }
        }
    }

    /// A message on a session: reported, then the built-in service answers.
    fn received(&mut self, now: Instant, id: SessionId, binary: bool, data: Vec<u8>) {
        let mode = match self.sessions.get(&id) {
            Some(e) if !e.outgoing => self
                .session(id)
                .and_then(|i| self.servers.get(&i.session))
                .copied(),
            _ => None,
        };
        let Some(e) = self.sessions.get_mut(&id) else {
            return;
        };
        e.last_binary = binary;
        e.traffic.bytes_in += data.len() as u64;
        let reply = match mode {
            Some(ServerMode::Echo) => Some(data.clone()),
            Some(ServerMode::Discard) => {
                if data.as_slice() == b"?" {
                    Some(e.discarded.to_string().into_bytes())
                } else {
                    e.discarded += data.len() as u64;
                    None
                }
            }
            Some(ServerMode::App) | None => None,
        };
        self.events.push_back(Event::BytesReceived {
            session: id,
            binary,
            data,
        });
        if let Some(r) = reply {
            if let Err(err) = self.send_as(now, id, binary, &r) {
                tracing::debug!(session = id.0, error = %err, "built-in server reply failed");
            }
        }
    }
}
