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

mod admission;
pub mod fuzzing;
mod gateway;
pub mod media;
mod offers;
mod sessions;
mod types;

use admission::*;
use gateway::Gateway;
pub use gateway::{
    GatewayDevice, GatewayPins, GatewayRefusal, MAX_GATEWAY_EARLY_BYTES, MAX_GATEWAY_OPENING,
};
use media::Relay;
pub use media::{MediaEvent, MediaLimits, MediaRefusal, MediaTransmit, StreamInfo, ViewerInfo};
pub use offers::{Ending, OfferAs, OurOffer};
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
pub use types::*;

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
    /// Channels bridged to devices' sessions.
    gateway: Gateway,
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
    pub fn new(bus: Bus, mut host: Host, limits: Limits) -> Self {
        let seed = u64::from(host.random_u32()) << 32 | u64::from(host.random_u32());
        Self {
            bus,
            host,
            relay: Relay::new(limits.media.clone(), seed),
            gateway: Gateway::default(),
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

    /// Bytes arrived on `conn` (the soft bus's, or a TURN relay's over TCP).
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.host.owns_conn(conn) {
            self.host.handle_tcp_data(now, conn, data);
        } else {
            // An unknown connection was closed by the engine already; nothing to do.
            let _ = self.bus.handle_tcp_data(now, conn, data);
        }
        self.process(now);
    }

    /// The peer closed `conn`, or the socket failed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        if self.host.owns_conn(conn) {
            self.host.handle_tcp_closed(now, conn);
        } else {
            self.bus.handle_tcp_closed(now, conn);
        }
        self.process(now);
    }

    /// Timers of every engine.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.bus.handle_timeout(now);
        self.host.handle_timeout(now);
        self.relay.handle_timeout(now);
        self.process(now);
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        softbus_proto::earliest(
            softbus_proto::earliest(self.bus.poll_timeout(), self.host.poll_timeout()),
            self.relay.poll_timeout(),
        )
    }

    /// The address discovery datagrams leave from ([`Datagram::source`]):
    /// the driver sends those from its discovery socket.
    pub fn discovery_source(&self) -> SocketAddr {
        SocketAddr::V4(self.bus.discovery().source())
    }

    /// The address WebRTC datagrams leave from: the driver sends those from
    /// its WebRTC socket.
    pub fn rtc_source(&self) -> SocketAddr {
        self.host.local()
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

    /// The driver connected (or failed to connect) a [`Transmit::Dial`].
    pub fn handle_dialed(
        &mut self,
        now: Instant,
        conn: ConnId,
        result: Result<(), std::io::ErrorKind>,
    ) {
        if self.host.owns_conn(conn) {
            self.host.handle_dialed(now, conn, result.is_ok());
        } else {
            self.bus.handle_dialed(now, conn, result);
        }
        self.process(now);
    }

    /// Sends discovery requests to `targets`.
    pub fn start_discovery(&mut self, now: Instant, targets: Vec<std::net::SocketAddrV4>) {
        self.bus.start_discovery(now, targets);
        self.process(now);
    }

    /// The relay's streams, publishers and viewers.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.relay.streams()
    }

    /// Starts gathering candidates from the configured ICE servers (STUN,
    /// TURN); without any, nothing happens and answers stay ICE-lite.
    pub fn start_ice(&mut self, now: Instant) {
        self.host.start_gathering(now);
        self.process(now);
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
                match self.admit(
                    Transport::Tcp,
                    &who,
                    Some(r.peer.ip()),
                    Ask::Session(&r.server),
                ) {
                    Ok(()) => {
                        let id = self.allocate();
                        if let Ok(info) = self.bus.accept_session(now, r.conn, id) {
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
                        self.bus.refuse_session(r.conn, reason.clone());
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
                self.transmits.push_back(t);
            }
            // TURN relays reached over TCP.
            while let Some(t) = self.host.poll_tcp() {
                progressed = true;
                self.transmits.push_back(t);
            }
            while let Some(e) = self.bus.poll_event() {
                progressed = true;
                self.bus_event(now, e);
            }
            while let Some(e) = self.host.poll_event() {
                progressed = true;
                self.host_event(now, e);
            }
            for id in self.gateway.take_unbridged() {
                progressed = true;
                self.close_with(now, id, SessionClosed::OtherEnd);
            }
            while let Some(e) = self.relay.poll_event() {
                progressed = true;
                self.events.push_back(Event::Media(e));
            }
            while let Some(t) = self.relay.poll_transmit() {
                progressed = true;
                self.media_transmit(now, t);
            }
            while let Some(t) = self.host.poll_transmit() {
                progressed = true;
                self.transmits.push_back(Transmit::Datagram(t));
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
                let id = info.session_id;
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
                    self.gateway_opened(now, id);
                } else if !self.sessions.contains_key(&id) {
                    // An open nobody waits for any more (its gateway channel
                    // went away first): it is closed, not kept.
                    let _ = self.bus.close_session(id);
                }
            }
            BusEvent::ConnDropped { conn, ip, reason } => {
                let failed: Vec<SessionId> = self
                    .opening
                    .iter()
                    .filter(|(_, o)| **o == Opening::Tcp(conn))
                    .map(|(id, _)| *id)
                    .collect();
                self.fail_openings(
                    |o| *o == Opening::Tcp(conn),
                    SessionClosed::Connection(reason.clone()),
                );
                for id in failed {
                    self.gateway_open_failed(now, id, SessionClosed::Connection(reason.clone()));
                }
                self.gateway_conn_dropped(now, conn, &reason);
                self.events
                    .push_back(Event::Bus(BusEvent::ConnDropped { conn, ip, reason }));
            }
            BusEvent::BytesReceived { session_id, data } => {
                self.received(now, session_id, true, data)
            }
            BusEvent::SessionClosed {
                session_id,
                session,
                reason,
            } => {
                if let Some(e) = self.remove_session(&session_id) {
                    self.events.push_back(Event::SessionClosed {
                        session: session_id,
                        server: session,
                        reason: SessionClosed::Connection(reason),
                        traffic: e.traffic,
                    });
                }
            }
            other => {
                let authenticated = match &other {
                    BusEvent::Authenticated { conn, .. } => Some(*conn),
                    _ => None,
                };
                self.events.push_back(Event::Bus(other));
                if let Some(conn) = authenticated {
                    self.gateway_authenticated(now, conn);
                }
            }
        }
    }

    /// Gives what the relay asks for to the WebRTC host. A send that fails
    /// (the peer is gone, or not connected yet) costs only that packet.
    fn media_transmit(&mut self, now: Instant, t: MediaTransmit) {
        let sent = match t {
            MediaTransmit::Rtp { peer, packet } => self.host.send_rtp(peer, packet),
            MediaTransmit::Rtcp { peer, packet } => self.host.send_rtcp(peer, &packet),
            MediaTransmit::Close { peer, reason } => {
                self.host.close(now, peer, reason);
                Ok(())
            }
        };
        if let Err(e) = sent {
            tracing::trace!(error = %e, "media packet not sent");
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
                self.relay.handle_connected(now, peer);
            }
            HostEvent::Connected { peer } => {
                self.connected.insert(peer);
                self.open_waiting_channels(now, peer);
            }
            HostEvent::Rtp { peer, packet } => self.relay.handle_rtp(now, peer, &packet),
            HostEvent::Rtcp { peer, packet } => self.relay.handle_rtcp(now, peer, &packet),
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
                } else {
                    self.gateway_early(now, peer, channel, binary, data);
                }
            }
            HostEvent::ChannelClosed { peer, channel } => {
                self.gateway_channel_gone(peer, Some(channel));
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
                self.relay.handle_closed(now, peer, &reason);
                self.gateway_channel_gone(peer, None);
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
}
