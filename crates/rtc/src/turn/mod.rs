//! A TURN client (RFC 8656) for one allocation, sans-IO.
//!
//! The client allocates a relayed UDP address on a TURN server over UDP or
//! TCP, answers the server's 401 with long-term credentials (RFC 8489 §9.2)
//! and its 438 with the fresh nonce, refreshes the allocation, the
//! permissions and the channel bindings before they expire, and carries
//! datagrams to and from peers: as ChannelData once a channel is bound (every
//! peer gets one on first send), as Data indications the other way until then.
//!
//! Everything the client writes goes to its server: [`TurnClient::poll_transmit`]
//! gives the bytes. Over UDP a request is retransmitted with backoff (RFC 8489
//! §6.2.1); over TCP it is sent once and given 39.5 s. Input is a datagram
//! ([`TurnClient::handle_datagram`]) or stream bytes ([`TurnClient::handle_stream`]).

pub mod server;

use crate::crypto::Hmac;
use crate::stun::{attr, Class, Message, MessageBuilder, StunError};
use crate::stun::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA_METHOD, REFRESH};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// First retransmission timeout over UDP; doubled per try.
pub const RTO: Duration = Duration::from_millis(500);
/// Transmissions of a request over UDP (RFC 8489 §6.2.1's Rc).
pub const MAX_TRIES: u32 = 7;
/// How long a request waits over TCP (RFC 8489 §6.2.2's Ti).
pub const TCP_TIMEOUT: Duration = Duration::from_millis(39_500);
/// A permission lasts 300 s at the server (RFC 8656 §9); refreshed this often while used.
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// A channel binding lasts 600 s (RFC 8656 §12); refreshed this often while used.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(540);
/// A permission or channel unused this long is let go.
pub const IDLE: Duration = Duration::from_secs(300);
/// Peers (permissions and channels) held at most.
pub const MAX_PEERS: usize = 256;
/// Datagrams waiting for one peer's channel at most.
pub const MAX_WAITING: usize = 8;
/// Bytes queued for the server at most.
pub const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// Stream bytes buffered at most (one ChannelData or message and its padding).
pub const MAX_STREAM_BUFFER: usize = 4 + 65_535 + 3;
/// Largest STUN message accepted from the server (a Data indication of a full datagram).
pub const MAX_TURN_MESSAGE: usize = 65_535;
/// Stale-nonce retries of one request.
const MAX_STALE: u8 = 3;
/// First channel number (RFC 8656 §12).
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;

/// How the client reaches its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnTransport {
    Udp,
    Tcp,
}

/// What the client is given.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub server: SocketAddr,
    pub transport: TurnTransport,
    pub username: String,
    pub password: String,
}

/// Why the allocation failed or a datagram was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    #[error("STUN: {0}")]
    Stun(#[from] StunError),
    #[error("the TURN server refused the credentials (401 after authenticating)")]
    Unauthorized,
    #[error("the TURN server holds another allocation for this address (437)")]
    AllocationMismatch,
    #[error("the TURN server forgot the allocation (437)")]
    AllocationLost,
    #[error("the TURN server's allocation quota is reached (486)")]
    QuotaReached,
    #[error("the TURN server has no capacity (508)")]
    InsufficientCapacity,
    #[error("the TURN server forbids it (403)")]
    Forbidden,
    #[error("the TURN server answered {code} {reason}")]
    Server { code: u16, reason: String },
    #[error("the TURN server did not answer")]
    Timeout,
    #[error("malformed answer from the TURN server: {0}")]
    BadResponse(&'static str),
    #[error("no allocation")]
    NotAllocated,
    #[error("peer limit of {MAX_PEERS} reached")]
    TooManyPeers,
    #[error("TURN stream framing: {0}")]
    Framing(&'static str),
}

/// What the client reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The relayed address is ready (again, after a loss: possibly another one).
    Allocated {
        relayed: SocketAddr,
        /// The client's address as the server saw it (a server-reflexive candidate).
        mapped: SocketAddr,
        lifetime: Duration,
    },
    /// The allocation failed or is gone; the client stopped.
    Failed(TurnError),
}

/// Where the allocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnState {
    Idle,
    Allocating,
    Allocated {
        relayed: SocketAddr,
        mapped: SocketAddr,
    },
    Closed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Allocate,
    Refresh(u32),
    Permission(Vec<IpAddr>),
    Bind { peer: SocketAddr, number: u16 },
}

