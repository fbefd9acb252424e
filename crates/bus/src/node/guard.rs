//! The PIN guard: failures per address, pauses of PIN pairing, rate limits
//! on auth connections and key agreements, and the refusal of a locked-out
//! address.

use super::*;

/// Bounds on PIN guessing and on unauthenticated key agreements.
#[derive(Debug, Clone)]
pub struct PinGuardConfig {
    /// Failed key confirmations one address may cause per `window`; then its auth
    /// connections are refused until the window has room again.
    pub failures_per_address: usize,
    pub window: Duration,
    /// Failed confirmations (from any address) in a burst: after that many PIN
    /// pairing pauses for `cool_down`, doubled for each further burst (reset
    /// once a whole day passes without a failure).
    pub failures_per_burst: u32,
    /// The first pause; the longest is a day.
    pub cool_down: Duration,
    /// Failed confirmations in any 24 hours; then a renewable (random) PIN is
    /// replaced, and an operator's PIN pauses until the oldest of them is a
    /// day old.
    pub failures_per_day: u32,
    /// The PIN was drawn at random (and may be replaced when locked).
    pub renewable: bool,
    /// Auth connections (each may start key agreements) accepted from one
    /// address: a burst, then this many per second.
    pub accepts_per_address: RateLimit,
    /// The same, for all addresses together.
    pub accepts_total: RateLimit,
    /// Key agreements (PAKE requests: two modular exponentiations each) started
    /// node-wide, so a flood of them cannot take the node's thread from paired
    /// devices (STS is not counted: it is cheap and needs no PIN).
    pub key_agreements_total: RateLimit,
    /// Addresses whose failures and rates are remembered at once.
    pub table_limit: usize,
}

/// A token bucket: `burst` at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub burst: u32,
    pub per_second: u32,
}

impl Default for PinGuardConfig {
    fn default() -> Self {
        Self {
            failures_per_address: 5,
            window: Duration::from_secs(60),
            failures_per_burst: 10,
            cool_down: Duration::from_secs(60),
            failures_per_day: 100,
            renewable: false,
            accepts_per_address: RateLimit {
                burst: 16,
                per_second: 4,
            },
            accepts_total: RateLimit {
                burst: 512,
                per_second: 256,
            },
            key_agreements_total: RateLimit {
                burst: 64,
                per_second: 64,
            },
            table_limit: 1024,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    pub(super) tokens: f64,
    pub(super) at: Instant,
}

impl Bucket {
    pub(super) fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: f64::from(limit.burst),
            at: now,
        }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * f64::from(limit.per_second)).min(f64::from(limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the guard remembers of one address.
#[derive(Debug)]
pub(super) struct AddressRecord {
    pub(super) failures: VecDeque<Instant>,
    pub(super) accepts: Bucket,
    /// When a refusal of this address was last reported (`AuthRefused`).
    pub(super) reported: Option<Instant>,
}

/// How long a locked-out address's connection is kept to hear its first
/// packet and answer it with the refusal, at most.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(2);
/// Refused connections held at once, node-wide; more are closed at once.
pub const MAX_REFUSING: usize = 64;
/// One `AuthRefused` event per address per this long, at most.
pub const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Whole seconds, rounded up.
pub(super) fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The window of `PinGuardConfig::failures_per_day`.
pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);

/// The PIN guard's state.
#[derive(Debug)]
pub(super) struct PinGuard {
    pub(super) by_ip: HashMap<IpAddr, AddressRecord>,
    pub(super) total: Option<Bucket>,
    pub(super) key_agreements: Option<Bucket>,
    /// Failures of this PIN in all (reported).
    pub(super) pin_failures: u32,
    /// Failures in the last 24 hours (at most `failures_per_day`).
    pub(super) day: VecDeque<Instant>,
    /// Failures since the last pause.
    pub(super) burst: u32,
    /// Pauses since the day window was last empty (each doubles the next).
    pub(super) pauses: u32,
    /// PIN pairing is paused until then.
    pub(super) paused_until: Option<Instant>,
}

impl Bus {
    /// Whether an auth connection from `ip` may start: not after too many
    /// failures from it lately, not over the per-address or node-wide rate.
    pub(super) fn guard_accept(&mut self, now: Instant, ip: IpAddr) -> Result<(), BusError> {
        let cfg = &self.config.guard;
        let g = &mut self.guard;
        if g.by_ip.len() >= cfg.table_limit && !g.by_ip.contains_key(&ip) {
            // Forget addresses with no recent failure first, else any one.
            let window = cfg.window;
            g.by_ip.retain(|_, r| {
                r.failures
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < window)
            });
            if g.by_ip.len() >= cfg.table_limit {
                if let Some(k) = g.by_ip.keys().next().copied() {
                    g.by_ip.remove(&k);
                }
            }
        }
        let rec = g.by_ip.entry(ip).or_insert_with(|| AddressRecord {
            failures: VecDeque::new(),
            accepts: Bucket::full(cfg.accepts_per_address, now),
            reported: None,
        });
        while rec
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= cfg.window)
        {
            rec.failures.pop_front();
        }
        if rec.failures.len() >= cfg.failures_per_address {
            // Until the oldest failure leaves the window.
            let retry = rec.failures.front().map_or(cfg.window, |t| {
                cfg.window.saturating_sub(now.saturating_duration_since(*t))
            });
            return Err(BusError::TooManyFailures { retry_after: retry });
        }
        if !rec.accepts.take(cfg.accepts_per_address, now) {
            return Err(BusError::RateLimited);
        }
        let total = g
            .total
            .get_or_insert_with(|| Bucket::full(cfg.accepts_total, now));
        if !total.take(cfg.accepts_total, now) {
            return Err(BusError::RateLimited);
        }
        Ok(())
    }

