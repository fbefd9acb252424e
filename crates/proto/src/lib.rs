//! The vocabulary the sans-IO engines of softbus share (`bus`, `rtc`, `node`):
//! one way to combine deadlines, one datagram to send. Engines take time as an
//! argument (`handle_*(now, ..)`, `handle_timeout(now)`) and report their next
//! deadline with `poll_timeout()`; a driver sleeps until the [`earliest`] of them.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Instant;

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A datagram to send: from which local address, to where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub payload: Vec<u8>,
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
