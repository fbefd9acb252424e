//! The node driver: one task owns the [`Bus`]; per-connection tasks read and
//! write sockets and talk to it through bounded channels.

use crate::events::NodeEvent;
use crate::rtc::{RtcEvent, RtcHost, RtcSession};
use crate::store::{self, TrustStore};
use crate::{net, Bound, Error};
use softbus_bus::auth::PinPolicy;
use softbus_bus::discovery::publish::PublishInfo;
use softbus_bus::discovery::FoundDevice;
use softbus_bus::node::{Bus, BusConfig, BusEvent, Listener, LocalConfig, SessionInfo, Transmit};
use softbus_bus::session::SessionError;
use softbus_bus::ConnId;
use softbus_crypto::OpenSslCrypto;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Bytes queued toward one connection before it counts as too slow and is closed.
pub const WRITE_QUEUE: usize = 256;
/// Inputs queued from all connections to the engine task.
pub const INPUT_QUEUE: usize = 1024;
/// Largest single read from a socket.
pub const READ_CHUNK: usize = 16 * 1024;
/// WebRTC datagrams taken in per wake-up of the driver.
pub const RTC_DRAIN: usize = 256;
/// Largest batch of queued packets written at once.
pub const WRITE_BATCH: usize = 64 * 1024;

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub name: String,
    pub device_type: u8,
    pub ip: Ipv4Addr,
    pub discovery_port: u16,
    /// TCP ports for the auth and session listeners (0 = kernel-chosen, as lite).
    pub auth_port: u16,
    pub session_port: u16,
    pub capabilities: Vec<String>,
    /// Session servers that echo every message.
    pub echo: Vec<String>,
    /// Session servers that discard every message and answer `?` with the byte count.
    pub discard: Vec<String>,
    pub pin: PinPolicy,
    pub data_dir: PathBuf,
    pub bus: BusConfig,
    /// Pin the node's thread to this CPU (index into the CPUs this process may use).
    pub cpu: Option<usize>,
    /// UDP port for WebRTC (0: kernel-chosen).
    pub rtc_port: u16,
}

impl NodeConfig {
    /// Defaults: type L1, port 5684, capability ddmpCapability, echo server `echo`.
    pub fn new(name: &str, ip: Ipv4Addr, data_dir: PathBuf, pin: PinPolicy) -> Self {
        Self {
            name: name.to_owned(),
            device_type: 0xF2,
            ip,
            discovery_port: softbus_bus::discovery::DEFAULT_PORT,
            auth_port: 0,
            session_port: 0,
            capabilities: vec!["ddmpCapability".into()],
            echo: vec!["echo".into()],
            discard: Vec::new(),
            pin,
            data_dir,
            bus: BusConfig::default(),
            cpu: None,
            rtc_port: 0,
        }
    }
}

/// What a session server does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// Nothing built in: the application reacts to events.
    App,
    /// Sends every message back on the same session.
    Echo,
    /// Counts and drops messages; a message `?` is answered with the count in decimal.
    Discard,
}

/// What the node is, once started.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: Ipv4Addr,
    pub discovery_port: u16,
    pub auth_port: u16,
    pub session_port: u16,
    /// UDP port of WebRTC (ICE-lite host candidate).
    pub rtc_port: u16,
}

enum Command {
    CreateServer(
        String,
        ServerMode,
        oneshot::Sender<Result<(), SessionError>>,
    ),
    RemoveServer(String, oneshot::Sender<Result<(), SessionError>>),
    Send(i32, Vec<u8>, oneshot::Sender<Result<(), SessionError>>),
    Close(i32, oneshot::Sender<Result<(), SessionError>>),
    Discover(Vec<SocketAddrV4>),
    RtcOffer(String, oneshot::Sender<Result<(u64, String), String>>),
    RtcClose(u64, oneshot::Sender<bool>),
    Snapshot(oneshot::Sender<Snapshot>),
    Shutdown,
}

/// A consistent view for APIs and the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub devices: Vec<FoundDevice>,
    pub sessions: Vec<SessionInfo>,
    pub servers: Vec<String>,
    pub trusted: Vec<store::TrustedDevice>,
    pub dropped_datagrams: u64,
}

enum Input {
    Accepted {
        conn: ConnId,
        listener: Listener,
        peer: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
        reader: tokio::task::AbortHandle,
    },
    Data {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
}

/// A cheap, cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    info: Arc<NodeInfo>,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
}

