//! Test support for driving sans-IO engines in virtual time.
//!
//! - [`VirtualClock`]: an `Instant` that only moves when the test says so.
//! - [`LossyLink`]: a datagram link with seeded loss, delay and reordering; the
//!   same seed gives the same run.
//! - [`Net`]: the shared driver for engines under test. It carries every
//!   engine's datagrams over one seeded [`LossyLink`] to the engine that owns the
//!   destination address, fires timers, and when nothing moves jumps the clock to
//!   the earliest `poll_timeout` or arrival. Engines take part through [`Driven`],
//!   a small adapter each test writes for its engine.
#![forbid(unsafe_code)]

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
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

/// A datagram between engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// An engine as [`Net`] drives it: the sans-IO vocabulary, datagrams only.
pub trait Driven {
    /// Whether datagrams to `addr` are for this engine.
    fn owns(&self, addr: SocketAddr) -> bool;
    /// Next datagram the engine sends.
    fn poll_datagram(&mut self) -> Option<Datagram>;
    /// A datagram for the engine.
    fn handle_datagram(&mut self, now: Instant, d: Datagram);
    /// The engine's next timer.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Fires the engine's timers.
    fn handle_timeout(&mut self, now: Instant);
}

/// What one [`Net::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Datagrams were sent or delivered at the current time.
    Moved,
    /// Nothing was due: the clock jumped to the next timer or arrival.
    Waited,
    /// Nothing is pending anywhere, or the next event is past the deadline.
    Idle,
}

/// A virtual network of engines: one clock, one seeded lossy link.
#[derive(Debug)]
pub struct Net {
    clock: VirtualClock,
    link: LossyLink<Datagram>,
    /// Datagrams whose destination no engine owns.
    pub undeliverable: u64,
    /// Datagrams delivered.
    pub delivered: u64,
}

