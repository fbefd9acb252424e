//! The JSON events of `--json` (spec/interfaces.md), one object per line.

use serde::Serialize;
use softbus_bus::discovery::{DiscoveryEvent, FoundDevice};
use softbus_bus::node::BusEvent;

/// A node event as scripts see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    Ready {
        device_id: String,
        name: String,
        ip: String,
        discovery_port: u16,
        auth_port: u16,
        session_port: u16,
        /// UDP port of WebRTC (ICE-lite host candidate).
        rtc_port: u16,
        web: Option<String>,
    },
    DeviceFound {
        device_id: String,
        name: String,
        device_type: u8,
        ip: String,
        auth_port: Option<u16>,
        capabilities: Vec<String>,
    },
    DeviceLost {
        device_id: String,
    },
    PeerVerified {
        device_id: String,
        name: String,
        ip: String,
    },
    SessionOpened {
        session_id: i32,
        session: String,
        /// The device id, or the web token's name for a browser.
        peer_device_id: String,
        transport: String,
        /// How the peer authenticated: `paired`, `pin`, `empty_pin` or `web_token`.
        auth: String,
    },
    /// A device paired with this one (BIND with the PIN); it authenticates
    /// without the PIN from now on.
    Paired {
        device_id: String,
        ip: String,
    },
    /// A pairing was removed (`softbus unpair`, or the API).
    Unpaired {
        device_id: String,
    },
    BytesReceived {
        session_id: i32,
        len: usize,
    },
    SessionClosed {
        session_id: i32,
        reason: String,
    },
    Error {
        message: String,
    },
    /// Too many failed PIN attempts: PIN pairing stopped (an operator's PIN stays
    /// locked until restart; a random one is replaced, see `pin_replaced`).
    PinLocked {
        failures: u32,
    },
    /// A new random PIN replaced the locked one (shown on stderr, never here).
    PinReplaced {},
    /// A WHIP publisher connected to `stream` (`resumed`: within the grace
    /// period after its predecessor left, so viewers continue).
    StreamStarted {
        stream: String,
        peer: u64,
        /// The web token's name, or the device id.
        peer_device_id: String,
        auth: String,
        resumed: bool,
        tracks: Vec<String>,
    },
    /// The publisher left; viewers wait for the grace period.
    StreamPublisherLeft {
        stream: String,
        peer: u64,
        reason: String,
    },
    /// No publisher came back in time: viewers got RTCP BYE and were closed.
    StreamEnded {
        stream: String,
    },
    ViewerJoined {
        stream: String,
        peer: u64,
        peer_device_id: String,
        auth: String,
    },
    ViewerLeft {
        stream: String,
        peer: u64,
        reason: String,
    },
    /// The trust store changed: a device was `added`, or `updated` (seen again).
    TrustChanged {
        device_id: String,
        name: String,
        ip: String,
        change: String,
    },
}

impl NodeEvent {
    /// `device_found` for a discovered device.
    pub fn found(d: &FoundDevice) -> Self {
        NodeEvent::DeviceFound {
            device_id: d.device_id.clone(),
            name: d.name.clone(),
            device_type: d.device_type,
            ip: d.ip.to_string(),
            auth_port: d.auth_port,
            capabilities: d.capabilities.clone(),
        }
    }

