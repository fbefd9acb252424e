//! The node driver: plumbing around the sans-IO node core
//! ([`softbus_node::Node`]). One task owns the core; per-connection tasks read
//! and write sockets and talk to it through bounded channels; the UDP sockets
//! are read and written in batches. It forwards events and never decides.

use crate::events::NodeEvent;
use crate::store::{self, TrustRecord, TrustStore, TrustWriter};
use crate::{net, Bound, Error};
use softbus_bus::auth::PeerInfo;
use softbus_bus::auth::PinPolicy;
pub use softbus_bus::discovery::publish::PublishInfo;
use softbus_bus::discovery::FoundDevice;
use softbus_bus::node::{Bus, BusConfig, BusEvent, Listener, LocalConfig, SessionInfo};
use softbus_bus::ConnId;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
pub use softbus_node::Principal;
pub use softbus_node::ServerMode;
use softbus_node::{
    Event as CoreEvent, Limits, Node as CoreNode, NodeError, Policy, SessionId, Socket, Transmit,
};
use softbus_rtc::crypto::Provider;
use softbus_rtc::host::{Host, HostConfig, PeerId};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

/// How often the node looks for changes to `paired.json` made by another process.
pub const PAIRS_CHECK: Duration = Duration::from_secs(1);
/// Receive batches taken in per wake-up of the WebRTC socket (32 datagrams each).
pub const RTC_DRAIN: usize = 8;
/// Time a dialed connection has to connect.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes queued toward one connection before it counts as too slow and is closed.
pub const WRITE_QUEUE: usize = 256;
/// Inputs queued from all connections to the engine task.
pub const INPUT_QUEUE: usize = 1024;
/// Largest single read from a socket.
pub const READ_CHUNK: usize = 16 * 1024;
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
    /// The PIN was drawn at random: replace it when too many attempts failed.
    pub pin_renewable: bool,
    pub data_dir: PathBuf,
    pub bus: BusConfig,
    /// Sessions (TCP and WebRTC together) and session servers.
    pub limits: Limits,
    /// Pin the node's thread to this CPU (index into the CPUs this process may use).
    pub cpu: Option<usize>,
    /// UDP port for WebRTC (0: kernel-chosen).
    pub rtc_port: u16,
    /// Open sessions for paired devices only (`--paired-only`).
    pub paired_only: bool,
    /// A node proper: it holds its data directory's lock and its discovery
    /// address's claim while it runs, and refuses to start where another node
    /// holds them. Client nodes (`softbus send`, `pair`) set this to false:
    /// several may run at once, beside a node on the same machine.
    pub exclusive: bool,
    /// Bind the discovery socket. A client that knows the peer's auth port
    /// needs none (and so takes no port 5684 from anyone).
    pub discovery: bool,
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
            pin_renewable: false,
            data_dir,
            bus: BusConfig::default(),
            limits: Limits::default(),
            cpu: None,
            rtc_port: 0,
            paired_only: false,
            exclusive: true,
            discovery: true,
        }
    }
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
    /// Work on the node core, run on its task with the time it starts at.
    Run(Job),
    Shutdown,
}

/// What [`NodeHandle::call`] and [`NodeHandle::call_later`] send: a closure
/// over the driver (the core, its sockets' bookkeeping, its records).
type Job = Box<dyn FnOnce(&mut Driver, Instant) + Send>;

/// What the application of a session server in `ServerMode::App` hears, in
/// order, through [`NodeHandle::app_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    Opened(SessionInfo),
    Bytes { session: i32, data: Vec<u8> },
    Closed { session: i32 },
}

/// Events queued toward the application at most; past that, messages are
/// dropped (and logged) rather than held.
pub const APP_QUEUE: usize = 1024;

/// A paired node's answer: the peer, the answer SDP, our signature over it.
type PairedAnswer = Result<(PeerId, String, [u8; 64]), NodeError>;

/// How this node proves itself to another node's signaling.
#[derive(Debug, Clone)]
pub enum WebAuth {
    /// The other node's web token.
    Token(String),
    /// This device's pairing with the other node: the offer's DTLS
    /// fingerprint signed with our long-term key.
    Paired,
}

/// Headers of node-to-node signaling: the signer's device id and its
/// signature (hex) over the SDP's DTLS fingerprint.
pub const DEVICE_HEADER: &str = "softbus-device";
pub const SIGNATURE_HEADER: &str = "softbus-signature";

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends `item`, dropping the oldest beyond `max`.
fn push_bounded<T>(q: &mut std::collections::VecDeque<T>, item: T, max: usize) {
    while q.len() >= max.max(1) {
        q.pop_front();
    }
    q.push_back(item);
}

/// Closed sessions a node keeps for its snapshot.
pub const RECENT_SESSIONS: usize = 50;

/// An open session with what it carried and since when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenSession {
    #[serde(flatten)]
    pub info: SessionInfo,
    pub opened_at_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A session that closed: what it was, when, what it carried, why it ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClosedSession {
    #[serde(flatten)]
    pub info: SessionInfo,
    pub opened_at_ms: u64,
    pub closed_at_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub reason: String,
}

/// Events a node keeps for [`NodeHandle::recent_events`].
pub const RECENT_EVENTS: usize = 200;

/// One kept event: when (Unix milliseconds), in words, and as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentEvent {
    pub at_ms: u64,
    pub words: String,
    pub event: NodeEvent,
}

