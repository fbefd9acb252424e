//! tokio drivers for the softbus engines and the async API.
//!
//! - [`node::Node`]: a publishing node (discovery responder, auth server,
//!   session servers with built-in echo and discard modes). It runs on a thread of
//!   its own with a single-threaded runtime; one task owns the
//!   [`softbus_bus::node::Bus`]; every TCP connection has a reader and a writer
//!   task joined to it by bounded channels.
//!   After each input the driver drains transmits and events, then sleeps until
//!   the engine's next timeout.
//! - [`client`]: discover devices, authenticate to a peer, open sessions.
//! - [`store`]: the persistent device id and trusted devices.
//!
//! Limits: every channel is bounded; a peer that does not read its replies is
//! disconnected instead of growing a queue.
#![forbid(unsafe_code)]

pub mod client;
pub mod events;
pub mod ice;
pub mod net;
pub mod node;

pub mod signaling;
pub mod store;

pub use node::{
    AppEvent, NodeConfig, NodeHandle, NodeInfo, NodeTask, Principal, PublishInfo, RecentEvent,
    RemoteDevice, ServerMode, SessionHandle, WebAuth, DEVICE_HEADER, SIGNATURE_HEADER,
};
pub use softbus_bus::auth::PinPolicy;
pub use softbus_bus::node::SessionInfo;
pub use softbus_node::{
    ConnClosed, GatewayPins, MediaRefusal, NodeError, SessionClosed, SessionId, StreamInfo,
    Transport,
};
pub use softbus_rtc::host::{answer_etag, HostError, Patched, PeerId};
pub use softbus_rtc::peer::{CloseReason, PeerError};

/// Wire facts the command line checks its arguments against.
pub mod wire {
    pub use softbus_bus::discovery::publish::{
        capability_bit, device_type_from_name, full_stack_capability_bit, Publications,
        PublishError, CAPABILITIES,
    };
    pub use softbus_bus::frame::MAX_SEND_BYTES;
}

/// Which socket a [`Error::Bind`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bound {
    Discovery,
    AuthListener,
    SessionListener,
    Rtc,
    Web,
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bound::Discovery => "discovery socket (UDP)",
            Bound::AuthListener => "auth listener (TCP)",
            Bound::SessionListener => "session listener (TCP)",
            Bound::Rtc => "WebRTC socket (UDP)",
            Bound::Web => "web listener (TCP)",
        })
    }
}

impl Bound {
    /// What the user can change to get past the error.
    fn hint(self) -> &'static str {
        match self {
            Bound::Discovery => "; choose another address with --ip or port with --discovery-port",
            Bound::AuthListener | Bound::SessionListener => {
                "; choose another address with --ip, or let the kernel pick the port"
            }
            Bound::Rtc => "; choose another address with --ip",
            Bound::Web => "; choose another address with --web, or --web off",
        }
    }
}

/// Runtime errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot bind the {what} on {addr}: {source}{}", what.hint())]
    Bind {
        what: Bound,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// An ICE server cannot be used: its URL, and why.
    #[error("ICE server {url}: {reason}")]
    IceServer { url: String, reason: String },
    #[error("connection closed: {0}")]
    Closed(&'static str),
    #[error("{0}")]
    Node(#[from] softbus_node::NodeError),
    #[error("authentication failed: {0}")]
    Auth(#[from] softbus_bus::auth::AuthError),
    #[error("session: {0}")]
    Session(#[from] softbus_bus::session::SessionError),
    #[error("the node has stopped")]
    Stopped,
    /// The node's files (identity, trust store) cannot be used.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The connection ended before it was up, and why.
    #[error("{0}")]
    Refused(softbus_node::ConnClosed),
    /// The session did not open, and why.
    #[error("the session did not open: {0}")]
    NotOpened(softbus_node::SessionClosed),
    /// The other node's signaling answered with an error status (its reason).
    #[error("the other node answered {status}: {reason}")]
    Signaling { status: u16, reason: String },
    #[error("DTLS: {0}")]
    Dtls(#[from] softbus_rtc::dtls::DtlsError),
    /// PublishService refused (softbus_lite's reason and code).
    #[error(transparent)]
    Publish(#[from] softbus_bus::discovery::publish::PublishError),
    /// UnPublishService or SetCommonDeviceInfo refused (its code).
    #[error(transparent)]
    Discovery(#[from] softbus_bus::discovery::publish::CommandError),
    #[error("WebRTC: {0}")]
    Peer(#[from] softbus_rtc::peer::PeerError),
    #[error("data channel: {0}")]
    Channel(#[from] softbus_rtc::sctp::ChannelError),
    #[error("WebRTC peer connection closed: {0}")]
    PeerClosed(softbus_rtc::peer::CloseReason),
    #[error("web address {0:?}: expected http://HOST:PORT")]
    WebAddress(String),
    #[error("capability {name:?}: {source}")]
    Capability {
        name: String,
        #[source]
        source: softbus_bus::discovery::publish::PublishError,
    },
    #[error("session server {name:?}: {source}")]
    SessionServer {
        name: String,
        #[source]
        source: softbus_node::NodeError,
    },
    /// Discovery was asked of a node started without a discovery socket.
    #[error("this node has no discovery socket (started with the peer's auth port)")]
    NoDiscovery,
    /// Another node answers discovery on this address already.
    #[error("{addr} already has a softbus node answering discovery: {}; stop it, or start this one with another --ip", holder.as_ref().map_or_else(|| "it did not say who it is".to_owned(), |(name, id)| format!("{name} ({id})")))]
    AddressTaken {
        addr: std::net::SocketAddrV4,
        /// Its name and device id, as it says.
        holder: Option<(String, String)>,
    },
}
