//! What the node core's virtual-time tests share: a node, what it said, and
//! its WebRTC port on the test network.
#![allow(dead_code)] // each test file uses its part
use softbus_bus::auth::PinPolicy;
use softbus_bus::node::{Bus, BusConfig, LocalConfig};
use softbus_bus::ConnId;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_node::{Event, Limits, Node, ServerMode, Socket, Transmit};
use softbus_rtc::crypto::Provider;
use softbus_rtc::host::{Host, HostConfig};
use softbus_testkit::{Datagram, Driven};
use std::net::SocketAddr;
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
    let mut bus = Bus::new(
        BusConfig {
            pin: PinPolicy::pin("246810"),
            ..Default::default()
        },
        LocalConfig {
            device_id: byte.repeat(32),
            name: "node".into(),
            device_type: 0xF2,
            ip: [10, 0, 0, 2].into(),
        },
        Box::new(OpenSslCrypto::seeded(11)),
    );
    bus.set_ports(40001, 40002);
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