/// Keeps the last events of `rx` in `ring` until the node stops.
async fn record(
    mut rx: broadcast::Receiver<NodeEvent>,
    ring: Arc<std::sync::Mutex<std::collections::VecDeque<RecentEvent>>>,
) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                let at_ms = unix_ms();
                if let Ok(mut r) = ring.lock() {
                    push_bounded(
                        &mut r,
                        RecentEvent {
                            at_ms,
                            words: event.to_words(),
                            event,
                        },
                        RECENT_EVENTS,
                    );
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A consistent view for APIs and the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub devices: Vec<FoundDevice>,
    /// Open sessions, with their bytes each way and since when.
    pub sessions: Vec<OpenSession>,
    /// The last sessions that closed, oldest first.
    pub closed_sessions: Vec<ClosedSession>,
    pub servers: Vec<String>,
    pub trusted: Vec<store::TrustedDevice>,
    pub paired: Vec<store::PairedDevice>,
    /// The media relay's streams and viewers.
    pub streams: Vec<softbus_node::StreamInfo>,
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
    /// A connection the node asked to dial is up (or failed).
    Dialed {
        conn: ConnId,
        result: Result<(mpsc::Sender<Vec<u8>>, tokio::task::AbortHandle), String>,
    },
}

/// A peer this node authenticated to (client role): its auth connection, which
/// holds the key for sessions, and what it said about itself.
#[derive(Debug, Clone)]
pub struct RemoteDevice {
    pub conn: ConnId,
    pub peer: PeerInfo,
}

/// A session this node opened (client role): send with [`SessionHandle::send`],
/// receive with [`SessionHandle::recv`].
#[derive(Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    inbox: mpsc::Receiver<Vec<u8>>,
    node: NodeHandle,
    /// For a session over WebRTC we offered: where to DELETE the peer connection.
    signaling: Option<Signaling>,
}

#[derive(Debug)]
struct Signaling {
    web: String,
    location: String,
    timeout: Duration,
    /// The credential the offer was posted with.
    headers: Vec<(&'static str, String)>,
}

impl SessionHandle {
    /// SendBytes.
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.node.send_bytes(self.id.0, data.to_vec()).await
    }

    /// The next message, waiting at most `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, Error> {
        match tokio::time::timeout(timeout, self.inbox.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Error::Closed("the session closed")),
            Err(_) => Err(Error::Timeout("a message on the session")),
        }
    }

    /// CloseSession. Over WebRTC, the peer connection is ended with `DELETE` on
    /// the other node's signaling (it then ends SCTP and DTLS toward us).
    pub async fn close(self) -> Result<(), Error> {
        match self.signaling {
            Some(s) if !s.headers.is_empty() => {
                let r = crate::signaling::request(
                    &s.web,
                    "DELETE",
                    &s.location,
                    &s.headers,
                    "",
                    s.timeout,
                )
                .await?;
                if r.status == 204 {
                    Ok(())
                } else {
                    Err(Error::Signaling {
                        status: r.status,
                        reason: r.body.trim().to_owned(),
                    })
                }
            }
            // Paired: no web credential to DELETE with; closing the peer
            // connection here sends SCTP SHUTDOWN and DTLS close_notify.
            Some(_) => {
                let id = self.id;
                let peer = self.node.call(move |d, _| d.node.rtc_peer_of(id)).await?;
                match peer {
                    Some(p) => {
                        self.node.rtc_close(p.0).await?;
                        Ok(())
                    }
                    None => self.node.close_session(id.0).await,
                }
            }
            None => self.node.close_session(self.id.0).await,
        }
    }
}

/// Messages queued toward one client session's reader before more are dropped.
pub const SESSION_INBOX: usize = 256;