    /// A failed key confirmation from `ip`: counted for the address and the PIN.
    pub(super) fn count_failure(&mut self, now: Instant, ip: IpAddr) {
        let cfg = self.config.guard.clone();
        if let Some(r) = self.guard.by_ip.get_mut(&ip) {
            if r.failures.len() >= cfg.failures_per_address {
                r.failures.pop_front();
            }
            r.failures.push_back(now);
        }
        let g = &mut self.guard;
        g.pin_failures += 1;
        while g
            .day
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= DAY)
        {
            g.day.pop_front();
        }
        if g.day.is_empty() {
            g.pauses = 0;
        }
        g.day.push_back(now);
        while g.day.len() > cfg.failures_per_day.max(1) as usize {
            g.day.pop_front();
        }
        g.burst += 1;
        let day_full = g.day.len() >= cfg.failures_per_day as usize;
        if day_full && cfg.renewable {
            // A new PIN makes every guess so far worthless: no pause.
            g.pin_failures = 0;
            g.day.clear();
            g.burst = 0;
            g.pauses = 0;
            let mut b = [0u8; 4];
            self.crypto.random(&mut b);
            let pin = zeroize::Zeroizing::new(format!("{:06}", u32::from_le_bytes(b) % 1_000_000));
            self.config.pin = PinPolicy::pin(&pin);
            tracing::warn!(
                "PIN replaced after {} failures in a day",
                cfg.failures_per_day
            );
            self.events.push_back(BusEvent::PinLocked {
                failures: cfg.failures_per_day,
                retry_after: Duration::ZERO,
            });
            self.events.push_back(BusEvent::PinReplaced { pin });
            return;
        }
        // Until the oldest failure of the day is a day old.
        let day_pause = day_full.then(|| {
            g.day.front().map_or(DAY, |t| {
                DAY.saturating_sub(now.saturating_duration_since(*t))
            })
        });
        let burst_pause = (g.burst >= cfg.failures_per_burst).then(|| {
            g.pauses += 1;
            cfg.cool_down
                .saturating_mul(1u32 << (g.pauses - 1).min(16))
                .min(DAY)
        });
        let Some(pause) = day_pause.max(burst_pause) else {
            return;
        };
        g.burst = 0;
        let until = now + pause;
        g.paused_until = Some(g.paused_until.map_or(until, |u| u.max(until)));
        let failures = g.pin_failures;
        tracing::warn!(failures, pause_s = pause.as_secs(), "PIN pairing paused");
        self.events.push_back(BusEvent::PinLocked {
            failures,
            retry_after: pause,
        });
        // Guesses under way would land in the pause: their exchanges end now
        // (their peers are told), and no connection starts another.
        let mut under_way = Vec::new();
        for id in &self.auth_conns {
            if let Some(Conn {
                state: ConnState::Auth(a),
                ..
            }) = self.conns.get_mut(id)
            {
                a.pause_pairing(secs_up(pause));
                if a.pin_exchanges() > 0 {
                    under_way.push(*id);
                }
            }
        }
        for id in under_way {
            let e = crate::auth::AuthError::PinPaused {
                retry_after_s: secs_up(pause),
            };
            self.drop_conn(id, ConnClosed::Auth(e));
        }
    }

    /// How long PIN pairing stays paused after too many failures, if it is.
    pub fn pin_paused(&self, now: Instant) -> Option<Duration> {
        self.guard
            .paused_until
            .filter(|u| *u > now)
            .map(|u| u - now)
    }

    /// An auth connection from an address locked out by its failed PINs: kept
    /// for at most [`REFUSAL_HOLD`] to answer its first packet with the
    /// refusal (softbus clients then say why and when to try again; a lite
    /// client just sees the close), and reported once per address per
    /// [`REFUSAL_REPORT_EVERY`].
    pub(super) fn refuse_locked_out(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        retry_after: Duration,
    ) {
        let refusing = self.count_pending(|c| matches!(c.state, ConnState::Refusing { .. }));
        if refusing >= MAX_REFUSING {
            self.transmits.push_back(Transmit::Close { conn });
            return;
        }
        if let Some(r) = self.guard.by_ip.get_mut(&peer.ip()) {
            if r.reported
                .is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_REPORT_EVERY)
            {
                r.reported = Some(now);
                tracing::info!(ip = %peer.ip(), ?retry_after, "auth refused: too many failed PINs");
                self.events.push_back(BusEvent::AuthRefused {
                    ip: peer.ip(),
                    retry_after,
                });
            }
        }
        self.conns.insert(
            conn,
            Conn {
                peer,
                deadline: Some(now + REFUSAL_HOLD),
                active: now,
                state: ConnState::Refusing { retry_after },
            },
        );
        self.pending.insert(conn);
    }
}