    /// The public form of an engine event, if it has one.
    pub fn from_bus(e: &BusEvent) -> Option<Self> {
        Some(match e {
            BusEvent::Discovery(DiscoveryEvent::DeviceFound(d)) => Self::found(d),
            BusEvent::Discovery(DiscoveryEvent::DeviceLost(id)) => NodeEvent::DeviceLost {
                device_id: id.clone(),
            },
            BusEvent::Discovery(DiscoveryEvent::ScheduleDone) => return None,
            BusEvent::PeerVerified { ip, peer, .. } => NodeEvent::PeerVerified {
                device_id: peer.device_id.clone(),
                name: peer.device_name.clone(),
                ip: ip.to_string(),
            },
            BusEvent::PakeFailed { ip, code, .. } => NodeEvent::Error {
                message: format!("key agreement with {ip} failed (hichain error {code})"),
            },
            BusEvent::SessionOpened(i) => NodeEvent::SessionOpened {
                session_id: i.session_id,
                session: i.session.clone(),
                peer_device_id: i.peer_device_id.clone(),
                transport: i.transport.to_owned(),
                auth: i.auth.as_str().to_owned(),
            },
            BusEvent::BytesReceived { session_id, data } => NodeEvent::BytesReceived {
                session_id: *session_id,
                len: data.len(),
            },
            BusEvent::SessionClosed {
                session_id, reason, ..
            } => NodeEvent::SessionClosed {
                session_id: *session_id,
                reason: reason.to_string(),
            },
            BusEvent::Paired { device_id, ip, .. } => NodeEvent::Paired {
                device_id: device_id.clone(),
                ip: ip.to_string(),
            },
            // Our own client role; the caller hears of it directly.
            BusEvent::Authenticated { .. } => return None,
            BusEvent::PinLocked { failures } => NodeEvent::PinLocked {
                failures: *failures,
            },
            BusEvent::PinReplaced { .. } => NodeEvent::PinReplaced {},
            BusEvent::ConnDropped { ip, reason, .. } => NodeEvent::Error {
                message: format!("dropped connection from {ip}: {reason}"),
            },
        })
    }

    /// The public form of a node core event, if it has one.
    pub fn from_node(e: &softbus_node::Event) -> Option<Self> {
        use softbus_node::Event;
        Some(match e {
            Event::Bus(b) => return Self::from_bus(b),
            Event::SessionOpened(i) => NodeEvent::SessionOpened {
                session_id: i.session_id,
                session: i.session.clone(),
                peer_device_id: i.peer_device_id.clone(),
                transport: i.transport.to_owned(),
                auth: i.auth.as_str().to_owned(),
            },
            Event::BytesReceived { session, data, .. } => NodeEvent::BytesReceived {
                session_id: session.0,
                len: data.len(),
            },
            Event::SessionClosed {
                session, reason, ..
            } => NodeEvent::SessionClosed {
                session_id: session.0,
                reason: reason.to_string(),
            },
            Event::OpenFailed { session, reason } => NodeEvent::Error {
                message: format!("session {session} did not open: {reason}"),
            },
            Event::SessionRefused {
                transport,
                server,
                peer,
                reason,
            } => NodeEvent::Error {
                message: match peer {
                    Some(ip) => format!(
                        "refused a {} session to {server:?} from {ip}: {reason}",
                        transport.as_str()
                    ),
                    None => format!(
                        "refused a {} session to {server:?}: {reason}",
                        transport.as_str()
                    ),
                },
            },
            Event::Media(m) => return Self::from_media(m),
            _ => return None,
        })
    }

    /// The public form of a relay event.
    fn from_media(e: &softbus_node::MediaEvent) -> Option<Self> {
        use softbus_node::MediaEvent as M;
        Some(match e {
            M::PublisherJoined {
                stream,
                peer,
                who,
                auth,
                resumed,
                tracks,
            } => NodeEvent::StreamStarted {
                stream: stream.clone(),
                peer: peer.0,
                peer_device_id: who.clone(),
                auth: auth.as_str().to_owned(),
                resumed: *resumed,
                tracks: tracks.clone(),
            },
            M::PublisherLeft {
                stream,
                peer,
                reason,
            } => NodeEvent::StreamPublisherLeft {
                stream: stream.clone(),
                peer: peer.0,
                reason: reason.to_string(),
            },
            M::StreamEnded { stream } => NodeEvent::StreamEnded {
                stream: stream.clone(),
            },
            M::ViewerJoined {
                stream,
                peer,
                who,
                auth,
            } => NodeEvent::ViewerJoined {
                stream: stream.clone(),
                peer: peer.0,
                peer_device_id: who.clone(),
                auth: auth.as_str().to_owned(),
            },
            M::ViewerLeft {
                stream,
                peer,
                reason,
            } => NodeEvent::ViewerLeft {
                stream: stream.clone(),
                peer: peer.0,
                reason: reason.to_string(),
            },
            _ => return None,
        })
    }

    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain enum serializes")
    }
}
