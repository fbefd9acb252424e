//! The handle: a cheap, cloneable way into a running node. Every operation is
//! one [`NodeHandle::call`] of a closure over the driver on the node's task.

use super::*;

pub(super) enum Command {
    /// Work on the node core, run on its task with the time it starts at.
    Run(Job),
    Shutdown,
}

/// What [`NodeHandle::call`] and [`NodeHandle::call_later`] send: a closure
/// over the driver (the core, its sockets' bookkeeping, its records).
pub(super) type Job = Box<dyn FnOnce(&mut Driver, Instant) + Send>;

/// What the application of a session server in `ServerMode::App` hears, in
/// order, through [`NodeHandle::app_events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    Opened(SessionInfo),
    Bytes { session: SessionId, data: Vec<u8> },
    Closed { session: SessionId },
}

/// Events queued toward the application at most; past that, messages are
/// dropped (and logged) rather than held.
pub const APP_QUEUE: usize = 1024;

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
    pub(super) inbox: mpsc::Receiver<Vec<u8>>,
    pub(super) node: NodeHandle,
    /// For a session over WebRTC we offered: where to DELETE the peer connection.
    pub(super) signaling: Option<Signaling>,
}

impl SessionHandle {
    /// SendBytes.
    pub async fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.node.send_bytes(self.id, data.to_vec()).await
    }

    /// The next message, waiting at most `timeout`.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Vec<u8>, Error> {
        match tokio::time::timeout(timeout, self.inbox.recv()).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(Error::Closed("the session closed")),
            Err(_) => Err(Error::Timeout("a message on the session")),
        }
    }
}

/// Messages queued toward one client session's reader before more are dropped.
pub const SESSION_INBOX: usize = 256;

/// A cheap, cloneable handle to a running node.
#[derive(Debug, Clone)]
pub struct NodeHandle {
    pub(super) info: Arc<NodeInfo>,
    /// The last [`RECENT_EVENTS`] events, for a dashboard that reloads.
    pub(super) recent: Arc<std::sync::Mutex<std::collections::VecDeque<RecentEvent>>>,
    /// The pairing PIN in force, for the operator (never in events).
    pub(super) pin: Arc<std::sync::Mutex<Option<zeroize::Zeroizing<String>>>>,
    /// The ICE servers, for the `Link` headers of answers.
    pub(super) ice: Arc<crate::ice::IceConfig>,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<NodeEvent>,
}

impl NodeHandle {
    /// Identity and ports.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// The pairing PIN in force (it changes when a random PIN was replaced).
    /// `Link` header values naming the ICE servers (RFC 9725 §4.6), TURN ones
    /// with a credential (made fresh from `--turn-secret`).
    pub fn ice_links(&self) -> Vec<String> {
        self.ice.link_headers(&softbus_crypto::OpenSslCrypto::new())
    }

    /// The ICE servers as a page's `RTCPeerConnection` takes them.
    pub fn ice_servers_for_browser(&self) -> Vec<crate::ice::BrowserIceServer> {
        self.ice
            .browser_servers(&softbus_crypto::OpenSslCrypto::new())
    }

    /// How each ICE server is doing (gathering, ready with its address, failed).
    pub async fn ice_status(&self) -> Result<Vec<softbus_rtc::gather::ServerStatus>, Error> {
        self.call(|d, _| d.node.host().ice_servers()).await
    }

    /// The pairing PIN in force, for the operator (never in events).
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
    pub(super) async fn call<T: Send + 'static>(
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

