//! Sessions: the servers and their built-in modes, the one table, client
//! roles (dialing, opening), data channels bridged to servers, and what a
//! session receives.

use super::*;

impl Node {
    /// Takes in the pairings as another process left them (`softbus unpair`
    /// edits the file): every device no longer among them is `Unpaired`.
    pub fn set_pairings(&mut self, pairings: softbus_bus::auth::hichain::Pairings) {
        let gone: Vec<String> = self
            .bus
            .pairings()
            .keys()
            .filter(|k| !pairings.contains_key(*k))
            .cloned()
            .collect();
        self.bus.set_pairings(pairings);
        for device_id in gone {
            self.events.push_back(Event::Unpaired { device_id });
        }
    }

    /// Forgets a paired device: `Unpaired` follows when it was paired.
    pub fn unpair(&mut self, device_id: &str) -> bool {
        let was = self.bus.unpair(device_id);
        if was {
            self.events.push_back(Event::Unpaired {
                device_id: device_id.to_owned(),
            });
        }
        was
    }

    /// Where to reach the auth server of a device this node discovered, by
    /// its id (pairing from the dashboard names a device, not an address).
    pub fn auth_target(&self, device_id: &str) -> Result<AuthTarget, NodeError> {
        let devices = self.bus.discovery().devices();
        let d = devices
            .iter()
            .find(|d| d.device_id == device_id)
            .ok_or_else(|| NodeError::NotDiscovered(device_id.to_owned()))?;
        let port = d.auth_port.ok_or_else(|| NodeError::NoAuthPort {
            name: d.name.clone(),
            ip: d.ip,
        })?;
        Ok(AuthTarget {
            name: d.name.clone(),
            addr: SocketAddr::from((d.ip, port)),
        })
    }

    /// CreateSessionServer with a built-in behaviour, or `App` for events only.
    /// Unlike softbus_lite, a duplicate name is refused.
    pub fn create_session_server(&mut self, name: &str, mode: ServerMode) -> Result<(), NodeError> {
        session::check_name(name)?;
        if self.servers.contains_key(name) {
            return Err(SessionError::DuplicateServer(name.to_owned()).into());
        }
        if self.servers.len() >= self.limits.max_session_servers {
            return Err(SessionError::TooManyServers(self.limits.max_session_servers).into());
        }
        self.servers.insert(name.to_owned(), mode);
        Ok(())
    }

    /// RemoveSessionServer: every session of that server is closed first.
    pub fn remove_session_server(&mut self, now: Instant, name: &str) -> Result<(), NodeError> {
        if self.servers.remove(name).is_none() {
            return Err(SessionError::UnknownServer(name.to_owned()).into());
        }
        let ids: Vec<SessionId> = self
            .sessions
            .keys()
            .copied()
            .filter(|id| self.session(*id).is_some_and(|i| i.session == name))
            .collect();
        for id in ids {
            self.close_with(now, id, SessionClosed::ServerRemoved);
        }
        self.process(now);
        Ok(())
    }

    /// The built-in mode of session server `name`.
    pub fn server_mode(&self, name: &str) -> Option<ServerMode> {
        self.servers.get(name).copied()
    }

