//! The auth channel (softbus-wire.md §3): getAuthInfo, the hichain key agreement
//! carried in module 3, and VerifyIp / VerifyDeviceId in module 5, as server
//! ([`AuthConn`], one per accepted connection) and as client ([`AuthClient`]).

pub mod hichain;
pub mod message;
pub mod pake;

use crate::crypto::{Crypto, CryptoError};
use crate::frame::{self, AuthHeader, Deframer, Frame, FrameError, HeaderKind, Module, FLAG_REPLY};
use hichain::{Identity, Pairings, PeerKey, StsClient, StsClientStep, StsServer, StsStep};
use pake::{ClientStep, PakeClient, PakeServer, ServerStep};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Errors of the auth channel; any of them closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("peer misbehaved: {0}")]
    Misbehaved(&'static str),
    #[error("incompatible peer: {0}")]
    Incompatible(&'static str),
    #[error("key confirmation failed (wrong PIN)")]
    WrongPin,
    #[error("peer reported {}", message::errcode::words(*.0))]
    PeerError(u32),
    #[error("pairing refused: {0}")]
    Refused(&'static str),
    /// The peer (a softbus node) refused this address before any key
    /// agreement: it failed the PIN too often lately.
    #[error("refused: too many failed attempts from {ip}, try again in {retry_after_s} s")]
    LockedOut { ip: String, retry_after_s: u64 },
    /// The peer (a softbus node) has paused PIN pairing after too many failed
    /// attempts from anywhere; paired devices (STS) are not affected.
    #[error("refused: PIN pairing is paused after too many failed attempts, try again in {retry_after_s} s")]
    PinPaused { retry_after_s: u64 },
    /// A PIN key agreement named a device id that is paired with a key: only
    /// that key (STS) proves it.
    #[error("refused: this device id is paired with the peer; authenticate with its key (without --pin), not a PIN")]
    PairedIdClaimed,
    /// The device answered an empty PIN with errorCode 15: its key store
    /// takes no empty key (real HUKS), so it cannot be reached with one.
    #[error("the device refuses the empty PIN (hichain error 15); give its PIN with --pin")]
    EmptyPinRefused,
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// `CODE` of VerifyIp.
pub const CODE_VERIFY_IP: u64 = 1;
/// `CODE` of VerifyDeviceId.
pub const CODE_VERIFY_DEVICE_ID: u64 = 2;
/// `CONN_CAP` softbus_lite advertises (`DEVICE_CONN_CAP_WIFI`).
pub const CONN_CAP: u32 = 0x1f;
/// Bus protocol versions.
pub const BUS_V1: i64 = 1;
pub const BUS_V2: i64 = 2;
/// Longest `TEData` / `TEDeviceId` accepted.
pub const MAX_TE_FIELD: usize = 95;
/// Concurrent hichain exchanges per connection (softbus_lite: 2).
pub const MAX_PAKE_SESSIONS: usize = 2;
/// Keys kept per connection (`AUTH_SESSION_KEY_MAX_NUM`, oldest replaced).
pub const MAX_KEYS: usize = 2;
/// Packets of unhandled modules tolerated before the connection is closed.
pub const MAX_IGNORED: u32 = 16;
/// Key agreements (PAKE requests, each two modular exponentiations) one auth
/// connection may start; one more closes it.
pub const MAX_KEY_AGREEMENTS_PER_CONN: u32 = 4;

/// How this node authenticates peers.
#[derive(Debug, Clone)]
pub struct PinPolicy {
    /// The pairing PIN; `None` refuses every key agreement.
    pub pin: Option<Zeroizing<String>>,
    /// Allow the empty PIN (softbus_lite's default). It authenticates nobody.
    pub allow_empty: bool,
}

impl PinPolicy {
    /// A policy with this PIN.
    pub fn pin(pin: &str) -> Self {
        Self {
            pin: Some(Zeroizing::new(pin.to_owned())),
            allow_empty: false,
        }
    }

    /// The PIN to use, if key agreement is allowed at all.
    pub fn effective(&self) -> Result<&[u8], AuthError> {
        match &self.pin {
            None => Err(AuthError::Refused("no PIN configured")),
            Some(p) if p.is_empty() && !self.allow_empty => {
                Err(AuthError::Refused("empty PIN not allowed"))
            }
            Some(p) => Ok(p.as_bytes()),
        }
    }
}

/// What this node says about itself on the auth channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAuthInfo {
    /// 64 upper-case hex, also the auth id.
    pub device_id: String,
    pub device_name: String,
    /// `DEVICE_TYPE` string, e.g. `DEV_L1`.
    pub device_type: String,
    pub auth_port: u16,
    pub session_port: u16,
}

/// What a peer proved and told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// `TEData` from getAuthInfo / retAuthInfo: the peer's device id.
    pub device_id: String,
    pub device_name: String,
    pub device_type: String,
    pub auth_port: u16,
    pub session_port: u16,
}

#[derive(Serialize)]
struct VerifyIpMsg<'a> {
    #[serde(rename = "CODE")]
    code: u64,
    #[serde(rename = "BUS_MAX_VERSION")]
    bus_max: i64,
    #[serde(rename = "BUS_MIN_VERSION")]
    bus_min: i64,
    #[serde(rename = "AUTH_PORT")]
    auth_port: u16,
    #[serde(rename = "SESSION_PORT")]
    session_port: u16,
    #[serde(rename = "CONN_CAP")]
    conn_cap: u32,
    #[serde(rename = "DEVICE_NAME")]
    device_name: &'a str,
    #[serde(rename = "DEVICE_TYPE")]
    device_type: &'a str,
    #[serde(rename = "DEVICE_ID")]
    device_id: &'a str,
    #[serde(rename = "VERSION_TYPE")]
    version_type: &'a str,
}

