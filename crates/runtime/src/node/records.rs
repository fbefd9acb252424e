//! The records a node keeps for its APIs and dashboard: recent events,
//! open and closed sessions, and the snapshot.

use super::*;

/// Milliseconds since the Unix epoch.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends `item`, dropping the oldest beyond `max`.
pub(super) fn push_bounded<T>(q: &mut std::collections::VecDeque<T>, item: T, max: usize) {
    while q.len() >= max.max(1) {
        q.pop_front();
    }
    q.push_back(item);
}

/// Closed sessions a node keeps for its snapshot.
pub const RECENT_SESSIONS: usize = 50;

/// An open session with what it carried and since when.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpenSession {
    #[serde(flatten)]
    pub info: SessionInfo,
    pub opened_at_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A session that closed: what it was, when, what it carried, why it ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClosedSession {
    #[serde(flatten)]
    pub info: SessionInfo,
    pub opened_at_ms: u64,
    pub closed_at_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub reason: String,
}

/// Events a node keeps for [`NodeHandle::recent_events`].
pub const RECENT_EVENTS: usize = 200;

/// One kept event: when (Unix milliseconds), in words, and as JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentEvent {
    pub at_ms: u64,
    pub words: String,
    pub event: NodeEvent,
}

/// Keeps the last events of `rx` in `ring` until the node stops.
pub(super) async fn record(
    mut rx: broadcast::Receiver<NodeEvent>,
    ring: Arc<std::sync::Mutex<std::collections::VecDeque<RecentEvent>>>,
) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                let at_ms = unix_ms();
                if let Ok(mut r) = ring.lock() {
                    push_bounded(
                        &mut r,
                        RecentEvent {
                            at_ms,
                            words: event.to_words(),
                            event,
                        },
                        RECENT_EVENTS,
                    );
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A consistent view for APIs and the dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub devices: Vec<FoundDevice>,
    /// Open sessions, with their bytes each way and since when.
    pub sessions: Vec<OpenSession>,
    /// The last sessions that closed, oldest first.
    pub closed_sessions: Vec<ClosedSession>,
    pub servers: Vec<String>,
    /// Devices a gateway channel (`DEVICE/SESSION`) can reach now.
    pub gateway: Vec<softbus_node::GatewayDevice>,
    pub trusted: Vec<store::TrustedDevice>,
    pub paired: Vec<store::PairedDevice>,
    /// The media relay's streams and viewers.
    pub streams: Vec<softbus_node::StreamInfo>,
    pub dropped_datagrams: u64,
}
