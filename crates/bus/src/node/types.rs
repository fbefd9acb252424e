//! What the facade says to its driver: transmits, events, errors, the
//! session a peer asks for, and the local configuration.

use super::*;

/// Which listener accepted a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Auth,
    Session,
}

/// How a session reaches the node: the soft bus over TCP, or a WebRTC data
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    WebRtc,
}

impl Transport {
    /// As JSON events and the API name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::WebRtc => "webrtc",
        }
    }
}

/// Why a session was not opened: what the application (the node core)
/// decides, and what a refused peer reads in the open reply's `REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("no session server named {0:?}")]
    UnknownServer(String),
    #[error("node full: session limit of {0} reached")]
    TooManySessions(usize),
    #[error("node full for this peer: its session limit of {0} reached")]
    TooManyForPeer(usize),
    /// The sessions from one IP address reached `max_sessions_per_address`.
    #[error("node full for {address}: its session limit of {limit} per address reached")]
    TooManyFromAddress { address: IpAddr, limit: usize },
    /// `--paired-only`: the peer authenticated with a PIN but is not paired.
    #[error("this node accepts paired devices only (pair with softbus pair)")]
    NotPaired,
    /// Media (WHIP, WHEP) travels over WebRTC only.
    #[error("media travels over WebRTC only, not {}", .0.as_str())]
    WrongTransport(Transport),
}

/// An open session as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub session_id: SessionId,
    /// `GetMySessionName`; `GetPeerSessionName` returns the same (by design).
    pub session: String,
    /// `GetPeerDeviceId`: `TEData` of the auth connection whose key opened it.
    pub peer_device_id: String,
    pub peer: SocketAddr,
    pub transport: Transport,
    /// How the peer proved who it is.
    pub auth: AuthMethod,
    /// Whether `peer_device_id` is proved (derived from the key the peer
    /// proved) or only claimed.
    pub id: IdProof,
}

/// A peer asks to open a session: its open packet decrypted under the key of an
/// auth connection of the same address. The application decides with
/// [`Bus::accept_session`] or [`Bus::refuse_session`]; until then the connection
/// holds what the peer sent after the open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub conn: ConnId,
    /// The session server asked for (`BUS_NAME`).
    pub server: String,
    /// `TEData` of the auth connection whose key opened it.
    pub peer_device_id: String,
    pub peer: SocketAddr,
    /// How that auth connection's key was agreed.
    pub method: AuthMethod,
}

/// Connection ids the engine gives to connections it dials (the driver numbers
/// accepted ones below this).
pub const DIALED: u64 = 1 << 63;

/// An unauthenticated auth connection older than this gives way to a new one
/// when the table is full.
pub const EVICT_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Frames a connection holds while its open request awaits a decision.
pub(super) const MAX_HELD_FRAMES: usize = 16;

/// Events for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    Discovery(DiscoveryEvent),
    /// A peer finished VerifyIp.
    PeerVerified {
        conn: ConnId,
        ip: IpAddr,
        peer: PeerInfo,
    },
    /// A device paired with this one (BIND, either role): keep its key.
    Paired {
        conn: ConnId,
        ip: IpAddr,
        device_id: String,
        public_key: [u8; 32],
        /// `Key` when the id is derived from the key; `Claimed` otherwise (a
        /// softbus_lite device's random id).
        id: IdProof,
    },
    /// A key agreement failed (17 = wrong PIN); the connection is closed.
    PakeFailed {
        conn: ConnId,
        ip: IpAddr,
        code: u32,
    },
    /// Too many failed key confirmations for this PIN: PIN pairing pauses for
    /// `retry_after` (a burst's cool-down, or until the day's bound has room).
    /// A renewable PIN that reached the day's bound was replaced instead
    /// (`retry_after` zero, `PinReplaced` follows).
    PinLocked {
        failures: u32,
        retry_after: Duration,
    },
    /// An auth connection was refused at accept because its address failed
    /// the PIN too often; it may try again after `retry_after`. Reported once
    /// per address per [`REFUSAL_REPORT_EVERY`], however many it opens.
    AuthRefused {
        ip: IpAddr,
        retry_after: Duration,
    },
    /// A new random PIN replaces the locked one; show it to the operator.
    PinReplaced {
        pin: zeroize::Zeroizing<String>,
    },
    /// A session opened; close it to refuse.
    SessionOpened(SessionInfo),
    BytesReceived {
        session_id: SessionId,
        data: Vec<u8>,
    },
    SessionClosed {
        session_id: SessionId,
        session: String,
        reason: ConnClosed,
    },
    /// A connection we dialed finished the key agreement and verification: the
    /// peer's identity; sessions can be opened with [`Bus::open_session_to`].
    Authenticated {
        conn: ConnId,
        peer: PeerInfo,
    },
    /// A connection was dropped because its peer misbehaved or timed out.
    ConnDropped {
        conn: ConnId,
        ip: IpAddr,
        reason: ConnClosed,
    },
}

/// Why a connection (and the session on it) ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnClosed {
    #[error("peer closed")]
    PeerClosed,
    #[error("closed locally")]
    Local,
    #[error("server removed")]
    ServerRemoved,
    #[error("handshake timed out")]
    Timeout,
    #[error("idle")]
    Idle,
    /// The auth table was full and this connection had not authenticated.
    #[error("evicted unauthenticated (the connection table was full)")]
    Evicted,
    /// A dialed connection did not connect (what the system said).
    #[error("connect failed: {0}")]
    ConnectFailed(std::io::ErrorKind),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The application refused the session.
    #[error("{0}")]
    Refused(Refusal),
    /// The address is locked out after failed PIN attempts; its first packet
    /// was answered with `refuseAuth`.
    #[error("locked out")]
    LockedOut,
}

/// Errors of the facade's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("connection limit reached")]
    TooManyConnections,
    /// Too many failed key confirmations from this address lately; it may try
    /// again after `retry_after`.
    #[error("too many failed PIN attempts from this address; try again in {} s", retry_after.as_secs().max(1))]
    TooManyFailures { retry_after: Duration },
    /// Auth connections come faster than the rate limit allows.
    #[error("auth connections over the rate limit")]
    RateLimited,
    #[error("unknown connection")]
    UnknownConn,
    /// Pairing needs this device's long-term key ([`Bus::set_identity`]).
    #[error("this device has no long-term identity to pair with")]
    NoIdentity,
}
/// This node's identity.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: std::net::Ipv4Addr,
}

#[cfg(test)]
mod tests {
    use super::Transport;

    /// The API and the events name transports alike.
    #[test]
    fn transports_serialize_as_they_are_named() {
        for t in [Transport::Tcp, Transport::WebRtc] {
            assert_eq!(serde_json::to_value(t).ok(), Some(t.as_str().into()));
        }
    }
}