#[derive(Debug)]
struct Txn {
    kind: Kind,
    bytes: Vec<u8>,
    next: Instant,
    deadline: Instant,
    tries: u32,
    stale: u8,
}

#[derive(Debug)]
struct Peer {
    /// The permission's refresh is due then (`None`: not installed yet).
    permission_due: Option<Instant>,
    permission_pending: bool,
    channel: u16,
    /// The binding's refresh is due then (`None`: not bound yet).
    bound_due: Option<Instant>,
    bind_pending: bool,
    waiting: VecDeque<Vec<u8>>,
    last_used: Instant,
}

/// Long-term credential state learnt from the server's 401.
#[derive(Debug, Clone)]
struct Auth {
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: [u8; 16],
}

/// A TURN client for one allocation.
pub struct TurnClient {
    cfg: TurnConfig,
    state: TurnState,
    auth: Option<Auth>,
    pending: HashMap<[u8; 12], Txn>,
    peers: HashMap<IpAddr, HashMap<u16, Peer>>,
    by_channel: HashMap<u16, SocketAddr>,
    next_channel: u16,
    refresh_at: Option<Instant>,
    /// A 437 to our Allocate was answered by deleting the stale allocation once.
    cleared_mismatch: bool,
    random: Box<dyn FnMut() -> [u8; 12] + Send>,
    transmits: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    events: VecDeque<TurnEvent>,
    stream: Vec<u8>,
    /// Datagrams lost to full queues or missing channels.
    dropped: u64,
}

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient")
            .field("server", &self.cfg.server)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A datagram a peer sent to the relayed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed<'a> {
    pub peer: SocketAddr,
    pub payload: &'a [u8],
}

/// Whether bytes start a ChannelData message (RFC 7983: first byte 64..=79).
pub fn is_channel_data(b: &[u8]) -> bool {
    b.first().is_some_and(|x| (0x40..=0x4F).contains(x))
}

impl TurnClient {
    /// A client; `random` makes transaction ids. Nothing is sent before [`TurnClient::start`].
    pub fn new(cfg: TurnConfig, random: Box<dyn FnMut() -> [u8; 12] + Send>) -> Self {
        Self {
            cfg,
            state: TurnState::Idle,
            auth: None,
            pending: HashMap::new(),
            peers: HashMap::new(),
            by_channel: HashMap::new(),
            next_channel: FIRST_CHANNEL,
            refresh_at: None,
            cleared_mismatch: false,
            random,
            transmits: VecDeque::new(),
            queued_bytes: 0,
            events: VecDeque::new(),
            stream: Vec::new(),
            dropped: 0,
        }
    }

    /// The server's address.
    pub fn server(&self) -> SocketAddr {
        self.cfg.server
    }

    /// How the server is reached.
    pub fn transport(&self) -> TurnTransport {
        self.cfg.transport
    }

    /// Where the allocation stands.
    pub fn state(&self) -> TurnState {
        self.state
    }