/// A VerifyIp message (request or reply) about `l`, in softbus_lite's key order.
fn verify_ip_json(l: &LocalAuthInfo, bus_max: i64, bus_min: i64) -> Vec<u8> {
    let m = VerifyIpMsg {
        code: CODE_VERIFY_IP,
        bus_max,
        bus_min,
        auth_port: l.auth_port,
        session_port: l.session_port,
        conn_cap: CONN_CAP,
        device_name: &l.device_name,
        device_type: &l.device_type,
        device_id: &l.device_id,
        version_type: "1.0.0",
    };
    serde_json::to_vec(&m).expect("plain struct serializes")
}

fn str_field(v: &Value, key: &'static str, max: usize) -> Result<String, AuthError> {
    match v.get(key).and_then(Value::as_str) {
        Some(s) if s.len() <= max => Ok(s.to_owned()),
        _ => Err(AuthError::Malformed(key)),
    }
}

fn port_field(v: &Value, key: &'static str) -> Result<u16, AuthError> {
    v.get(key)
        .and_then(Value::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(AuthError::Malformed(key))
}

/// Parses a VerifyIp message (request or reply) with the lite parser's rules.
pub fn parse_verify_ip(v: &Value) -> Result<(PeerInfo, i64, i64), AuthError> {
    let max = v
        .get("BUS_MAX_VERSION")
        .and_then(Value::as_i64)
        .ok_or(AuthError::Malformed("BUS_MAX_VERSION"))?;
    let min = v
        .get("BUS_MIN_VERSION")
        .and_then(Value::as_i64)
        .ok_or(AuthError::Malformed("BUS_MIN_VERSION"))?;
    let info = PeerInfo {
        device_id: v
            .get("DEVICE_ID")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(MAX_TE_FIELD)
            .collect(),
        device_name: str_field(v, "DEVICE_NAME", 63)?,
        device_type: str_field(v, "DEVICE_TYPE", 63)?,
        auth_port: port_field(v, "AUTH_PORT")?,
        session_port: port_field(v, "SESSION_PORT")?,
    };
    Ok((info, max, min))
}

/// How the key of an auth connection was agreed: what a session opened with
/// it proves about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A paired device: STS with its long-term key, or the BIND that paired it.
    Paired,
    /// A PIN key agreement without pairing (what softbus_lite peers do).
    Pin,
    /// The empty PIN (`--allow-empty-pin`): proves nothing.
    EmptyPin,
    /// The node's web token (a browser or HTTP client, over WebRTC).
    WebToken,
}

/// How far a session's device id is proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdProof {
    /// Derived from the Ed25519 key the peer proved (STS, or the BIND that
    /// paired it): no other device can show it.
    Key,
    /// What the peer said: a PIN key agreement, or a pairing whose id is not
    /// derived from its key (a softbus_lite device's random id).
    Claimed,
    /// The node's web token (the id is the token's name).
    Token,
}

impl IdProof {
    pub fn as_str(self) -> &'static str {
        match self {
            IdProof::Key => "key",
            IdProof::Claimed => "claimed",
            IdProof::Token => "token",
        }
    }
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Paired => "paired",
            AuthMethod::Pin => "pin",
            AuthMethod::EmptyPin => "empty_pin",
            AuthMethod::WebToken => "web_token",
        }
    }
}

/// What an accepted auth connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConnEvent {
    /// A key agreement finished; the key is stored under `index`.
    KeyEstablished { index: i32, method: AuthMethod },
    /// VerifyIp succeeded: the peer is online.
    Verified(PeerInfo),
    /// A PIN key agreement (or a BIND) failed with this code (wrong PIN is 17).
    PakeFailed { code: u32 },
    /// A paired device's authentication (STS) failed with this code (17: the
    /// device is not paired, or its signature is wrong).
    StsFailed { code: u32 },
    /// A BIND paired the peer: keep its key.
    Paired(PeerKey),
}

/// One hichain exchange on an auth connection.
#[derive(Debug)]
enum Exchange {
    Pake(PakeServer),
    Sts(StsServer),
}

/// Server side of one auth connection.
#[derive(Debug)]
pub struct AuthConn {
    deframer: Deframer,
    local: LocalAuthInfo,
    pin: Result<Zeroizing<Vec<u8>>, AuthError>,
    te_data: Option<String>,
    /// `TEDeviceId`: the auth id STS and BIND use.
    te_device_id: Option<String>,
    identity: Option<Arc<Identity>>,
    pake: Vec<(i64, Exchange)>,
    keys: VecDeque<(i32, Zeroizing<[u8; 16]>, AuthMethod)>,
    empty_pin: bool,
    /// Key agreements started on this connection.
    key_agreements: u32,
    verified: Option<PeerInfo>,
    ignored: u32,
    /// The session keys of the opens made under this connection's keys (their
    /// first 8 bytes: random, so enough to tell a replay), at most
    /// [`MAX_OPENS_REMEMBERED`].
    opens: std::collections::HashSet<u64>,
    out: VecDeque<Vec<u8>>,
    /// What it reports; one per packet at most, drained after every call.
    events: VecDeque<AuthConnEvent>,
}

