//! The auth channel (softbus-wire.md §3): getAuthInfo, the hichain key agreement
//! carried in module 3, and VerifyIp / VerifyDeviceId in module 5, as server
//! ([`AuthConn`], one per accepted connection) and as client ([`AuthClient`]).

pub mod pake;

use crate::crypto::{Crypto, CryptoError};
use crate::frame::{self, AuthHeader, Deframer, Frame, FrameError, HeaderKind, Module, FLAG_REPLY};
use pake::{ClientStep, PakeClient, PakeServer, ServerStep};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
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
    #[error("peer reported hichain error {0}")]
    PeerError(u32),
    #[error("pairing refused: {0}")]
    Refused(&'static str),
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

/// What an accepted auth connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthConnEvent {
    /// A key agreement finished; the key is stored under `index`.
    KeyEstablished { index: i32 },
    /// VerifyIp succeeded: the peer is online.
    Verified(PeerInfo),
    /// A hichain exchange failed with this code (wrong PIN is 17).
    PakeFailed { code: u32 },
}

/// Server side of one auth connection.
#[derive(Debug)]
pub struct AuthConn {
    deframer: Deframer,
    local: LocalAuthInfo,
    pin: Result<Zeroizing<Vec<u8>>, AuthError>,
    te_data: Option<String>,
    pake: Vec<(i64, PakeServer)>,
    keys: VecDeque<(i32, Zeroizing<[u8; 16]>)>,
    verified: Option<PeerInfo>,
    ignored: u32,
    /// The session keys of the opens made under this connection's keys (their
    /// first 8 bytes: random, so enough to tell a replay), at most
    /// [`MAX_OPENS_REMEMBERED`].
    opens: std::collections::HashSet<u64>,
    out: VecDeque<Vec<u8>>,
}

/// Session opens one auth connection remembers for replay detection.
pub const MAX_OPENS_REMEMBERED: usize = 1 << 16;

impl AuthConn {
    /// A fresh connection; bodies larger than `max_data` close it.
    pub fn new(local: LocalAuthInfo, policy: &PinPolicy, max_data: usize) -> Self {
        Self {
            deframer: Deframer::new(HeaderKind::Auth, max_data),
            local,
            pin: policy.effective().map(|p| Zeroizing::new(p.to_vec())),
            te_data: None,
            pake: Vec::new(),
            keys: VecDeque::new(),
            verified: None,
            ignored: 0,
            opens: std::collections::HashSet::new(),
            out: VecDeque::new(),
        }
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

    /// The key stored under `index`.
    pub fn key(&self, index: i32) -> Option<&[u8; 16]> {
        self.keys
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, k)| &**k)
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

    /// Feeds stream bytes. An error means: close the connection.
    pub fn handle_data(
        &mut self,
        c: &mut dyn Crypto,
        data: &[u8],
    ) -> Result<Vec<AuthConnEvent>, AuthError> {
        self.deframer.push(data);
        let mut events = Vec::new();
        while let Some(frame) = self.deframer.next_frame()? {
            let Frame::Auth(h, body) = frame else {
                return Err(AuthError::Misbehaved("session frame on auth channel"));
            };
            if let Some(e) = self.handle_packet(c, h, &body)? {
                events.push(e);
            }
        }
        Ok(events)
    }

