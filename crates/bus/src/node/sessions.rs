//! Serving sessions: the open requests, the application's decision, and the
//! data on open sessions.

use super::*;

impl Bus {
    /// Closes every session open on `server` (RemoveSessionServer).
    pub fn close_sessions_of(&mut self, server: &str, reason: ConnClosed) {
        let ids: Vec<SessionId> = self
            .sessions
            .values()
            .filter(|s| s.info.session == server)
            .map(|s| s.info.session_id)
            .collect();
        for id in ids {
            self.close_session_with(id, reason.clone());
        }
    }

    /// Open sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions.values().map(|s| s.info.clone()).collect()
    }

    /// One session's info (GetMySessionName, GetPeerSessionName, GetPeerDeviceId).
    pub fn session(&self, id: SessionId) -> Option<&SessionInfo> {
        self.sessions.get(&id).map(|s| &s.info)
    }

    /// SendBytes: 1..=4048 bytes, one packet.
    pub fn send_bytes(&mut self, id: SessionId, data: &[u8]) -> Result<(), SessionError> {
        let s = self.sessions.get(&id).ok_or(SessionError::NoSession)?;
        let conn_id = s.conn;
        let conn = self
            .conns
            .get_mut(&conn_id)
            .ok_or(SessionError::NoSession)?;
        match &mut conn.state {
            ConnState::Session { conn: sc, .. } => {
                let ch = sc.channel.as_mut().ok_or(SessionError::NotOpen)?;
                let bytes = ch.seal(self.crypto.as_mut(), data)?;
                self.transmits.push_back(Transmit::Tcp {
                    conn: conn_id,
                    bytes,
                });
            }
            ConnState::SessionClient { engine, .. } => {
                engine.send(self.crypto.as_mut(), data)?;
                while let Some(bytes) = engine.poll_transmit() {
                    self.transmits.push_back(Transmit::Tcp {
                        conn: conn_id,
                        bytes,
                    });
                }
            }
            _ => return Err(SessionError::NoSession),
        }
        Ok(())
    }

    /// CloseSession: closes the connection; no message goes on the wire.
    pub fn close_session(&mut self, id: SessionId) -> Result<(), SessionError> {
        if !self.sessions.contains_key(&id) {
            return Err(SessionError::NoSession);
        }
        self.close_session_with(id, ConnClosed::Local);
        Ok(())
    }

    pub(super) fn close_session_with(&mut self, id: SessionId, reason: ConnClosed) {
        if let Some(conn) = self.sessions.get(&id).map(|s| s.conn) {
            self.forget_conn(conn, reason);
            self.transmits.push_back(Transmit::Close { conn });
        }
    }

    /// Keys with this index held by auth connections from the same IP. Two
    /// clients may pick the same index; the open packet's tag tells which key is right.
    pub(super) fn candidate_keys(
        &self,
        ip: IpAddr,
        index: i32,
    ) -> Vec<(ConnId, [u8; 16], String, AuthMethod)> {
        self.auth_conns
            .iter()
            .filter_map(|id| Some((*id, self.conns.get(id)?)))
            .filter(|(_, c)| c.peer.ip() == ip)
            .filter_map(|(id, c)| match &c.state {
                ConnState::Auth(a) => Some((
                    id,
                    *a.key(index)?,
                    a.peer_device_id().unwrap_or_default().to_owned(),
                    a.method(index)?,
                )),
                _ => None,
            })
            .collect()
    }

    pub(super) fn handle_session_data(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), SessionError> {
        let frames = {
            let Some(Conn {
                state: ConnState::Session { conn: sc, .. },
                ..
            }) = self.conns.get_mut(&conn)
            else {
                return Ok(());
            };
            sc.push(data)?
        };
        self.handle_session_frames(now, conn, peer, frames)
    }

    pub(super) fn handle_session_frames(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        frames: Vec<Frame>,
    ) -> Result<(), SessionError> {
        for f in frames {
            // While the open awaits its decision, what follows it waits too.
            if let Some(Conn {
                state:
                    ConnState::Session {
                        awaiting: Some(a), ..
                    },
                ..
            }) = self.conns.get_mut(&conn)
            {
                if a.held.len() >= MAX_HELD_FRAMES {
                    return Err(SessionError::Malformed("packets before the session opened"));
                }
                a.held.push(f);
                continue;
            }
            match f {
                Frame::Auth(_, body) => self.request_session(now, conn, peer, &body)?,
                Frame::Session(h, body) => {
                    let Some(Conn {
                        state:
                            ConnState::Session {
                                conn: sc, session, ..
                            },
                        ..
                    }) = self.conns.get_mut(&conn)
                    else {
                        return Ok(());
                    };
                    let (Some(ch), Some(id)) = (sc.channel.as_mut(), *session) else {
                        return Err(SessionError::NotOpen);
                    };
                    match ch.open(h.seq, body) {
                        Ok(plain) => self.events.push_back(BusEvent::BytesReceived {
                            session_id: id,
                            data: plain,
                        }),
                        Err(e) if ch.exhausted() => return Err(e),
                        Err(e) => {
                            tracing::debug!(session = id.0, error = %e, "dropped session packet")
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Decrypts an open request with the keys of this address's auth
    /// connections and asks the application.
    pub(super) fn request_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        body: &[u8],
    ) -> Result<(), SessionError> {
        if let Some(Conn {
            state: ConnState::Session {
                session: Some(_), ..
            },
            ..
        }) = self.conns.get(&conn)
        {
            return Err(SessionError::Malformed("a second open on one connection"));
        }
        let index = frame::auth_key_index(body)?;
        let candidates = self.candidate_keys(peer.ip(), index);
        if candidates.is_empty() {
            return Err(SessionError::UnknownKey(index));
        }
        let mut opened = Err(SessionError::UnknownKey(index));
        for (auth, key, peer_device_id, method) in candidates {
            opened = SessionConn::open_request(self.crypto.as_ref(), body, &key)
                .map(|r| (r, auth, key, peer_device_id, method));
            if opened.is_ok() {
                break;
            }
        }
        let (request, auth, key, peer_device_id, method) = opened?;
        // A session key is drawn afresh for every open: one seen before under
        // this auth key is a recorded open played again (issue 7, item 6).
        if let Some(Conn {
            state: ConnState::Auth(a),
            active,
            ..
        }) = self.conns.get_mut(&auth)
        {
            *active = now;
            if !a.first_open(&request.key) {
                self.replayed_opens += 1;
                return Err(SessionError::Replay);
            }
        }
        let Some(Conn {
            state: ConnState::Session { awaiting, .. },
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return Ok(());
        };
        self.requests.push_back(SessionRequest {
            conn,
            server: request.bus_name.clone(),
            peer_device_id: peer_device_id.clone(),
            peer,
            method,
        });
        *awaiting = Some(Box::new(AwaitingOpen {
            request,
            auth_key: zeroize::Zeroizing::new(key),
            index,
            peer_device_id,
            method,
            held: Vec::new(),
        }));
        Ok(())
    }

    /// Next session open awaiting a decision.
    pub fn poll_session_request(&mut self) -> Option<SessionRequest> {
        self.requests.pop_front()
    }

    /// Opens the session `conn` asked for, as `session_id` (the application's id
    /// space): the open reply goes out, `SessionOpened` follows, and the packets
    /// held since the open are delivered.
    pub fn accept_session(
        &mut self,
        now: Instant,
        conn: ConnId,
        session_id: SessionId,
    ) -> Result<SessionInfo, BusError> {
        let Some(Conn {
            peer,
            state:
                ConnState::Session {
                    conn: sc,
                    session,
                    awaiting,
                },
            deadline,
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return Err(BusError::UnknownConn);
        };
        let a = awaiting.take().ok_or(BusError::UnknownConn)?;
        let peer = *peer;
        let reply = session::open_reply_json(&self.local.device_id, &a.request.bus_name);
        let sealed = a
            .seal_reply(self.crypto.as_mut(), &reply)
            .map_err(SessionError::from)
            .and_then(|bytes| {
                DataChannel::new(self.crypto.as_ref(), &a.request.key).map(|ch| (bytes, ch))
            });
        let (bytes, channel) = match sealed {
            Ok(x) => x,
            Err(e) => {
                self.drop_conn(conn, e.clone().into());
                return Err(e.into());
            }
        };
        sc.channel = Some(channel);
        *session = Some(session_id);
        *deadline = None;
        self.pending.remove(&conn);
        self.requests.retain(|r| r.conn != conn);
        let info = SessionInfo {
            session_id,
            session: a.request.bus_name.clone(),
            peer_device_id: a.peer_device_id.clone(),
            peer,
            transport: Transport::Tcp,
            auth: a.method,
            id: id_proof(
                self.crypto.as_ref(),
                &self.pairings,
                &a.peer_device_id,
                a.method,
            ),
        };
        self.sessions.insert(
            session_id,
            Session {
                info: info.clone(),
                conn,
            },
        );
        self.transmits.push_back(Transmit::Tcp { conn, bytes });
        self.events.push_back(BusEvent::SessionOpened(info.clone()));
        if let Err(e) = self.handle_session_frames(now, conn, peer, a.held) {
            self.drop_conn(conn, e.into());
        }
        tracing::trace!(?now, session = session_id.0, "session accepted");
        Ok(info)
    }

    /// Refuses the session `conn` asked for: an open reply with a `CODE` other
    /// than 1 and `reason` as its `REASON` goes out under the auth key (a
    /// softbus_lite server only closes; a client reads any other code as a
    /// refusal), then the connection is closed and `ConnDropped` carries `reason`.
    pub fn refuse_session(&mut self, conn: ConnId, reason: Refusal) {
        self.requests.retain(|r| r.conn != conn);
        if let Some(Conn {
            state: ConnState::Session {
                awaiting: Some(a), ..
            },
            ..
        }) = self.conns.get(&conn)
        {
            if let Ok(bytes) = a.seal_reply(
                self.crypto.as_mut(),
                &session::refusal_json(&reason.to_string()),
            ) {
                self.transmits.push_back(Transmit::Tcp { conn, bytes });
            }
        }
        self.drop_conn(conn, ConnClosed::Refused(reason));
    }
}