/// Session opens one auth connection remembers for replay detection.
pub const MAX_OPENS_REMEMBERED: usize = 1 << 16;

impl AuthConn {
    /// A fresh connection; bodies larger than `max_data` close it. With an
    /// `identity` the connection also pairs (BIND) and authenticates paired
    /// devices (STS).
    pub fn new(
        local: LocalAuthInfo,
        policy: &PinPolicy,
        max_data: usize,
        identity: Option<Arc<Identity>>,
    ) -> Self {
        let pin = policy.effective().map(|p| Zeroizing::new(p.to_vec()));
        Self {
            deframer: Deframer::new(HeaderKind::Auth, max_data),
            local,
            empty_pin: pin.as_ref().is_ok_and(|p| p.is_empty()),
            pin,
            te_data: None,
            te_device_id: None,
            identity,
            key_agreements: 0,
            pake: Vec::new(),
            keys: VecDeque::new(),
            verified: None,
            ignored: 0,
            opens: std::collections::HashSet::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Gives up on every hichain exchange this connection holds (a timeout, a
    /// local error, the connection dropped): each gets hichain's error message
    /// with `code`, so a peer that keeps state per exchange frees it. Returns
    /// how many there were.
    pub fn abort(&mut self, code: u32) -> usize {
        let open: Vec<i64> = self.pake.drain(..).map(|(seq, _)| seq).collect();
        for seq in &open {
            self.refuse_hichain(*seq, code);
        }
        open.len()
    }

    /// Records a session open by its session key: false if it was seen before
    /// (a replay). Past [`MAX_OPENS_REMEMBERED`] opens every further open is
    /// refused: the peer authenticates again.
    pub fn first_open(&mut self, session_key: &[u8; 32]) -> bool {
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&session_key[..8]);
        let fp = u64::from_le_bytes(fp);
        if self.opens.contains(&fp) || self.opens.len() >= MAX_OPENS_REMEMBERED {
            return false;
        }
        self.opens.insert(fp);
        true
    }

    /// Refuses every key agreement on this connection (with softbus_lite's
    /// wrong-PIN error to the peer), for `why`.
    pub fn refuse_pairing(&mut self, why: &'static str) {
        self.pin = Err(AuthError::Refused(why));
    }

    /// Refuses every key agreement on this connection because PIN pairing is
    /// paused for `retry_after_s` more seconds; the peer is told so (a
    /// `refuseAuth` with `REASON` "paused"), then gets the wrong-PIN error.
    pub fn pause_pairing(&mut self, retry_after_s: u64) {
        self.pin = Err(AuthError::PinPaused { retry_after_s });
    }

    /// PIN key agreements under way on this connection (STS not counted).
    pub fn pin_exchanges(&self) -> usize {
        self.pake
            .iter()
            .filter(|(_, e)| matches!(e, Exchange::Pake(_)))
            .count()
    }

    /// The key stored under `index`.
    pub fn key(&self, index: i32) -> Option<&[u8; 16]> {
        self.keys
            .iter()
            .rev()
            .find(|(i, _, _)| *i == index)
            .map(|(_, k, _)| &**k)
    }

    /// How the key under `index` was agreed.
    pub fn method(&self, index: i32) -> Option<AuthMethod> {
        self.keys
            .iter()
            .rev()
            .find(|(i, _, _)| *i == index)
            .map(|(_, _, m)| *m)
    }

    fn install_key(&mut self, index: i32, key: Zeroizing<[u8; 16]>, method: AuthMethod) {
        self.keys.retain(|(i, _, _)| *i != index);
        if self.keys.len() >= MAX_KEYS {
            self.keys.pop_front();
        }
        self.keys.push_back((index, key, method));
    }

    /// The peer's device id (`TEData`), once getAuthInfo arrived.
    pub fn peer_device_id(&self) -> Option<&str> {
        self.te_data.as_deref()
    }

    /// The verified peer, after VerifyIp.
    pub fn verified(&self) -> Option<&PeerInfo> {
        self.verified.as_ref()
    }

    /// Next bytes to write to this connection.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// What the connection reports, oldest first.
    pub fn poll_event(&mut self) -> Option<AuthConnEvent> {
        self.events.pop_front()
    }

    /// Feeds stream bytes; `pairings` are the devices paired with this node
    /// (for STS). An error means: close the connection. What it says is in
    /// [`AuthConn::poll_transmit`], what happened in [`AuthConn::poll_event`].
    pub fn handle_data(
        &mut self,
        c: &mut dyn Crypto,
        data: &[u8],
        pairings: &Pairings,
    ) -> Result<(), AuthError> {
        self.handle_data_within(c, data, pairings, &mut || true)
    }

    /// The same, asking `may_start` before each key agreement (the node-wide
    /// budget of modular exponentiations); a refusal closes the connection
    /// before any is computed.
    pub fn handle_data_within(
        &mut self,
        c: &mut dyn Crypto,
        data: &[u8],
        pairings: &Pairings,
        may_start: &mut dyn FnMut() -> bool,
    ) -> Result<(), AuthError> {
        self.deframer.push(data);
        while let Some(frame) = self.deframer.next_frame()? {
            let Frame::Auth(h, body) = frame else {
                return Err(AuthError::Misbehaved("session frame on auth channel"));
            };
            if h.module == Module::AUTH_SDK
                && matches!(pake::envelope(&body), Ok((pake::MSG_PAKE_REQUEST, _)))
            {
                self.key_agreements += 1;
                if self.key_agreements > MAX_KEY_AGREEMENTS_PER_CONN {
                    return Err(AuthError::Misbehaved(
                        "too many key agreements on one connection",
                    ));
                }
                if !may_start() {
                    return Err(AuthError::Refused(
                        "key agreements over the node's rate limit",
                    ));
                }
            }
            if let Some(e) = self.handle_packet(c, h, &body, pairings)? {
                self.events.push_back(e);
            }
        }
        Ok(())
    }

    fn handle_packet(
        &mut self,
        c: &mut dyn Crypto,
        h: AuthHeader,
        body: &[u8],
        pairings: &Pairings,
    ) -> Result<Option<AuthConnEvent>, AuthError> {
        match h.module {
            Module::TRUST_ENGINE if h.flags & FLAG_REPLY == 0 => {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|_| AuthError::Malformed("getAuthInfo"))?;
                if v.get("TECmd").and_then(Value::as_str) != Some("getAuthInfo") {
                    return Err(AuthError::Malformed("TECmd"));
                }
                let te_data = str_field(&v, "TEData", MAX_TE_FIELD)?;
                let te_device_id = str_field(&v, "TEDeviceId", MAX_TE_FIELD)?;
                // A verified peer keeps the identity it announced (issue 7, item 7).
                if self
                    .verified
                    .as_ref()
                    .is_some_and(|p| p.device_id != te_data)
                {
                    return Err(AuthError::Misbehaved(
                        "a verified peer announced another device id",
                    ));
                }
                // Keys were agreed for the id announced first; it cannot change.
                if self
                    .te_device_id
                    .as_ref()
                    .is_some_and(|was| *was != te_device_id)
                {
                    return Err(AuthError::Misbehaved("the peer announced another auth id"));
                }
                self.te_data = Some(te_data);
                self.te_device_id = Some(te_device_id);
                let reply = json!({"TECmd": "retAuthInfo", "TEData": self.local.device_id});
                self.out.push_back(frame::auth_plain(
                    Module::TRUST_ENGINE,
                    h.seq,
                    FLAG_REPLY,
                    reply.to_string().as_bytes(),
                ));
                Ok(None)
            }
            Module::AUTH_SDK => self.handle_hichain(c, h.seq, body, pairings),
            Module::CONNECTION => self.handle_connection(c, h, body),
            _ => {
                self.ignored += 1;
                if self.ignored > MAX_IGNORED {
                    return Err(AuthError::Misbehaved("too many unhandled packets"));
                }
                Ok(None)
            }
        }
    }

    fn refuse_hichain(&mut self, seq: i64, code: u32) {
        self.out.push_back(frame::auth_plain(
            Module::AUTH_SDK,
            seq,
            0,
            &pake::error_message(code),
        ));
    }

    fn handle_hichain(
        &mut self,
        c: &mut dyn Crypto,
        seq: i64,
        body: &[u8],
        pairings: &Pairings,
    ) -> Result<Option<AuthConnEvent>, AuthError> {
        let idx = match self.pake.iter().position(|(s, _)| *s == seq) {
            Some(i) => i,
            None => {
                let sts = matches!(
                    pake::envelope(body),
                    Ok((
                        hichain::MSG_AUTH_START_REQUEST | hichain::MSG_AUTH_ACK_REQUEST,
                        _
                    ))
                );
                let exchange = if sts {
                    if self.identity.is_none() {
                        self.refuse_hichain(seq, pake::errcode::WRONG_OPERATION);
                        return Err(AuthError::Refused("this node does not pair"));
                    }
                    Exchange::Sts(StsServer::new())
                } else {
                    match &self.pin {
                        Ok(p) => Exchange::Pake(PakeServer::new(p)),
                        Err(e) => {
                            // Tell the peer, then hang up: PIN pairing is not
                            // possible with this node (now).
                            let e = e.clone();
                            if let AuthError::PinPaused { retry_after_s } = e {
                                self.out.push_back(paused_packet(seq, retry_after_s));
                            }
                            self.refuse_hichain(seq, pake::errcode::WRONG_PIN);
                            return Err(e);
                        }
                    }
                };
                if self.pake.len() >= MAX_PAKE_SESSIONS {
                    // The oldest exchange gives way; its peer is told.
                    let (old, _) = self.pake.remove(0);
                    self.refuse_hichain(old, pake::errcode::ABORTED);
                }
                self.pake.push((seq, exchange));
                self.pake.len() - 1
            }
        };
        let index = seq as i32;
        let identity = self.identity.clone();
        match &mut self.pake[idx].1 {
            Exchange::Pake(server) => match server.handle(c, body, identity.as_deref())? {
                ServerStep::Reply(b) => {
                    self.out
                        .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                    Ok(None)
                }
                ServerStep::Done(b, key) => {
                    let bind = server.awaits_exchange();
                    if !bind {
                        self.pake.remove(idx);
                    }
                    // A PIN proves the PIN, not an id: one that names a paired
                    // device (whose key is on file) must prove that key (STS)
                    // or pair (BIND, where a key that does not derive the id
                    // cannot displace it), or it would show as that device.
                    let claimed = self.te_data.as_deref().unwrap_or_default();
                    if !bind && hichain::filed(pairings, claimed).is_some() {
                        self.out.push_back(claimed_packet(seq, claimed));
                        self.refuse_hichain(seq, pake::errcode::WRONG_OPERATION);
                        return Err(AuthError::PairedIdClaimed);
                    }
                    self.out
                        .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                    // As softbus_lite, the key is installed at the confirm; a
                    // BIND upgrades it once the exchange succeeds.
                    let method = if self.empty_pin {
                        AuthMethod::EmptyPin
                    } else {
                        AuthMethod::Pin
                    };
                    self.install_key(index, key, method);
                    Ok(Some(AuthConnEvent::KeyEstablished { index, method }))
                }
                ServerStep::Exchanged(b, peer) => {
                    self.pake.remove(idx);
                    // Stricter than the lite: the key is filed under the auth id
                    // the peer announced, and never replaces another device's key.
                    // The id sessions show (TEData) must be the one the key
                    // is filed under, or a holder of the PIN could pair as
                    // itself and appear as another device.
                    let code = if self.te_device_id.as_deref() != Some(peer.auth_id.as_str())
                        || self.te_data.as_deref() != Some(peer.auth_id.as_str())
                    {
                        Some(pake::errcode::BAD_SEAL)
                    } else if !hichain::may_file(
                        c,
                        &peer.auth_id,
                        &peer.public,
                        hichain::filed(pairings, &peer.auth_id),
                    ) {
                        // Another key is on file for this id, and this one
                        // does not prove it: a PIN holder claiming a paired
                        // device's id.
                        Some(pake::errcode::STORE_FAILED)
                    } else {
                        None
                    };
                    if let Some(code) = code {
                        self.keys.retain(|(i, _, _)| *i != index);
                        self.refuse_hichain(seq, code);
                        return Ok(Some(AuthConnEvent::PakeFailed { code }));
                    }
                    self.out
                        .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                    if let Some(k) = self.keys.iter_mut().find(|(i, _, _)| *i == index) {
                        k.2 = AuthMethod::Paired;
                    }
                    Ok(Some(AuthConnEvent::Paired(peer)))
                }
                ServerStep::Failed(b, code) => {
                    self.out
                        .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                    self.pake.remove(idx);
                    // softbus_lite drops the key of a failed exchange.
                    self.keys.retain(|(i, _, _)| *i != index);
                    Ok(Some(AuthConnEvent::PakeFailed { code }))
                }
            },
            Exchange::Sts(server) => {
                // STS proves TEDeviceId; sessions show TEData: they must agree.
                let peer_id = self
                    .te_device_id
                    .clone()
                    .filter(|d| self.te_data.as_ref() == Some(d));
                let (Some(id), Some(peer_id)) = (identity, peer_id) else {
                    self.pake.remove(idx);
                    self.refuse_hichain(seq, pake::errcode::BAD_BODY);
                    return Ok(Some(AuthConnEvent::StsFailed {
                        code: pake::errcode::BAD_BODY,
                    }));
                };
                match server.handle(c, body, &id, &peer_id, pairings)? {
                    StsStep::Reply(b) => {
                        self.out
                            .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                        Ok(None)
                    }
                    StsStep::Done(b, key) => {
                        self.out
                            .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                        self.pake.remove(idx);
                        self.install_key(index, key, AuthMethod::Paired);
                        Ok(Some(AuthConnEvent::KeyEstablished {
                            index,
                            method: AuthMethod::Paired,
                        }))
                    }
                    StsStep::Failed(b, code) => {
                        self.out
                            .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                        self.pake.remove(idx);
                        self.keys.retain(|(i, _, _)| *i != index);
                        Ok(Some(AuthConnEvent::StsFailed { code }))
                    }
                }
            }
        }
    }

    fn handle_connection(
        &mut self,
        c: &mut dyn Crypto,
        h: AuthHeader,
        body: &[u8],
    ) -> Result<Option<AuthConnEvent>, AuthError> {
        let index = frame::auth_key_index(body)?;
        let key = *self.key(index).ok_or(FrameError::UnknownKey)?;
        let plain = frame::auth_open(c, body, &key)?;
        let v: Value = serde_json::from_slice(&plain)
            .map_err(|_| AuthError::Malformed("connection message"))?;
        match v.get("CODE").and_then(Value::as_u64) {
            Some(CODE_VERIFY_IP) => {
                let (mut info, peer_max, peer_min) = parse_verify_ip(&v)?;
                info.device_id = self.te_data.clone().unwrap_or(info.device_id);
                if let Some(was) = &self.verified {
                    if was.device_id != info.device_id || was.device_name != info.device_name {
                        return Err(AuthError::Misbehaved(
                            "a verified peer announced another device id or name",
                        ));
                    }
                }
                let json = verify_ip_json(&self.local, peer_max.min(BUS_V2), peer_min.max(BUS_V2));
                self.out.push_back(frame::auth_sealed(
                    c,
                    &key,
                    index,
                    Module::CONNECTION,
                    h.seq,
                    FLAG_REPLY,
                    &json,
                )?);
                self.verified = Some(info.clone());
                Ok(Some(AuthConnEvent::Verified(info)))
            }
            Some(CODE_VERIFY_DEVICE_ID) => {
                let reply =
                    json!({"CODE": CODE_VERIFY_DEVICE_ID, "DEVICE_ID": self.local.device_id});
                self.out.push_back(frame::auth_sealed(
                    c,
                    &key,
                    index,
                    Module::CONNECTION,
                    h.seq,
                    FLAG_REPLY,
                    reply.to_string().as_bytes(),
                )?);
                Ok(None)
            }
            _ => Err(AuthError::Malformed("CODE")),
        }
    }
}

/// The result of a completed client authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Key index (= the auth seq) to put in session-open packets.
    pub key_index: i32,
    pub key: Zeroizing<[u8; 16]>,
    /// From retAuthInfo, VerifyIp and VerifyDeviceId.
    pub peer: PeerInfo,
    pub method: AuthMethod,
    /// The peer's long-term key, when this authentication paired (BIND).
    pub paired: Option<PeerKey>,
}