    fn handle_packet(
        &mut self,
        c: &mut dyn Crypto,
        h: AuthHeader,
        body: &[u8],
    ) -> Result<Option<AuthConnEvent>, AuthError> {
        match h.module {
            Module::TRUST_ENGINE if h.flags & FLAG_REPLY == 0 => {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|_| AuthError::Malformed("getAuthInfo"))?;
                if v.get("TECmd").and_then(Value::as_str) != Some("getAuthInfo") {
                    return Err(AuthError::Malformed("TECmd"));
                }
                let te_data = str_field(&v, "TEData", MAX_TE_FIELD)?;
                str_field(&v, "TEDeviceId", MAX_TE_FIELD)?;
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
                self.te_data = Some(te_data);
                let reply = json!({"TECmd": "retAuthInfo", "TEData": self.local.device_id});
                self.out.push_back(frame::auth_plain(
                    Module::TRUST_ENGINE,
                    h.seq,
                    FLAG_REPLY,
                    reply.to_string().as_bytes(),
                ));
                Ok(None)
            }
            Module::AUTH_SDK => self.handle_hichain(c, h.seq, body),
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

    fn handle_hichain(
        &mut self,
        c: &mut dyn Crypto,
        seq: i64,
        body: &[u8],
    ) -> Result<Option<AuthConnEvent>, AuthError> {
        let pin = match &self.pin {
            Ok(p) => p.clone(),
            Err(e) => {
                // Tell the peer, then hang up: pairing is not possible with this node.
                self.out.push_back(frame::auth_plain(
                    Module::AUTH_SDK,
                    seq,
                    0,
                    &pake::error_message(pake::errcode::WRONG_PIN),
                ));
                return Err(e.clone());
            }
        };
        let idx = match self.pake.iter().position(|(s, _)| *s == seq) {
            Some(i) => i,
            None => {
                if self.pake.len() >= MAX_PAKE_SESSIONS {
                    self.pake.remove(0);
                }
                self.pake.push((seq, PakeServer::new(&pin)));
                self.pake.len() - 1
            }
        };
        let step = self.pake[idx].1.handle(c, body)?;
        match step {
            ServerStep::Reply(b) => {
                self.out
                    .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                Ok(None)
            }
            ServerStep::Done(b, key) => {
                self.out
                    .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                self.pake.remove(idx);
                let index = seq as i32;
                self.keys.retain(|(i, _)| *i != index);
                if self.keys.len() >= MAX_KEYS {
                    self.keys.pop_front();
                }
                self.keys.push_back((index, key));
                Ok(Some(AuthConnEvent::KeyEstablished { index }))
            }
            ServerStep::Failed(b, code) => {
                self.out
                    .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &b));
                self.pake.remove(idx);
                // softbus_lite drops the key of a failed exchange.
                self.keys.retain(|(i, _)| *i != seq as i32);
                Ok(Some(AuthConnEvent::PakeFailed { code }))
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
}

#[derive(Debug)]
enum ClientState {
    AuthInfo,
    Pake(PakeClient),
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
    pin: Zeroizing<Vec<u8>>,
    seq: i64,
    peer_device_id: String,
    state: ClientState,
    out: VecDeque<Vec<u8>>,
}

impl AuthClient {
    /// Starts the exchange; `seq` becomes the key index. The first packet is queued.
    pub fn new(local: LocalAuthInfo, pin: &[u8], seq: i64) -> Self {
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
            pin: Zeroizing::new(pin.to_vec()),
            seq,
            peer_device_id: String::new(),
            state: ClientState::AuthInfo,
            out,
        }
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
            if let Some(done) = self.handle_packet(c, h, &body)? {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    fn handle_packet(
        &mut self,
        c: &mut dyn Crypto,
        h: AuthHeader,
        body: &[u8],
    ) -> Result<Option<Authenticated>, AuthError> {
        let seq = self.seq;
        match (
            std::mem::replace(&mut self.state, ClientState::Done),
            h.module,
        ) {
            (ClientState::AuthInfo, Module::TRUST_ENGINE) => {
                let v: Value = serde_json::from_slice(body)
                    .map_err(|_| AuthError::Malformed("retAuthInfo"))?;
                if v.get("TECmd").and_then(Value::as_str) != Some("retAuthInfo") {
                    return Err(AuthError::Malformed("TECmd"));
                }
                self.peer_device_id = str_field(&v, "TEData", MAX_TE_FIELD)?;
                let mut pake = PakeClient::new(&self.pin);
                let msg = pake.start(c);
                self.out
                    .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                self.state = ClientState::Pake(pake);
                Ok(None)
            }
            (ClientState::Pake(mut pake), Module::AUTH_SDK) => match pake.handle(c, body)? {
                ClientStep::Send(msg) => {
                    self.out
                        .push_back(frame::auth_plain(Module::AUTH_SDK, seq, 0, &msg));
                    self.state = ClientState::Pake(pake);
                    Ok(None)
                }
                ClientStep::Done(key) => {
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
                    Ok(None)
                }
            },
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
                }))
            }
            (_, m) => {
                tracing::debug!(module = m.0, "unexpected auth packet");
                Err(AuthError::Misbehaved("unexpected auth packet"))
            }
        }
    }
}
