//! A TURN server (RFC 8656) for virtual-time tests: long-term credentials with
//! nonces the test can make stale, allocations, permissions, channel bindings,
//! Send and Data indications, ChannelData, lifetimes in virtual time, over UDP
//! and TCP. Only what a client under test needs; relayed addresses are UDP.

use crate::{ConnId, Datagram, Driven, Tcp};
use softbus_rtc::crypto::Hmac;
use softbus_rtc::stun::{attr, Class, Message, MessageBuilder};
use softbus_rtc::stun::{ALLOCATE, CHANNEL_BIND, CREATE_PERMISSION, DATA_METHOD, REFRESH, SEND};
use softbus_rtc::turn::{channel_data, frame_len, is_channel_data};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Where a client reaches the server: a UDP address or a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Udp(SocketAddr),
    Tcp(ConnId, SocketAddr),
}

#[derive(Debug)]
struct Allocation {
    relayed: SocketAddr,
    expires: Instant,
    /// The Allocate that made it: a retransmission of it is answered again.
    tid: [u8; 12],
    lifetime: Duration,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, (SocketAddr, Instant)>,
}

/// What the server counted, for assertions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TurnStats {
    /// STUN Binding requests answered.
    pub bindings: u32,
    pub allocations: u32,
    pub refreshes: u32,
    pub permissions: u32,
    pub channel_binds: u32,
    pub stale_nonces: u32,
    pub unauthorized: u32,
    pub mismatches: u32,
    pub relayed_to_peers: u32,
    pub relayed_to_clients: u32,
    /// Datagrams to a relayed address from a peer with no permission.
    pub refused_peers: u32,
}

/// A TURN server at `addr`, relaying from addresses on `relay_ip`.
pub struct TurnServer {
    pub addr: SocketAddr,
    relay_ip: IpAddr,
    next_port: u16,
    realm: String,
    users: HashMap<String, String>,
    nonce: String,
    nonce_gen: u32,
    /// The LIFETIME granted (and the ceiling of a requested one).
    pub lifetime: Duration,
    hmac: Box<dyn Hmac + Send>,
    allocations: HashMap<Client, Allocation>,
    udp_out: VecDeque<Datagram>,
    tcp_out: VecDeque<Tcp>,
    streams: HashMap<ConnId, (SocketAddr, Vec<u8>)>,
    now: Option<Instant>,
    pub stats: TurnStats,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("addr", &self.addr)
            .field("allocations", &self.allocations.len())
            .finish_non_exhaustive()
    }
}

impl TurnServer {
    /// A server with one user and realm `softbus.test`.
    pub fn new(
        addr: SocketAddr,
        relay_ip: IpAddr,
        user: &str,
        password: &str,
        hmac: Box<dyn Hmac + Send>,
    ) -> Self {
        Self {
            addr,
            relay_ip,
            next_port: 50_000,
            realm: "softbus.test".into(),
            users: HashMap::from([(user.to_owned(), password.to_owned())]),
            nonce: "nonce-1".into(),
            nonce_gen: 1,
            lifetime: Duration::from_secs(600),
            hmac,
            allocations: HashMap::new(),
            udp_out: VecDeque::new(),
            tcp_out: VecDeque::new(),
            streams: HashMap::new(),
            now: None,
            stats: TurnStats::default(),
        }
    }

    /// From now on the old nonce is stale: requests carrying it get 438.
    pub fn rotate_nonce(&mut self) {
        self.nonce_gen += 1;
        self.nonce = format!("nonce-{}", self.nonce_gen);
    }

    /// Forgets every allocation (a server restart): their requests get 437.
    pub fn forget_allocations(&mut self) {
        self.allocations.clear();
    }

    /// Relayed addresses allocated now.
    pub fn relayed(&self) -> Vec<SocketAddr> {
        self.allocations.values().map(|a| a.relayed).collect()
    }