/// How a client authenticates to a peer.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// The PIN key agreement without pairing (softbus_lite's way).
    Pin(Zeroizing<Vec<u8>>),
    /// BIND with the PIN: the devices pair (exchange long-term keys).
    Pair {
        pin: Zeroizing<Vec<u8>>,
        identity: Arc<Identity>,
    },
    /// STS with the long-term keys, no PIN: the peer must be among `pairings`.
    Paired {
        identity: Arc<Identity>,
        pairings: Arc<Pairings>,
    },
}

#[derive(Debug)]
enum ClientState {
    AuthInfo,
    Pake(PakeClient),
    Exchange(Zeroizing<[u8; 16]>, hichain::ExchangeKeys),
    Sts(StsClient),
    VerifyIp(Zeroizing<[u8; 16]>),
    VerifyDeviceId(Zeroizing<[u8; 16]>, PeerInfo),
    Done,
}

/// Client side of the auth channel: getAuthInfo → hichain → VerifyIp → VerifyDeviceId.
/// Sends one packet and waits for its reply before the next, as lite servers need.
#[derive(Debug)]
pub struct AuthClient {
    deframer: Deframer,
    local: LocalAuthInfo,
    auth: ClientAuth,
    seq: i64,
    peer_device_id: String,
    method: AuthMethod,
    paired: Option<PeerKey>,
    state: ClientState,
    out: VecDeque<Vec<u8>>,
    /// The peer's hichain instance holds an exchange with us (from our first
    /// hichain message until its last reply or its error message): giving up
    /// then must tell it, or a lite device keeps the slot (softbus_lite has two
    /// and one hichain instance) until it restarts.
    hichain_open: bool,
}

