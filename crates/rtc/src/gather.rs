//! Candidate gathering for a host: server-reflexive addresses from STUN
//! servers (a Binding request, repeated every 25 s so the NAT keeps the
//! mapping) and relayed addresses from TURN servers (a [`TurnClient`] each,
//! started again 30 s after it fails). One gatherer serves every peer of the
//! host: candidates are gathered once, before any offer, and are in every
//! answer; a relay that becomes ready later reaches live peers as a new base.
//!
//! Over UDP everything the gatherer sends leaves the host's UDP socket
//! towards a server; a TURN server reached over TCP gets a connection of its
//! own, which the driver dials ([`Gatherer::poll_tcp`]); its connection ids
//! have bit 62 set ([`RELAY_CONNS`]), clear of the soft bus's. Over TLS
//! (`turns:`) the stream runs through a [`TlsClient`] given with
//! [`Gatherer::set_tls`].

use crate::crypto::{Hmac, Random, TlsClient, TlsConnector};
use crate::ice::Via;
use crate::peer::{candidate_priority, FullIce, RELAY_PREFERENCE};
use crate::stun::{Class, Message, MessageBuilder, BINDING};
use crate::turn::server::{IceServerUrl, TurnCredential};
use crate::turn::{TurnClient, TurnConfig, TurnEvent, TurnState, TurnTransport};
use softbus_proto::{ConnId, Transmit};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A STUN Binding is repeated this often (keeps the NAT mapping, notices a new one).
pub const REBIND: Duration = Duration::from_secs(25);
/// A failed TURN allocation is tried again after this long.
pub const RETRY: Duration = Duration::from_secs(30);
/// Binding transmissions before a STUN server counts as silent.
const PROBE_TRIES: u32 = 7;
const PROBE_RTO: Duration = Duration::from_millis(500);
/// ICE servers used at most.
pub const MAX_SERVERS: usize = 4;
/// Connection ids of TURN-over-TCP connections have this bit set.
pub const RELAY_CONNS: u64 = 1 << 62;

/// One ICE server as the host uses it: its URL, its resolved address, and for
/// TURN the credential.
#[derive(Debug, Clone)]
pub struct IceServer {
    pub url: IceServerUrl,
    pub address: SocketAddr,
    pub credential: Option<TurnCredential>,
}

/// What gathering found or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatherEvent {
    /// A relayed address is ready on base `via`.
    RelayReady {
        via: Via,
        relayed: SocketAddr,
        mapped: SocketAddr,
    },
    /// A relay failed (the reason is logged); its base is gone until it is ready again.
    RelayLost { via: Via, reason: String },
    /// A server-reflexive address of the host socket.
    Reflexive(SocketAddr),
}

/// How one server is doing, for status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub url: String,
    /// "gathering", "ready", "failed: …", "unsupported: …".
    pub state: String,
    /// The reflexive or relayed address it gave.
    pub address: Option<SocketAddr>,
}

#[derive(Debug)]
struct Probe {
    server: SocketAddr,
    tid: [u8; 12],
    bytes: Vec<u8>,
    next: Instant,
    tries: u32,
    /// Waiting for an answer (false: idle until `next`).
    asking: bool,
    mapped: Option<SocketAddr>,
    settled: bool,
}

#[derive(Debug)]
struct Relay {
    server: usize,
    client: TurnClient,
    retry_at: Option<Instant>,
    ready: Option<(SocketAddr, SocketAddr)>,
    settled: bool,
    last_error: Option<String>,
    /// Over TCP: the connection, and whether it is up.
    conn: Option<(ConnId, bool)>,
    /// Over TLS (`turns:`): the session on that connection.
    tls: Option<Box<dyn TlsClient>>,
}

/// The host's STUN probes and TURN relays.
pub struct Gatherer {
    host: SocketAddr,
    servers: Vec<IceServer>,
    probes: Vec<(usize, Probe)>,
    relays: Vec<Relay>,
    started: bool,
    /// The last time given.
    now: Option<Instant>,
    random: Box<dyn Random>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    tcp: VecDeque<Transmit>,
    next_conn: u64,
    events: VecDeque<GatherEvent>,
    /// TLS for `turns:` servers; without it they are not used.
    tls_connector: Option<Box<dyn TlsConnector>>,
}