impl Net {
    /// A network with impairments `cfg`, random choices from `seed`.
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        Self {
            clock: VirtualClock::new(),
            link: LossyLink::new(cfg, seed),
            undeliverable: 0,
            delivered: 0,
        }
    }

    /// No loss, no delay: every datagram arrives at once, in order.
    pub fn perfect() -> Self {
        Self::new(
            LinkConfig {
                loss: 0.0,
                delay: Duration::ZERO,
                jitter: Duration::ZERO,
            },
            0,
        )
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Moves the clock on by `d` and fires the timers that are due.
    pub fn advance(&mut self, engines: &mut [&mut dyn Driven], d: Duration) {
        self.clock.advance(d);
        let now = self.clock.now();
        for e in engines.iter_mut() {
            if e.poll_timeout().is_some_and(|t| t <= now) {
                e.handle_timeout(now);
            }
        }
    }

    /// Changes the link's impairments from now on (what is in flight stays).
    pub fn set_link(&mut self, cfg: LinkConfig) {
        self.link.cfg = cfg;
    }

    /// (sent, dropped) on the link so far.
    pub fn link_stats(&self) -> (u64, u64) {
        self.link.stats()
    }

    /// One round: every engine's datagrams go on the link, what is due is
    /// delivered to the engine owning its destination; if nothing moved, the
    /// clock jumps to the earliest timer or arrival (not past `deadline`) and
    /// the due timers fire.
    pub fn step(&mut self, engines: &mut [&mut dyn Driven], deadline: Instant) -> Step {
        let now = self.clock.now();
        let mut moved = false;
        for e in engines.iter_mut() {
            while let Some(d) = e.poll_datagram() {
                self.link.send(now, d);
                moved = true;
            }
        }
        while let Some(d) = self.link.recv(now) {
            moved = true;
            match engines.iter_mut().find(|e| e.owns(d.to)) {
                Some(e) => {
                    self.delivered += 1;
                    e.handle_datagram(now, d);
                }
                None => self.undeliverable += 1,
            }
        }
        if moved {
            return Step::Moved;
        }
        let next = engines
            .iter()
            .filter_map(|e| e.poll_timeout())
            .chain(self.link.next_due())
            .min();
        match next {
            Some(t) if t <= deadline => {
                // A timer already due that did not move anything still costs time,
                // so the loop cannot spin at one instant.
                self.clock.advance_to(t.max(now + Duration::from_micros(1)));
                let now = self.clock.now();
                for e in engines.iter_mut() {
                    if e.poll_timeout().is_some_and(|t| t <= now) {
                        e.handle_timeout(now);
                    }
                }
                Step::Waited
            }
            _ => Step::Idle,
        }
    }

    /// The instant `limit` from now, for [`Net::step`]'s deadline.
    pub fn deadline(&self, limit: Duration) -> Instant {
        self.clock.now() + limit
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

    /// Two echo engines: one sends on a timer, the other answers; the driver
    /// delivers by address, jumps to timers, and loses what the link loses.
    #[test]
    fn net_delivers_by_address_and_jumps_to_timers() {
        struct Pinger {
            me: SocketAddr,
            peer: SocketAddr,
            next: Option<Instant>,
            out: Vec<Datagram>,
            got: u32,
        }
        impl Driven for Pinger {
            fn owns(&self, a: SocketAddr) -> bool {
                a == self.me
            }
            fn poll_datagram(&mut self) -> Option<Datagram> {
                self.out.pop()
            }
            fn handle_datagram(&mut self, _: Instant, d: Datagram) {
                if d.payload == b"ping" {
                    self.out.push(Datagram {
                        from: self.me,
                        to: d.from,
                        payload: b"pong".to_vec(),
                    });
                } else {
                    self.got += 1;
                }
            }
            fn poll_timeout(&self) -> Option<Instant> {
                self.next
            }
            fn handle_timeout(&mut self, now: Instant) {
                self.out.push(Datagram {
                    from: self.me,
                    to: self.peer,
                    payload: b"ping".to_vec(),
                });
                self.next = Some(now + Duration::from_secs(1));
            }
        }
        let (a, b): (SocketAddr, SocketAddr) =
            ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
        for (loss, min, max) in [(0.0, 10, 10), (0.3, 1, 9)] {
            let mut net = Net::new(
                LinkConfig {
                    loss,
                    delay: Duration::from_millis(20),
                    jitter: Duration::ZERO,
                },
                3,
            );
            let start = net.now();
            let mut x = Pinger {
                me: a,
                peer: b,
                next: Some(start),
                out: vec![],
                got: 0,
            };
            let mut y = Pinger {
                me: b,
                peer: a,
                next: None,
                out: vec![],
                got: 0,
            };
            let deadline = net.deadline(Duration::from_millis(9_500));
            let mut steps = 0;
            while net.step(&mut [&mut x, &mut y], deadline) != Step::Idle {
                steps += 1;
                assert!(steps < 10_000);
            }
            assert!((min..=max).contains(&x.got), "{loss}: {} pongs", x.got);
            assert!(net.now() - start <= Duration::from_millis(9_500));
            assert_eq!(net.undeliverable, 0);
        }
    }
}

/// Interop tests' shared pieces: loopback-only network namespaces and the
/// skip rule.
pub mod interop {
    use std::process::Command;

    /// Says why a test does not run; with `SOFTBUS_REQUIRE_INTEROP=1` (CI) it
    /// fails the test instead.
    pub fn skip(why: &str) {
        if std::env::var("SOFTBUS_REQUIRE_INTEROP").as_deref() == Ok("1") {
            panic!("SOFTBUS_REQUIRE_INTEROP=1 but {why}");
        }
        eprintln!("SKIPPED: {why}");
    }

    /// A network namespace with only loopback, up; on drop what runs in it is
    /// stopped and it is deleted.
    #[derive(Debug)]
    pub struct LoopbackNs(pub String);

    impl LoopbackNs {
        /// Creates `tag` + pid, or says why not (after the skip message).
        pub fn create(tag: &str) -> Option<Self> {
            let ns = Self(format!("{tag}{}", std::process::id() % 100_000));
            let ip = |args: &[&str]| {
                Command::new("ip")
                    .args(args)
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if ip(&["netns", "add", &ns.0]) && ip(&["-n", &ns.0, "link", "set", "lo", "up"]) {
                Some(ns)
            } else {
                skip("cannot create a network namespace (needs root)");
                None
            }
        }

        /// Adds a veth pair inside the namespace whose first end also carries
        /// 127.0.0.1/32, for stacks that gather no candidate on `lo` (libnice):
        /// they find 127.0.0.1 there, and traffic still stays on 127.0.0.1.
        /// False (after the skip message) if the kernel refuses.
        pub fn add_loopback_link(&self) -> bool {
            let ok = [
                vec![
                    "link", "add", "sblo0", "type", "veth", "peer", "name", "sblo1",
                ],
                vec!["link", "set", "sblo0", "up"],
                vec!["link", "set", "sblo1", "up"],
                vec!["addr", "add", "127.0.0.1/32", "dev", "sblo0"],
            ]
            .iter()
            .all(|args| {
                Command::new("ip")
                    .args(["-n", &self.0])
                    .args(args)
                    .status()
                    .is_ok_and(|s| s.success())
            });
            if !ok {
                skip("cannot add a veth pair to the namespace");
            }
            ok
        }

        /// `ip netns exec NAME`, to put before a command.
        pub fn exec(&self) -> [&str; 4] {
            ["ip", "netns", "exec", &self.0]
        }
    }

    impl Drop for LoopbackNs {
        fn drop(&mut self) {
            if let Ok(o) = Command::new("ip").args(["netns", "pids", &self.0]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
}