/// `TECmd` of softbus's refusal of an auth connection from a locked-out
/// address (not in softbus_lite, which only closes): the answer to its
/// getAuthInfo, before the close.
pub const TE_REFUSE: &str = "refuseAuth";

/// The refusal a node answers a locked-out address's getAuthInfo with (same
/// module and seq, reply flag): the address as the node saw it and the seconds
/// until it may try again.
pub fn refusal_packet(seq: i64, ip: std::net::IpAddr, retry_after_s: u64) -> Vec<u8> {
    te_refusal(
        seq,
        json!({"TECmd": TE_REFUSE, "REASON": "failures", "IP": ip.to_string(), "RETRY_AFTER": retry_after_s}),
    )
}

/// A `refuseAuth` body as the reply to the packet `seq` (module TRUST_ENGINE).
fn te_refusal(seq: i64, body: Value) -> Vec<u8> {
    frame::auth_plain(
        Module::TRUST_ENGINE,
        seq,
        FLAG_REPLY,
        body.to_string().as_bytes(),
    )
}

/// What a node whose PIN pairing is paused answers a PIN key agreement with,
/// before hichain's wrong-PIN error: the seconds until it may be tried again.
pub fn paused_packet(seq: i64, retry_after_s: u64) -> Vec<u8> {
    te_refusal(
        seq,
        json!({"TECmd": TE_REFUSE, "REASON": "paused", "RETRY_AFTER": retry_after_s}),
    )
}