    /// [`call`](Self::call) for an operation that may fail: its error joins
    /// the runtime's, so callers see one `Result`.
    pub(super) async fn try_call<T: Send + 'static, E: Into<Error> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver, Instant) -> Result<T, E> + Send + 'static,
    ) -> Result<T, Error> {
        self.call(f).await?.map_err(Into::into)
    }

    /// The same for an operation answered later (an authentication, a session
    /// that opens): `f` keeps the sender until the core has the answer.
    pub(super) async fn call_later<T: Send + 'static>(
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
        self.try_call(move |d, _| d.node.create_session_server(&name, mode))
            .await
    }

    /// RemoveSessionServer.
    pub async fn remove_session_server(&self, name: &str) -> Result<(), Error> {
        let name = name.to_owned();
        self.try_call(move |d, now| d.node.remove_session_server(now, &name))
            .await
    }

    /// SendBytes.
    pub async fn send_bytes(&self, session_id: SessionId, data: Vec<u8>) -> Result<(), Error> {
        self.try_call(move |d, now| d.node.send_bytes(now, session_id, &data))
            .await
    }

    /// CloseSession.
    pub async fn close_session(&self, session_id: SessionId) -> Result<(), Error> {
        self.try_call(move |d, now| d.node.close_session(now, session_id))
            .await
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
    ) -> Result<(PeerId, String), Error> {
        self.try_call(move |d, now| d.node.rtc_answer(now, &sdp, principal))
            .await
    }

    /// WHIP: answers a publisher's offer for `stream`: `(peer id, answer SDP)`.
    pub async fn whip(
        &self,
        stream: String,
        sdp: String,
        principal: Principal,
    ) -> Result<(PeerId, String), Error> {
        self.try_call(move |d, now| d.node.whip(now, &stream, &sdp, principal))
            .await
    }

    /// WHEP: answers a viewer's offer for `stream`: `(peer id, answer SDP)`.
    pub async fn whep(
        &self,
        stream: String,
        sdp: String,
        principal: Principal,
    ) -> Result<(PeerId, String), Error> {
        self.try_call(move |d, now| d.node.whep(now, &stream, &sdp, principal))
            .await
    }

    /// Answers an offer whose DTLS fingerprint the paired device `device_id`
    /// signed: `(peer id, answer SDP, our signature)`, or why not.
    pub async fn rtc_offer_paired(
        &self,
        sdp: String,
        device_id: String,
        signature: Vec<u8>,
    ) -> Result<(PeerId, String, [u8; 64]), Error> {
        self.try_call(move |d, now| d.node.rtc_answer_paired(now, &sdp, &device_id, &signature))
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
    pub async fn publish(&self, module: Option<&str>, info: PublishInfo) -> Result<(), Error> {
        let module = module.map(str::to_owned);
        self.try_call(move |d, _| {
            d.node
                .bus_mut()
                .discovery_mut()
                .publish(module.as_deref(), &info)
        })
        .await
    }

    /// UnPublishService: `Ok(true)` when nothing stays published.
    pub async fn unpublish(&self, module: Option<&str>, publish_id: i32) -> Result<bool, Error> {
        let module = module.map(str::to_owned);
        self.try_call(move |d, _| {
            let disc = d.node.bus_mut().discovery_mut();
            disc.unpublish(module.as_deref(), publish_id)
                .map(|()| !disc.publications().is_publishing())
        })
        .await
    }

    /// SetCommonDeviceInfo: (key, value) pairs, all or nothing.
    pub async fn set_common_device_info(&self, entries: Vec<(i32, String)>) -> Result<(), Error> {
        self.try_call(move |d, _| {
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
    pub async fn session(&self, id: SessionId) -> Result<Option<SessionInfo>, Error> {
        self.call(move |d, _| d.node.session(id).cloned()).await
    }

    /// Whether `device_id` is paired with this node (a cheap look-up, for a
    /// check before anything costly is done for a request that names it).
    pub async fn is_paired(&self, device_id: &str) -> Result<bool, Error> {
        let device_id = device_id.to_owned();
        self.call(move |d, _| d.node.bus().pairings().contains_key(&device_id))
            .await
    }

    /// Where the auth server of the discovered device `device_id` is (the
    /// core's look-up; `NodeError::NotDiscovered` or `NoAuthPort` if none).
    pub async fn auth_target(&self, device_id: &str) -> Result<softbus_node::AuthTarget, Error> {
        let device_id = device_id.to_owned();
        self.try_call(move |d, _| d.node.auth_target(&device_id))
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

    /// Closes a WebRTC peer connection; false if unknown.
    pub async fn rtc_close(&self, id: u64) -> Result<bool, Error> {
        self.call(move |d, now| d.node.rtc_close(now, PeerId(id)))
            .await
    }

    /// `DELETE` of a peer connection by `by`: only the credential that created
    /// it may end it (`NodeError::NotOwner` otherwise); false if unknown.
    pub async fn rtc_close_as(&self, id: u64, by: Principal) -> Result<bool, Error> {
        self.try_call(move |d, now| d.node.rtc_close_as(now, PeerId(id), &by))
            .await
    }

    /// Whether `by` created peer connection `id` and it is still open.
    /// A `PATCH` fragment for peer connection `id`, which `by` must have
    /// created: trickle, or an ICE restart (see `Host::patch`).
    pub async fn rtc_patch(
        &self,
        id: u64,
        by: Principal,
        if_match: Option<String>,
        fragment: String,
    ) -> Result<softbus_rtc::host::Patched, Error> {
        self.try_call(move |d, now| {
            d.node
                .rtc_patch(now, PeerId(id), &by, if_match.as_deref(), &fragment)
        })
        .await
    }

    /// Whether `by` created peer connection `id`.
    pub async fn rtc_owns(&self, id: u64, by: Principal) -> Result<bool, Error> {
        self.call(move |d, _| d.node.rtc_owned_by(PeerId(id), &by))
            .await
    }

    /// Devices, sessions, servers, trusted devices.
    pub async fn snapshot(&self) -> Result<Snapshot, Error> {
        self.call(|d, _| d.snapshot()).await
    }
}
