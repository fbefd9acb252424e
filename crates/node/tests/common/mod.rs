//! What the node core's virtual-time tests share: a node, what it said, its
//! WebRTC port on the test network, and a node core with its TCP on it.
#![allow(dead_code)] // each test file uses its part
pub mod kit;
#[allow(unused_imports)] // media.rs uses none of it
pub use kit::*;
use softbus_bus::auth::PinPolicy;
use softbus_bus::node::Listener;
use softbus_bus::node::{Bus, BusConfig, LocalConfig};
use softbus_bus::ConnId;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_node::{Event, Limits, Node, ServerMode, Socket, Transmit};
use softbus_rtc::crypto::Provider;
use softbus_rtc::host::{Host, HostConfig};
use softbus_testkit::{Datagram, Driven, Tcp};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The web side's credential in these tests.
pub fn web() -> softbus_node::Principal {
    softbus_node::Principal::WebToken {
        name: "web".into(),
        credential: "bearer".into(),
    }
}

/// A node whose device id is `byte` × 32, with a long-term key derived from it.
pub fn node_full(byte: &str, limits: Limits, host_cfg: HostConfig) -> Node {
    node_full_at(byte, [10, 0, 0, 2], limits, host_cfg)
}

/// The same on the soft bus address `ip` (what its discovery answers name).
pub fn node_full_at(byte: &str, ip: [u8; 4], limits: Limits, host_cfg: HostConfig) -> Node {
    let mut bus = Bus::new(
        BusConfig {
            pin: PinPolicy::pin("246810"),
            ..Default::default()
        },
        LocalConfig {
            device_id: byte.repeat(32),
            name: "node".into(),
            device_type: 0xF2,
            ip: ip.into(),
        },
        Box::new(OpenSslCrypto::seeded(11)),
    );
    bus.set_ports(AUTH_PORT, SESSION_PORT);
    let seed = byte
        .bytes()
        .fold(1u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    bus.set_identity([seed; 32]).unwrap();
    let id = DtlsIdentity::generate().unwrap();
    let host = Host::new(
        host_cfg,
        Provider {
            hmac: Box::new(OpenSslCrypto::new()),
            random: Box::new(OpenSslCrypto::seeded(3)),
            dtls: Box::new(id.factory().unwrap()),
            srtp: softbus_crypto::srtp_backends(),
        },
    );
    let mut n = Node::new(bus, host, limits);
    n.create_session_server("echo", ServerMode::Echo).unwrap();
    n
}

/// Everything the node has said, sorted for the tests.
#[derive(Default)]
pub struct Seen {
    pub events: Vec<Event>,
    pub tcp: Vec<(ConnId, Vec<u8>)>,
    pub closed: Vec<ConnId>,
    pub rtc: Vec<(SocketAddr, Vec<u8>)>,
}

pub fn drain(n: &mut Node, seen: &mut Seen) {
    while let Some(t) = n.poll_transmit() {
        match t {
            Transmit::Tcp { conn, bytes } => seen.tcp.push((conn, bytes)),
            Transmit::Close { conn } => seen.closed.push(conn),
            Transmit::Datagram(d) if d.source == n.rtc_source() => {
                seen.rtc.push((d.destination, d.payload))
            }
            Transmit::Datagram(_) => {}
            Transmit::Dial { conn, addr } => panic!("no dial expected: {conn:?} {addr}"),
        }
    }
    while let Some(e) = n.poll_event() {
        seen.events.push(e);
    }
}

/// The node's WebRTC port on the shared test network; its TCP output and events
/// go to `seen`.
pub struct NodeSide<'a> {
    pub n: &'a mut Node,
    pub seen: &'a mut Seen,
}