/// What a node answers a PIN key agreement with whose device id is paired
/// (before hichain's error 39): the id, so the client can tell its user.
pub fn claimed_packet(seq: i64, id: &str) -> Vec<u8> {
    te_refusal(
        seq,
        json!({"TECmd": TE_REFUSE, "REASON": "paired", "DEVICE_ID": id}),
    )
}

/// The hichain errorCode a client sends when it gives up because of `e`.
pub fn abort_code(e: &AuthError) -> u32 {
    match e {
        AuthError::WrongPin | AuthError::Misbehaved(_) => pake::errcode::WRONG_PIN,
        AuthError::Malformed(_) | AuthError::Frame(_) => pake::errcode::BAD_BODY,
        AuthError::Incompatible(_) => pake::errcode::UNSUPPORTED_VERSION,
        AuthError::Refused(_) => pake::errcode::WRONG_OPERATION,
        AuthError::PeerError(_)
        | AuthError::Crypto(_)
        | AuthError::LockedOut { .. }
        | AuthError::PinPaused { .. }
        | AuthError::PairedIdClaimed
        | AuthError::EmptyPinRefused => pake::errcode::ABORTED,
    }
}

impl AuthClient {
    /// Starts the PIN exchange; `seq` becomes the key index. The first packet is queued.
    pub fn new(local: LocalAuthInfo, pin: &[u8], seq: i64) -> Self {
        Self::with_auth(local, ClientAuth::Pin(Zeroizing::new(pin.to_vec())), seq)
    }