/// A running node; dropping it does not stop it, [`Node::shutdown`] does.
#[derive(Debug)]
pub struct Node {
    handle: NodeHandle,
    done: oneshot::Receiver<()>,
}

impl Node {
    /// Binds the discovery socket and both listeners, publishes the capabilities,
    /// creates the echo servers and starts the engine task.
    ///
    /// The node runs on a thread of its own with a single-threaded runtime: the
    /// engine is single-threaded anyway, and its reader, engine and writer tasks
    /// then hand packets over without cross-thread wake-ups, while the caller's
    /// runtime (dashboard, clients) does not compete with the hot path.
    pub async fn start(cfg: NodeConfig) -> Result<Node, Error> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("softbus-node".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Io(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match Self::setup(cfg) {
                        Ok((handle, run)) => {
                            let _ = ready_tx.send(Ok(handle));
                            run.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                let _ = done_tx.send(());
            })?;
        let handle = ready_rx.await.map_err(|_| Error::Stopped)??;
        Ok(Node {
            handle,
            done: done_rx,
        })
    }

    /// Binds everything and builds the engine; runs inside the node's runtime.
    fn setup(
        cfg: NodeConfig,
    ) -> Result<(NodeHandle, impl std::future::Future<Output = ()>), Error> {
        let mut crypto = OpenSslCrypto::new();
        let device_id = store::load_or_create_device_id(&cfg.data_dir, |b| {
            softbus_bus::crypto::Crypto::random(&mut crypto, b)
        })?;
        let trust = TrustStore::open(&cfg.data_dir)?;
        let udp = net::bind_discovery(cfg.ip, cfg.discovery_port)?;
        let auth = net::bind_listener(cfg.ip, cfg.auth_port, Bound::AuthListener)?;
        let sess = net::bind_listener(cfg.ip, cfg.session_port, Bound::SessionListener)?;
        let (auth_port, session_port) = (auth.local_addr()?.port(), sess.local_addr()?.port());
        let rtc_sock = net::bind_udp(cfg.ip, cfg.rtc_port)?;
        let rtc_port = rtc_sock.local_addr()?.port();
        let rtc = RtcHost::new(SocketAddr::from((cfg.ip, rtc_port))).map_err(Error::Config)?;
        // With port 0 the kernel picks one; report and use what was bound.
        let discovery_port = udp.local_addr()?.port();
        let mut bus_cfg = cfg.bus.clone();
        bus_cfg.pin = cfg.pin.clone();
        bus_cfg.discovery.port = discovery_port;
        let mut bus = Bus::new(
            bus_cfg,
            LocalConfig {
                device_id: device_id.clone(),
                name: cfg.name.clone(),
                device_type: cfg.device_type,
                ip: cfg.ip,
            },
            Box::new(crypto),
        );
        bus.set_ports(auth_port, session_port);
        for (i, cap) in cfg.capabilities.iter().enumerate() {
            bus.discovery_mut()
                .publish(Some("softbus"), &PublishInfo::coap(i as i32 + 1, cap))
                .map_err(|e| Error::Config(format!("capability {cap}: {e}")))?;
        }
        let mut modes = HashMap::new();
        for name in &cfg.discard {
            bus.create_session_server(name)
                .map_err(|e| Error::Config(format!("session server {name}: {e}")))?;
            modes.insert(name.clone(), ServerMode::Discard);
        }
        for name in &cfg.echo {
            bus.create_session_server(name)
                .map_err(|e| Error::Config(format!("session server {name}: {e}")))?;
            modes.insert(name.clone(), ServerMode::Echo);
        }
        let info = Arc::new(NodeInfo {
            device_id,
            name: cfg.name.clone(),
            device_type: cfg.device_type,
            ip: cfg.ip,
            discovery_port,
            auth_port,
            session_port,
            rtc_port,
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (ev_tx, _) = broadcast::channel(4096);
        let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
        let next_conn = Arc::new(AtomicU64::new(1));
        let acceptors = vec![
            tokio::spawn(accept_loop(
                auth,
                Listener::Auth,
                in_tx.clone(),
                next_conn.clone(),
            )),
            tokio::spawn(accept_loop(sess, Listener::Session, in_tx, next_conn)),
        ];
        let driver = Driver {
            bus,
            udp,
            modes,
            discarded: HashMap::new(),
            trust,
            events: ev_tx.clone(),
            writers: HashMap::new(),
            readers: HashMap::new(),
            rtc,
            rtc_sock: Some(rtc_sock),
            rtc_sessions: HashMap::new(),
            rtc_next: crate::rtc::FIRST_SESSION_ID,
            max_sessions: cfg.bus.max_sessions,
        };
        let handle = NodeHandle {
            info,
            commands: cmd_tx,
            events: ev_tx,
        };
        Ok((handle, driver.run(cmd_rx, in_rx, acceptors)))
    }

    /// A handle for commands and events.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Stops the node and waits for its task; open connections are closed.
    pub async fn shutdown(self) {
        let _ = self.handle.commands.send(Command::Shutdown).await;
        let _ = self.done.await;
    }
}

impl NodeHandle {
    /// Identity and ports.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// Subscribes to node events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    async fn call<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(f(tx))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// CreateSessionServer with a built-in behaviour, or `App` for events only.
    pub async fn create_session_server(&self, name: &str, mode: ServerMode) -> Result<(), Error> {
        Ok(self
            .call(|tx| Command::CreateServer(name.to_owned(), mode, tx))
            .await??)
    }

    /// RemoveSessionServer.
    pub async fn remove_session_server(&self, name: &str) -> Result<(), Error> {
        Ok(self
            .call(|tx| Command::RemoveServer(name.to_owned(), tx))
            .await??)
    }

    /// SendBytes.
    pub async fn send_bytes(&self, session_id: i32, data: Vec<u8>) -> Result<(), Error> {
        Ok(self
            .call(|tx| Command::Send(session_id, data, tx))
            .await??)
    }

    /// CloseSession.
    pub async fn close_session(&self, session_id: i32) -> Result<(), Error> {
        Ok(self.call(|tx| Command::Close(session_id, tx)).await??)
    }

    /// Sends discovery requests to `targets`; answers arrive as `device_found` events.
    pub async fn discover(&self, targets: Vec<SocketAddrV4>) -> Result<(), Error> {
        self.commands
            .send(Command::Discover(targets))
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Answers a WebRTC offer: `(peer id, answer SDP)`, or why not.
    pub async fn rtc_offer(&self, sdp: String) -> Result<Result<(u64, String), String>, Error> {
        self.call(|tx| Command::RtcOffer(sdp, tx)).await
    }

    /// Closes a WebRTC peer connection; false if unknown.
    pub async fn rtc_close(&self, id: u64) -> Result<bool, Error> {
        self.call(|tx| Command::RtcClose(id, tx)).await
    }

    /// Devices, sessions, servers, trusted devices.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.call(Command::Snapshot).await
    }
}

async fn accept_loop(
    l: TcpListener,
    kind: Listener,
    tx: mpsc::Sender<Input>,
    next: Arc<AtomicU64>,
) {
    loop {
        let (stream, peer) = match l.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnId(next.fetch_add(1, Ordering::Relaxed));
        let (rd, wr) = stream.into_split();
        let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(wr, wrx));
        let reader = tokio::spawn(read_loop(rd, conn, tx.clone()));
        if tx
            .send(Input::Accepted {
                conn,
                listener: kind,
                peer,
                writer: wtx,
                reader: reader.abort_handle(),
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn read_loop(rd: tokio::net::tcp::OwnedReadHalf, conn: ConnId, tx: mpsc::Sender<Input>) {
    loop {
        if rd.readable().await.is_err() {
            break;
        }
        // No buffer is held while the connection is idle, and none is zeroed.
        let mut buf = Vec::with_capacity(READ_CHUNK);
        match rd.try_read_buf(&mut buf) {
            Ok(0) => break,
            Ok(_) => {
                if tx.send(Input::Data { conn, bytes: buf }).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    let _ = tx.send(Input::Closed { conn }).await;
}

async fn write_loop(mut wr: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    // The node writes only to its clients (softbus_lite devices never open a
    // session or auth connection to us), so queued packets may share one write.
    // Our own client side keeps one packet per write for lite servers.
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut out = first;
        if let Ok(next) = rx.try_recv() {
            batch.clear();
            batch.extend_from_slice(&out);
            batch.extend_from_slice(&next);
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(b) => batch.extend_from_slice(&b),
                    Err(_) => break,
                }
            }
            out = std::mem::take(&mut batch);
        }
        if wr.write_all(&out).await.is_err() {
            break;
        }
        if out.capacity() <= WRITE_BATCH * 2 {
            batch = out;
        }
    }
    let _ = wr.shutdown().await;
}

struct Driver {
    bus: Bus,
    udp: UdpSocket,
    modes: HashMap<String, ServerMode>,
    /// Bytes received per discard session.
    discarded: HashMap<i32, u64>,
    trust: TrustStore,
    events: broadcast::Sender<NodeEvent>,
    writers: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    readers: HashMap<ConnId, tokio::task::AbortHandle>,
    rtc: RtcHost,
    rtc_sock: Option<UdpSocket>,
    rtc_sessions: HashMap<i32, RtcSession>,
    rtc_next: i32,
    max_sessions: usize,
}

impl Driver {
    fn flush_rtc(&mut self, sock: Option<&UdpSocket>) {
        let (mut out, mut events) = (Vec::new(), Vec::new());
        for _ in 0..8 {
            self.rtc.drain(&mut out, &mut events);
            if let Some(sock) = sock {
                for (to, d) in out.drain(..) {
                    if let Err(e) = sock.try_send_to(&d, to) {
                        tracing::debug!(%to, error = %e, "WebRTC send failed");
                    }
                }
            }
            if events.is_empty() {
                break;
            }
            for e in events.drain(..) {
                self.rtc_event(e);
            }
        }
    }

    fn rtc_event(&mut self, e: RtcEvent) {
        let now = Instant::now();
        match e {
            RtcEvent::ChannelOpen {
                peer,
                channel,
                label,
            } => {
                if !self.modes.contains_key(&label) || self.rtc_sessions.len() >= self.max_sessions
                {
                    // A label with no such session server is closed.
                    self.rtc.close_channel(now, peer, channel);
                    return;
                }
                let id = self.rtc_next;
                self.rtc_next = self
                    .rtc_next
                    .checked_add(1)
                    .unwrap_or(crate::rtc::FIRST_SESSION_ID);
                self.rtc_sessions.insert(
                    id,
                    RtcSession {
                        peer,
                        channel,
                        server: label.clone(),
                        remote: self.rtc.remote(peer),
                    },
                );
                let _ = self.events.send(NodeEvent::SessionOpened {
                    session_id: id,
                    session: label,
                    peer_device_id: String::new(),
                    transport: "webrtc".into(),
                });
            }
            RtcEvent::Message {
                peer,
                channel,
                binary,
                data,
            } => {
                let Some((&id, s)) = self
                    .rtc_sessions
                    .iter()
                    .find(|(_, s)| s.peer == peer && s.channel == channel)
                else {
                    return;
                };
                let _ = self.events.send(NodeEvent::BytesReceived {
                    session_id: id,
                    len: data.len(),
                });
                match self.modes.get(&s.server).copied() {
                    // Text comes back as text, binary as binary.
                    Some(ServerMode::Echo) => {
                        if let Err(e) = self.rtc.send(now, peer, channel, binary, &data) {
                            tracing::debug!(error = %e, "WebRTC echo failed");
                        }
                    }
                    Some(ServerMode::Discard) => {
                        let n = self.discarded.entry(id).or_default();
                        if data.as_slice() == b"?" {
                            let _ =
                                self.rtc
                                    .send(now, peer, channel, binary, n.to_string().as_bytes());
                        } else {
                            *n += data.len() as u64;
                        }
                    }
                    _ => {}
                }
            }
            RtcEvent::ChannelClosed { peer, channel } => {
                if let Some(id) = self
                    .rtc_sessions
                    .iter()
                    .find(|(_, s)| s.peer == peer && s.channel == channel)
                    .map(|(id, _)| *id)
                {
                    self.rtc_sessions.remove(&id);
                    let _ = self.events.send(NodeEvent::SessionClosed {
                        session_id: id,
                        reason: "channel closed".into(),
                    });
                }
            }
            RtcEvent::PeerClosed { peer, reason } => self.rtc_peer_gone(peer, &reason),
        }
    }

    fn rtc_peer_gone(&mut self, peer: u64, reason: &str) {
        let ids: Vec<i32> = self
            .rtc_sessions
            .iter()
            .filter(|(_, s)| s.peer == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.rtc_sessions.remove(&id);
            self.discarded.remove(&id);
            let _ = self.events.send(NodeEvent::SessionClosed {
                session_id: id,
                reason: reason.to_owned(),
            });
        }
    }

    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut inputs: mpsc::Receiver<Input>,
        acceptors: Vec<JoinHandle<()>>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut rtc_buf = vec![0u8; 2048];
        let rtc_sock = self.rtc_sock.take();
        loop {
            let deadline = softbus_bus::earliest(self.bus.poll_timeout(), self.rtc.poll_timeout())
                .map(tokio::time::Instant::from_std);
            let rtc_recv = async {
                match &rtc_sock {
                    Some(s) => s.recv_from(&mut rtc_buf).await,
                    None => std::future::pending().await,
                }
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.command(c),
                },
                Some(input) = inputs.recv() => self.input(input),
                r = self.udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        if let Err(e) = self.bus.handle_datagram(Instant::now(), from, &buf[..n]) {
                            tracing::debug!(%from, error = %e, "discovery datagram dropped");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "discovery socket error"),
                },
                r = rtc_recv => if let Ok((n, from)) = r {
                    let now = Instant::now();
                    self.rtc.handle_datagram(now, from, &rtc_buf[..n]);
                    // Drain what else is queued before flushing: a data channel sends bursts.
                    if let Some(sock) = rtc_sock.as_ref() {
                        for _ in 0..RTC_DRAIN {
                            let Ok((n, from)) = sock.try_recv_from(&mut rtc_buf) else { break };
                            self.rtc.handle_datagram(now, from, &rtc_buf[..n]);
                        }
                    }
                },
                () = sleep => {
                    self.bus.handle_timeout(Instant::now());
                    self.rtc.handle_timeout(Instant::now());
                }
            }
            self.flush().await;
            self.flush_rtc(rtc_sock.as_ref());
        }
        for a in acceptors {
            a.abort();
        }
        for (_, r) in self.readers.drain() {
            r.abort();
        }
        self.writers.clear();
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::CreateServer(name, mode, tx) => {
                let r = self.bus.create_session_server(&name);
                if r.is_ok() {
                    self.modes.insert(name, mode);
                }
                let _ = tx.send(r);
            }
            Command::RemoveServer(name, tx) => {
                self.modes.remove(&name);
                let _ = tx.send(self.bus.remove_session_server(&name));
            }
            Command::Send(id, data, tx) => {
                let r = match self.rtc_sessions.get(&id) {
                    Some(s) => self
                        .rtc
                        .send(Instant::now(), s.peer, s.channel, true, &data)
                        .map_err(|_| SessionError::NoSession),
                    None => self.bus.send_bytes(id, &data),
                };
                let _ = tx.send(r);
            }
            Command::Close(id, tx) => {
                let r = match self.rtc_sessions.remove(&id) {
                    Some(s) => {
                        self.rtc.close_channel(Instant::now(), s.peer, s.channel);
                        let _ = self.events.send(NodeEvent::SessionClosed {
                            session_id: id,
                            reason: "closed locally".into(),
                        });
                        Ok(())
                    }
                    None => self.bus.close_session(id),
                };
                let _ = tx.send(r);
            }
            Command::Discover(targets) => self.bus.start_discovery(Instant::now(), targets),
            Command::RtcOffer(sdp, tx) => {
                let _ = tx.send(self.rtc.offer(&sdp));
            }
            Command::RtcClose(id, tx) => {
                let closed = self.rtc.close(id);
                if closed {
                    self.rtc_peer_gone(id, "closed by DELETE");
                }
                let _ = tx.send(closed);
            }
            Command::Snapshot(tx) => {
                let mut sessions = self.bus.sessions();
                sessions.extend(self.rtc_sessions.iter().map(|(id, s)| SessionInfo {
                    session_id: *id,
                    session: s.server.clone(),
                    peer_device_id: String::new(),
                    peer: s.remote.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                    transport: "webrtc",
                }));
                let _ = tx.send(Snapshot {
                    devices: self.bus.discovery().devices(),
                    sessions,
                    servers: self.bus.session_servers().to_vec(),
                    trusted: self.trust.devices().to_vec(),
                    dropped_datagrams: self.bus.discovery().dropped(),
                });
            }
            Command::Shutdown => {}
        }
    }

    fn input(&mut self, i: Input) {
        let now = Instant::now();
        match i {
            Input::Accepted {
                conn,
                listener,
                peer,
                writer,
                reader,
            } => {
                if self.bus.handle_accept(now, conn, listener, peer).is_ok() {
                    self.writers.insert(conn, writer);
                    self.readers.insert(conn, reader);
                } else {
                    tracing::info!(%peer, ?listener, "connection refused: limit reached");
                    reader.abort();
                }
            }
            Input::Data { conn, bytes } => {
                let _ = self.bus.handle_tcp_data(now, conn, &bytes);
            }
            Input::Closed { conn } => {
                self.bus.handle_tcp_closed(now, conn);
                self.writers.remove(&conn);
                self.readers.remove(&conn);
            }
        }
    }

    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.bus.poll_transmit() {
                progressed = true;
                match t {
                    Transmit::Udp(d) => {
                        if let Err(e) = self.udp.try_send_to(&d.payload, SocketAddr::V4(d.dst)) {
                            tracing::debug!(dst = %d.dst, error = %e, "discovery send failed");
                        }
                    }
                    Transmit::Tcp { conn, bytes } => {
                        if let Some(w) = self.writers.get(&conn) {
                            if w.try_send(bytes).is_err() {
                                // The peer does not read: it costs only its own connection.
                                tracing::info!(conn = conn.0, "peer too slow; closing");
                                self.writers.remove(&conn);
                                if let Some(r) = self.readers.remove(&conn) {
                                    r.abort();
                                }
                                self.bus.handle_tcp_closed(Instant::now(), conn);
                            }
                        }
                    }
                    Transmit::Close { conn } => {
                        self.writers.remove(&conn);
                        if let Some(r) = self.readers.remove(&conn) {
                            r.abort();
                        }
                    }
                }
            }
            while let Some(e) = self.bus.poll_event() {
                progressed = true;
                self.event(e);
            }
            if !progressed {
                break;
            }
        }
    }

