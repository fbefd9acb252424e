//! The node driver: plumbing around the sans-IO node core
//! ([`softbus_node::Node`]). One task owns the core; per-connection tasks read
//! and write sockets and talk to it through bounded channels; the UDP sockets
//! are read and written in batches. It forwards events and never decides.

mod driver;
mod handle;
mod records;
mod rtc_client;

use crate::events::NodeEvent;
use crate::store::{self, TrustRecord, TrustStore, TrustWriter};
use crate::{net, Bound, Error};
use driver::*;
pub use handle::*;
pub use records::*;
pub use rtc_client::*;
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
    Ending, Event as CoreEvent, Limits, Node as CoreNode, NodeError, Policy, SessionId, Socket,
    Transmit,
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
    /// Devices the gateway may reach with a PIN (`--gateway-pin DEVICE=PIN`):
    /// device id → PIN.
    pub gateway_pins: softbus_node::GatewayPins,
    /// A node proper: it holds its data directory's lock and its discovery
    /// address's claim while it runs, and refuses to start where another node
    /// holds them. Client nodes (`softbus send`, `pair`) set this to false:
    /// several may run at once, beside a node on the same machine.
    pub exclusive: bool,
    /// Bind the discovery socket. A client that knows the peer's auth port
    /// needs none (and so takes no port 5684 from anyone).
    pub discovery: bool,
    /// STUN and TURN servers (`--ice-server`): with any, WebRTC is full ICE.
    pub ice: crate::ice::IceConfig,
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
            gateway_pins: Vec::new(),
            exclusive: true,
            discovery: true,
            ice: crate::ice::IceConfig::default(),
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

/// A running node: the task that holds the core ([`softbus_node::Node`]) and
/// its sockets. Dropping it does not stop it, [`NodeTask::shutdown`] does.
#[derive(Debug)]
pub struct NodeTask {
    handle: NodeHandle,
    done: oneshot::Receiver<()>,
}

impl NodeTask {
    /// Binds the discovery socket and both listeners, publishes the capabilities,
    /// creates the echo servers and starts the engine task.
    ///
    /// The node runs on a thread of its own with a single-threaded runtime: the
    /// engine is single-threaded anyway, and its reader, engine and writer tasks
    /// then hand packets over without cross-thread wake-ups, while the caller's
    /// runtime (dashboard, clients) does not compete with the hot path.
    pub async fn start(cfg: NodeConfig) -> Result<NodeTask, Error> {
        cfg.ice.check().map_err(|reason| Error::IceServer {
            url: String::new(),
            reason,
        })?;
        let ice_servers = cfg.ice.resolve(&OpenSslCrypto::new()).await?;
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
                    match Self::setup(cfg, ice_servers) {
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
        Ok(NodeTask {
            handle,
            done: done_rx,
        })
    }

    /// Binds everything and builds the engine; runs inside the node's runtime.
    fn setup(
        cfg: NodeConfig,
        ice_servers: Vec<softbus_rtc::gather::IceServer>,
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
        host_cfg.ice_servers = ice_servers;
        let mut host = Host::new(
            host_cfg,
            Provider {
                hmac: Box::new(OpenSslCrypto::new()),
                random: Box::new(OpenSslCrypto::new()),
                dtls: Box::new(factory),
                srtp: softbus_crypto::srtp_backends(),
            },
        );
        // turns: servers: TLS over OpenSSL, the system's trust store.
        host.set_tls(Box::new(softbus_crypto::tls::OpenSslTlsConnector));
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
        node.set_gateway_pins(cfg.gateway_pins.clone());
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
            ice: Arc::new(cfg.ice.clone()),
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
                session_id: SessionId(i32::try_from(i).unwrap()),
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