    /// Starts the exchange with `auth`; `seq` becomes the key index.
    pub fn with_auth(local: LocalAuthInfo, auth: ClientAuth, seq: i64) -> Self {
        let req = json!({"TECmd": "getAuthInfo", "TEData": local.device_id, "TEDeviceId": local.device_id});
        let mut out = VecDeque::new();
        out.push_back(frame::auth_plain(
            Module::TRUST_ENGINE,
            seq,
            0,
            req.to_string().as_bytes(),
        ));
        Self {
            deframer: Deframer::new(HeaderKind::Auth, frame::LITE_MAX_AUTH_DATA),
            local,
            method: match &auth {
                ClientAuth::Pin(p) if p.is_empty() => AuthMethod::EmptyPin,
                ClientAuth::Pin(_) => AuthMethod::Pin,
                _ => AuthMethod::Paired,
            },
            auth,
            seq,
            peer_device_id: String::new(),
            paired: None,
            state: ClientState::AuthInfo,
            out,
            hichain_open: false,
        }
    }

    /// Gives up: while the peer's hichain instance holds our exchange, queues
    /// its error message (`{"message":32896,"payload":{"errorCode":code}}`, same
    /// module and seq, as the C client sends) to go out before the close.
    /// Returns whether it did; a second call queues nothing.
    pub fn abort(&mut self, code: u32) -> bool {
        if !std::mem::replace(&mut self.hichain_open, false) {
            return false;
        }
        self.state = ClientState::Done;
        self.out.push_back(frame::auth_plain(
            Module::AUTH_SDK,
            self.seq,
            0,
            &pake::error_message(code),
        ));
        true
    }