    /// The relayed address, once allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            TurnState::Allocated { relayed, .. } => Some(relayed),
            _ => None,
        }
    }

    /// Datagrams dropped (queues full, or to a peer whose channel did not bind).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Sends the first Allocate (unauthenticated: the server's 401 names the realm).
    pub fn start(&mut self, now: Instant, h: &dyn Hmac) {
        if self.state == TurnState::Idle {
            self.state = TurnState::Allocating;
            self.request(now, Kind::Allocate, 0, h);
        }
    }

    /// Deletes the allocation (a Refresh with LIFETIME 0) and stops.
    pub fn close(&mut self, now: Instant, h: &dyn Hmac) {
        if matches!(self.state, TurnState::Allocated { .. }) {
            self.pending.clear();
            self.request(now, Kind::Refresh(0), 0, h);
        }
        self.peers.clear();
        self.by_channel.clear();
        self.refresh_at = None;
        self.state = TurnState::Closed;
    }

    fn fail(&mut self, e: TurnError) {
        tracing::warn!(server = %self.cfg.server, error = %e, "TURN allocation failed");
        self.pending.clear();
        self.peers.clear();
        self.by_channel.clear();
        self.refresh_at = None;
        self.state = TurnState::Failed;
        self.events.push_back(TurnEvent::Failed(e));
    }

    fn build(&mut self, kind: &Kind, tid: [u8; 12], h: &dyn Hmac) -> Vec<u8> {
        let method = match kind {
            Kind::Allocate => ALLOCATE,
            Kind::Refresh(_) => REFRESH,
            Kind::Permission(_) => CREATE_PERMISSION,
            Kind::Bind { .. } => CHANNEL_BIND,
        };
        let mut b = MessageBuilder::new(Class::Request, method, tid);
        match kind {
            Kind::Allocate => {
                // UDP relaying (protocol 17).
                b = b.attribute(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
            }
            Kind::Refresh(lifetime) => b = b.attribute(attr::LIFETIME, &lifetime.to_be_bytes()),
            Kind::Permission(ips) => {
                for ip in ips {
                    b = b.xor_address(attr::XOR_PEER_ADDRESS, SocketAddr::new(*ip, 0));
                }
            }
            Kind::Bind { peer, number } => {
                b = b
                    .attribute(
                        attr::CHANNEL_NUMBER,
                        &[(number >> 8) as u8, *number as u8, 0, 0],
                    )
                    .xor_address(attr::XOR_PEER_ADDRESS, *peer);
            }
        }
        match &self.auth {
            Some(a) => b
                .attribute(attr::USERNAME, self.cfg.username.as_bytes())
                .attribute(attr::REALM, &a.realm)
                .attribute(attr::NONCE, &a.nonce)
                .message_integrity(h, &a.key)
                .fingerprint(),
            None => b.fingerprint(),
        }
    }

    fn request(&mut self, now: Instant, kind: Kind, stale: u8, h: &dyn Hmac) {
        let tid = (self.random)();
        let bytes = self.build(&kind, tid, h);
        self.queue(bytes.clone());
        let (next, deadline) = match self.cfg.transport {
            // RFC 8489 §6.2.1: 7 sends, 0.5+1+2+4+8+16 s apart, then 16 RTO: 39.5 s.
            TurnTransport::Udp => (now + RTO, now + RTO * 79),
            TurnTransport::Tcp => (now + TCP_TIMEOUT, now + TCP_TIMEOUT),
        };
        self.pending.insert(
            tid,
            Txn {
                kind,
                bytes,
                next,
                deadline,
                tries: 1,
                stale,
            },
        );
    }

    fn queue(&mut self, bytes: Vec<u8>) -> bool {
        if self.queued_bytes + bytes.len() > MAX_QUEUED_BYTES {
            self.dropped += 1;
            return false;
        }
        self.queued_bytes += bytes.len();
        self.transmits.push_back(bytes);
        true
    }

    /// Lets `ip` send to the relayed address (a remote candidate's address),
    /// before anything is sent to it.
    pub fn permit(&mut self, now: Instant, ip: IpAddr, h: &dyn Hmac) -> Result<(), TurnError> {
        if !matches!(self.state, TurnState::Allocated { .. }) {
            return Err(TurnError::NotAllocated);
        }
        let known = self.peers.contains_key(&ip);
        if !known && self.peer_count() >= MAX_PEERS {
            return Err(TurnError::TooManyPeers);
        }
        let ports = self.peers.entry(ip).or_default();
        let installing = ports
            .values()
            .any(|p| p.permission_due.is_some() || p.permission_pending);
        // Port 0 holds the permission of an address nothing was sent to yet.
        let p = ports.entry(0).or_insert_with(|| Peer::new(0, now));
        p.last_used = now;
        if !installing {
            p.permission_pending = true;
            self.request(now, Kind::Permission(vec![ip]), 0, h);
        }
        Ok(())
    }

    fn peer_count(&self) -> usize {
        self.peers.values().map(HashMap::len).sum()
    }

    /// Sends `payload` to `peer` through the relay: as ChannelData once the
    /// peer's channel is bound; until then it waits (at most [`MAX_WAITING`]).
    pub fn send(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        payload: &[u8],
        h: &dyn Hmac,
    ) -> Result<(), TurnError> {
        if !matches!(self.state, TurnState::Allocated { .. }) {
            return Err(TurnError::NotAllocated);
        }
        let tcp = self.cfg.transport == TurnTransport::Tcp;
        if let Some(p) = self
            .peers
            .get_mut(&peer.ip())
            .and_then(|m| m.get_mut(&peer.port()))
        {
            p.last_used = now;
            if p.bound_due.is_some() {
                let frame = channel_data(p.channel, payload, tcp);
                self.queue(frame);
                return Ok(());
            }
            if p.waiting.len() >= MAX_WAITING {
                self.dropped += 1;
            } else {
                p.waiting.push_back(payload.to_vec());
            }
            return Ok(());
        }
        if self.peer_count() >= MAX_PEERS || self.next_channel > LAST_CHANNEL {
            return Err(TurnError::TooManyPeers);
        }
        let number = self.next_channel;
        self.next_channel += 1;
        let mut p = Peer::new(number, now);
        p.waiting.push_back(payload.to_vec());
        p.bind_pending = true;
        self.peers
            .entry(peer.ip())
            .or_default()
            .insert(peer.port(), p);
        self.by_channel.insert(number, peer);
        self.request(now, Kind::Bind { peer, number }, 0, h);
        Ok(())
    }

    /// A datagram from the server (UDP). Relayed data comes back borrowed;
    /// responses and errors advance the allocation.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
        h: &dyn Hmac,
    ) -> Result<Option<Relayed<'a>>, TurnError> {
        if is_channel_data(data) {
            return self.channel_in(now, data);
        }
        let m = Message::parse_up_to(data, MAX_TURN_MESSAGE)?;
        if m.class() == Class::Indication && m.method() == DATA_METHOD {
            let peer = m.xor_address(attr::XOR_PEER_ADDRESS)?;
            let payload = m.get(attr::DATA).ok_or(StunError::Missing)?;
            if !self.peers.contains_key(&peer.ip()) {
                return Err(TurnError::BadResponse(
                    "data from a peer with no permission",
                ));
            }
            self.touch(now, peer);
            return Ok(Some(Relayed { peer, payload }));
        }
        self.response(now, &m, h)?;
        Ok(None)
    }

    /// Bytes from the server's TCP stream; every relayed datagram they complete
    /// is given to `deliver`. A framing error means the stream is unusable.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        bytes: &[u8],
        h: &dyn Hmac,
        deliver: &mut dyn FnMut(SocketAddr, &[u8]),
    ) -> Result<(), TurnError> {
        if self.stream.len() + bytes.len() > MAX_STREAM_BUFFER + 65_536 {
            return Err(TurnError::Framing("stream buffer full"));
        }
        self.stream.extend_from_slice(bytes);
        let mut buf = std::mem::take(&mut self.stream);
        let mut at = 0;
        let mut result = Ok(());
        loop {
            let len = match frame_len(&buf[at..]) {
                Ok(Some(len)) if buf.len() - at >= len => len,
                Ok(_) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let frame = &buf[at..at + len];
            at += len;
            match self.handle_datagram(now, frame, h) {
                Ok(Some(r)) => deliver(r.peer, r.payload),
                Ok(None) => {}
                // One bad frame costs only itself: the framing held.
                Err(e) => tracing::debug!(error = %e, "TURN frame dropped"),
            }
        }
        buf.drain(..at);
        self.stream = buf;
        result
    }

    fn channel_in<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
    ) -> Result<Option<Relayed<'a>>, TurnError> {
        if data.len() < 4 {
            return Err(TurnError::BadResponse("short ChannelData"));
        }
        let number = u16::from_be_bytes([data[0], data[1]]);
        let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        let payload = data
            .get(4..4 + len)
            .ok_or(TurnError::BadResponse("ChannelData length"))?;
        let peer = *self
            .by_channel
            .get(&number)
            .ok_or(TurnError::BadResponse("unknown channel"))?;
        self.touch(now, peer);
        Ok(Some(Relayed { peer, payload }))
    }

    fn touch(&mut self, now: Instant, peer: SocketAddr) {
        if let Some(m) = self.peers.get_mut(&peer.ip()) {
            for p in m.values_mut() {
                p.last_used = now;
            }
        }
    }

    fn response(&mut self, now: Instant, m: &Message<'_>, h: &dyn Hmac) -> Result<(), TurnError> {
        if !matches!(m.class(), Class::Success | Class::Error) {
            return Err(TurnError::BadResponse("not a response"));
        }
        let tid = m.transaction_id();
        if !self.pending.contains_key(&tid) {
            return Err(TurnError::BadResponse("no such transaction"));
        }
        if m.class() == Class::Success {
            // A response to an authenticated request must prove the server knows the key.
            if let Some(a) = &self.auth {
                m.verify_integrity(h, &a.key)?;
            }
            let t = self.pending.remove(&tid).expect("checked above");
            return self.success(now, t.kind, m, h);
        }
        let (code, reason) = m.error_code()?;
        let t = self.pending.remove(&tid).expect("checked above");
        match code {
            401 if self.auth.is_none() => {
                let realm = m
                    .get(attr::REALM)
                    .ok_or(TurnError::BadResponse("401 without REALM"))?;
                let nonce = m
                    .get(attr::NONCE)
                    .ok_or(TurnError::BadResponse("401 without NONCE"))?;
                let key = h.md5(&[
                    self.cfg.username.as_bytes(),
                    b":",
                    realm,
                    b":",
                    self.cfg.password.as_bytes(),
                ]);
                self.auth = Some(Auth {
                    realm: realm.to_vec(),
                    nonce: nonce.to_vec(),
                    key,
                });
                self.request(now, t.kind, t.stale, h);
                Ok(())
            }
            438 if t.stale < MAX_STALE => {
                let nonce = m
                    .get(attr::NONCE)
                    .ok_or(TurnError::BadResponse("438 without NONCE"))?;
                if let Some(a) = self.auth.as_mut() {
                    a.nonce = nonce.to_vec();
                }
                self.request(now, t.kind, t.stale + 1, h);
                Ok(())
            }
            437 if t.kind == Kind::Allocate && !self.cleared_mismatch && self.auth.is_some() => {
                // A previous run on this address left an allocation: delete it, then allocate.
                self.cleared_mismatch = true;
                self.request(now, Kind::Refresh(0), 0, h);
                Ok(())
            }
            _ => {
                let e = match code {
                    401 => TurnError::Unauthorized,
                    403 => TurnError::Forbidden,
                    437 if t.kind == Kind::Allocate => TurnError::AllocationMismatch,
                    437 => TurnError::AllocationLost,
                    486 => TurnError::QuotaReached,
                    508 => TurnError::InsufficientCapacity,
                    _ => TurnError::Server {
                        code,
                        reason: reason.chars().take(128).collect(),
                    },
                };
                match (&t.kind, &e) {
                    (Kind::Refresh(0), _)
                        if self.cleared_mismatch && self.state == TurnState::Allocating =>
                    {
                        // The stale allocation was already gone: allocate anyway.
                        self.request(now, Kind::Allocate, 0, h);
                    }
                    (Kind::Refresh(0), _) => {}
                    (Kind::Bind { peer, .. }, TurnError::Server { .. } | TurnError::Forbidden) => {
                        // One peer's refusal costs only that peer.
                        self.forget(*peer);
                    }
                    (Kind::Permission(_), TurnError::Server { .. } | TurnError::Forbidden) => {}
                    _ => self.fail(e.clone()),
                }
                Err(e)
            }
        }
    }

    fn success(
        &mut self,
        now: Instant,
        kind: Kind,
        m: &Message<'_>,
        h: &dyn Hmac,
    ) -> Result<(), TurnError> {
        match kind {
            Kind::Allocate => {
                let relayed = m.xor_address(attr::XOR_RELAYED_ADDRESS)?;
                let mapped = m.xor_address(attr::XOR_MAPPED_ADDRESS)?;
                let lifetime = lifetime_of(m)?;
                self.state = TurnState::Allocated { relayed, mapped };
                self.refresh_at = Some(now + refresh_after(lifetime));
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped,
                    lifetime,
                });
            }
            Kind::Refresh(0) => {
                if self.state == TurnState::Allocating {
                    // The stale allocation is gone; now ours.
                    self.request(now, Kind::Allocate, 0, h);
                }
            }
            Kind::Refresh(_) => {
                let lifetime = lifetime_of(m)?;
                self.refresh_at = Some(now + refresh_after(lifetime));
            }
            Kind::Permission(ips) => {
                for ip in ips {
                    if let Some(ports) = self.peers.get_mut(&ip) {
                        for p in ports.values_mut() {
                            p.permission_pending = false;
                            p.permission_due = Some(now + PERMISSION_REFRESH);
                        }
                    }
                }
            }
            Kind::Bind { peer, number } => {
                let tcp = self.cfg.transport == TurnTransport::Tcp;
                let Some(p) = self
                    .peers
                    .get_mut(&peer.ip())
                    .and_then(|m| m.get_mut(&peer.port()))
                else {
                    return Ok(());
                };
                p.bind_pending = false;
                p.bound_due = Some(now + CHANNEL_REFRESH);
                // A binding installs the address's permission too (RFC 8656 §12).
                p.permission_due = Some(now + PERMISSION_REFRESH);
                let waiting: Vec<Vec<u8>> = p.waiting.drain(..).collect();
                for d in waiting {
                    let frame = channel_data(number, &d, tcp);
                    self.queue(frame);
                }
            }
        }
        Ok(())
    }

    /// Stops relaying to and from `peer` (its channel is let go).
    pub fn forget(&mut self, peer: SocketAddr) {
        if let Some(m) = self.peers.get_mut(&peer.ip()) {
            if let Some(p) = m.remove(&peer.port()) {
                self.by_channel.remove(&p.channel);
            }
            if m.is_empty() {
                self.peers.remove(&peer.ip());
            }
        }
    }

    /// Retransmissions, timeouts, and the refreshes that are due.
    pub fn handle_timeout(&mut self, now: Instant, h: &dyn Hmac) {
        let due: Vec<[u8; 12]> = self
            .pending
            .iter()
            .filter(|(_, t)| t.next <= now)
            .map(|(k, _)| *k)
            .collect();
        for tid in due {
            let Some(t) = self.pending.get_mut(&tid) else {
                continue;
            };
            let udp = self.cfg.transport == TurnTransport::Udp;
            if !udp || t.tries >= MAX_TRIES || t.deadline <= now {
                if t.next < t.deadline && udp && t.tries >= MAX_TRIES {
                    // After the last transmission, wait out the final interval.
                    t.next = t.deadline;
                    continue;
                }
                let t = self.pending.remove(&tid).expect("looked up above");
                match t.kind {
                    Kind::Refresh(0) if self.state != TurnState::Allocating => {}
                    Kind::Bind { peer, .. } => self.forget(peer),
                    Kind::Permission(ips) => {
                        for ip in ips {
                            if let Some(ports) = self.peers.get_mut(&ip) {
                                ports
                                    .values_mut()
                                    .for_each(|p| p.permission_pending = false);
                            }
                        }
                    }
                    _ => self.fail(TurnError::Timeout),
                }
                continue;
            }
            t.tries += 1;
            let wait = RTO * 2u32.pow(t.tries - 1);
            t.next = if t.tries >= MAX_TRIES {
                // Rm = 16: the last transmission waits 16 RTO.
                (now + RTO * 16).min(t.deadline)
            } else {
                now + wait
            };
            let bytes = t.bytes.clone();
            self.queue(bytes);
        }
        if !matches!(self.state, TurnState::Allocated { .. }) {
            return;
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.request(now, Kind::Refresh(600), 0, h);
        }
        // Let go of what was not used, refresh what was.
        let mut idle = Vec::new();
        let mut permit = Vec::new();
        let mut rebind = Vec::new();
        for (ip, ports) in &mut self.peers {
            for (port, p) in ports.iter_mut() {
                if now.saturating_duration_since(p.last_used) >= IDLE {
                    idle.push(SocketAddr::new(*ip, *port));
                    continue;
                }
                if p.bound_due.is_some_and(|t| t <= now) && !p.bind_pending {
                    p.bind_pending = true;
                    p.bound_due = Some(now + CHANNEL_REFRESH);
                    rebind.push((SocketAddr::new(*ip, *port), p.channel));
                }
            }
            let due = ports
                .values()
                .any(|p| p.permission_due.is_some_and(|t| t <= now) && !p.permission_pending);
            if due && !permit.contains(ip) {
                permit.push(*ip);
                for p in ports.values_mut() {
                    p.permission_pending = true;
                }
            }
        }
        for a in idle {
            self.forget(a);
        }
        permit.retain(|ip| self.peers.contains_key(ip));
        if !permit.is_empty() {
            self.request(now, Kind::Permission(permit), 0, h);
        }
        for (peer, number) in rebind {
            self.request(now, Kind::Bind { peer, number }, 0, h);
        }
    }

    /// The next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retx = self.pending.values().map(|t| t.next).min();
        let refresh = self.peers.values().flat_map(|m| m.values()).flat_map(|p| {
            [
                p.permission_due.filter(|_| !p.permission_pending),
                p.bound_due.filter(|_| !p.bind_pending),
                Some(p.last_used + IDLE),
            ]
        });
        [retx, self.refresh_at]
            .into_iter()
            .flatten()
            .chain(refresh.flatten())
            .min()
    }

    /// The next bytes for the server (a datagram over UDP, a frame of the stream over TCP).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let b = self.transmits.pop_front()?;
        self.queued_bytes -= b.len();
        Some(b)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }
}