    fn event(&mut self, e: BusEvent) {
        match &e {
            BusEvent::BytesReceived { session_id, data } => {
                let mode = self
                    .bus
                    .session(*session_id)
                    .and_then(|s| self.modes.get(&s.session))
                    .copied();
                let reply = match mode {
                    Some(ServerMode::Echo) => Some(data.clone()),
                    Some(ServerMode::Discard) => {
                        let n = self.discarded.entry(*session_id).or_default();
                        if data.as_slice() == b"?" {
                            Some(n.to_string().into_bytes())
                        } else {
                            *n += data.len() as u64;
                            None
                        }
                    }
                    Some(ServerMode::App) | None => None,
                };
                if let Some(r) = reply {
                    if let Err(err) = self.bus.send_bytes(*session_id, &r) {
                        tracing::debug!(session = session_id, error = %err, "built-in server reply failed");
                    }
                }
            }
            BusEvent::SessionClosed { session_id, .. } => {
                self.discarded.remove(session_id);
            }
            BusEvent::PeerVerified { ip, peer, .. } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                if let Err(err) = self.trust.record(
                    &peer.device_id,
                    &peer.device_name,
                    &peer.device_type,
                    &ip.to_string(),
                    now,
                ) {
                    tracing::warn!(error = %err, "could not persist trusted device");
                }
            }
            _ => {}
        }
        if let Some(ev) = NodeEvent::from_bus(&e) {
            let _ = self.events.send(ev);
        }
    }
}

/// Pins the calling thread to the `cpu`-th CPU available to the process, if any.
pub fn pin_to_cpu(cpu: Option<usize>) {
    let Some(i) = cpu else { return };
    match core_affinity::get_core_ids().and_then(|ids| ids.get(i).copied()) {
        Some(id) => {
            if !core_affinity::set_for_current(id) {
                tracing::warn!(cpu = i, "could not pin thread");
            }
        }
        None => tracing::warn!(cpu = i, "no such CPU; thread not pinned"),
    }
}

/// Connects from `local` (port chosen by the kernel) with a timeout.
pub(crate) async fn connect(
    local: Ipv4Addr,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, Error> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from((local, 0)))?;
    let s = tokio::time::timeout(timeout, sock.connect(addr))
        .await
        .map_err(|_| Error::Timeout("connect"))??;
    s.set_nodelay(true)?;
    Ok(s)
}
