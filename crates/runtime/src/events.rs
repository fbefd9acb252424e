//! The JSON events of `--json` (spec/interfaces.md), one object per line.

use serde::Serialize;
use softbus_bus::discovery::{DiscoveryEvent, FoundDevice};
use softbus_bus::node::BusEvent;
use softbus_bus::SessionId;

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
        session_id: SessionId,
        session: String,
        /// The device id, or the web token's name for a browser.
        peer_device_id: String,
        transport: String,
        /// How the peer authenticated: `paired`, `pin`, `empty_pin` or `web_token`.
        auth: String,
        /// Whether `peer_device_id` is proved: `key` (derived from the key the
        /// peer proved), `claimed` (only what it said: a PIN, or a pairing
        /// whose id is not derived from its key) or `token` (the web token).
        id: String,
    },
    /// A device paired with this one (BIND with the PIN); it authenticates
    /// without the PIN from now on.
    Paired {
        device_id: String,
        ip: String,
        /// `key` when the id is derived from the device's key, `claimed` when
        /// not (a softbus_lite device's random id).
        id: String,
    },
    /// A pairing was removed (`softbus unpair`, or the API).
    Unpaired {
        device_id: String,
    },
    BytesReceived {
        session_id: SessionId,
        len: usize,
    },
    /// A data channel labelled `DEVICE/SESSION` was bridged to that session
    /// on the device (the gateway): both ends are sessions of this node.
    GatewayOpened {
        /// The channel's session (who asked).
        session_id: SessionId,
        /// The session this node opened on the device.
        device_session_id: SessionId,
        who: String,
        device_id: String,
        session: String,
    },
    /// A gateway channel was refused, and why.
    GatewayRefused {
        label: String,
        ip: Option<String>,
        reason: String,
    },
    SessionClosed {
        session_id: SessionId,
        reason: String,
        /// Bytes the session received and sent over its life (the node's own
        /// sessions; absent for a client's).
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes_in: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes_out: Option<u64>,
    },
    Error {
        message: String,
    },
    /// Too many failed PIN attempts: PIN pairing pauses for `retry_after_s`
    /// seconds (a cool-down that doubles with each burst, or until the day's
    /// bound has room); a random PIN that reached the day's bound is replaced
    /// instead (`retry_after_s` 0, see `pin_replaced`).
    PinLocked {
        failures: u32,
        retry_after_s: u64,
    },
    /// A new random PIN replaced the locked one (shown on stderr, never here).
    PinReplaced {},
    /// Auth connections from `ip` are refused: it failed the PIN too often
    /// lately, and may try again in `retry_after_s` seconds. Once per address
    /// per 10 s, however many connections it opens.
    AuthRefused {
        ip: String,
        retry_after_s: u64,
    },
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
                message: format!(
                    "key agreement with {ip} failed: {}",
                    softbus_bus::auth::message::errcode::words(*code)
                ),
            },
            BusEvent::SessionOpened(i) => NodeEvent::SessionOpened {
                session_id: i.session_id,
                session: i.session.clone(),
                peer_device_id: i.peer_device_id.clone(),
                transport: i.transport.as_str().to_owned(),
                auth: i.auth.as_str().to_owned(),
                id: i.id.as_str().to_owned(),
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
                bytes_in: None,
                bytes_out: None,
            },
            BusEvent::Paired {
                device_id, ip, id, ..
            } => NodeEvent::Paired {
                device_id: device_id.clone(),
                ip: ip.to_string(),
                id: id.as_str().to_owned(),
            },
            // Our own client role; the caller hears of it directly.
            BusEvent::Authenticated { .. } => return None,
            BusEvent::PinLocked {
                failures,
                retry_after,
            } => NodeEvent::PinLocked {
                failures: *failures,
                retry_after_s: retry_after.as_secs(),
            },
            BusEvent::PinReplaced { .. } => NodeEvent::PinReplaced {},
            BusEvent::AuthRefused { ip, retry_after } => NodeEvent::AuthRefused {
                ip: ip.to_string(),
                retry_after_s: retry_after.as_secs().max(1),
            },
            BusEvent::ConnDropped { ip, reason, .. } => NodeEvent::Error {
                message: format!("dropped the connection with {ip}: {reason}"),
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
                transport: i.transport.as_str().to_owned(),
                auth: i.auth.as_str().to_owned(),
                id: i.id.as_str().to_owned(),
            },
            Event::BytesReceived { session, data, .. } => NodeEvent::BytesReceived {
                session_id: *session,
                len: data.len(),
            },
            Event::SessionClosed {
                session,
                reason,
                traffic,
                ..
            } => NodeEvent::SessionClosed {
                session_id: *session,
                reason: reason.to_string(),
                bytes_in: Some(traffic.bytes_in),
                bytes_out: Some(traffic.bytes_out),
            },
            Event::Unpaired { device_id } => NodeEvent::Unpaired {
                device_id: device_id.clone(),
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
            Event::GatewayOpened {
                channel_session,
                device_session,
                who,
                device,
                session,
            } => NodeEvent::GatewayOpened {
                session_id: *channel_session,
                device_session_id: *device_session,
                who: who.clone(),
                device_id: device.clone(),
                session: session.clone(),
            },
            Event::GatewayRefused {
                label,
                peer,
                reason,
            } => NodeEvent::GatewayRefused {
                label: label.clone(),
                ip: peer.map(|ip| ip.to_string()),
                reason: reason.to_string(),
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

    /// One line for people (what `softbus node` prints without `--json`).
    /// Every event has words: a new event must be given them here.
    pub fn to_words(&self) -> String {
        fn port(p: &Option<u16>) -> String {
            p.map_or_else(|| "-".to_owned(), |p| p.to_string())
        }
        fn short(id: &str) -> &str {
            id.get(..12).unwrap_or(id)
        }
        match self {
            NodeEvent::Ready {
                device_id,
                name,
                ip,
                discovery_port,
                auth_port,
                session_port,
                rtc_port,
                web,
            } => format!(
                "softbus node {name} ({device_id}) on {ip}: discovery {discovery_port}, auth {auth_port}, session {session_port}, WebRTC {rtc_port}{}",
                web.as_ref().map(|w| format!(", dashboard {w}")).unwrap_or_default()
            ),
            NodeEvent::DeviceFound {
                device_id,
                name,
                ip,
                auth_port,
                capabilities,
                ..
            } => format!(
                "found {name} ({}…) at {ip}, auth port {}{}",
                short(device_id),
                port(auth_port),
                if capabilities.is_empty() {
                    String::new()
                } else {
                    format!(", offers {}", capabilities.join(", "))
                }
            ),
            NodeEvent::DeviceLost { device_id } => {
                format!("lost sight of {}…", short(device_id))
            }
            NodeEvent::PeerVerified {
                device_id,
                name,
                ip,
            } => format!("verified {name} ({}…) at {ip}", short(device_id)),
            NodeEvent::SessionOpened {
                session_id,
                session,
                peer_device_id,
                transport,
                auth,
                id,
            } => format!(
                "session {session_id} opened to {session:?} by {} over {transport} ({}{})",
                if peer_device_id.len() == 64 {
                    format!("{}…", short(peer_device_id))
                } else {
                    peer_device_id.clone()
                },
                auth.replace('_', " "),
                if id == "claimed" { ", id claimed" } else { "" }
            ),
            NodeEvent::Paired { device_id, ip, id } => {
                let claimed = if id == "claimed" { " (id claimed, not derived from its key)" } else { "" };
                format!("paired with {}… at {ip}{claimed}", short(device_id))
            }
            NodeEvent::Unpaired { device_id } => format!("unpaired {}…", short(device_id)),
            NodeEvent::GatewayOpened {
                session_id,
                device_session_id,
                who,
                device_id,
                session,
            } => format!(
                "gateway: session {session_id} ({who}) bridged to {session:?} on {}… (session {device_session_id})",
                short(device_id)
            ),
            NodeEvent::GatewayRefused { label, ip, reason } => match ip {
                Some(ip) => format!("gateway: refused {label:?} from {ip}: {reason}"),
                None => format!("gateway: refused {label:?}: {reason}"),
            },
            NodeEvent::BytesReceived { session_id, len } => {
                format!("session {session_id}: received {len} bytes")
            }
            NodeEvent::SessionClosed {
                session_id,
                reason,
                bytes_in,
                bytes_out,
            } => match (bytes_in, bytes_out) {
                (Some(i), Some(o)) => {
                    format!("session {session_id} closed: {reason} ({i} bytes in, {o} out)")
                }
                _ => format!("session {session_id} closed: {reason}"),
            },
            NodeEvent::Error { message } => format!("error: {message}"),
            NodeEvent::PinLocked {
                failures,
                retry_after_s: 0,
            } => format!("PIN replaced after {failures} failed attempts"),
            NodeEvent::PinLocked {
                failures,
                retry_after_s,
            } => format!(
                "PIN pairing paused for {retry_after_s} s after {failures} failed attempts"
            ),
            NodeEvent::PinReplaced {} => "a new pairing PIN replaced the locked one".to_owned(),
            NodeEvent::AuthRefused { ip, retry_after_s } => format!(
                "refused {ip}: too many failed PIN attempts, it may try again in {retry_after_s} s"
            ),
            NodeEvent::StreamStarted {
                stream,
                peer_device_id,
                resumed,
                tracks,
                ..
            } => format!(
                "stream {stream:?} {} by {peer_device_id} ({})",
                if *resumed { "resumed" } else { "published" },
                tracks.join(" + ")
            ),
            NodeEvent::StreamPublisherLeft { stream, reason, .. } => {
                format!("stream {stream:?}: publisher left ({reason}); waiting for it to return")
            }
            NodeEvent::StreamEnded { stream } => format!("stream {stream:?} ended"),
            NodeEvent::ViewerJoined {
                stream,
                peer,
                peer_device_id,
                ..
            } => format!("stream {stream:?}: viewer {peer} joined ({peer_device_id})"),
            NodeEvent::ViewerLeft {
                stream,
                peer,
                reason,
            } => format!("stream {stream:?}: viewer {peer} left ({reason})"),
            NodeEvent::TrustChanged {
                device_id,
                name,
                ip,
                change,
            } => format!(
                "trust store: {name} ({}…) at {ip} {change}",
                short(device_id)
            ),
        }
    }

    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain enum serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::NodeEvent;

    /// The words are words: no JSON, one line, naming the device or session.
    #[test]
    fn every_event_reads_as_one_line_of_words() {
        let id = "AB".repeat(32);
        let events = [
            NodeEvent::PeerVerified {
                device_id: id.clone(),
                name: "kitchen".into(),
                ip: "10.0.0.2".into(),
            },
            NodeEvent::SessionOpened {
                session_id: softbus_bus::SessionId(3),
                session: "echo".into(),
                peer_device_id: "web".into(),
                transport: "webrtc".into(),
                auth: "web_token".into(),
                id: "token".into(),
            },
            NodeEvent::TrustChanged {
                device_id: id.clone(),
                name: "kitchen".into(),
                ip: "10.0.0.2".into(),
                change: "added".into(),
            },
            NodeEvent::PinReplaced {},
            NodeEvent::StreamEnded {
                stream: "cam".into(),
            },
        ];
        let words: Vec<String> = events.iter().map(NodeEvent::to_words).collect();
        for w in &words {
            assert!(!w.contains('{') && !w.contains('\n'), "{w}");
        }
        assert_eq!(words[0], "verified kitchen (ABABABABABAB…) at 10.0.0.2");
        assert_eq!(
            words[1],
            "session 3 opened to \"echo\" by web over webrtc (web token)"
        );
    }
}
