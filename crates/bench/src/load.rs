//! The benchmark's load generator on the client side: the auth and session
//! client engines driven straight over one TCP stream each, with no node in
//! between, so the measurement sees the server under test and not a second node.

use softbus_bus::auth::{AuthClient, Authenticated, ClientAuth, LocalAuthInfo};
use softbus_bus::session::{ClientEvent, SessionClient};
use softbus_crypto::OpenSslCrypto;
use softbus_runtime::client::ClientIdentity;
use softbus_runtime::node::connect;
use softbus_runtime::Error;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An authenticated link to a peer. The auth connection stays open: the peer
/// forgets the key when it closes.
#[derive(Debug)]
pub struct Peer {
    auth: Authenticated,
    _auth_stream: TcpStream,
    ip: Ipv4Addr,
    local: Ipv4Addr,
    crypto: OpenSslCrypto,
    timeout: Duration,
}

/// getAuthInfo → hichain PAKE with `pin` → VerifyIp → VerifyDeviceId, one packet
/// at a time. `seq` is the auth sequence number, which becomes the key index.
pub async fn authenticate(
    me: &ClientIdentity,
    peer: SocketAddrV4,
    pin: &str,
    seq: i64,
    timeout: Duration,
) -> Result<Peer, Error> {
    let pin = zeroize::Zeroizing::new(pin.as_bytes().to_vec());
    authenticate_as(me, peer, ClientAuth::Pin(pin), seq, timeout).await
}

/// The same with `auth`: the PIN, pairing, or a paired device's STS.
pub async fn authenticate_as(
    me: &ClientIdentity,
    peer: SocketAddrV4,
    auth: ClientAuth,
    seq: i64,
    timeout: Duration,
) -> Result<Peer, Error> {
    let mut crypto = OpenSslCrypto::new();
    let mut stream = connect(me.ip, SocketAddr::V4(peer), timeout).await?;
    let local = LocalAuthInfo {
        device_id: me.device_id.clone(),
        device_name: me.name.clone(),
        device_type: "DEV_L1".into(),
        auth_port: 0,
        session_port: 0,
    };
    let mut client = AuthClient::with_auth(local, auth, seq);
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        while let Some(b) = client.poll_transmit() {
            stream.write_all(&b).await?;
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .map_err(|_| Error::Timeout("authentication"))??;
        if n == 0 {
            return Err(Error::Closed("peer closed the auth connection"));
        }
        if let Some(auth) = client.handle_data(&mut crypto, &buf[..n])? {
            return Ok(Peer {
                auth,
                _auth_stream: stream,
                ip: *peer.ip(),
                local: me.ip,
                crypto,
                timeout,
            });
        }
    }
}

impl Peer {
    /// Opens a session to the peer's session server `name` on the port VerifyIp gave.
    pub async fn open_session(&mut self, name: &str) -> Result<ClientSession, Error> {
        let addr = SocketAddr::from((self.ip, self.auth.peer.session_port));
        let mut stream = connect(self.local, addr, self.timeout).await?;
        let mut engine =
            SessionClient::new(&mut self.crypto, name, self.auth.key_index, &self.auth.key)?;
        if let Some(pkt) = engine.poll_transmit() {
            stream.write_all(&pkt).await?;
        }
        let mut s = ClientSession {
            stream,
            engine,
            crypto: OpenSslCrypto::new(),
            inbox: VecDeque::new(),
            reply: None,
            timeout: self.timeout,
            rbuf: Vec::with_capacity(16 * 1024),
        };
        while s.reply.is_none() {
            s.read_some().await?;
        }
        Ok(s)
    }
}

/// An open client session.
#[derive(Debug)]
pub struct ClientSession {
    stream: TcpStream,
    engine: SessionClient,
    crypto: OpenSslCrypto,
    inbox: VecDeque<Vec<u8>>,
    reply: Option<serde_json::Value>,
    timeout: Duration,
    rbuf: Vec<u8>,
}

impl ClientSession {
    async fn read_some(&mut self) -> Result<(), Error> {
        self.rbuf.clear();
        let n = tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.rbuf))
            .await
            .map_err(|_| Error::Timeout("session reply"))??;
        if n == 0 {
            return Err(Error::Closed("peer closed the session"));
        }
        for e in self.engine.handle_data(&mut self.crypto, &self.rbuf)? {
            match e {
                ClientEvent::Opened(v) => self.reply = Some(v),
                ClientEvent::Bytes(b) => self.inbox.push_back(b),
            }
        }
        Ok(())
    }

    /// SendBytes: one packet, one write.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.engine.send(&mut self.crypto, data)?;
        while let Some(p) = self.engine.poll_transmit() {
            self.stream.write_all(&p).await?;
        }
        Ok(())
    }

    /// The next message from the peer.
    pub async fn recv(&mut self) -> Result<Vec<u8>, Error> {
        loop {
            if let Some(m) = self.inbox.pop_front() {
                return Ok(m);
            }
            self.read_some().await?;
        }
    }
}
