//! A full ICE agent (RFC 8445), either role, over several local bases: the
//! host socket and any TURN relays ([`Via`]).
//!
//! - Every base is paired with every remote candidate (and with the
//!   peer-reflexive addresses checks arrive from); each pair gets a check at
//!   once, retransmitted with backoff.
//! - Controlling (the offering side of node-to-node): every check carries
//!   USE-CANDIDATE (aggressive nomination, which ICE-lite and full peers both
//!   accept) and the first pair that succeeds is selected.
//! - Controlled (the answering side with ICE servers configured): checks carry
//!   ICE-CONTROLLED, an incoming check gets a triggered check back on its pair
//!   (that is what opens this side's NAT towards the peer), and the pair the
//!   peer nominates with USE-CANDIDATE is selected: a nomination follows a
//!   check of the peer's that succeeded, so the path works both ways.
//! - Consent freshness (RFC 7675): a check every 5 s on the selected pair,
//!   disconnected 30 s after the last answered one.
//! - When every pair has failed and none was selected, the agent is `Failed`.

use super::{IceError, IceEvent, IceState, Via, CONSENT_TIMEOUT, MAX_QUEUE};
use crate::crypto::Hmac;
use crate::stun::{attr, Class, Message, MessageBuilder, BINDING};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// First retransmission timeout; doubled per try.
pub const RTO: Duration = Duration::from_millis(100);
/// Tries per check before the pair fails.
pub const MAX_TRIES: u32 = 7;
/// Consent checks on the selected pair this often.
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
/// Remote candidates considered at most (signalled ones and peer-reflexive).
pub const MAX_REMOTE: usize = 16;
/// Local bases at most (the host socket and relays).
pub const MAX_BASES: usize = 4;

/// The agent's credentials and role data.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// ICE-CONTROLLING or ICE-CONTROLLED tie-breaker.
    pub tie_breaker: u64,
    /// PRIORITY of checks from the host base.
    pub priority: u32,
    /// Whether this agent nominates.
    pub controlling: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Check,
    Consent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    InProgress,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone)]
struct Pair {
    via: Via,
    remote: SocketAddr,
    state: PairState,
    nominated: bool,
    /// An authenticated check of the peer's arrived on it (and was answered).
    answered: bool,
}

#[derive(Debug)]
struct Transaction {
    pair: usize,
    bytes: Vec<u8>,
    next: Instant,
    tries: u32,
    purpose: Purpose,
}

/// A full ICE agent.
pub struct IceAgent {
    cfg: AgentConfig,
    /// Local bases and the PRIORITY their checks carry.
    bases: Vec<(Via, u32)>,
    remotes: Vec<SocketAddr>,
    pairs: Vec<Pair>,
    pending: HashMap<[u8; 12], Transaction>,
    selected: Option<usize>,
    last_consent: Option<Instant>,
    next_consent: Option<Instant>,
    state: IceState,
    random: Box<dyn FnMut() -> [u8; 12] + Send>,
    transmits: VecDeque<(Via, SocketAddr, Vec<u8>)>,
    events: VecDeque<IceEvent>,
}

impl std::fmt::Debug for IceAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceAgent")
            .field("state", &self.state)
            .field("selected", &self.selected())
            .finish_non_exhaustive()
    }
}

