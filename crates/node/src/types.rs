//! The core's vocabulary: sessions and their ids, transports, who asks and
//! how, the limits, refusals, and what the core says to its driver.

use super::*;

/// One session, whatever its transport. Ids count from 1 and are never reused
/// while the session is open.
pub use softbus_proto::SessionId;

pub use softbus_bus::node::Transport;

pub use softbus_bus::auth::AuthMethod;

/// Who posted a WebRTC offer to the node's signaling, as the web side proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal {
    /// A holder of the node's web token. `name` is what sessions show;
    /// `credential` tells the bearer token from each dashboard session made
    /// from it (only the credential that created a peer may delete it).
    WebToken { name: String, credential: String },
    /// A paired device that signed the offer's DTLS fingerprint with its
    /// long-term key (node-to-node WebRTC).
    Device { device_id: String },
}

impl Principal {
    /// The identity sessions show (`peer_device_id`).
    pub fn name(&self) -> &str {
        match self {
            Principal::WebToken { name, .. } => name,
            Principal::Device { device_id } => device_id,
        }
    }

    /// How it authenticated.
    pub fn method(&self) -> AuthMethod {
        match self {
            Principal::WebToken { .. } => AuthMethod::WebToken,
            Principal::Device { .. } => AuthMethod::Paired,
        }
    }
}

/// How the peer asking for a session proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authenticated {
    /// A soft bus key agreement: the session open decrypted under the key of an
    /// auth connection of this device, agreed by `method`.
    Device {
        device_id: String,
        method: AuthMethod,
    },
    /// A WebRTC peer whose offer came through the node's signaling from `principal`.
    Signaling { peer: PeerId, principal: Principal },
    /// A credential posting an offer to the node's signaling (WHIP, WHEP),
    /// before its peer connection exists.
    Posting(Principal),
}

/// What a peer asks the node for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask<'a> {
    /// A session on the named session server.
    Session(&'a str),
    /// To publish the named stream (WHIP).
    Publish(&'a str),
    /// To play the named stream (WHEP).
    Play(&'a str),
}

impl Authenticated {
    /// How it authenticated.
    pub fn method(&self) -> AuthMethod {
        match self {
            Authenticated::Device { method, .. } => *method,
            Authenticated::Signaling { principal, .. } | Authenticated::Posting(principal) => {
                principal.method()
            }
        }
    }
}

/// Who may open sessions, beyond the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only paired devices (and the operator's web token): a PIN key agreement
    /// without pairing opens no session (`--paired-only`).
    pub paired_only: bool,
}

/// What a session server does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMode {
    /// Nothing built in: the application reacts to events.
    App,
    /// Sends every message back on the same session (text as text, binary as binary).
    Echo,
    /// Counts and drops messages; a message `?` is answered with the count in decimal.
    Discard,
}

/// The one limits table of a node.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open sessions, TCP and WebRTC together (softbus_lite: 24).
    pub max_sessions: usize,
    /// Session servers (softbus_lite: 8).
    pub max_session_servers: usize,
    /// Sessions one peer (a device over TCP, a peer connection over WebRTC) may
    /// open to this node, so no single peer takes every slot.
    pub max_sessions_per_peer: usize,
    /// Sessions opened to this node from one IP address, by however many
    /// device ids or peer connections it shows (the operator's web token is
    /// not counted), so one address never holds every slot.
    pub max_sessions_per_address: usize,
    /// WebRTC peer connections for data channels (offers posted to
    /// `/rtc/offer` and our own), apart from the media relay's publishers
    /// (one per stream) and viewers, which have budgets of their own.
    pub max_rtc_peers: usize,
    /// The media relay's streams, viewers, grace period and budgets.
    pub media: MediaLimits,
}

