//! A full ICE agent (RFC 8445) for the offering side of node-to-node connections:
//! controlling, one host candidate, checks to every remote candidate with
//! USE-CANDIDATE (aggressive nomination, which ICE-lite peers accept), STUN
//! retransmissions with backoff, and consent freshness (RFC 7675): a check every
//! 5 s on the selected pair, disconnected 30 s after the last successful one.

use super::{IceError, IceEvent, IceState, CONSENT_TIMEOUT, MAX_QUEUE};
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
/// Remote candidates considered at most.
pub const MAX_REMOTE: usize = 16;

/// The agent's credentials and role data.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// ICE-CONTROLLING tie-breaker.
    pub tie_breaker: u64,
    /// PRIORITY of our host candidate.
    pub priority: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Check,
    Consent,
}

#[derive(Debug)]
struct Transaction {
    to: SocketAddr,
    bytes: Vec<u8>,
    next: Instant,
    tries: u32,
    purpose: Purpose,
}

/// A controlling full ICE agent.
pub struct IceAgent {
    cfg: AgentConfig,
    remotes: Vec<SocketAddr>,
    failed: Vec<SocketAddr>,
    pending: HashMap<[u8; 12], Transaction>,
    selected: Option<SocketAddr>,
    last_consent: Option<Instant>,
    next_consent: Option<Instant>,
    state: IceState,
    random: Box<dyn FnMut() -> [u8; 12] + Send>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<IceEvent>,
}

impl std::fmt::Debug for IceAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceAgent")
            .field("state", &self.state)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

impl IceAgent {
    /// An agent; `random` makes transaction ids.
    pub fn new(cfg: AgentConfig, random: Box<dyn FnMut() -> [u8; 12] + Send>) -> Self {
        Self {
            cfg,
            remotes: Vec::new(),
            failed: Vec::new(),
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

    /// The nominated remote address.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    fn set_state(&mut self, s: IceState) {
        if self.state != s {
            self.state = s;
            self.events.push_back(IceEvent::StateChanged(s));
        }
    }

    fn request(&mut self, h: &dyn Hmac, nominate: bool) -> ([u8; 12], Vec<u8>) {
        let tid = (self.random)();
        let username = format!("{}:{}", self.cfg.remote_ufrag, self.cfg.local_ufrag);
        let mut b = MessageBuilder::new(Class::Request, BINDING, tid)
            .attribute(attr::USERNAME, username.as_bytes())
            .attribute(attr::PRIORITY, &self.cfg.priority.to_be_bytes())
            .attribute(attr::ICE_CONTROLLING, &self.cfg.tie_breaker.to_be_bytes());
        if nominate {
            b = b.attribute(attr::USE_CANDIDATE, &[]);
        }
        (
            tid,
            b.message_integrity(h, self.cfg.remote_pwd.as_bytes())
                .fingerprint(),
        )
    }

    fn send(
        &mut self,
        now: Instant,
        to: SocketAddr,
        tid: [u8; 12],
        bytes: Vec<u8>,
        purpose: Purpose,
    ) {
        if self.transmits.len() < MAX_QUEUE {
            self.transmits.push_back((to, bytes.clone()));
        }
        self.pending.insert(
            tid,
            Transaction {
                to,
                bytes,
                next: now + RTO,
                tries: 1,
                purpose,
            },
        );
    }

    /// Adds a remote candidate and starts checking it.
    pub fn add_remote_candidate(&mut self, now: Instant, addr: SocketAddr, h: &dyn Hmac) {
        if self.remotes.contains(&addr)
            || self.remotes.len() >= MAX_REMOTE
            || self.state == IceState::Closed
        {
            return;
        }
        self.remotes.push(addr);
        if self.selected.is_none() {
            self.set_state(IceState::Checking);
            let (tid, bytes) = self.request(h, true);
            self.send(now, addr, tid, bytes, Purpose::Check);
        }
    }

    /// A STUN datagram from `from`: responses complete our transactions; requests
    /// from a full peer are answered like the lite agent does.
    pub fn handle_stun(
        &mut self,
        now: Instant,
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
            Class::Request if m.method() == BINDING => {
                let resp = match super::authenticate_check(
                    &m,
                    &self.cfg.local_ufrag,
                    Some(&self.cfg.remote_ufrag),
                    &self.cfg.local_pwd,
                    h,
                ) {
                    Ok(()) => {
                        super::check_response(m.transaction_id(), from, &self.cfg.local_pwd, h)
                    }
                    Err((e, resp)) => {
                        if self.transmits.len() < MAX_QUEUE {
                            self.transmits.push_back((from, resp));
                        }
                        return Err(e);
                    }
                };
                if self.transmits.len() < MAX_QUEUE {
                    self.transmits.push_back((from, resp));
                }
                Ok(())
            }
            Class::Success | Class::Error => {
                let tid = m.transaction_id();
                let Some(t) = self.pending.get(&tid) else {
                    return Err(IceError::NotBindingRequest);
                };
                if t.to != from {
                    // RFC 8445 §7.2.5.2.1: the response must come from where the request went.
                    return Err(IceError::NotBindingRequest);
                }
                m.verify_integrity(h, self.cfg.remote_pwd.as_bytes())?;
                let t = self.pending.remove(&tid).expect("looked up above");
                if m.class() == Class::Error {
                    if m.get(attr::ERROR_CODE)
                        .is_some_and(|v| v.len() >= 4 && v[2] == 4 && v[3] == 87)
                    {
                        return Err(IceError::RoleConflict);
                    }
                    self.fail_pair(from);
                    return Ok(());
                }
                match t.purpose {
                    Purpose::Check if self.selected.is_none() => {
                        self.selected = Some(from);
                        self.last_consent = Some(now);
                        self.next_consent = Some(now + CONSENT_INTERVAL);
                        // Other checks are moot once a pair is nominated.
                        self.pending.retain(|_, t| t.purpose == Purpose::Consent);
                        self.events.push_back(IceEvent::Selected(from));
                        self.set_state(IceState::Connected);
                    }
                    Purpose::Consent if Some(from) == self.selected => {
                        self.last_consent = Some(now)
                    }
                    _ => {}
                }
                Ok(())
            }
            _ => Err(IceError::NotBindingRequest),
        }
    }

    fn fail_pair(&mut self, addr: SocketAddr) {
        if !self.failed.contains(&addr) {
            self.failed.push(addr);
        }
        if self.selected.is_none() && self.remotes.iter().all(|r| self.failed.contains(r)) {
            self.set_state(IceState::Disconnected);
        }
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
                let (to, purpose) = (t.to, t.purpose);
                self.pending.remove(&tid);
                if purpose == Purpose::Check {
                    self.fail_pair(to);
                }
                continue;
            }
            t.tries += 1;
            t.next = now + RTO * 2u32.pow(t.tries - 1);
            let (to, bytes) = (t.to, t.bytes.clone());
            if self.transmits.len() < MAX_QUEUE {
                self.transmits.push_back((to, bytes));
            }
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
                let (tid, bytes) = self.request(h, false);
                self.send(now, sel, tid, bytes, Purpose::Consent);
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

    /// Next `(destination, datagram)`.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
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
