//! ICE (RFC 8445) for the node's server role: an ICE-lite agent (§2.5). It never
//! sends checks; it answers the controlling agent's Binding requests, validates
//! USERNAME, MESSAGE-INTEGRITY and FINGERPRINT, takes the nomination
//! (USE-CANDIDATE) and watches consent (RFC 7675): with no valid check from the
//! selected address for the consent timeout, the agent disconnects.

pub mod agent;
pub mod candidates;

use crate::crypto::Hmac;
use crate::stun::{attr, Class, Message, MessageBuilder, StunError, BINDING};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 7675: consent expires 30 s after the last successful check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Remote addresses tracked at most (each a candidate pair with our one host candidate).
pub const MAX_PAIRS: usize = 32;
/// Queued responses at most.
pub const MAX_QUEUE: usize = 64;

/// Why a datagram was not accepted as a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceError {
    #[error("STUN: {0}")]
    Stun(#[from] StunError),
    #[error("not a Binding request")]
    NotBindingRequest,
    #[error("USERNAME does not name this session")]
    BadUsername,
    #[error("role conflict: the peer is controlled too")]
    RoleConflict,
    #[error("too many candidate pairs")]
    TooManyPairs,
    #[error("agent closed")]
    Closed,
}

/// The local base a datagram leaves from or arrived at: the host socket, or
/// a TURN relay (its index among the host's relays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Via {
    Host,
    Relay(u8),
}

/// Connection state (the subset of RTCIceConnectionState the agents reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// No valid check yet.
    New,
    /// Valid checks, no nomination yet.
    Checking,
    /// A pair is nominated and consent is fresh.
    Connected,
    /// Consent expired.
    Disconnected,
    /// Every candidate pair failed before one was selected.
    Failed,
    /// Closed locally.
    Closed,
}

/// What the agent tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceEvent {
    StateChanged(IceState),
    /// The nominated pair: its local base and remote address (media and DTLS go there).
    Selected(Via, SocketAddr),
}

/// Local and remote credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub local_ufrag: String,
    pub local_pwd: String,
    /// From the remote description; checks must name it once known.
    pub remote_ufrag: Option<String>,
}

/// An ICE-lite agent for one peer connection.
#[derive(Debug)]
pub struct IceLite {
    creds: Credentials,
    state: IceState,
    seen: HashMap<SocketAddr, Instant>,
    selected: Option<SocketAddr>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<IceEvent>,
}

pub(crate) fn error_response(tid: [u8; 12], code: u16, reason: &str) -> Vec<u8> {
    let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    v.extend_from_slice(reason.as_bytes());
    MessageBuilder::new(Class::Error, BINDING, tid)
        .attribute(attr::ERROR_CODE, &v)
        .fingerprint()
}

/// Authenticates a Binding request (RFC 8445 §7.3): USERNAME must be `local:remote`
/// (any remote part while the remote ufrag is unknown) and MESSAGE-INTEGRITY must
/// verify with the local password. On failure, also the 401 response to send.
pub(crate) fn authenticate_check(
    m: &Message<'_>,
    local_ufrag: &str,
    remote_ufrag: Option<&str>,
    local_pwd: &str,
    h: &dyn Hmac,
) -> Result<(), (IceError, Vec<u8>)> {
    let tid = m.transaction_id();
    let named = match (m.username().and_then(|u| u.split_once(':')), remote_ufrag) {
        (Some((l, r)), Some(want)) => l == local_ufrag && r == want,
        (Some((l, _)), None) => l == local_ufrag,
        (None, _) => false,
    };
    if !named {
        return Err((
            IceError::BadUsername,
            error_response(tid, 401, "Unauthorized"),
        ));
    }
    m.verify_integrity(h, local_pwd.as_bytes())
        .map_err(|e| (e.into(), error_response(tid, 401, "Unauthorized")))
}

