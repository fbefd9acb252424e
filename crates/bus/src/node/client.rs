//! Client roles: dialing a device, authenticating to it (PIN, BIND, STS) and
//! opening sessions to its servers.

use super::*;

impl Bus {
    /// Dials `addr` and runs the auth client there (getAuthInfo, the PIN key
    /// agreement with `pin`, VerifyIp, VerifyDeviceId; a random auth seq becomes
    /// the key index). `Authenticated` or `ConnDropped` follows for the returned id.
    pub fn connect_auth(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, BusError> {
        self.connect_with(
            now,
            addr,
            ClientAuth::Pin(zeroize::Zeroizing::new(pin.to_vec())),
        )
    }

    /// Dials `addr` and pairs with it (BIND with `pin`), then verifies as
    /// [`Bus::connect_auth`]. `Paired` and `Authenticated` follow.
    pub fn connect_pair(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        pin: &[u8],
    ) -> Result<ConnId, BusError> {
        let identity = self.identity.clone().ok_or(BusError::NoIdentity)?;
        self.connect_with(
            now,
            addr,
            ClientAuth::Pair {
                pin: zeroize::Zeroizing::new(pin.to_vec()),
                identity,
            },
        )
    }

    /// Dials `addr` and authenticates as a paired device (STS, no PIN). The
    /// connection is dropped if the device there is not paired with us.
    pub fn connect_paired(&mut self, now: Instant, addr: SocketAddr) -> Result<ConnId, BusError> {
        let identity = self.identity.clone().ok_or(BusError::NoIdentity)?;
        self.connect_with(
            now,
            addr,
            ClientAuth::Paired {
                identity,
                pairings: self.pairings.clone(),
            },
        )
    }

    pub(super) fn connect_with(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        auth: ClientAuth,
    ) -> Result<ConnId, BusError> {
        let mut r = [0u8; 4];
        self.crypto.random(&mut r);
        // 1..=i32::MAX: the key index is the seq as an i32.
        let seq = i64::from((u32::from_le_bytes(r) >> 1).max(1));
        if self.dialed.len() >= self.config.max_auth_conns {
            return Err(BusError::TooManyConnections);
        }
        let state = ConnState::AuthClient {
            client: Box::new(AuthClient::with_auth(self.local_auth_info(), auth, seq)),
            done: None,
        };
        Ok(self.dial(now, addr, state))
    }

    /// Opens a session to `server` on the peer verified on `auth` (a connection
    /// from [`Bus::connect_auth`]), as `session_id` of the application's id
    /// space. `SessionOpened` or `ConnDropped` (of the returned id) follows.
    pub fn open_session_to(
        &mut self,
        now: Instant,
        auth: ConnId,
        server: &str,
        session_id: SessionId,
    ) -> Result<ConnId, BusError> {
        let Some(Conn {
            peer,
            state: ConnState::AuthClient { done: Some(a), .. },
            ..
        }) = self.conns.get(&auth)
        else {
            return Err(BusError::UnknownConn);
        };
        let addr = SocketAddr::new(peer.ip(), a.peer.session_port);
        let peer_device_id = a.peer.device_id.clone();
        let method = a.method;
        let engine = SessionClient::new(self.crypto.as_mut(), server, a.key_index, &a.key)?;
        if self.dialed.len() >= self.config.max_auth_conns + self.config.max_pending_session_conns {
            return Err(BusError::TooManyConnections);
        }
        let state = ConnState::SessionClient {
            engine: Box::new(engine),
            session: session_id,
            server: server.to_owned(),
            peer_device_id,
            method,
            opened: false,
        };
        Ok(self.dial(now, addr, state))
    }

    pub(super) fn dial(&mut self, now: Instant, addr: SocketAddr, state: ConnState) -> ConnId {
        self.next_dial += 1;
        let conn = ConnId(DIALED | self.next_dial);
        self.conns.insert(
            conn,
            Conn {
                peer: addr,
                deadline: Some(now + self.config.handshake_timeout),
                active: now,
                state,
            },
        );
        self.pending.insert(conn);
        self.dialed.insert(conn);
        self.transmits.push_back(Transmit::Dial { conn, addr });
        conn
    }

    /// Closes a connection this node dialed or accepted (a client role that
    /// gives up, e.g. the gateway when its channel went away first).
    pub fn close_conn(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.drop_conn(conn, ConnClosed::Local);
        }
    }

    /// The driver connected (or failed to connect) a [`Transmit::Dial`].
    pub fn handle_dialed(
        &mut self,
        _now: Instant,
        conn: ConnId,
        result: Result<(), std::io::ErrorKind>,
    ) {
        if let Err(reason) = result {
            return self.drop_conn(conn, ConnClosed::ConnectFailed(reason));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let first = match &mut c.state {
            ConnState::AuthClient { client, .. } => client.poll_transmit(),
            ConnState::SessionClient { engine, .. } => engine.poll_transmit(),
            _ => None,
        };
        if let Some(bytes) = first {
            self.transmits.push_back(Transmit::Tcp { conn, bytes });
        }
    }

    /// The peer verified on a dialed auth connection.
    pub fn authenticated(&self, conn: ConnId) -> Option<&PeerInfo> {
        match self.conns.get(&conn).map(|c| &c.state) {
            Some(ConnState::AuthClient { done: Some(a), .. }) => Some(&a.peer),
            _ => None,
        }
    }
}