    /// Whether a permission for `ip` is installed on some allocation.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allocations
            .values()
            .any(|a| a.permissions.contains_key(&ip))
    }

    /// Channels bound now, over all allocations.
    pub fn channels(&self) -> usize {
        self.allocations.values().map(|a| a.channels.len()).sum()
    }

    fn send_client(&mut self, c: Client, bytes: Vec<u8>) {
        match c {
            Client::Udp(to) => self.udp_out.push_back(Datagram {
                from: self.addr,
                to,
                payload: bytes,
            }),
            Client::Tcp(conn, _) => self.tcp_out.push_back(Tcp::Write { conn, bytes }),
        }
    }

    fn error(&mut self, c: Client, m: &Message<'_>, code: u16, reason: &str, nonce: bool) {
        let mut b = MessageBuilder::new(Class::Error, m.method(), m.transaction_id())
            .error_code(code, reason);
        if nonce {
            b = b
                .attribute(attr::REALM, self.realm.as_bytes())
                .attribute(attr::NONCE, self.nonce.as_bytes());
        }
        self.send_client(c, b.fingerprint());
    }

    fn expire(&mut self, now: Instant) {
        self.allocations.retain(|_, a| a.expires > now);
        for a in self.allocations.values_mut() {
            a.permissions.retain(|_, t| *t > now);
            a.channels.retain(|_, (_, t)| *t > now);
        }
    }

    /// Authenticates a request; the key, or the error already answered.
    fn authenticate(&mut self, c: Client, m: &Message<'_>) -> Option<[u8; 16]> {
        let (Some(user), Some(nonce)) = (m.username(), m.get(attr::NONCE)) else {
            self.stats.unauthorized += 1;
            self.error(c, m, 401, "Unauthorized", true);
            return None;
        };
        let Some(password) = self.users.get(user).cloned() else {
            self.stats.unauthorized += 1;
            self.error(c, m, 401, "Unauthorized", true);
            return None;
        };
        let key = self.hmac.md5(&[
            user.as_bytes(),
            b":",
            self.realm.as_bytes(),
            b":",
            password.as_bytes(),
        ]);
        if m.verify_integrity(self.hmac.as_ref(), &key).is_err() {
            self.stats.unauthorized += 1;
            self.error(c, m, 401, "Unauthorized", true);
            return None;
        }
        if nonce != self.nonce.as_bytes() {
            self.stats.stale_nonces += 1;
            self.error(c, m, 438, "Stale Nonce", true);
            return None;
        }
        Some(key)
    }

    fn ok(
        &mut self,
        c: Client,
        m: &Message<'_>,
        key: &[u8; 16],
        f: impl FnOnce(MessageBuilder) -> MessageBuilder,
    ) {
        let b = f(MessageBuilder::new(
            Class::Success,
            m.method(),
            m.transaction_id(),
        ));
        let bytes = b.message_integrity(self.hmac.as_ref(), key).fingerprint();
        self.send_client(c, bytes);
    }

    fn client_sent(&mut self, now: Instant, c: Client, data: &[u8]) {
        self.expire(now);
        if is_channel_data(data) {
            let number = u16::from_be_bytes([data[0], data[1]]);
            let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
            let Some(payload) = data.get(4..4 + len) else {
                return;
            };
            let Some(a) = self.allocations.get(&c) else {
                return;
            };
            let Some((peer, _)) = a.channels.get(&number) else {
                return;
            };
            let d = Datagram {
                from: a.relayed,
                to: *peer,
                payload: payload.to_vec(),
            };
            self.stats.relayed_to_peers += 1;
            self.udp_out.push_back(d);
            return;
        }
        let Ok(m) = Message::parse_up_to(data, 65_535) else {
            return;
        };
        if m.class() == Class::Indication && m.method() == SEND {
            let (Ok(peer), Some(payload)) =
                (m.xor_address(attr::XOR_PEER_ADDRESS), m.get(attr::DATA))
            else {
                return;
            };
            let Some(a) = self.allocations.get(&c) else {
                return;
            };
            if a.permissions.contains_key(&peer.ip()) {
                self.stats.relayed_to_peers += 1;
                let d = Datagram {
                    from: a.relayed,
                    to: peer,
                    payload: payload.to_vec(),
                };
                self.udp_out.push_back(d);
            }
            return;
        }
        if m.class() != Class::Request {
            return;
        }
        if m.method() == softbus_rtc::stun::BINDING {
            // A STUN server too: Binding needs no credentials (RFC 8489 §3).
            let mapped = match c {
                Client::Udp(a) | Client::Tcp(_, a) => a,
            };
            self.stats.bindings += 1;
            let b = MessageBuilder::new(Class::Success, m.method(), m.transaction_id())
                .xor_mapped_address(mapped)
                .fingerprint();
            return self.send_client(c, b);
        }
        let Some(key) = self.authenticate(c, &m) else {
            return;
        };
        let mapped = match c {
            Client::Udp(a) | Client::Tcp(_, a) => a,
        };
        match m.method() {
            ALLOCATE => {
                if let Some(a) = self
                    .allocations
                    .get(&c)
                    .filter(|a| a.tid == m.transaction_id())
                {
                    // RFC 8656 §7.2: a retransmitted Allocate gets the same answer.
                    let (relayed, lifetime) = (a.relayed, a.lifetime);
                    return self.ok(c, &m, &key, |b| {
                        b.xor_address(attr::XOR_RELAYED_ADDRESS, relayed)
                            .xor_address(attr::XOR_MAPPED_ADDRESS, mapped)
                            .attribute(attr::LIFETIME, &(lifetime.as_secs() as u32).to_be_bytes())
                    });
                }
                if self.allocations.contains_key(&c) {
                    self.stats.mismatches += 1;
                    return self.error(c, &m, 437, "Allocation Mismatch", false);
                }
                let relayed = SocketAddr::new(self.relay_ip, self.next_port);
                self.next_port += 1;
                self.stats.allocations += 1;
                let lifetime = self.lifetime;
                self.allocations.insert(
                    c,
                    Allocation {
                        relayed,
                        expires: now + lifetime,
                        tid: m.transaction_id(),
                        lifetime,
                        permissions: HashMap::new(),
                        channels: HashMap::new(),
                    },
                );
                self.ok(c, &m, &key, |b| {
                    b.xor_address(attr::XOR_RELAYED_ADDRESS, relayed)
                        .xor_address(attr::XOR_MAPPED_ADDRESS, mapped)
                        .attribute(attr::LIFETIME, &(lifetime.as_secs() as u32).to_be_bytes())
                });
            }
            REFRESH => {
                let asked = m
                    .get(attr::LIFETIME)
                    .and_then(|v| <[u8; 4]>::try_from(v).ok())
                    .map(|v| u64::from(u32::from_be_bytes(v)))
                    .unwrap_or(600);
                let granted = Duration::from_secs(asked).min(self.lifetime);
                let Some(a) = self.allocations.get_mut(&c) else {
                    self.stats.mismatches += 1;
                    return self.error(c, &m, 437, "Allocation Mismatch", false);
                };
                self.stats.refreshes += 1;
                if granted.is_zero() {
                    self.allocations.remove(&c);
                } else {
                    a.expires = now + granted;
                }
                self.ok(c, &m, &key, |b| {
                    b.attribute(attr::LIFETIME, &(granted.as_secs() as u32).to_be_bytes())
                });
            }
            CREATE_PERMISSION => {
                let tid = m.transaction_id();
                let peers: Vec<IpAddr> = m
                    .attributes()
                    .filter(|(t, _, _)| *t == attr::XOR_PEER_ADDRESS)
                    .filter_map(|(_, v, _)| softbus_rtc::stun::decode_xor_address(v, &tid).ok())
                    .map(|a| a.ip())
                    .collect();
                let Some(a) = self.allocations.get_mut(&c) else {
                    self.stats.mismatches += 1;
                    return self.error(c, &m, 437, "Allocation Mismatch", false);
                };
                if peers.is_empty() {
                    return self.error(c, &m, 400, "Bad Request", false);
                }
                self.stats.permissions += 1;
                for ip in peers {
                    a.permissions.insert(ip, now + Duration::from_secs(300));
                }
                self.ok(c, &m, &key, |b| b);
            }
            CHANNEL_BIND => {
                let number = m
                    .get(attr::CHANNEL_NUMBER)
                    .filter(|v| v.len() == 4)
                    .map(|v| u16::from_be_bytes([v[0], v[1]]));
                let peer = m.xor_address(attr::XOR_PEER_ADDRESS).ok();
                let Some(a) = self.allocations.get_mut(&c) else {
                    self.stats.mismatches += 1;
                    return self.error(c, &m, 437, "Allocation Mismatch", false);
                };
                let (Some(number), Some(peer)) = (number, peer) else {
                    return self.error(c, &m, 400, "Bad Request", false);
                };
                if !(0x4000..=0x4FFF).contains(&number)
                    || a.channels
                        .iter()
                        .any(|(n, (p, _))| (*n == number) != (*p == peer))
                {
                    return self.error(c, &m, 400, "Bad Request", false);
                }
                self.stats.channel_binds += 1;
                a.channels
                    .insert(number, (peer, now + Duration::from_secs(600)));
                a.permissions
                    .insert(peer.ip(), now + Duration::from_secs(300));
                self.ok(c, &m, &key, |b| b);
            }
            _ => self.error(c, &m, 400, "Bad Request", false),
        }
    }

    fn peer_sent(&mut self, now: Instant, d: Datagram) {
        self.expire(now);
        let Some((c, a)) = self.allocations.iter().find(|(_, a)| a.relayed == d.to) else {
            return;
        };
        let c = *c;
        if !a.permissions.contains_key(&d.from.ip()) {
            self.stats.refused_peers += 1;
            return;
        }
        let tcp = matches!(c, Client::Tcp(..));
        let bytes = match a.channels.iter().find(|(_, (p, _))| *p == d.from) {
            Some((n, _)) => channel_data(*n, &d.payload, tcp),
            None => MessageBuilder::new(Class::Indication, DATA_METHOD, [7; 12])
                .xor_address(attr::XOR_PEER_ADDRESS, d.from)
                .attribute(attr::DATA, &d.payload)
                .fingerprint(),
        };
        self.stats.relayed_to_clients += 1;
        self.send_client(c, bytes);
    }
}