/// A cheap, cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    info: Arc<NodeInfo>,
    /// The last [`RECENT_EVENTS`] events, for a dashboard that reloads.
    recent: Arc<std::sync::Mutex<std::collections::VecDeque<RecentEvent>>>,
    /// The pairing PIN in force, for the operator (never in events).
    pin: Arc<std::sync::Mutex<Option<zeroize::Zeroizing<String>>>>,
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
        // One node per data directory and per discovery address.
        let dir_lock = match cfg.exclusive {
            true => Some(store::DirLock::acquire(&cfg.data_dir)?),
            false => None,
        };
        let own = store::load_or_create_identity(&cfg.data_dir, |b| {
            softbus_bus::crypto::Crypto::random(&mut crypto, b)
        })?;
        if !own.derived {
            tracing::warn!(
                device_id = %own.device_id,
                "this device id was made before ids were derived from the key: peers see it as claimed; --reset-identity makes one derived from a new key (peers pair again)"
            );
        }
        let store::OwnIdentity {
            device_id,
            key: identity_key,
            ..
        } = own;
        let address_claim = match cfg.exclusive && cfg.discovery {
            true => net::claim_discovery_address(
                std::net::SocketAddrV4::new(cfg.ip, cfg.discovery_port),
                &cfg.name,
                &device_id,
            )?,
            false => None,
        };
        let pairs = store::PairStore::open(&cfg.data_dir)?;
        let paired = pairs.load()?;
        let pairings = store::engine_pairings(&paired);
        let trust = TrustWriter::start(TrustStore::open(&cfg.data_dir)?)?;
        let udp = match cfg.discovery {
            true => Some(net::BatchUdp::new(net::bind_discovery(
                cfg.ip,
                cfg.discovery_port,
            )?)?),
            false => None,
        };
        let auth = net::bind_listener(cfg.ip, cfg.auth_port, Bound::AuthListener)?;
        let sess = net::bind_listener(cfg.ip, cfg.session_port, Bound::SessionListener)?;
        let (auth_port, session_port) = (auth.local_addr()?.port(), sess.local_addr()?.port());
        let rtc_sock = net::BatchUdp::new(net::bind_udp(cfg.ip, cfg.rtc_port)?)?;
        let rtc_port = rtc_sock.local_addr()?.port();
        let factory = DtlsIdentity::generate()?.factory()?;
        let mut host_cfg = HostConfig::new(SocketAddr::from((cfg.ip, rtc_port)));
        // Room for every budget at once (data-channel peers, publishers, viewers).
        host_cfg.max_peers = cfg.limits.rtc_peers_needed();
        let host = Host::new(
            host_cfg,
            Provider {
                hmac: Box::new(OpenSslCrypto::new()),
                random: Box::new(OpenSslCrypto::new()),
                dtls: Box::new(factory),
                srtp: softbus_crypto::srtp_backends(),
            },
        );
        // With port 0 the kernel picks one; report and use what was bound.
        let discovery_port = match &udp {
            Some(u) => u.local_addr()?.port(),
            None => 0,
        };
        let mut bus_cfg = cfg.bus.clone();
        bus_cfg.pin = cfg.pin.clone();
        bus_cfg.guard.renewable = cfg.pin_renewable;
        bus_cfg.discovery.port = discovery_port;
        bus_cfg.discovery.directed_broadcast = net::broadcast_of(cfg.ip);
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
        bus.set_identity(*identity_key)
            .map_err(|_| store::StoreError::CorruptIdentity {
                path: cfg.data_dir.join("identity.key"),
                what: "not an Ed25519 key",
            })?;
        drop(identity_key);
        bus.set_pairings(pairings);
        for (i, cap) in cfg.capabilities.iter().enumerate() {
            bus.discovery_mut()
                .publish(Some("softbus"), &PublishInfo::coap(i as i32 + 1, cap))
                .map_err(|source| Error::Capability {
                    name: cap.clone(),
                    source,
                })?;
        }
        let mut node = CoreNode::new(bus, host, cfg.limits.clone());
        node.set_policy(Policy {
            paired_only: cfg.paired_only,
        });
        for (names, mode) in [
            (&cfg.discard, ServerMode::Discard),
            (&cfg.echo, ServerMode::Echo),
        ] {
            for name in names {
                node.create_session_server(name, mode)
                    .map_err(|source| Error::SessionServer {
                        name: name.clone(),
                        source,
                    })?;
            }
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
            tokio::spawn(accept_loop(
                sess,
                Listener::Session,
                in_tx.clone(),
                next_conn,
            )),
        ];
        let driver = Driver {
            node,
            opened_at: HashMap::new(),
            closed_sessions: std::collections::VecDeque::new(),
            udp_out: Vec::new(),
            rtc_out: Vec::new(),
            gso_buf: Vec::new(),
            ip: cfg.ip,
            handle: None,
            inputs: in_tx.clone(),
            pending_auth: HashMap::new(),
            pending_open: HashMap::new(),
            inboxes: HashMap::new(),
            udp,
            rtc_sock: Some(rtc_sock),
            trust,
            pairs_stamp: pairs.stamp(),
            pairs,
            paired,
            app: None,
            app_sessions: std::collections::HashSet::new(),
            events: ev_tx.clone(),
            writers: HashMap::new(),
            readers: HashMap::new(),
            _claims: (dir_lock, address_claim),
        };
        let handle = NodeHandle {
            info,
            recent: Default::default(),
            pin: Arc::new(std::sync::Mutex::new(cfg.pin.pin.clone())),
            commands: cmd_tx,
            events: ev_tx,
        };
        let mut driver = driver;
        driver.handle = Some(handle.clone());
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

    /// The pairing PIN in force (it changes when a random PIN was replaced).
    pub fn current_pin(&self) -> Option<zeroize::Zeroizing<String>> {
        self.pin.lock().ok().and_then(|p| p.clone())
    }

    /// Subscribes to node events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The last events (at most [`RECENT_EVENTS`]), oldest first.
    pub fn recent_events(&self) -> Vec<RecentEvent> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The one way into the core: runs `f` on the node's task and returns
    /// what it returns. A new core operation is this call, written once.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver, Instant) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |d, now| {
            let _ = tx.send(f(d, now));
        });
        self.commands
            .send(Command::Run(job))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// The same for an operation answered later (an authentication, a session
    /// that opens): `f` keeps the sender until the core has the answer.
    async fn call_later<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver, Instant, oneshot::Sender<Result<T, Error>>) + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |d, now| f(d, now, tx));
        self.commands
            .send(Command::Run(job))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// CreateSessionServer with a built-in behaviour, or `App` for events only.
    pub async fn create_session_server(&self, name: &str, mode: ServerMode) -> Result<(), Error> {
        let name = name.to_owned();
        Ok(self
            .call(move |d, _| d.node.create_session_server(&name, mode))
            .await??)
    }

    /// RemoveSessionServer.
    pub async fn remove_session_server(&self, name: &str) -> Result<(), Error> {
        let name = name.to_owned();
        Ok(self
            .call(move |d, now| d.node.remove_session_server(now, &name))
            .await??)
    }

    /// SendBytes.
    pub async fn send_bytes(&self, session_id: i32, data: Vec<u8>) -> Result<(), Error> {
        Ok(self
            .call(move |d, now| d.node.send_bytes(now, SessionId(session_id), &data))
            .await??)
    }

    /// CloseSession.
    pub async fn close_session(&self, session_id: i32) -> Result<(), Error> {
        Ok(self
            .call(move |d, now| d.node.close_session(now, SessionId(session_id)))
            .await??)
    }

    /// Sends discovery requests to `targets`; answers arrive as `device_found` events.
    pub async fn discover(&self, targets: Vec<SocketAddrV4>) -> Result<(), Error> {
        if self.info.discovery_port == 0 {
            return Err(Error::NoDiscovery);
        }
        self.call(move |d, now| d.node.start_discovery(now, targets))
            .await
    }

    /// Answers a WebRTC offer posted by `principal`: `(peer id, answer SDP)`,
    /// or why not.
    pub async fn rtc_offer(
        &self,
        sdp: String,
        principal: Principal,
    ) -> Result<Result<(PeerId, String), NodeError>, Error> {
        self.call(move |d, now| d.node.rtc_answer(now, &sdp, principal))
            .await
    }

    /// WHIP: answers a publisher's offer for `stream`: `(peer id, answer SDP)`.
    pub async fn whip(
        &self,
        stream: String,
        sdp: String,
        principal: Principal,
    ) -> Result<Result<(PeerId, String), NodeError>, Error> {
        self.call(move |d, now| d.node.whip(now, &stream, &sdp, principal))
            .await
    }

    /// WHEP: answers a viewer's offer for `stream`: `(peer id, answer SDP)`.
    pub async fn whep(
        &self,
        stream: String,
        sdp: String,
        principal: Principal,
    ) -> Result<Result<(PeerId, String), NodeError>, Error> {
        self.call(move |d, now| d.node.whep(now, &stream, &sdp, principal))
            .await
    }

    /// Answers an offer whose DTLS fingerprint the paired device `device_id`
    /// signed: `(peer id, answer SDP, our signature)`, or why not.
    pub async fn rtc_offer_paired(
        &self,
        sdp: String,
        device_id: String,
        signature: Vec<u8>,
    ) -> Result<PairedAnswer, Error> {
        self.call(move |d, now| d.node.rtc_answer_paired(now, &sdp, &device_id, &signature))
            .await
    }

    /// Client role: connects to a peer's auth port and runs the PIN key
    /// agreement (no pairing: softbus_lite's way).
    pub async fn connect(&self, addr: SocketAddr, pin: &str) -> Result<RemoteDevice, Error> {
        let pin = zeroize::Zeroizing::new(pin.as_bytes().to_vec());
        self.call_later(move |d, now, tx| {
            let r = d.node.connect(now, addr, &pin);
            d.await_auth(r, tx);
        })
        .await
    }

    /// Client role: pairs with the device at `addr` using its PIN (hichain
    /// BIND: both keep the other's long-term key), then verifies.
    pub async fn pair(&self, addr: SocketAddr, pin: &str) -> Result<RemoteDevice, Error> {
        let pin = zeroize::Zeroizing::new(pin.as_bytes().to_vec());
        self.call_later(move |d, now, tx| {
            let r = d.node.connect_pair(now, addr, &pin);
            d.await_auth(r, tx);
        })
        .await
    }

    /// Client role: authenticates to a paired device with no PIN (STS).
    pub async fn connect_paired(&self, addr: SocketAddr) -> Result<RemoteDevice, Error> {
        self.call_later(move |d, now, tx| {
            let r = d.node.connect_paired(now, addr);
            d.await_auth(r, tx);
        })
        .await
    }

    /// PublishService (softbus_lite's checks and codes): the capability is
    /// advertised in discovery answers from then on.
    pub async fn publish(
        &self,
        module: Option<&str>,
        info: PublishInfo,
    ) -> Result<Result<(), softbus_bus::discovery::publish::PublishError>, Error> {
        let module = module.map(str::to_owned);
        self.call(move |d, _| {
            d.node
                .bus_mut()
                .discovery_mut()
                .publish(module.as_deref(), &info)
        })
        .await
    }

    /// UnPublishService: `Ok(true)` when nothing stays published.
    pub async fn unpublish(
        &self,
        module: Option<&str>,
        publish_id: i32,
    ) -> Result<Result<bool, i32>, Error> {
        let module = module.map(str::to_owned);
        self.call(move |d, _| {
            let disc = d.node.bus_mut().discovery_mut();
            disc.unpublish(module.as_deref(), publish_id)
                .map(|()| !disc.publications().is_publishing())
        })
        .await
    }

    /// SetCommonDeviceInfo: (key, value) pairs, all or nothing.
    pub async fn set_common_device_info(
        &self,
        entries: Vec<(i32, String)>,
    ) -> Result<Result<(), i32>, Error> {
        self.call(move |d, _| {
            let e: Vec<(i32, &str)> = entries.iter().map(|(k, v)| (*k, v.as_str())).collect();
            d.node.bus_mut().set_common_device_info(&e)
        })
        .await
    }

    /// The events of the session servers in `ServerMode::App` (opened, bytes,
    /// closed), on a bounded queue of [`APP_QUEUE`]; one receiver at a time.
    pub async fn app_events(&self) -> Result<std::sync::mpsc::Receiver<AppEvent>, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(APP_QUEUE);
        self.call(move |d, _| d.app = Some(tx)).await?;
        Ok(rx)
    }

    /// One open session.
    pub async fn session(&self, id: i32) -> Result<Option<SessionInfo>, Error> {
        self.call(move |d, _| d.node.session(SessionId(id)).cloned())
            .await
    }

    /// Whether `device_id` is paired with this node (a cheap look-up, for a
    /// check before anything costly is done for a request that names it).
    pub async fn is_paired(&self, device_id: &str) -> Result<bool, Error> {
        let device_id = device_id.to_owned();
        self.call(move |d, _| d.node.bus().pairings().contains_key(&device_id))
            .await
    }

    /// Forgets a paired device (on disk too); false if it was not paired.
    pub async fn unpair(&self, device_id: &str) -> Result<bool, Error> {
        let device_id = device_id.to_owned();
        self.call(move |d, _| d.unpair(device_id)).await?
    }

    /// Client role: opens a session to `server` on an authenticated peer.
    pub async fn open_session(
        &self,
        peer: &RemoteDevice,
        server: &str,
    ) -> Result<SessionHandle, Error> {
        let (conn, server) = (peer.conn, server.to_owned());
        self.call_later(move |d, now, tx| {
            let r = d.node.open_session(now, conn, &server);
            d.await_open(r, tx);
        })
        .await
    }

    /// Opens a session to the session server `server` of the node whose web
    /// side is `web` (`http://HOST:PORT`) over WebRTC: this node offers (full
    /// ICE, DTLS, SCTP from its WebRTC port) and opens a data channel so labelled.
    pub async fn open_webrtc_session(
        &self,
        web: &str,
        server: &str,
        timeout: Duration,
        auth: WebAuth,
    ) -> Result<SessionHandle, Error> {
        let (peer, offer) = self.call(|d, now| d.node.rtc_offer(now)).await??;
        let opened = tokio::time::timeout(timeout, async {
            let headers = match &auth {
                WebAuth::Token(t) => vec![("Authorization", format!("Bearer {t}"))],
                WebAuth::Paired => {
                    let o = offer.clone();
                    let sig = self.call(move |d, _| d.node.rtc_sign_offer(&o)).await??;
                    vec![
                        (DEVICE_HEADER, self.info.device_id.clone()),
                        (SIGNATURE_HEADER, hex::encode(sig)),
                    ]
                }
            };
            let r = crate::signaling::request(web, "POST", "/rtc/offer", &headers, &offer, timeout)
                .await?;
            if r.status != 201 {
                return Err(Error::Signaling {
                    status: r.status,
                    reason: r.body.trim().to_owned(),
                });
            }
            let location = r
                .header("location")
                .map(str::to_owned)
                .ok_or(Error::Closed("answer without Location"))?;
            match &auth {
                WebAuth::Token(_) => {
                    let answer = r.body.clone();
                    self.call(move |d, now| d.node.rtc_apply_answer(now, peer, &answer))
                        .await??;
                }
                WebAuth::Paired => {
                    // The answer must come from the node we are paired with.
                    let (Some(device), Some(sig)) = (
                        r.header(DEVICE_HEADER).map(str::to_owned),
                        r.header(SIGNATURE_HEADER).and_then(|h| hex::decode(h).ok()),
                    ) else {
                        return Err(Error::Signaling {
                            status: r.status,
                            reason: "the answer is not signed".into(),
                        });
                    };
                    let (o, answer) = (offer.clone(), r.body.clone());
                    self.call(move |d, now| {
                        d.node
                            .rtc_apply_answer_paired(now, peer, &o, &answer, &device, &sig)
                    })
                    .await??;
                }
            }
            let s_headers = match &auth {
                WebAuth::Token(t) => vec![("Authorization", format!("Bearer {t}"))],
                WebAuth::Paired => vec![],
            };
            let server = server.to_owned();
            let mut s = self
                .call_later(move |d, now, tx| {
                    let r = d.node.open_rtc_session(now, peer, &server);
                    d.await_open(r, tx);
                })
                .await?;
            s.signaling = Some(Signaling {
                web: web.to_owned(),
                location,
                timeout,
                headers: s_headers,
            });
            Ok(s)
        })
        .await
        .unwrap_or(Err(Error::Timeout("WebRTC session")));
        if opened.is_err() {
            // Nothing of it stays behind on this node.
            let _ = self.rtc_close(peer.0).await;
        }
        opened
    }

    /// Closes a WebRTC peer connection; false if unknown.
    pub async fn rtc_close(&self, id: u64) -> Result<bool, Error> {
        self.call(move |d, now| d.node.rtc_close(now, PeerId(id)))
            .await
    }

    /// `DELETE` of a peer connection by `by`: only the credential that created
    /// it may end it (`NodeError::NotOwner` otherwise); false if unknown.
    pub async fn rtc_close_as(
        &self,
        id: u64,
        by: Principal,
    ) -> Result<Result<bool, NodeError>, Error> {
        self.call(move |d, now| d.node.rtc_close_as(now, PeerId(id), &by))
            .await
    }

    /// Whether `by` created peer connection `id` and it is still open.
    pub async fn rtc_owns(&self, id: u64, by: Principal) -> Result<bool, Error> {
        self.call(move |d, _| d.node.rtc_owned_by(PeerId(id), &by))
            .await
    }

    /// Devices, sessions, servers, trusted devices.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.call(|d, _| d.snapshot()).await
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
        if let Err(e) = net::keepalive(&stream) {
            tracing::debug!(error = %e, "no TCP keepalive");
        }
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