/// The answer to a check on a peer connection this side has closed: an
/// authenticated error response (403), so the remote agent fails the pair at once
/// instead of waiting for consent to expire (libwebrtc destroys a connection on
/// such an error). `None` if the check does not authenticate.
pub fn closed_response(
    m: &Message<'_>,
    local_ufrag: &str,
    local_pwd: &str,
    h: &dyn Hmac,
) -> Option<Vec<u8>> {
    authenticate_check(m, local_ufrag, None, local_pwd, h).ok()?;
    let reason = b"Forbidden: peer connection closed";
    let mut v = vec![0, 0, 4, 3];
    v.extend_from_slice(reason);
    Some(
        MessageBuilder::new(Class::Error, BINDING, m.transaction_id())
            .attribute(attr::ERROR_CODE, &v)
            .message_integrity(h, local_pwd.as_bytes())
            .fingerprint(),
    )
}

/// The success response to a check from `from`: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT.
pub(crate) fn check_response(
    tid: [u8; 12],
    from: SocketAddr,
    local_pwd: &str,
    h: &dyn Hmac,
) -> Vec<u8> {
    MessageBuilder::new(Class::Success, BINDING, tid)
        .xor_mapped_address(from)
        .message_integrity(h, local_pwd.as_bytes())
        .fingerprint()
}

impl IceLite {
    /// A new agent.
    pub fn new(creds: Credentials) -> Self {
        Self {
            creds,
            state: IceState::New,
            seen: HashMap::new(),
            selected: None,
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

    /// The remote ufrag, once known.
    pub fn remote_ufrag(&self) -> Option<&str> {
        self.creds.remote_ufrag.as_deref()
    }

    /// Learns the remote ufrag (from the remote description).
    pub fn set_remote_ufrag(&mut self, ufrag: &str) {
        self.creds.remote_ufrag = Some(ufrag.to_owned());
    }

    fn set_state(&mut self, s: IceState) {
        if self.state != s {
            self.state = s;
            self.events.push_back(IceEvent::StateChanged(s));
        }
    }

    fn respond(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        if self.transmits.len() < MAX_QUEUE {
            self.transmits.push_back((to, bytes));
        }
    }

    /// Handles a STUN datagram from `from`. Valid checks are answered; an
    /// unauthenticated one gets a 401 response, a role conflict 487; anything
    /// malformed is dropped. An error says why the datagram did not count.
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
        if m.class() != Class::Request || m.method() != BINDING {
            return Err(IceError::NotBindingRequest);
        }
        m.verify_fingerprint()?;
        let tid = m.transaction_id();
        if let Err((e, resp)) = authenticate_check(
            &m,
            &self.creds.local_ufrag,
            self.creds.remote_ufrag.as_deref(),
            &self.creds.local_pwd,
            h,
        ) {
            self.respond(from, resp);
            return Err(e);
        }
        // A lite agent is always controlled; a controlled peer is a conflict it cannot win.
        if m.get(attr::ICE_CONTROLLING).is_none() {
            self.respond(from, error_response(tid, 487, "Role Conflict"));
            return Err(IceError::RoleConflict);
        }
        if !self.seen.contains_key(&from) && self.seen.len() >= MAX_PAIRS {
            return Err(IceError::TooManyPairs);
        }
        self.seen.insert(from, now);
        let ok = check_response(tid, from, &self.creds.local_pwd, h);
        self.respond(from, ok);
        if m.get(attr::USE_CANDIDATE).is_some() && self.selected != Some(from) {
            self.selected = Some(from);
            self.events.push_back(IceEvent::Selected(Via::Host, from));
        }
        if self.selected.is_some() {
            self.set_state(IceState::Connected);
        } else {
            self.set_state(IceState::Checking);
        }
        Ok(())
    }

    /// Expires consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(sel) = self.selected {
            let last = self.seen.get(&sel).copied();
            if last.is_none_or(|t| now.saturating_duration_since(t) >= CONSENT_TIMEOUT)
                && self.state == IceState::Connected
            {
                self.set_state(IceState::Disconnected);
            }
        }
    }

    /// When consent of the selected pair expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sel = self.selected?;
        (self.state == IceState::Connected)
            .then(|| self.seen.get(&sel).map(|t| *t + CONSENT_TIMEOUT))
            .flatten()
    }

    /// Next datagram to send: `(destination, bytes)`.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// Stops answering.
    pub fn close(&mut self) {
        self.set_state(IceState::Closed);
    }
}