impl Limits {
    /// The peer connections the WebRTC host must hold for every budget to be
    /// reachable at once: data-channel peers, one publisher per stream, and
    /// every viewer.
    pub fn rtc_peers_needed(&self) -> usize {
        self.max_rtc_peers
            .saturating_add(self.media.max_streams)
            .saturating_add(self.media.max_viewers_total)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sessions: session::DEFAULT_MAX_SESSIONS,
            max_session_servers: session::DEFAULT_MAX_SERVERS,
            max_sessions_per_peer: 16,
            max_sessions_per_address: 16,
            max_rtc_peers: 64,
            media: MediaLimits::default(),
        }
    }
}

pub use softbus_bus::node::Refusal;

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionClosed {
    #[error("closed locally")]
    Local,
    #[error("server removed")]
    ServerRemoved,
    #[error("channel closed")]
    ChannelClosed,
    /// The other end of a gateway bridge closed.
    #[error("the other end of the gateway closed")]
    OtherEnd,
    /// The WebRTC peer connection ended.
    #[error("{0}")]
    PeerConnection(CloseReason),
    /// The TCP connection ended (the soft bus engine's reason).
    #[error("{0}")]
    Connection(ConnClosed),
}

/// Which of the node's UDP sockets a datagram arrived on. (Outgoing
/// datagrams name their socket by its address, [`Datagram::source`]: see
/// [`Node::discovery_source`] and [`Node::rtc_source`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// CoAP discovery (port 5684).
    Discovery,
    /// WebRTC (ICE, DTLS, SCTP), one port for every peer.
    Rtc,
}

pub use softbus_proto::{Datagram, Transmit};

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Discovery, verification and connection events of the soft bus.
    Bus(BusEvent),
    SessionOpened(SessionInfo),
    BytesReceived {
        session: SessionId,
        binary: bool,
        data: Vec<u8>,
    },
    SessionClosed {
        session: SessionId,
        server: String,
        reason: SessionClosed,
        /// What the session carried, over its life.
        traffic: Traffic,
    },
    /// A gateway channel (`DEVICE/SESSION`) was bridged to the device's
    /// session: both are in the session table, both close together.
    GatewayOpened {
        channel_session: SessionId,
        device_session: SessionId,
        /// Who asked (the channel's principal).
        who: String,
        device: String,
        session: String,
    },
    /// A gateway channel was refused (closed), and why.
    GatewayRefused {
        label: String,
        peer: Option<IpAddr>,
        reason: crate::GatewayRefusal,
    },
    /// A session was asked for and refused.
    SessionRefused {
        transport: Transport,
        server: String,
        peer: Option<IpAddr>,
        reason: Refusal,
    },
    /// A WebRTC peer connection ended.
    PeerClosed {
        peer: PeerId,
        reason: CloseReason,
    },
    /// A session this node asked for did not open.
    OpenFailed {
        session: SessionId,
        reason: SessionClosed,
    },
    /// Streams, publishers and viewers of the media relay.
    Media(MediaEvent),
    /// A pairing ended (unpaired here, or gone from the pairings another
    /// process changed): the device authenticates with its key no more.
    Unpaired {
        device_id: String,
    },
}

/// Errors of the node's commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("WebRTC: {0}")]
    Rtc(#[from] HostError),
    /// Only the credential that created a peer connection may end it.
    #[error("this peer connection belongs to another credential")]
    NotOwner,
    /// A node-to-node offer or answer whose signature is not a paired
    /// device's over its DTLS fingerprint.
    #[error("not signed by a paired device")]
    BadSignature,
    /// A WHIP or WHEP request the relay refused.
    #[error("{0}")]
    Media(#[from] MediaRefusal),
    /// `--paired-only` refuses credentials that are only a PIN.
    #[error("{0}")]
    Refused(Refusal),
    /// The other node answered a paired offer without signing its answer.
    #[error("the answer is not signed")]
    AnswerNotSigned,
    /// No device of this id has answered this node's discovery.
    #[error("device {0} has not been discovered by this node")]
    NotDiscovered(String),
    /// The device answered discovery without an auth port.
    #[error("{name} at {ip} advertises no auth port")]
    NoAuthPort {
        name: String,
        ip: std::net::Ipv4Addr,
    },
}

/// Where a discovered device's auth server is, and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTarget {
    pub name: String,
    pub addr: SocketAddr,
}