impl IceAgent {
    /// An agent with the host base; `random` makes transaction ids.
    pub fn new(cfg: AgentConfig, random: Box<dyn FnMut() -> [u8; 12] + Send>) -> Self {
        Self {
            bases: vec![(Via::Host, cfg.priority)],
            cfg,
            remotes: Vec::new(),
            pairs: Vec::new(),
            pending: HashMap::new(),
            selected: None,
            last_consent: None,
            next_consent: None,
            state: IceState::New,
            random,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// The selected pair's remote address.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected_pair().map(|(_, a)| a)
    }

    /// The selected pair: its local base and remote address.
    pub fn selected_pair(&self) -> Option<(Via, SocketAddr)> {
        self.selected
            .and_then(|i| self.pairs.get(i))
            .map(|p| (p.via, p.remote))
    }

    /// The remote ufrag the checks are for.
    pub fn remote_ufrag(&self) -> &str {
        &self.cfg.remote_ufrag
    }

    /// Its credentials and role.
    pub fn config(&self) -> &AgentConfig {
        &self.cfg
    }

    /// Whether this agent nominates.
    pub fn is_controlling(&self) -> bool {
        self.cfg.controlling
    }

    fn set_state(&mut self, s: IceState) {
        if self.state != s {
            self.state = s;
            self.events.push_back(IceEvent::StateChanged(s));
        }
    }

    fn push(&mut self, via: Via, to: SocketAddr, bytes: Vec<u8>) {
        if self.transmits.len() < MAX_QUEUE {
            self.transmits.push_back((via, to, bytes));
        }
    }

    fn request(&mut self, h: &dyn Hmac, priority: u32, nominate: bool) -> ([u8; 12], Vec<u8>) {
        let tid = (self.random)();
        let username = format!("{}:{}", self.cfg.remote_ufrag, self.cfg.local_ufrag);
        let role = if self.cfg.controlling {
            attr::ICE_CONTROLLING
        } else {
            attr::ICE_CONTROLLED
        };
        let mut b = MessageBuilder::new(Class::Request, BINDING, tid)
            .attribute(attr::USERNAME, username.as_bytes())
            .attribute(attr::PRIORITY, &priority.to_be_bytes())
            .attribute(role, &self.cfg.tie_breaker.to_be_bytes());
        if nominate {
            b = b.attribute(attr::USE_CANDIDATE, &[]);
        }
        (
            tid,
            b.message_integrity(h, self.cfg.remote_pwd.as_bytes())
                .fingerprint(),
        )
    }

    fn check(&mut self, now: Instant, pair: usize, purpose: Purpose, h: &dyn Hmac) {
        let Some(p) = self.pairs.get(pair) else {
            return;
        };
        let (via, to) = (p.via, p.remote);
        let priority = self
            .bases
            .iter()
            .find(|(v, _)| *v == via)
            .map_or(self.cfg.priority, |(_, p)| *p);
        let nominate = self.cfg.controlling && purpose == Purpose::Check;
        let (tid, bytes) = self.request(h, priority, nominate);
        self.push(via, to, bytes.clone());
        if purpose == Purpose::Check {
            self.pairs[pair].state = PairState::InProgress;
        }
        self.pending.insert(
            tid,
            Transaction {
                pair,
                bytes,
                next: now + RTO,
                tries: 1,
                purpose,
            },
        );
    }

    fn pair_index(&self, via: Via, remote: SocketAddr) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.via == via && p.remote == remote)
    }

    /// A new pair of `via` and `remote`, checked at once; its index.
    fn add_pair(&mut self, now: Instant, via: Via, remote: SocketAddr, h: &dyn Hmac) -> usize {
        if let Some(i) = self.pair_index(via, remote) {
            return i;
        }
        self.pairs.push(Pair {
            via,
            remote,
            state: PairState::InProgress,
            nominated: false,
            answered: false,
        });
        let i = self.pairs.len() - 1;
        if self.selected.is_none() || !self.cfg.controlling {
            if self.selected.is_none() {
                self.set_state(IceState::Checking);
            }
            self.check(now, i, Purpose::Check, h);
        }
        i
    }

    /// Adds a local base (a relayed address became ready): it is paired with
    /// every remote candidate. `priority` is what its checks carry.
    pub fn add_local(&mut self, now: Instant, via: Via, priority: u32, h: &dyn Hmac) {
        if self.bases.iter().any(|(v, _)| *v == via)
            || self.bases.len() >= MAX_BASES
            || self.state == IceState::Closed
        {
            return;
        }
        self.bases.push((via, priority));
        for r in self.remotes.clone() {
            self.add_pair(now, via, r, h);
        }
    }

    /// Adds a remote candidate and checks it from every base.
    pub fn add_remote_candidate(&mut self, now: Instant, addr: SocketAddr, h: &dyn Hmac) {
        if self.remotes.contains(&addr)
            || self.remotes.len() >= MAX_REMOTE
            || self.state == IceState::Closed
        {
            return;
        }
        self.remotes.push(addr);
        for (via, _) in self.bases.clone() {
            self.add_pair(now, via, addr, h);
        }
    }

    fn select(&mut self, now: Instant, pair: usize) {
        if self.selected == Some(pair) {
            return;
        }
        let first = self.selected.is_none();
        self.selected = Some(pair);
        let p = &self.pairs[pair];
        let (via, remote) = (p.via, p.remote);
        self.last_consent = Some(now);
        self.next_consent = Some(now + CONSENT_INTERVAL);
        if first && self.cfg.controlling {
            // Other checks are moot once a pair is nominated.
            self.pending.retain(|_, t| t.purpose == Purpose::Consent);
        }
        self.events.push_back(IceEvent::Selected(via, remote));
        self.set_state(IceState::Connected);
    }

    /// A STUN datagram from `from`, arriving through base `via`: responses
    /// complete our transactions; requests are authenticated and answered
    /// through the same base.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        via: Via,
        from: SocketAddr,
        data: &[u8],
        h: &dyn Hmac,
    ) -> Result<(), IceError> {
        if self.state == IceState::Closed {
            return Err(IceError::Closed);
        }
        let m = Message::parse(data)?;
        m.verify_fingerprint()?;
        match m.class() {
            Class::Request if m.method() == BINDING => self.on_request(now, via, from, &m, h),
            Class::Success | Class::Error => self.on_response(now, via, from, &m, h),
            _ => Err(IceError::NotBindingRequest),
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        via: Via,
        from: SocketAddr,
        m: &Message<'_>,
        h: &dyn Hmac,
    ) -> Result<(), IceError> {
        if let Err((e, resp)) = super::authenticate_check(
            m,
            &self.cfg.local_ufrag,
            Some(&self.cfg.remote_ufrag),
            &self.cfg.local_pwd,
            h,
        ) {
            self.push(via, from, resp);
            return Err(e);
        }
        if !self.cfg.controlling && m.get(attr::ICE_CONTROLLING).is_none() {
            // Both controlled: the offerer is controlling, so the peer is wrong.
            self.push(
                via,
                from,
                super::error_response(m.transaction_id(), 487, "Role Conflict"),
            );
            return Err(IceError::RoleConflict);
        }
        let resp = super::check_response(m.transaction_id(), from, &self.cfg.local_pwd, h);
        self.push(via, from, resp);
        // A peer-reflexive remote: a pair of its own (RFC 8445 §7.3.1.3).
        let known = self.pair_index(via, from);
        let pair = match known {
            Some(i) => i,
            None if self.remotes.len() < MAX_REMOTE || self.remotes.contains(&from) => {
                if !self.remotes.contains(&from) {
                    self.remotes.push(from);
                }
                self.add_pair(now, via, from, h)
            }
            None => return Err(IceError::TooManyPairs),
        };
        self.pairs[pair].answered = true;
        // A triggered check on a pair that is not already being checked.
        if known.is_some()
            && self.pairs[pair].state == PairState::Failed
            && (!self.cfg.controlling || self.selected.is_none())
        {
            self.check(now, pair, Purpose::Check, h);
        }
        if !self.cfg.controlling && m.get(attr::USE_CANDIDATE).is_some() {
            self.pairs[pair].nominated = true;
            self.select(now, pair);
        }
        Ok(())
    }

    fn on_response(
        &mut self,
        now: Instant,
        via: Via,
        from: SocketAddr,
        m: &Message<'_>,
        h: &dyn Hmac,
    ) -> Result<(), IceError> {
        let tid = m.transaction_id();
        let Some(t) = self.pending.get(&tid) else {
            return Err(IceError::NotBindingRequest);
        };
        let p = &self.pairs[t.pair];
        if p.remote != from || p.via != via {
            // RFC 8445 §7.2.5.2.1: the response must come from where the request went.
            return Err(IceError::NotBindingRequest);
        }
        m.verify_integrity(h, self.cfg.remote_pwd.as_bytes())?;
        let t = self.pending.remove(&tid).expect("looked up above");
        if m.class() == Class::Error {
            if m.error_code().is_ok_and(|(c, _)| c == 487) {
                return Err(IceError::RoleConflict);
            }
            self.fail_pair(t.pair);
            return Ok(());
        }
        match t.purpose {
            Purpose::Check => {
                self.pairs[t.pair].state = PairState::Succeeded;
                if self.cfg.controlling && self.selected.is_none() {
                    self.pairs[t.pair].nominated = true;
                    self.select(now, t.pair);
                }
            }
            Purpose::Consent if Some(t.pair) == self.selected => self.last_consent = Some(now),
            Purpose::Consent => {}
        }
        Ok(())
    }

    fn fail_pair(&mut self, pair: usize) {
        if let Some(p) = self.pairs.get_mut(pair) {
            p.state = PairState::Failed;
        }
        if self.selected.is_none()
            && !self.pairs.is_empty()
            && self.pairs.iter().all(|p| p.state == PairState::Failed)
        {
            self.set_state(IceState::Failed);
        }
    }

    /// Whether `via` and `from` form a pair that works: our check on it
    /// succeeded, or the peer's checks arrive on it. DTLS and media are taken
    /// from any such pair (RFC 8445 §12.1), not only the selected one: with
    /// aggressive nomination the two sides may each select another.
    pub fn is_valid(&self, via: Via, from: SocketAddr) -> bool {
        self.pair_index(via, from).is_some_and(|i| {
            let p = &self.pairs[i];
            p.state == PairState::Succeeded || p.answered
        })
    }

    /// Retransmissions, consent checks, consent expiry.
    pub fn handle_timeout(&mut self, now: Instant, h: &dyn Hmac) {
        if self.state == IceState::Closed {
            return;
        }
        let due: Vec<[u8; 12]> = self
            .pending
            .iter()
            .filter(|(_, t)| t.next <= now)
            .map(|(k, _)| *k)
            .collect();
        for tid in due {
            let Some(t) = self.pending.get_mut(&tid) else {
                continue;
            };
            if t.tries >= MAX_TRIES {
                let (pair, purpose) = (t.pair, t.purpose);
                self.pending.remove(&tid);
                if purpose == Purpose::Check {
                    self.fail_pair(pair);
                }
                continue;
            }
            t.tries += 1;
            t.next = now + RTO * 2u32.pow(t.tries - 1);
            let (pair, bytes) = (t.pair, t.bytes.clone());
            let p = &self.pairs[pair];
            let (via, to) = (p.via, p.remote);
            self.push(via, to, bytes);
        }
        if let (Some(sel), Some(next)) = (self.selected, self.next_consent) {
            if self
                .last_consent
                .is_some_and(|t| now.saturating_duration_since(t) >= CONSENT_TIMEOUT)
            {
                self.set_state(IceState::Disconnected);
                self.next_consent = None;
                return;
            }
            if next <= now {
                self.check(now, sel, Purpose::Consent, h);
                self.next_consent = Some(now + CONSENT_INTERVAL);
            }
        }
    }

    /// Next timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retx = self.pending.values().map(|t| t.next).min();
        let consent = self.next_consent.map(|n| match self.last_consent {
            Some(l) => n.min(l + CONSENT_TIMEOUT),
            None => n,
        });
        crate::earliest(retx, consent)
    }

    /// Next `(base, destination, datagram)`.
    pub fn poll_transmit(&mut self) -> Option<(Via, SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// Stops.
    pub fn close(&mut self) {
        self.pending.clear();
        self.next_consent = None;
        self.set_state(IceState::Closed);
    }
}