impl Driven for TurnServer {
    fn owns(&self, a: SocketAddr) -> bool {
        a == self.addr || a.ip() == self.relay_ip
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        self.udp_out.pop_front()
    }
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        self.now = Some(now);
        if d.to == self.addr {
            self.client_sent(now, Client::Udp(d.from), &d.payload);
        } else {
            self.peer_sent(now, d);
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}

    fn tcp_address(&self) -> IpAddr {
        self.addr.ip()
    }
    fn listens(&self, a: SocketAddr) -> bool {
        a == self.addr
    }
    fn poll_tcp(&mut self) -> Option<Tcp> {
        self.tcp_out.pop_front()
    }
    fn handle_accept(&mut self, _now: Instant, conn: ConnId, _local: SocketAddr, peer: SocketAddr) {
        self.streams.insert(conn, (peer, Vec::new()));
    }
    fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let Some((peer, buf)) = self.streams.get_mut(&conn) else {
            return;
        };
        let peer = *peer;
        buf.extend_from_slice(data);
        let mut frames = Vec::new();
        while let Ok(Some(len)) = frame_len(buf) {
            if buf.len() < len {
                break;
            }
            frames.push(buf.drain(..len).collect::<Vec<u8>>());
        }
        for f in frames {
            self.client_sent(now, Client::Tcp(conn, peer), &f);
        }
    }
    fn handle_tcp_closed(&mut self, _now: Instant, conn: ConnId) {
        self.streams.remove(&conn);
        self.allocations
            .retain(|c, _| !matches!(c, Client::Tcp(k, _) if *k == conn));
    }
}