impl std::fmt::Debug for Gatherer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer")
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

fn tid(r: &mut dyn Random) -> [u8; 12] {
    let mut t = [0u8; 12];
    r.fill(&mut t);
    t
}

impl Gatherer {
    /// A gatherer for the host socket `host` (at most [`MAX_SERVERS`] servers are used).
    pub fn new(host: SocketAddr, mut servers: Vec<IceServer>, random: Box<dyn Random>) -> Self {
        servers.truncate(MAX_SERVERS);
        Self {
            host,
            servers,
            probes: Vec::new(),
            relays: Vec::new(),
            started: false,
            now: None,
            random,
            transmits: VecDeque::new(),
            tcp: VecDeque::new(),
            next_conn: 0,
            events: VecDeque::new(),
            tls_connector: None,
        }
    }

    /// TLS for `turns:` servers.
    pub fn set_tls(&mut self, connector: Box<dyn TlsConnector>) {
        self.tls_connector = Some(connector);
    }

    /// Whether any ICE server is configured (the host is then a full agent).
    pub fn is_enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    /// Starts every probe and allocation (once).
    pub fn start(&mut self, now: Instant, h: &dyn Hmac) {
        self.now = Some(now);
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.servers.len() {
            let s = &self.servers[i];
            if !s.url.scheme.is_turn() {
                if s.url.scheme.is_tls() {
                    tracing::warn!(url = %s.url, "stuns: is not supported; this server is not used");
                    continue;
                }
                let server = s.address;
                let mut p = Probe {
                    server,
                    tid: [0; 12],
                    bytes: Vec::new(),
                    next: now,
                    tries: 0,
                    asking: false,
                    mapped: None,
                    settled: false,
                };
                self.ask(now, &mut p);
                self.probes.push((i, p));
                continue;
            }
            let client = self.turn_client(i);
            let mut r = Relay {
                server: i,
                client,
                retry_at: None,
                ready: None,
                settled: false,
                last_error: None,
                conn: None,
                tls: None,
            };
            if r.client.transport() == TurnTransport::Tcp {
                r.conn = Some((self.dial(r.client.server()), false));
            } else {
                r.client.start(now, h);
            }
            self.relays.push(r);
        }
        self.flush_relays();
    }