impl Driven for NodeSide<'_> {
    fn owns(&self, a: SocketAddr) -> bool {
        a == self.n.host().local()
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        drain(self.n, self.seen);
        if self.seen.rtc.is_empty() {
            return None;
        }
        let (to, payload) = self.seen.rtc.remove(0);
        Some(Datagram {
            from: self.n.host().local(),
            to,
            payload,
        })
    }
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.n
            .handle_datagram(now, Socket::Rtc, d.from, None, &d.payload)
            .unwrap();
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.n.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.n.handle_timeout(now);
    }
}

/// The ports every test node listens on ([`node_full`]): auth, session.
pub const AUTH_PORT: u16 = 40001;
pub const SESSION_PORT: u16 = 40002;

/// A node core on the test network with its TCP: it listens on `ip` at
/// [`AUTH_PORT`] and [`SESSION_PORT`], dials through the network, and its
/// events go to `events`.
pub struct CoreAt<'a> {
    pub n: &'a mut Node,
    pub ip: IpAddr,
    pub events: &'a mut Vec<Event>,
    tcp: VecDeque<Tcp>,
    rtc: VecDeque<Datagram>,
}

impl<'a> CoreAt<'a> {
    pub fn new(n: &'a mut Node, ip: impl Into<IpAddr>, events: &'a mut Vec<Event>) -> Self {
        Self {
            n,
            ip: ip.into(),
            events,
            tcp: VecDeque::new(),
            rtc: VecDeque::new(),
        }
    }

    /// Takes what the core queued: TCP, its WebRTC datagrams (discovery's are
    /// not carried), events.
    fn pull(&mut self) {
        while let Some(t) = self.n.poll_transmit() {
            match t {
                Transmit::Dial { conn, addr } => self.tcp.push_back(Tcp::Dial { conn, to: addr }),
                Transmit::Tcp { conn, bytes } => self.tcp.push_back(Tcp::Write { conn, bytes }),
                Transmit::Close { conn } => self.tcp.push_back(Tcp::Close { conn }),
                Transmit::Datagram(d) if d.source == self.n.rtc_source() => {
                    self.rtc.push_back(Datagram {
                        from: d.source,
                        to: d.destination,
                        payload: d.payload,
                    })
                }
                Transmit::Datagram(_) => {}
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.n.poll_event()));
    }
}

/// An adapter dropped with output it took from its core but did not deliver
/// lost that output: keep it for the whole run.
impl Drop for CoreAt<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.tcp.is_empty() && self.rtc.is_empty(),
                "CoreAt dropped with undelivered output: {:?}",
                self.tcp
            );
        }
    }
}

impl Driven for CoreAt<'_> {
    fn owns(&self, a: SocketAddr) -> bool {
        a == self.n.host().local()
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        self.pull();
        self.rtc.pop_front()
    }
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.n
            .handle_datagram(now, Socket::Rtc, d.from, None, &d.payload)
            .unwrap();
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.n.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.n.handle_timeout(now);
    }
    fn tcp_address(&self) -> IpAddr {
        self.ip
    }
    fn listens(&self, a: SocketAddr) -> bool {
        a.ip() == self.ip && [AUTH_PORT, SESSION_PORT].contains(&a.port())
    }
    fn poll_tcp(&mut self) -> Option<Tcp> {
        self.pull();
        self.tcp.pop_front()
    }
    fn handle_accept(&mut self, now: Instant, conn: ConnId, local: SocketAddr, peer: SocketAddr) {
        let listener = if local.port() == AUTH_PORT {
            Listener::Auth
        } else {
            Listener::Session
        };
        self.n.handle_accept(now, conn, listener, peer).unwrap();
    }
    fn handle_dialed(&mut self, now: Instant, conn: ConnId, connected: bool) {
        let r = match connected {
            true => Ok(()),
            false => Err(std::io::ErrorKind::ConnectionRefused),
        };
        self.n.handle_dialed(now, conn, r);
    }
    fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.n.handle_tcp_data(now, conn, data);
    }
    fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.n.handle_tcp_closed(now, conn);
    }
}