impl Peer {
    fn new(channel: u16, now: Instant) -> Self {
        Self {
            permission_due: None,
            permission_pending: false,
            channel,
            bound_due: None,
            bind_pending: false,
            waiting: VecDeque::new(),
            last_used: now,
        }
    }
}

/// A ChannelData message; over TCP padded to a multiple of four (RFC 8656 §12.5).
pub fn channel_data(number: u16, payload: &[u8], tcp: bool) -> Vec<u8> {
    let len = payload.len().min(usize::from(u16::MAX));
    let pad = if tcp { len.div_ceil(4) * 4 - len } else { 0 };
    let mut v = Vec::with_capacity(4 + len + pad);
    v.extend_from_slice(&number.to_be_bytes());
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&payload[..len]);
    v.resize(4 + len + pad, 0);
    v
}

/// The length of the frame at the start of a TURN TCP stream: `Ok(None)`
/// until enough of its header is in, an error for bytes that start neither a
/// STUN message nor ChannelData.
pub fn frame_len(b: &[u8]) -> Result<Option<usize>, TurnError> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    if (0x40..=0x4F).contains(&first) {
        if b.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        return Ok(Some(4 + len.div_ceil(4) * 4));
    }
    if first >= 4 {
        return Err(TurnError::Framing("neither STUN nor ChannelData"));
    }
    if b.len() < 8 {
        return Ok(None);
    }
    if b[4..8] != crate::stun::MAGIC_COOKIE.to_be_bytes() {
        return Err(TurnError::Framing("STUN without the magic cookie"));
    }
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    Ok(Some(crate::stun::HEADER_LEN + len))
}

fn lifetime_of(m: &Message<'_>) -> Result<Duration, TurnError> {
    let v = m
        .get(attr::LIFETIME)
        .ok_or(TurnError::BadResponse("no LIFETIME"))?;
    let s: [u8; 4] = v
        .try_into()
        .map_err(|_| TurnError::BadResponse("LIFETIME length"))?;
    Ok(Duration::from_secs(u64::from(u32::from_be_bytes(s))))
}

/// Refresh a minute before expiry, or at half the lifetime when it is short.
fn refresh_after(lifetime: Duration) -> Duration {
    if lifetime > Duration::from_secs(120) {
        lifetime - Duration::from_secs(60)
    } else {
        lifetime / 2
    }
}