    /// A new TCP connection to `server`; the allocation starts once it is up.
    fn dial(&mut self, server: SocketAddr) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(RELAY_CONNS | self.next_conn);
        self.tcp.push_back(Transmit::Dial { conn, addr: server });
        conn
    }

    /// Whether `conn` is one of the gatherer's TCP connections.
    pub fn owns_conn(&self, conn: ConnId) -> bool {
        conn.0 & RELAY_CONNS != 0 && conn.0 & (1 << 63) == 0
    }

    fn relay_of(&self, conn: ConnId) -> Option<usize> {
        self.relays
            .iter()
            .position(|r| r.conn.is_some_and(|(c, _)| c == conn))
    }

    /// The driver connected (or did not) a TCP relay's connection.
    pub fn handle_dialed(&mut self, now: Instant, conn: ConnId, ok: bool, h: &dyn Hmac) {
        self.now = Some(now);
        let Some(i) = self.relay_of(conn) else { return };
        if ok {
            self.relays[i].conn = Some((conn, true));
            if self.servers[self.relays[i].server].url.scheme.is_tls() {
                let name = self.servers[self.relays[i].server].url.host.clone();
                let started = match &self.tls_connector {
                    Some(c) => c.client(&name).and_then(|mut t| t.start().map(|()| t)),
                    None => Err("no TLS backend".to_owned()),
                };
                match started {
                    Ok(t) => self.relays[i].tls = Some(t),
                    Err(e) => {
                        self.tcp.push_back(Transmit::Close { conn });
                        return self.lose_tcp(now, i, &format!("TLS: {e}"));
                    }
                }
            }
            self.relays[i].client.start(now, h);
            self.flush_relays();
        } else {
            self.lose_tcp(now, i, "cannot connect to the TURN server over TCP");
        }
    }

    /// Stream bytes from a TCP relay's server: relayed datagrams come back as
    /// `(base, peer, payload)`.
    pub fn handle_tcp_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
        h: &dyn Hmac,
    ) -> Vec<(Via, SocketAddr, Vec<u8>)> {
        self.now = Some(now);
        let mut out = Vec::new();
        let Some(i) = self.relay_of(conn) else {
            return out;
        };
        let via = Via::Relay(i as u8);
        let plain = match self.relays[i].tls.as_mut().map(|t| t.handle_input(data)) {
            None => data.to_vec(),
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                self.tcp.push_back(Transmit::Close { conn });
                self.lose_tcp(now, i, &format!("TLS: {e}"));
                return out;
            }
        };
        let r = self.relays[i]
            .client
            .handle_stream(now, &plain, h, &mut |peer, d| {
                out.push((via, peer, d.to_vec()));
            });
        // The handshake may have answered, or released what waited for it.
        self.flush_relays();
        self.relay_events(now, i);
        if let Err(e) = r {
            self.tcp.push_back(Transmit::Close { conn });
            self.lose_tcp(now, i, &e.to_string());
        }
        out
    }

    /// A TCP relay's connection closed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        if let Some(i) = self.relay_of(conn) {
            self.lose_tcp(now, i, "the TURN server closed the TCP connection");
        }
    }

    /// A TCP relay is gone: said once, tried again after [`RETRY`].
    fn lose_tcp(&mut self, now: Instant, i: usize, reason: &str) {
        let r = &mut self.relays[i];
        r.conn = None;
        r.tls = None;
        r.settled = true;
        r.retry_at = Some(now + RETRY);
        r.last_error = Some(reason.to_owned());
        if r.ready.take().is_some() || r.client.state() != TurnState::Failed {
            tracing::warn!(server = %r.client.server(), %reason, "TURN relay over TCP lost");
            self.events.push_back(GatherEvent::RelayLost {
                via: Via::Relay(i as u8),
                reason: reason.to_owned(),
            });
        }
    }

    /// The next TCP action (dial, write, close) for the driver.
    pub fn poll_tcp(&mut self) -> Option<Transmit> {
        self.tcp.pop_front()
    }

    fn turn_client(&mut self, i: usize) -> TurnClient {
        let s = &self.servers[i];
        let c = s.credential.clone().unwrap_or(TurnCredential {
            username: String::new(),
            password: String::new(),
        });
        let mut r = self.random.fork();
        TurnClient::new(
            TurnConfig {
                server: s.address,
                transport: s.url.transport,
                username: c.username,
                password: c.password,
            },
            Box::new(move || tid(r.as_mut())),
        )
    }

    fn ask(&mut self, now: Instant, p: &mut Probe) {
        p.tid = tid(self.random.as_mut());
        p.bytes = MessageBuilder::new(Class::Request, BINDING, p.tid).fingerprint();
        p.tries = 1;
        p.asking = true;
        p.next = now + PROBE_RTO;
        self.transmits.push_back((p.server, p.bytes.clone()));
    }

    /// Whether a datagram from `from` is a server's.
    pub fn owns(&self, from: SocketAddr) -> bool {
        self.started && self.servers.iter().any(|s| s.address == from)
    }

    /// A datagram from a server: a probe's answer, TURN signalling, or relayed
    /// data, which comes back as `(base, peer, payload)`.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &'a [u8],
        h: &dyn Hmac,
    ) -> Option<(Via, SocketAddr, &'a [u8])> {
        self.now = Some(now);
        if let Some(i) = self.relays.iter().position(|r| {
            r.client.server() == from
                && r.client.transport() == TurnTransport::Udp
                && r.client.state() != TurnState::Failed
        }) {
            let r = self.relays[i].client.handle_datagram(now, data, h);
            self.relay_events(now, i);
            return match r {
                Ok(Some(d)) => Some((Via::Relay(i as u8), d.peer, d.payload)),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(server = %from, error = %e, "TURN datagram dropped");
                    None
                }
            };
        }
        let m = Message::parse(data).ok()?;
        let p = self
            .probes
            .iter_mut()
            .map(|(_, p)| p)
            .find(|p| p.server == from && p.asking && p.tid == m.transaction_id())?;
        if m.class() != Class::Success {
            return None;
        }
        let mapped = m.xor_mapped_address().ok()?;
        p.asking = false;
        p.settled = true;
        p.next = now + REBIND;
        if p.mapped != Some(mapped) {
            p.mapped = Some(mapped);
            if mapped != self.host {
                self.events.push_back(GatherEvent::Reflexive(mapped));
            }
        }
        None
    }

    fn relay_events(&mut self, now: Instant, i: usize) {
        let via = Via::Relay(i as u8);
        while let Some(e) = self.relays[i].client.poll_event() {
            let r = &mut self.relays[i];
            match e {
                TurnEvent::Allocated {
                    relayed, mapped, ..
                } => {
                    r.ready = Some((relayed, mapped));
                    r.settled = true;
                    r.last_error = None;
                    tracing::info!(%relayed, %mapped, "TURN relay ready");
                    self.events.push_back(GatherEvent::RelayReady {
                        via,
                        relayed,
                        mapped,
                    });
                    // Over TCP the mapped address is the connection's, no UDP candidate.
                    if mapped != self.host && r.client.transport() == TurnTransport::Udp {
                        self.events.push_back(GatherEvent::Reflexive(mapped));
                    }
                }
                TurnEvent::Failed(err) => {
                    if let Some((conn, _)) = r.conn.take() {
                        self.tcp.push_back(Transmit::Close { conn });
                    }
                    r.ready = None;
                    r.settled = true;
                    r.retry_at = Some(now + RETRY);
                    r.last_error = Some(err.to_string());
                    self.events.push_back(GatherEvent::RelayLost {
                        via,
                        reason: err.to_string(),
                    });
                }
            }
        }
        self.flush_relays();
    }

    fn flush_relays(&mut self) {
        for r in &mut self.relays {
            match r.conn {
                Some((conn, true)) => {
                    while let Some(bytes) = r.client.poll_transmit() {
                        match r.tls.as_mut() {
                            // A failed write shows as a handshake or read error next.
                            Some(t) => drop(t.write(&bytes)),
                            None => self.tcp.push_back(Transmit::Tcp { conn, bytes }),
                        }
                    }
                    while let Some(bytes) = r.tls.as_mut().and_then(|t| t.poll_output()) {
                        self.tcp.push_back(Transmit::Tcp { conn, bytes });
                    }
                }
                // Over TCP nothing goes before the connection is up.
                Some((_, false)) => {}
                None if r.client.transport() == TurnTransport::Tcp => {
                    while r.client.poll_transmit().is_some() {}
                }
                None => {
                    while let Some(b) = r.client.poll_transmit() {
                        self.transmits.push_back((r.client.server(), b));
                    }
                }
            }
        }
    }

    /// Sends `payload` to `to` through relay `via`; without `now`, at the
    /// last time the gatherer saw.
    pub fn send(
        &mut self,
        now: Option<Instant>,
        via: Via,
        to: SocketAddr,
        payload: &[u8],
        h: &dyn Hmac,
    ) {
        let Some(now) = now.or(self.now) else { return };
        self.now = Some(now);
        let Via::Relay(i) = via else { return };
        let Some(r) = self.relays.get_mut(usize::from(i)) else {
            return;
        };
        if let Err(e) = r.client.send(now, to, payload, h) {
            tracing::debug!(error = %e, "relayed datagram not sent");
        }
        self.flush_relays();
    }

    /// Probe retransmissions and repeats, TURN timers, retries of failed relays.
    pub fn handle_timeout(&mut self, now: Instant, h: &dyn Hmac) {
        self.now = Some(now);
        if !self.started {
            self.start(now, h);
        }
        let mut probes = std::mem::take(&mut self.probes);
        for (_, p) in &mut probes {
            if p.next > now {
                continue;
            }
            if !p.asking {
                self.ask(now, p);
            } else if p.tries >= PROBE_TRIES {
                if !p.settled {
                    tracing::warn!(server = %p.server, "STUN server did not answer");
                }
                p.asking = false;
                p.settled = true;
                p.next = now + REBIND;
            } else {
                p.tries += 1;
                p.next = now + PROBE_RTO * 2u32.pow(p.tries - 1);
                self.transmits.push_back((p.server, p.bytes.clone()));
            }
        }
        self.probes = probes;
        for i in 0..self.relays.len() {
            if self.relays[i].retry_at.is_some_and(|t| t <= now) {
                let client = self.turn_client(self.relays[i].server);
                let tcp = client.transport() == TurnTransport::Tcp;
                let conn = tcp.then(|| self.dial(client.server()));
                let r = &mut self.relays[i];
                r.retry_at = None;
                r.client = client;
                match conn {
                    Some(c) => r.conn = Some((c, false)),
                    None => r.client.start(now, h),
                }
            } else {
                self.relays[i].client.handle_timeout(now, h);
            }
            self.relay_events(now, i);
        }
        self.flush_relays();
    }

    /// The next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return None;
        }
        self.probes
            .iter()
            .map(|(_, p)| Some(p.next))
            .chain(
                self.relays
                    .iter()
                    .map(|r| crate::earliest(r.client.poll_timeout(), r.retry_at)),
            )
            .flatten()
            .min()
    }

    /// The next `(server, datagram)`.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<GatherEvent> {
        self.events.pop_front()
    }

    /// What an answer offers now: reflexive and relayed candidates, and whether
    /// every server has answered or given up.
    pub fn full_ice(&self, tie_breaker: u64) -> FullIce {
        let mut reflexive: Vec<SocketAddr> = self
            .probes
            .iter()
            .filter_map(|(_, p)| p.mapped)
            .chain(
                self.relays
                    .iter()
                    .filter(|r| r.client.transport() == TurnTransport::Udp)
                    .filter_map(|r| r.ready.map(|(_, m)| m)),
            )
            .filter(|a| *a != self.host)
            .collect();
        reflexive.sort();
        reflexive.dedup();
        FullIce {
            tie_breaker,
            reflexive,
            relays: self.ready_relays(),
            complete: self.complete(),
        }
    }

    /// Whether every server has answered or given up.
    pub fn complete(&self) -> bool {
        self.probes.iter().all(|(_, p)| p.settled) && self.relays.iter().all(|r| r.settled)
    }

    fn ready_relays(&self) -> Vec<(Via, SocketAddr, SocketAddr)> {
        self.relays
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.ready.map(|(a, m)| (Via::Relay(i as u8), a, m)))
            .collect()
    }

    /// The ready relays as bases for an agent: `(base, PRIORITY of its checks)`.
    pub fn relay_bases(&self) -> Vec<(Via, u32)> {
        self.ready_relays()
            .into_iter()
            .map(|(via, _, _)| (via, candidate_priority(RELAY_PREFERENCE)))
            .collect()
    }

    /// How each server is doing.
    pub fn status(&self) -> Vec<ServerStatus> {
        let mut v = Vec::new();
        for (i, p) in &self.probes {
            v.push(ServerStatus {
                url: self.servers[*i].url.to_string(),
                state: match (p.mapped, p.settled) {
                    (Some(_), _) => "ready".into(),
                    (None, true) => "failed: no answer".into(),
                    (None, false) => "gathering".into(),
                },
                address: p.mapped,
            });
        }
        for r in &self.relays {
            v.push(ServerStatus {
                url: self.servers[r.server].url.to_string(),
                state: match (&r.ready, &r.last_error) {
                    (Some(_), _) => "ready".into(),
                    (None, Some(e)) => format!("failed: {e}"),
                    (None, None) => "gathering".into(),
                },
                address: r.ready.map(|(a, _)| a),
            });
        }
        v
    }
}
