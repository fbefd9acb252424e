//! Test support for driving sans-IO engines in virtual time.
//!
//! - [`VirtualClock`]: an `Instant` that only moves when the test says so.
//! - [`LossyLink`]: a datagram link with seeded loss, delay and reordering; the
//!   same seed gives the same run.
#![forbid(unsafe_code)]

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A clock that advances only on request.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    now: Instant,
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtualClock {
    /// Starts at an arbitrary fixed origin.
    pub fn new() -> Self {
        // The only real clock read: the origin. Everything after is arithmetic.
        Self {
            now: Instant::now(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Moves to `t` if it is later than now.
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
    }
}

/// Link impairments.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Probability a datagram is dropped, 0.0..=1.0.
    pub loss: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Extra random delay up to this much (reorders datagrams).
    pub jitter: Duration,
}

/// A one-way datagram link with seeded impairments.
#[derive(Debug)]
pub struct LossyLink<T> {
    cfg: LinkConfig,
    rng: rand::rngs::StdRng,
    in_flight: BTreeMap<(Instant, u64), T>,
    seq: u64,
    sent: u64,
    dropped: u64,
}

impl<T> LossyLink<T> {
    /// A link with impairments `cfg`, random choices from `seed`.
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        Self {
            cfg,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            in_flight: BTreeMap::new(),
            seq: 0,
            sent: 0,
            dropped: 0,
        }
    }

    /// Sends `item` at `now`; it may be dropped or delayed.
    pub fn send(&mut self, now: Instant, item: T) {
        self.sent += 1;
        if self.rng.random_bool(self.cfg.loss.clamp(0.0, 1.0)) {
            self.dropped += 1;
            return;
        }
        let jitter_ns = self.cfg.jitter.as_nanos() as u64;
        let extra = if jitter_ns == 0 {
            0
        } else {
            self.rng.random_range(0..=jitter_ns)
        };
        let at = now + self.cfg.delay + Duration::from_nanos(extra);
        self.seq += 1;
        self.in_flight.insert((at, self.seq), item);
    }

    /// The next item due at or before `now`.
    pub fn recv(&mut self, now: Instant) -> Option<T> {
        let key = *self.in_flight.keys().next()?;
        if key.0 > now {
            return None;
        }
        self.in_flight.remove(&key)
    }

    /// When the next item becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|k| k.0)
    }

    /// (sent, dropped) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.sent, self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_run_and_loss_rate() {
        let cfg = LinkConfig {
            loss: 0.2,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(10),
        };
        let run = |seed| {
            let clock = VirtualClock::new();
            let mut l = LossyLink::new(cfg, seed);
            for i in 0..1000u32 {
                l.send(clock.now(), i);
            }
            let mut got = Vec::new();
            while let Some(x) = l.recv(clock.now() + Duration::from_secs(1)) {
                got.push(x);
            }
            (got, l.stats())
        };
        let (a, sa) = run(7);
        assert_eq!((a.clone(), sa), run(7));
        assert!((150..250).contains(&sa.1), "about 20% dropped: {sa:?}");
        assert_eq!(a.len() as u64, sa.0 - sa.1);
        assert!(a.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
        let clock = VirtualClock::new();
        let mut l = LossyLink::new(
            LinkConfig {
                loss: 0.0,
                delay: Duration::from_millis(5),
                jitter: Duration::ZERO,
            },
            1,
        );
        l.send(clock.now(), 1);
        assert_eq!(l.recv(clock.now()), None);
        assert_eq!(l.next_due(), Some(clock.now() + Duration::from_millis(5)));
    }
}
