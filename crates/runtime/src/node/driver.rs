//! The driver: the task that owns the node core, the accept loops and each
//! connection's reader and writer, the UDP sockets, timers, and what the
//! core's events mean for the records and the callers waiting on them.

use super::*;

pub(super) enum Input {
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
        result: Result<(mpsc::Sender<Vec<u8>>, tokio::task::AbortHandle), std::io::ErrorKind>,
    },
}

pub(super) async fn accept_loop(
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

pub(super) async fn read_loop(
    rd: tokio::net::tcp::OwnedReadHalf,
    conn: ConnId,
    tx: mpsc::Sender<Input>,
) {
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
pub(super) async fn write_each(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(p) = rx.recv().await {
        if wr.write_all(&p).await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

pub(super) async fn write_loop(
    mut wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
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
pub(super) type PendingOpen = (
    oneshot::Sender<Result<SessionHandle, Error>>,
    mpsc::Receiver<Vec<u8>>,
);

pub(super) struct Driver {
    pub(super) node: CoreNode,
    /// The data directory's lock and the discovery address's claim, held
    /// while the node runs.
    pub(super) _claims: (Option<store::DirLock>, Option<net::AddressClaim>),
    /// When each open session opened (Unix ms), and the last closed ones.
    pub(super) opened_at: HashMap<SessionId, (u64, SessionInfo)>,
    pub(super) closed_sessions: std::collections::VecDeque<ClosedSession>,
    /// Datagrams of one flush, per socket, and the buffer GSO trains are built in.
    pub(super) udp_out: Vec<(SocketAddr, Vec<u8>)>,
    pub(super) rtc_out: Vec<(SocketAddr, Vec<u8>)>,
    pub(super) gso_buf: Vec<u8>,
    pub(super) ip: Ipv4Addr,
    pub(super) handle: Option<NodeHandle>,
    pub(super) inputs: mpsc::Sender<Input>,
    pub(super) pending_auth: HashMap<ConnId, oneshot::Sender<Result<RemoteDevice, Error>>>,
    pub(super) pending_open: HashMap<SessionId, PendingOpen>,
    pub(super) inboxes: HashMap<SessionId, mpsc::Sender<Vec<u8>>>,
    /// The discovery socket (none on a client that needs no discovery).
    pub(super) udp: Option<net::BatchUdp>,
    pub(super) rtc_sock: Option<net::BatchUdp>,
    pub(super) trust: TrustWriter,
    /// Toward the application of `ServerMode::App` servers, and its sessions.
    pub(super) app: Option<std::sync::mpsc::SyncSender<AppEvent>>,
    pub(super) app_sessions: std::collections::HashSet<SessionId>,
    /// `paired.json`, and its modification time when last read.
    pub(super) pairs: store::PairStore,
    pub(super) pairs_stamp: Option<std::time::SystemTime>,
    /// What `paired.json` held when last read or written (for snapshots,
    /// which must not read the disk on the engine task).
    pub(super) paired: Vec<store::PairedDevice>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) writers: HashMap<ConnId, mpsc::Sender<Vec<u8>>>,
    pub(super) readers: HashMap<ConnId, tokio::task::AbortHandle>,
}

impl Driver {
    pub(super) async fn run(
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
        self.node.start_ice(Instant::now());
        self.flush(rtc_sock.as_ref());
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
    pub(super) fn reload_pairs(&mut self) {
        let stamp = self.pairs.stamp();
        if stamp == self.pairs_stamp {
            return;
        }
        self.pairs_stamp = stamp;
        match self.pairs.load() {
            Ok(list) => {
                self.node.set_pairings(store::engine_pairings(&list));
                self.paired = list;
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
    pub(super) fn paired_changed(&mut self) {
        self.paired = self.pairs.load().unwrap_or_default();
        self.pairs_stamp = self.pairs.stamp();
    }

    /// Forgets a paired device on disk and in the core; `Unpaired` is
    /// reported when it was paired.
    pub(super) fn unpair(&mut self, device: String) -> Result<bool, Error> {
        let r = self.pairs.remove(&device).map_err(Error::from);
        if matches!(r, Ok(true)) {
            self.paired_changed();
            self.node.unpair(&device);
        }
        r
    }

    /// A consistent view for APIs and the dashboard.
    pub(super) fn snapshot(&self) -> Snapshot {
        let bus = self.node.bus();
        Snapshot {
            devices: bus.discovery().devices(),
            sessions: self
                .node
                .sessions()
                .into_iter()
                .map(|info| {
                    let id = info.session_id;
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
            gateway: self.node.gateway_devices(),
            trusted: self.trust.devices(),
            paired: self.paired.clone(),
            streams: self.node.streams(),
            dropped_datagrams: bus.discovery().dropped(),
        }
    }

    /// An authentication the core started: its caller is answered when it
    /// finishes (or fails).
    pub(super) fn await_auth(
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
    pub(super) fn await_open(
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

    pub(super) fn input(&mut self, i: Input) {
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
    pub(super) fn dial(&self, conn: ConnId, addr: SocketAddr) {
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
                Err(Error::Io(e)) => Err(e.kind()),
                Err(Error::Timeout(_)) => Err(std::io::ErrorKind::TimedOut),
                Err(_) => Err(std::io::ErrorKind::Other),
            };
            let _ = inputs.send(Input::Dialed { conn, result }).await;
        });
    }

    /// Writes what the node queued and forwards its events.
    pub(super) fn flush(&mut self, rtc_sock: Option<&net::BatchUdp>) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.node.poll_transmit() {
                progressed = true;
                match t {
                    Transmit::Datagram(d) if d.source == self.node.discovery_source() => {
                        self.udp_out.push((d.destination, d.payload))
                    }
                    Transmit::Datagram(d) => self.rtc_out.push((d.destination, d.payload)),
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
    pub(super) fn tell_app(&mut self, e: AppEvent) {
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
    pub(super) fn book_sessions(&mut self, e: &CoreEvent) {
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
                if let Some((opened, info)) = self.opened_at.remove(session) {
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

    pub(super) fn event(&mut self, e: CoreEvent) {
        self.book_sessions(&e);
        match &e {
            CoreEvent::SessionOpened(info)
                if self.app.is_some() && self.node.is_app_session(info.session_id) =>
            {
                self.app_sessions.insert(info.session_id);
                self.tell_app(AppEvent::Opened(info.clone()));
            }
            CoreEvent::BytesReceived { session, data, .. }
                if self.app_sessions.contains(session) =>
            {
                self.tell_app(AppEvent::Bytes {
                    session: *session,
                    data: data.clone(),
                });
            }
            CoreEvent::SessionClosed { session, .. } if self.app_sessions.remove(session) => {
                self.tell_app(AppEvent::Closed { session: *session });
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
                let id = info.session_id;
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