    /// Whether this node asked for session `id` (client role).
    pub fn is_outgoing(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|e| e.outgoing)
    }

    /// Whether session `id` is the application's to serve: opened to one of
    /// our `ServerMode::App` servers (not one we opened to a peer). Its
    /// opening, messages and close go to the application (the C API's
    /// listener); every other session is served here or by its opener.
    pub fn is_app_session(&self, id: SessionId) -> bool {
        !self.is_outgoing(id)
            && self
                .session(id)
                .is_some_and(|i| self.server_mode(&i.session) == Some(ServerMode::App))
    }

    /// Names of the session servers, in order.
    pub fn session_servers(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// Open sessions, both transports.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .keys()
            .filter_map(|id| self.session(*id).cloned())
            .collect()
    }

    /// What an open session has carried so far.
    pub fn traffic(&self, id: SessionId) -> Option<Traffic> {
        self.sessions.get(&id).map(|e| e.traffic)
    }

    /// The WebRTC peer connection a session runs on (None over TCP).
    pub fn rtc_peer_of(&self, id: SessionId) -> Option<PeerId> {
        match self.sessions.get(&id)?.route {
            Route::Rtc { peer, .. } => Some(peer),
            Route::Tcp => None,
        }
    }

    /// One session (GetMySessionName, GetPeerSessionName, GetPeerDeviceId).
    pub fn session(&self, id: SessionId) -> Option<&SessionInfo> {
        let e = self.sessions.get(&id)?;
        match e.route {
            Route::Tcp => self.bus.session(id),
            Route::Rtc { .. } => e.rtc_info.as_deref(),
        }
    }

    /// SendBytes: one message on a session, whatever its transport. Over WebRTC the message goes as text when the last one received on the
    /// session was text (before any, as binary).
    pub fn send_bytes(
        &mut self,
        now: Instant,
        id: SessionId,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let binary = self.sessions.get(&id).is_none_or(|e| e.last_binary);
        self.send_as(now, id, binary, data)?;
        self.process(now);
        Ok(())
    }

    pub(crate) fn send_as(
        &mut self,
        now: Instant,
        id: SessionId,
        binary: bool,
        data: &[u8],
    ) -> Result<(), NodeError> {
        let e = self.sessions.get(&id).ok_or(SessionError::NoSession)?;
        match e.route {
            Route::Tcp => self.bus.send_bytes(id, data)?,
            Route::Rtc { peer, channel } => self.host.send(now, peer, channel, binary, data)?,
        }
        if let Some(e) = self.sessions.get_mut(&id) {
            e.traffic.bytes_out += data.len() as u64;
        }
        Ok(())
    }

    /// CloseSession.
    pub fn close_session(&mut self, now: Instant, id: SessionId) -> Result<(), NodeError> {
        if !self.sessions.contains_key(&id) {
            return Err(SessionError::NoSession.into());
        }
        self.close_with(now, id, SessionClosed::Local);
        self.process(now);
        Ok(())
    }

    /// Client role: dials `addr` and authenticates with the PIN key agreement.
    /// `Event::Bus(BusEvent::Authenticated)` or `ConnDropped` follows for the
    /// returned connection.
    pub fn connect(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_auth(now, addr, pin)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: pairs with the device at `addr` (BIND with `pin`), then
    /// verifies. `Bus(Paired)` and `Bus(Authenticated)` follow, or `ConnDropped`.
    pub fn connect_pair(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_pair(now, addr, pin)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: authenticates to a paired device at `addr` with no PIN (STS).
    pub fn connect_paired(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnId, NodeError> {
        let conn = self.bus.connect_paired(now, addr)?;
        self.process(now);
        Ok(conn)
    }

    /// Client role: opens a session to `server` on the peer authenticated on
    /// `auth`, in this node's one session table and limit. `SessionOpened` or
    /// `OpenFailed` follows for the returned id.
    pub fn open_session(
        &mut self,
        now: Instant,
        auth: ConnId,
        server: &str,
    ) -> Result<SessionId, NodeError> {
        self.may_open(server)?;
        let id = self.allocate();
        let conn = self.bus.open_session_to(now, auth, server, id)?;
        self.opening.insert(id, Opening::Tcp(conn));
        self.process(now);
        Ok(id)
    }

    /// Opens a session to the session server `server` of the node at the other
    /// end of an offering peer (a data channel labelled so), in this node's one
    /// table and limit; the channel opens once the peer connects.
    /// `SessionOpened` or `OpenFailed` follows for the returned id.
    pub fn open_rtc_session(
        &mut self,
        now: Instant,
        peer: PeerId,
        server: &str,
    ) -> Result<SessionId, NodeError> {
        self.may_open_label(server)?;
        if !self.host.has_peer(peer) {
            return Err(HostError::UnknownPeer.into());
        }
        let id = self.allocate();
        self.opening.insert(
            id,
            Opening::Rtc {
                peer,
                label: server.to_owned(),
                channel: None,
            },
        );
        if self.connected.contains(&peer) {
            self.open_waiting_channels(now, peer);
        }
        self.process(now);
        Ok(id)
    }

    pub(crate) fn open_waiting_channels(&mut self, now: Instant, peer: PeerId) {
        let waiting: Vec<(SessionId, String)> = self
            .opening
            .iter()
            .filter_map(|(id, o)| match o {
                Opening::Rtc {
                    peer: p,
                    label,
                    channel: None,
                } if *p == peer => Some((*id, label.clone())),
                _ => None,
            })
            .collect();
        for (id, label) in waiting {
            match self.host.open_channel(now, peer, &label) {
                Ok(c) => {
                    if let Some(Opening::Rtc { channel, .. }) = self.opening.get_mut(&id) {
                        *channel = Some(c);
                    }
                }
                Err(e) => {
                    tracing::debug!(session = id.0, error = %e, "data channel not opened");
                    self.opening.remove(&id);
                    self.events.push_back(Event::OpenFailed {
                        session: id,
                        reason: SessionClosed::ChannelClosed,
                    });
                }
            }
        }
    }

    pub(crate) fn close_with(&mut self, now: Instant, id: SessionId, reason: SessionClosed) {
        let server = self
            .session(id)
            .map(|i| i.session.clone())
            .unwrap_or_default();
        let Some(e) = self.remove_session(&id) else {
            return;
        };
        match e.route {
            // The bus reports its own SessionClosed, which finds no entry then.
            Route::Tcp => {
                let _ = self.bus.close_session(id);
            }
            Route::Rtc { peer, channel } => {
                self.by_channel.remove(&(peer, channel));
                self.host.close_channel(now, peer, channel);
            }
        }
        self.events.push_back(Event::SessionClosed {
            session: id,
            server,
            reason,
            traffic: e.traffic,
        });
    }

    pub(crate) fn allocate(&mut self) -> SessionId {
        loop {
            self.next_session = if self.next_session == i32::MAX {
                1
            } else {
                self.next_session + 1
            };
            let id = SessionId(self.next_session);
            if !self.sessions.contains_key(&id) && !self.opening.contains_key(&id) {
                return id;
            }
        }
    }

    /// Into the table, counted for the peer that opened it.
    pub(crate) fn insert_session(&mut self, id: SessionId, e: Entry) {
        if let Some(k) = e.peer_key {
            *self.per_peer.entry(k).or_default() += 1;
        }
        if let Some(a) = e.address {
            *self.per_address.entry(a).or_default() += 1;
        }
        self.sessions.insert(id, e);
    }

    /// Out of the table, and out of its peer's count.
    pub(crate) fn remove_session(&mut self, id: &SessionId) -> Option<Entry> {
        let e = self.sessions.remove(id)?;
        self.gateway.ended(*id);
        if let Some(k) = e.peer_key {
            if let Some(n) = self.per_peer.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(&k);
                }
            }
        }
        if let Some(a) = e.address {
            if let Some(n) = self.per_address.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    self.per_address.remove(&a);
                }
            }
        }
        Some(e)
    }

    /// Sessions we asked for that match `which` will not open: `OpenFailed`.
    pub(crate) fn fail_openings(
        &mut self,
        which: impl Fn(&Opening) -> bool,
        reason: SessionClosed,
    ) {
        let failed: Vec<SessionId> = self
            .opening
            .iter()
            .filter(|(_, o)| which(o))
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            self.opening.remove(&id);
            self.events.push_back(Event::OpenFailed {
                session: id,
                reason: reason.clone(),
            });
        }
    }

    /// A session over a data channel, into the table.
    pub(crate) fn add_rtc_session(
        &mut self,
        id: SessionId,
        peer: PeerId,
        channel: ChannelId,
        label: String,
        outgoing: bool,
    ) {
        let principal = self.principals.get(&peer);
        // Our own offer: the paired node that signed the answer, or (offered
        // with the other node's web token) nobody we can name.
        let (peer_device_id, auth) = match (principal, self.answered_by.get(&peer)) {
            (Some(p), _) => (p.name().to_owned(), p.method()),
            (None, Some(device)) => (device.clone(), AuthMethod::Paired),
            (None, None) => (String::new(), AuthMethod::WebToken),
        };
        let info = SessionInfo {
            session_id: id,
            session: label,
            id: self.bus.id_proof(&peer_device_id, auth),
            peer_device_id,
            auth,
            peer: self
                .host
                .remote(peer)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            transport: Transport::WebRtc,
        };
        self.by_channel.insert((peer, channel), id);
        self.insert_session(
            id,
            Entry {
                rtc_info: Some(Box::new(info.clone())),
                route: Route::Rtc { peer, channel },
                outgoing,
                peer_key: match (outgoing, principal) {
                    (false, Some(p)) => Some(peer_key(&Authenticated::Signaling {
                        peer,
                        principal: p.clone(),
                    })),
                    _ => None,
                },
                // Counted where admit looked: the peer's address, when known.
                address: match (outgoing, principal) {
                    (false, Some(p)) if counts_per_address(p.method()) => {
                        self.host.remote(peer).map(|a| a.ip())
                    }
                    _ => None,
                },
                discarded: 0,
                last_binary: true,
                traffic: Traffic::default(),
            },
        );
        self.events.push_back(Event::SessionOpened(info));
    }

    /// The remote opened a data channel: accepted (ACKed) and bridged to the
    /// server its label names, or reset.
    pub(crate) fn decide_channel(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: ChannelId,
        label: String,
    ) {
        // A label with a slash names a device's session: the gateway's (for the
        // same principals: web-token holders and paired devices).
        if label.contains('/') {
            let r = match self.principals.contains_key(&peer) {
                true => self.gateway_channel(now, peer, channel, label.clone()),
                false => Err(GatewayRefusal::Refused(Refusal::NotPaired)),
            };
            if let Err(reason) = r {
                self.host.close_channel(now, peer, channel);
                let remote = self.host.remote(peer).map(|a| a.ip());
                self.events.push_back(Event::GatewayRefused {
                    label,
                    peer: remote,
                    reason,
                });
            }
            return;
        }
        // A peer we offered to has no principal: the other node's services are
        // not ours to expose, and it may not open sessions here.
        let decision = match self.principals.get(&peer) {
            Some(p) => self.admit(
                Transport::WebRtc,
                &Authenticated::Signaling {
                    peer,
                    principal: p.clone(),
                },
                self.host.remote(peer).map(|a| a.ip()),
                Ask::Session(&label),
            ),
            None => Err(Refusal::NotPaired),
        };
        match decision {
            Ok(()) => {
                if let Err(e) = self.host.accept_channel(now, peer, channel) {
                    tracing::debug!(error = %e, "data channel gone before it was accepted");
                    return;
                }
                let id = self.allocate();
                self.add_rtc_session(id, peer, channel, label, false);
            }
            Err(reason) => {
                // A data channel has no refusal message: it is closed.
                self.host.close_channel(now, peer, channel);
                let remote = self.host.remote(peer).map(|a| a.ip());
                self.events.push_back(Event::SessionRefused {
                    transport: Transport::WebRtc,
                    server: label,
                    peer: remote,
                    reason,
                });
            }
        }
    }

    /// A message on a session: reported, then the built-in service answers.
    pub(crate) fn received(&mut self, now: Instant, id: SessionId, binary: bool, data: Vec<u8>) {
        if let Some(other) = self.gateway.other_end(id) {
            if let Some(e) = self.sessions.get_mut(&id) {
                e.last_binary = binary;
                e.traffic.bytes_in += data.len() as u64;
            }
            return self.gateway_forward(now, id, other, binary, data);
        }
        let mode = match self.sessions.get(&id) {
            Some(e) if !e.outgoing => self
                .session(id)
                .and_then(|i| self.servers.get(&i.session))
                .copied(),
            _ => None,
        };
        let Some(e) = self.sessions.get_mut(&id) else {
            return;
        };
        e.last_binary = binary;
        e.traffic.bytes_in += data.len() as u64;
        let reply = match mode {
            Some(ServerMode::Echo) => Some(data.clone()),
            Some(ServerMode::Discard) => {
                if data.as_slice() == b"?" {
                    Some(e.discarded.to_string().into_bytes())
                } else {
                    e.discarded += data.len() as u64;
                    None
                }
            }
            Some(ServerMode::App) | None => None,
        };
        self.events.push_back(Event::BytesReceived {
            session: id,
            binary,
            data,
        });
        if let Some(r) = reply {
            if let Err(err) = self.send_as(now, id, binary, &r) {
                tracing::debug!(session = id.0, error = %err, "built-in server reply failed");
            }
        }
    }
}