/// The writer of a connection we dialed: one packet per write, as softbus_lite's
/// receive path needs.
async fn write_each(mut wr: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(p) = rx.recv().await {
        if wr.write_all(&p).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
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

/// A session open a caller waits for, and the inbox it will read.
type PendingOpen = (
    oneshot::Sender<Result<SessionHandle, Error>>,
    mpsc::Receiver<Vec<u8>>,
);

struct Driver {
    node: CoreNode,
    /// The data directory's lock and the discovery address's claim, held
    /// while the node runs.
    _claims: (Option<store::DirLock>, Option<net::AddressClaim>),
    /// When each open session opened (Unix ms), and the last closed ones.
    opened_at: HashMap<i32, (u64, SessionInfo)>,
    closed_sessions: std::collections::VecDeque<ClosedSession>,
    /// Datagrams of one flush, per socket, and the buffer GSO trains are built in.
    udp_out: Vec<(SocketAddr, Vec<u8>)>,
    rtc_out: Vec<(SocketAddr, Vec<u8>)>,
    gso_buf: Vec<u8>,
    ip: Ipv4Addr,
    handle: Option<NodeHandle>,
    inputs: mpsc::Sender<Input>,
    pending_auth: HashMap<ConnId, oneshot::Sender<Result<RemoteDevice, Error>>>,
    pending_open: HashMap<SessionId, PendingOpen>,
    inboxes: HashMap<SessionId, mpsc::Sender<Vec<u8>>>,
    /// The discovery socket (none on a client that needs no discovery).
    udp: Option<net::BatchUdp>,
    rtc_sock: Option<net::BatchUdp>,
    trust: TrustWriter,
    /// Toward the application of `ServerMode::App` servers, and its sessions.
    app: Option<std::sync::mpsc::SyncSender<AppEvent>>,
    app_sessions: std::collections::HashSet<i32>,
    /// `paired.json`, and its modification time when last read.
    pairs: store::PairStore,
    pairs_stamp: Option<std::time::SystemTime>,
    /// What `paired.json` held when last read or written (for snapshots,
    /// which must not read the disk on the engine task).
    paired: Vec<store::PairedDevice>,
    events: broadcast::Sender<NodeEvent>,
    writers: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    readers: HashMap<ConnId, tokio::task::AbortHandle>,
}

impl Driver {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut inputs: mpsc::Receiver<Input>,
        acceptors: Vec<JoinHandle<()>>,
    ) {
        let mut rtc_sock = self.rtc_sock.take();
        if let Some(h) = &self.handle {
            tokio::spawn(record(h.events.subscribe(), h.recent.clone()));
        }
        // `softbus unpair` edits paired.json while the node runs: look once a second.
        let mut pairs_check = tokio::time::interval(PAIRS_CHECK);
        pairs_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            let rtc_recv = async {
                match rtc_sock.as_mut() {
                    Some(s) => s.recv_batch().await,
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
                    Some(Command::Run(job)) => job(&mut self, Instant::now()),
                },
                Some(input) = inputs.recv() => self.input(input),
                r = async {
                    match self.udp.as_mut() {
                        Some(u) => u.recv_batch().await,
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok(_) => {
                        let now = Instant::now();
                        for d in self.udp.iter_mut().flat_map(|u| u.received()) {
                            if let Err(e) = self.node.handle_datagram(now, Socket::Discovery, d.from, d.to, d.data) {
                                tracing::debug!(from = %d.from, error = %e, "discovery datagram dropped");
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "discovery socket error"),
                },
                r = rtc_recv => if r.is_ok() {
                    let now = Instant::now();
                    if let Some(sock) = rtc_sock.as_mut() {
                        // A data channel sends bursts: take in what else is queued
                        // (up to RTC_DRAIN batches) before the output is flushed.
                        for _ in 0..RTC_DRAIN {
                            for d in sock.received() {
                                let _ = self.node.handle_datagram(now, Socket::Rtc, d.from, d.to, d.data);
                            }
                            if sock.try_recv_batch().is_err() {
                                break;
                            }
                        }
                    }
                },
                () = sleep => self.node.handle_timeout(Instant::now()),
                _ = pairs_check.tick() => self.reload_pairs(),
            }
            self.flush(rtc_sock.as_ref());
        }
        // Tell WebRTC peers (SCTP SHUTDOWN, DTLS close_notify) before the sockets go.
        self.node.shutdown(Instant::now());
        self.flush(rtc_sock.as_ref());
        for a in acceptors {
            a.abort();
        }
        for (_, r) in self.readers.drain() {
            r.abort();
        }
        self.writers.clear();
        // Every verification is on disk before the node reports it has stopped.
        self.trust.finish();
    }

    /// Takes in `paired.json` if another process changed it; removed devices
    /// are reported as `unpaired`. A file that cannot be read keeps the
    /// pairings in force, loudly.
    fn reload_pairs(&mut self) {
        let stamp = self.pairs.stamp();
        if stamp == self.pairs_stamp {
            return;
        }
        self.pairs_stamp = stamp;
        match self.pairs.load() {
            Ok(list) => {
                let new = store::engine_pairings(&list);
                self.paired = list;
                let gone: Vec<String> = self
                    .node
                    .bus()
                    .pairings()
                    .keys()
                    .filter(|k| !new.contains_key(*k))
                    .cloned()
                    .collect();
                self.node.bus_mut().set_pairings(new);
                for device_id in gone {
                    let _ = self.events.send(NodeEvent::Unpaired { device_id });
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "paired devices not reloaded");
                let _ = self.events.send(NodeEvent::Error {
                    message: format!("paired devices not reloaded: {e}"),
                });
            }
        }
    }

    /// This node just wrote `paired.json`: keep its listing and stamp.
    fn paired_changed(&mut self) {
        self.paired = self.pairs.load().unwrap_or_default();
        self.pairs_stamp = self.pairs.stamp();
    }

    /// Forgets a paired device on disk and in the core; `Unpaired` is
    /// reported when it was paired.
    fn unpair(&mut self, device: String) -> Result<bool, Error> {
        let r = self.pairs.remove(&device).map_err(Error::from);
        if matches!(r, Ok(true)) {
            self.paired_changed();
            if self.node.bus_mut().unpair(&device) {
                let _ = self.events.send(NodeEvent::Unpaired { device_id: device });
            }
        }
        r
    }

    /// A consistent view for APIs and the dashboard.
    fn snapshot(&self) -> Snapshot {
        let bus = self.node.bus();
        Snapshot {
            devices: bus.discovery().devices(),
            sessions: self
                .node
                .sessions()
                .into_iter()
                .map(|info| {
                    let id = SessionId(info.session_id);
                    let t = self.node.traffic(id).unwrap_or_default();
                    OpenSession {
                        opened_at_ms: self
                            .opened_at
                            .get(&info.session_id)
                            .map_or(0, |(at, _)| *at),
                        bytes_in: t.bytes_in,
                        bytes_out: t.bytes_out,
                        info,
                    }
                })
                .collect(),
            closed_sessions: self.closed_sessions.iter().cloned().collect(),
            servers: self.node.session_servers(),
            trusted: self.trust.devices(),
            paired: self.paired.clone(),
            streams: self.node.streams(),
            dropped_datagrams: bus.discovery().dropped(),
        }
    }

    /// An authentication the core started: its caller is answered when it
    /// finishes (or fails).
    fn await_auth(
        &mut self,
        r: Result<ConnId, NodeError>,
        tx: oneshot::Sender<Result<RemoteDevice, Error>>,
    ) {
        match r {
            Ok(conn) => {
                self.pending_auth.insert(conn, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(e.into()));
            }
        }
    }

    /// A session open the core took: its caller is answered when it opens (or
    /// fails), with an inbox for its messages.
    fn await_open(
        &mut self,
        r: Result<SessionId, NodeError>,
        tx: oneshot::Sender<Result<SessionHandle, Error>>,
    ) {
        match r {
            Ok(id) => {
                let (itx, irx) = mpsc::channel(SESSION_INBOX);
                self.inboxes.insert(id, itx);
                self.pending_open.insert(id, (tx, irx));
            }
            Err(e) => {
                let _ = tx.send(Err(e.into()));
            }
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
                if self.node.handle_accept(now, conn, listener, peer).is_ok() {
                    self.writers.insert(conn, writer);
                    self.readers.insert(conn, reader);
                } else {
                    tracing::info!(%peer, ?listener, "connection refused: limit reached");
                    reader.abort();
                }
            }
            Input::Data { conn, bytes } => self.node.handle_tcp_data(now, conn, &bytes),
            Input::Closed { conn } => {
                self.node.handle_tcp_closed(now, conn);
                self.writers.remove(&conn);
                self.readers.remove(&conn);
            }
            Input::Dialed { conn, result } => match result {
                Ok((writer, reader)) => {
                    self.writers.insert(conn, writer);
                    self.readers.insert(conn, reader);
                    self.node.handle_dialed(now, conn, Ok(()));
                }
                Err(e) => self.node.handle_dialed(now, conn, Err(e)),
            },
        }
    }

    /// Connects a dialed connection in the background; the result comes back as
    /// an input. Its writer sends one packet per write (softbus_lite needs it).
    fn dial(&self, conn: ConnId, addr: SocketAddr) {
        let (ip, inputs) = (self.ip, self.inputs.clone());
        tokio::spawn(async move {
            let result = match connect(ip, addr, DIAL_TIMEOUT).await {
                Ok(stream) => {
                    let (rd, wr) = stream.into_split();
                    let (wtx, wrx) = mpsc::channel(WRITE_QUEUE);
                    tokio::spawn(write_each(wr, wrx));
                    let reader = tokio::spawn(read_loop(rd, conn, inputs.clone()));
                    Ok((wtx, reader.abort_handle()))
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = inputs.send(Input::Dialed { conn, result }).await;
        });
    }

    /// Writes what the node queued and forwards its events.
    fn flush(&mut self, rtc_sock: Option<&net::BatchUdp>) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.node.poll_transmit() {
                progressed = true;
                match t {
                    Transmit::Datagram {
                        socket,
                        destination,
                        payload,
                    } => match socket {
                        Socket::Discovery => self.udp_out.push((destination, payload)),
                        Socket::Rtc => self.rtc_out.push((destination, payload)),
                    },
                    Transmit::Tcp { conn, bytes } => {
                        if let Some(w) = self.writers.get(&conn) {
                            if w.try_send(bytes).is_err() {
                                // The peer does not read: it costs only its own connection.
                                tracing::info!(conn = conn.0, "peer too slow; closing");
                                self.writers.remove(&conn);
                                if let Some(r) = self.readers.remove(&conn) {
                                    r.abort();
                                }
                                self.node.handle_tcp_closed(Instant::now(), conn);
                            }
                        }
                    }
                    Transmit::Close { conn } => {
                        self.writers.remove(&conn);
                        if let Some(r) = self.readers.remove(&conn) {
                            r.abort();
                        }
                    }
                    Transmit::Dial { conn, addr } => self.dial(conn, addr),
                }
            }
            while let Some(e) = self.node.poll_event() {
                progressed = true;
                self.event(e);
            }
            if !progressed {
                break;
            }
        }
        // Datagrams leave in as few system calls as the kernel allows (GSO trains).
        if !self.udp_out.is_empty() {
            match self.udp.as_mut() {
                Some(u) => {
                    u.send_batch(&mut self.udp_out, &mut self.gso_buf);
                }
                None => self.udp_out.clear(),
            }
        }
        if let Some(sock) = rtc_sock {
            sock.send_batch(&mut self.rtc_out, &mut self.gso_buf);
        }
        self.rtc_out.clear();
    }

    /// Hands an event to the application; a full queue drops it (logged).
    fn tell_app(&mut self, e: AppEvent) {
        if let Some(tx) = &self.app {
            match tx.try_send(e) {
                Ok(()) => {}
                Err(std::sync::mpsc::TrySendError::Full(_)) => {
                    tracing::warn!("application too slow; session event dropped");
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => self.app = None,
            }
        }
    }

    /// Keeps when sessions opened, and the last [`RECENT_SESSIONS`] that closed.
    fn book_sessions(&mut self, e: &CoreEvent) {
        match e {
            CoreEvent::SessionOpened(info) => {
                // Bounded by the node's session limit: only open sessions are here.
                self.opened_at
                    .insert(info.session_id, (unix_ms(), info.clone()));
            }
            CoreEvent::SessionClosed {
                session,
                reason,
                traffic,
                ..
            } => {
                if let Some((opened, info)) = self.opened_at.remove(&session.0) {
                    let closed = ClosedSession {
                        info,
                        opened_at_ms: opened,
                        closed_at_ms: unix_ms(),
                        bytes_in: traffic.bytes_in,
                        bytes_out: traffic.bytes_out,
                        reason: reason.to_string(),
                    };
                    push_bounded(&mut self.closed_sessions, closed, RECENT_SESSIONS);
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, e: CoreEvent) {
        self.book_sessions(&e);
        match &e {
            CoreEvent::SessionOpened(info)
                if self.app.is_some()
                    && !self.node.is_outgoing(SessionId(info.session_id))
                    && self.node.server_mode(&info.session) == Some(ServerMode::App) =>
            {
                self.app_sessions.insert(info.session_id);
                self.tell_app(AppEvent::Opened(info.clone()));
            }
            CoreEvent::BytesReceived { session, data, .. }
                if self.app_sessions.contains(&session.0) =>
            {
                self.tell_app(AppEvent::Bytes {
                    session: session.0,
                    data: data.clone(),
                });
            }
            CoreEvent::SessionClosed { session, .. } if self.app_sessions.remove(&session.0) => {
                self.tell_app(AppEvent::Closed { session: session.0 });
            }
            _ => {}
        }
        match &e {
            CoreEvent::Bus(BusEvent::Authenticated { conn, peer }) => {
                if let Some(tx) = self.pending_auth.remove(conn) {
                    let _ = tx.send(Ok(RemoteDevice {
                        conn: *conn,
                        peer: peer.clone(),
                    }));
                }
            }
            CoreEvent::Bus(BusEvent::ConnDropped { conn, reason, .. }) => {
                if let Some(tx) = self.pending_auth.remove(conn) {
                    let _ = tx.send(Err(Error::Refused(reason.clone())));
                }
            }
            CoreEvent::SessionOpened(info) => {
                let id = SessionId(info.session_id);
                if let (Some((tx, inbox)), Some(node)) =
                    (self.pending_open.remove(&id), self.handle.clone())
                {
                    let _ = tx.send(Ok(SessionHandle {
                        id,
                        inbox,
                        node,
                        signaling: None,
                    }));
                }
            }
            CoreEvent::OpenFailed { session, reason } => {
                self.inboxes.remove(session);
                if let Some((tx, _)) = self.pending_open.remove(session) {
                    let _ = tx.send(Err(Error::NotOpened(reason.clone())));
                }
            }
            CoreEvent::BytesReceived { session, data, .. } => {
                if let Some(inbox) = self.inboxes.get(session) {
                    if inbox.try_send(data.clone()).is_err() {
                        tracing::warn!(
                            session = session.0,
                            "session reader too slow; message dropped"
                        );
                    }
                }
            }
            CoreEvent::SessionClosed { session, .. } => {
                self.inboxes.remove(session);
            }
            CoreEvent::Bus(BusEvent::Paired {
                device_id,
                public_key,
                ..
            }) => {
                // Written before it is reported: a pairing must not be lost.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                match self.pairs.add(device_id, public_key, now) {
                    Ok(()) => self.paired_changed(),
                    Err(err) => {
                        tracing::error!(error = %err, "pairing not saved");
                        let _ = self.events.send(NodeEvent::Error {
                            message: format!(
                                "pairing with {device_id} is not saved and ends at restart: {err}"
                            ),
                        });
                    }
                }
            }
            CoreEvent::Bus(BusEvent::PinReplaced { pin }) => {
                if let Some(h) = &self.handle {
                    if let Ok(mut p) = h.pin.lock() {
                        *p = Some(pin.clone());
                    }
                }
            }
            _ => {}
        }
        if let CoreEvent::Bus(BusEvent::PeerVerified { ip, peer, .. }) = &e {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let added = self.trust.record(TrustRecord {
                device_id: peer.device_id.clone(),
                name: peer.device_name.clone(),
                device_type: peer.device_type.clone(),
                ip: ip.to_string(),
                seen: now,
            });
            let _ = self.events.send(NodeEvent::TrustChanged {
                device_id: peer.device_id.clone(),
                name: peer.device_name.clone(),
                ip: ip.to_string(),
                change: if added { "added" } else { "updated" }.into(),
            });
        }
        if let Some(ev) = NodeEvent::from_node(&e) {
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
pub async fn connect(
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
    net::keepalive(&s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
    use super::*;

    /// The kept events are the last RECENT_EVENTS, oldest first, in words.
    #[tokio::test]
    async fn recent_events_keep_the_last_ones() {
        let (tx, rx) = broadcast::channel(4096);
        let ring = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        for i in 0..(RECENT_EVENTS + 50) {
            tx.send(NodeEvent::BytesReceived {
                session_id: i32::try_from(i).unwrap(),
                len: 1,
            })
            .unwrap();
        }
        drop(tx);
        record(rx, ring.clone()).await;
        let r = ring.lock().unwrap();
        assert_eq!(r.len(), RECENT_EVENTS);
        assert_eq!(r[0].words, "session 50: received 1 bytes");
    }
}
