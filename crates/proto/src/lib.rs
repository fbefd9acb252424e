//! The vocabulary the sans-IO engines of softbus share (`bus`, `rtc`, `node`):
//! one way to combine deadlines, one output type ([`Transmit`]), the ids of
//! connections and sessions. Engines take time as an argument
//! (`handle_*(now, ..)`, `handle_timeout(now)`) and report their next deadline
//! with `poll_timeout()`; a driver sleeps until the [`earliest`] of them.
#![forbid(unsafe_code)]

use serde::Serialize;
use std::net::SocketAddr;
use std::time::Instant;

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A TCP connection as engines and their driver name it. The driver numbers
/// the connections it accepts; engines number the ones they ask it to dial
/// (from a range of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// An open session, the `sessionId` of softbus_lite's C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub i32);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A datagram to send: from which local address, to where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
}

/// What an engine asks its driver to do. Engines that speak only UDP (the
/// WebRTC host) return the [`Datagram`] itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Send a datagram from the socket bound to `source`.
    Datagram(Datagram),
    /// Bytes for a TCP connection, one write.
    Tcp { conn: ConnId, bytes: Vec<u8> },
    /// Close this TCP connection.
    Close { conn: ConnId },
    /// Open a TCP connection to `addr` for `conn` (a client role); the engine
    /// is told the outcome by its `handle_dialed`. Its packets go one per
    /// write: softbus_lite's receive path needs that.
    Dial { conn: ConnId, addr: SocketAddr },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    #[allow(clippy::disallowed_methods)] // the test only picks an origin
    fn earliest_takes_the_earlier_or_the_one_there_is() {
        let t = Instant::now();
        let u = t + Duration::from_millis(1);
        assert_eq!(earliest(Some(u), Some(t)), Some(t));
        assert_eq!(earliest(Some(t), Some(u)), Some(t));
        assert_eq!(earliest(None, Some(u)), Some(u));
        assert_eq!(earliest(Some(t), None), Some(t));
        assert_eq!(earliest(None, None), None);
    }
}