    /// Next bytes to write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Feeds stream bytes; returns the result once VerifyDeviceId completed.
    pub fn handle_data(
        &mut self,
        c: &mut dyn Crypto,
        data: &[u8],
    ) -> Result<Option<Authenticated>, AuthError> {
        self.deframer.push(data);
        while let Some(frame) = self.deframer.next_frame()? {
            let Frame::Auth(h, body) = frame else {
                return Err(AuthError::Misbehaved("unexpected frame"));
            };
            if h.module == Module::AUTH_SDK
                && matches!(pake::envelope(&body), Ok((pake::MSG_INFORM, _)))
            {
                // The peer ended the exchange with its error message.
                self.hichain_open = false;
            }
            if let Some(done) = self.handle_packet(c, h, &body)? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    /// The key is agreed: VerifyIp goes out under it.
    fn verify_ip(&mut self, c: &mut dyn Crypto, key: Zeroizing<[u8; 16]>) -> Result<(), AuthError> {
        let seq = self.seq;
        let json = verify_ip_json(&self.local, BUS_V2, BUS_V1);
        self.out.push_back(frame::auth_sealed(
            c,
            &key[..],
            seq as i32,
            Module::CONNECTION,
            seq,
            0,
            &json,
        )?);
        self.state = ClientState::VerifyIp(key);
        Ok(())
    }

    fn handle_packet(
        &mut self,
        c: &mut dyn Crypto,
        h: AuthHeader,
        body: &[u8],
    ) -> Result<Option<Authenticated>, AuthError> {
        let seq = self.seq;
        if h.module == Module::TRUST_ENGINE && matches!(self.state, ClientState::Pake(_)) {
            // A softbus node whose PIN pairing is paused says so.
            let v: Value =
                serde_json::from_slice(body).map_err(|_| AuthError::Malformed("refuseAuth"))?;
            let refusal = (v.get("TECmd").and_then(Value::as_str) == Some(TE_REFUSE))
                .then(|| v.get("REASON").and_then(Value::as_str))
                .flatten();
            if refusal == Some("paired") {
                self.state = ClientState::Done;
                return Err(AuthError::PairedIdClaimed);
            }
            if refusal == Some("paused") {
                self.state = ClientState::Done;
                return Err(AuthError::PinPaused {
                    retry_after_s: v
                        .get("RETRY_AFTER")
                        .and_then(Value::as_u64)
                        .ok_or(AuthError::Malformed("RETRY_AFTER"))?
                        .min(86_400),
                });
            }
        }
        match (
            std::mem::replace(&mut self.state, ClientState::Done),
            h.module,
        ) {
            (ClientState::AuthInfo, Module::TRUST_ENGINE) => {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|_| AuthError::Malformed("retAuthInfo"))?;
                if v.get("TECmd").and_then(Value::as_str) == Some(TE_REFUSE) {
                    return Err(AuthError::LockedOut {
                        ip: str_field(&v, "IP", 45)?,
                        retry_after_s: v
                            .get("RETRY_AFTER")
                            .and_then(Value::as_u64)
                            .ok_or(AuthError::Malformed("RETRY_AFTER"))?
                            .min(86_400),
                    });
                }
                if v.get("TECmd").and_then(Value::as_str) != Some("retAuthInfo") {
                    return Err(AuthError::Malformed("TECmd"));
                }
                self.peer_device_id = str_field(&v, "TEData", MAX_TE_FIELD)?;
                let (state, msg) = match &self.auth {
                    ClientAuth::Pin(pin) => {
                        let mut pake = PakeClient::new(pin);
                        let msg = pake.start(c);
                        (ClientState::Pake(pake), msg)
                    }
                    ClientAuth::Pair { pin, .. } => {
                        let mut pake = PakeClient::with_operation(pin, pake::OP_BIND);
                        let msg = pake.start(c);
                        (ClientState::Pake(pake), msg)
                    }
                    ClientAuth::Paired { identity, pairings } => {
                        let Some(key) = pairings.get(&self.peer_device_id) else {
                            return Err(AuthError::Refused(
                                "not paired with this device (pair with softbus pair first)",
                            ));
                        };
                        let (sts, msg) = StsClient::start(c, identity, &self.peer_device_id, *key)?;
                        (ClientState::Sts(sts), msg)
                    }
                };
                self.out
                    .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                self.state = state;
                self.hichain_open = true;
                Ok(None)
            }
            (ClientState::Pake(mut pake), Module::AUTH_SDK) => {
                match pake.handle(c, body).map_err(|e| match e {
                    AuthError::PeerError(pake::errcode::NO_256_MOD)
                        if self.method == AuthMethod::EmptyPin =>
                    {
                        AuthError::EmptyPinRefused
                    }
                    e => e,
                })? {
                    ClientStep::Send(msg) => {
                        self.out
                            .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                        self.state = ClientState::Pake(pake);
                        Ok(None)
                    }
                    ClientStep::Done(key, exchange) => {
                        if let ClientAuth::Pair { identity, .. } = &self.auth {
                            let msg = hichain::exchange_request(c, &exchange, identity)?;
                            self.out
                                .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                            self.state = ClientState::Exchange(key, exchange);
                            return Ok(None);
                        }
                        // AUTH_KEY_AGREEMENT ends with the server's confirmation.
                        self.hichain_open = false;
                        self.verify_ip(c, key)?;
                        Ok(None)
                    }
                }
            }
            (ClientState::Exchange(key, exchange), Module::AUTH_SDK) => {
                // BIND ends with the server's exchange response, good or bad.
                self.hichain_open = false;
                let peer = hichain::exchange_response(c, &exchange, body)?;
                if peer.auth_id != self.peer_device_id {
                    return Err(AuthError::Misbehaved(
                        "the peer paired under another id than it announced",
                    ));
                }
                self.paired = Some(peer);
                self.verify_ip(c, key)?;
                Ok(None)
            }
            (ClientState::Sts(mut sts), Module::AUTH_SDK) => {
                let ClientAuth::Paired { identity, .. } = &self.auth else {
                    return Err(AuthError::Misbehaved("unexpected STS state"));
                };
                let identity = identity.clone();
                match sts.handle(c, &identity, body)? {
                    StsClientStep::Send(msg) => {
                        self.out
                            .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                        self.state = ClientState::Sts(sts);
                    }
                    StsClientStep::Done(key) => {
                        self.hichain_open = false;
                        self.verify_ip(c, key)?;
                    }
                }
                Ok(None)
            }
            (ClientState::VerifyIp(key), Module::CONNECTION) => {
                let plain = frame::auth_open(c, body, &key[..])?;
                let v: Value = serde_json::from_slice(&plain)
                    .map_err(|_| AuthError::Malformed("VerifyIp reply"))?;
                if v.get("CODE").and_then(Value::as_u64) != Some(CODE_VERIFY_IP) {
                    return Err(AuthError::Malformed("CODE"));
                }
                let (mut info, _, _) = parse_verify_ip(&v)?;
                if info.device_id.is_empty() {
                    info.device_id = self.peer_device_id.clone();
                }
                let req = json!({"CODE": CODE_VERIFY_DEVICE_ID, "DEVICE_ID": self.local.device_id});
                self.out.push_back(frame::auth_sealed(
                    c,
                    &key[..],
                    seq as i32,
                    Module::CONNECTION,
                    seq,
                    0,
                    req.to_string().as_bytes(),
                )?);
                self.state = ClientState::VerifyDeviceId(key, info);
                Ok(None)
            }
            (ClientState::VerifyDeviceId(key, mut info), Module::CONNECTION) => {
                let plain = frame::auth_open(c, body, &key[..])?;
                let v: Value = serde_json::from_slice(&plain)
                    .map_err(|_| AuthError::Malformed("VerifyDeviceId reply"))?;
                if v.get("CODE").and_then(Value::as_u64) != Some(CODE_VERIFY_DEVICE_ID) {
                    return Err(AuthError::Malformed("CODE"));
                }
                if let Some(id) = v.get("DEVICE_ID").and_then(Value::as_str) {
                    info.device_id = id.chars().take(MAX_TE_FIELD).collect();
                }
                Ok(Some(Authenticated {
                    key_index: seq as i32,
                    key,
                    peer: info,
                    method: self.method,
                    paired: self.paired.take(),
                }))
            }
            (_, m) => {
                tracing::debug!(module = m.0, "unexpected auth packet");
                Err(AuthError::Misbehaved("unexpected auth packet"))
            }
        }
    }
}
