//! Sessions (softbus-wire.md §4): the session-open handshake (24-byte header,
//! auth-key-encrypted `BUS_NAME` + `SESSION_KEY`, reply with seq 100 flags 1) and
//! AES-256-GCM data packets with 16-byte headers, as server ([`SessionConn`]) and
//! client ([`SessionClient`]).

use crate::crypto::{Crypto, CryptoError, GcmKey};
use crate::frame::{self, Deframer, Frame, FrameError, HeaderKind, Module, FLAG_REPLY};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use zeroize::Zeroizing;

/// Session servers a node holds by default (`MAX_SESSION_SERVER_NUM`).
pub const DEFAULT_MAX_SERVERS: usize = 8;
/// Open sessions a node holds by default (`MAX_SESSION_NUM`).
pub const DEFAULT_MAX_SESSIONS: usize = 24;
/// Session server names are shorter than this.
pub const MAX_NAME: usize = 64;
/// seq of the open reply.
pub const OPEN_REPLY_SEQ: i64 = 100;
/// Largest data body accepted on the wire: IV + 4080 + tag.
pub const MAX_DATA_BODY: usize = frame::IV_LEN + frame::MAX_RECV_BYTES + frame::TAG_LEN;
/// Undecryptable or replayed packets tolerated before a session is closed.
pub const MAX_BAD_PACKETS: u32 = 16;

/// Session-layer errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("no session server named {0:?}")]
    UnknownServer(String),
    #[error("no key for index {0} from this peer")]
    UnknownKey(i32),
    #[error("replayed or reordered packet")]
    Replay,
    #[error("session limit of {0} reached")]
    TooManySessions(usize),
    #[error("session server limit of {0} reached")]
    TooManyServers(usize),
    #[error("a session server named {0:?} exists")]
    DuplicateServer(String),
    #[error("name empty or 64 bytes or longer")]
    BadName,
    #[error("payload of {0} bytes outside 1..=4048")]
    BadSize(usize),
    #[error("no such session")]
    NoSession,
    #[error("session not open yet")]
    NotOpen,
    #[error("peer refused: {0}")]
    Refused(String),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// Checks a session server name.
pub fn check_name(name: &str) -> Result<(), SessionError> {
    if name.is_empty() || name.len() >= MAX_NAME {
        Err(SessionError::BadName)
    } else {
        Ok(())
    }
}

/// The open request's content.
#[derive(Debug)]
pub struct OpenRequest {
    pub bus_name: String,
    pub key: Zeroizing<[u8; 32]>,
}

/// Parses `{"BUS_NAME":…,"SESSION_KEY":"<base64 of 32 bytes>"}`. Unlike
/// softbus_lite, a key that is not exactly 32 bytes is refused (lite zero-pads).
pub fn parse_open(plain: &[u8]) -> Result<OpenRequest, SessionError> {
    let v: Value =
        serde_json::from_slice(plain).map_err(|_| SessionError::Malformed("session open JSON"))?;
    let bus_name = v
        .get("BUS_NAME")
        .and_then(Value::as_str)
        .ok_or(SessionError::Malformed("BUS_NAME"))?;
    check_name(bus_name)?;
    let key_b64 = v
        .get("SESSION_KEY")
        .and_then(Value::as_str)
        .ok_or(SessionError::Malformed("SESSION_KEY"))?;
    let raw = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(key_b64)
            .map_err(|_| SessionError::Malformed("SESSION_KEY"))?,
    );
    let key: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| SessionError::Malformed("SESSION_KEY length"))?;
    Ok(OpenRequest {
        bus_name: bus_name.to_owned(),
        key: Zeroizing::new(key),
    })
}

#[derive(Serialize)]
struct OpenReply<'a> {
    #[serde(rename = "CODE")]
    code: i32,
    #[serde(rename = "API_VERSION")]
    api_version: i32,
    #[serde(rename = "DEVICE_ID")]
    device_id: &'a str,
    #[serde(rename = "UID")]
    uid: i32,
    #[serde(rename = "PID")]
    pid: i32,
    #[serde(rename = "PKG_NAME")]
    pkg_name: &'a str,
    #[serde(rename = "CLIENT_BUS_NAME")]
    client_bus_name: &'a str,
    #[serde(rename = "AUTH_STATE")]
    auth_state: &'a str,
    #[serde(rename = "CHANNEL_TYPE")]
    channel_type: i32,
}

/// The open reply body, in softbus_lite's key order.
pub fn open_reply_json(device_id: &str, bus_name: &str) -> Vec<u8> {
    let r = OpenReply {
        code: 1,
        api_version: 2,
        device_id,
        uid: -1,
        pid: -1,
        pkg_name: bus_name,
        client_bus_name: bus_name,
        auth_state: "",
        channel_type: 1,
    };
    serde_json::to_vec(&r).expect("plain struct serializes")
}

/// A refusal's reason is cut to this many characters when shown.
const MAX_REASON_CHARS: usize = 200;

/// `CODE` of an open reply that refuses the session (1 opens it).
pub const REFUSED_CODE: i32 = -1;

/// The body of an open reply that refuses the session, saying why.
pub fn refusal_json(reason: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"CODE": REFUSED_CODE, "REASON": reason}))
        .expect("plain JSON serializes")
}

/// The data half of an open session: the prepared key, counters, replay check.
pub struct DataChannel {
    gcm: Box<dyn GcmKey>,
    send_seq: i32,
    last_recv: Option<i32>,
    bad: u32,
}

impl std::fmt::Debug for DataChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannel")
            .field("send_seq", &self.send_seq)
            .field("last_recv", &self.last_recv)
            .finish()
    }
}

impl DataChannel {
    /// A channel using `key` in both directions (the key schedule is kept, the bytes are not).
    pub fn new(c: &dyn Crypto, key: &[u8; 32]) -> Result<Self, SessionError> {
        Ok(Self {
            gcm: c.gcm_key(key)?,
            send_seq: 0,
            last_recv: None,
            bad: 0,
        })
    }

    /// Seals one message (1..=4048 bytes) as a session packet: header (seq, flags 0),
    /// IV (`seq` i32 LE ‖ 8 random), ciphertext, tag.
    pub fn seal(&mut self, c: &mut dyn Crypto, data: &[u8]) -> Result<Vec<u8>, SessionError> {
        if data.is_empty() || data.len() > frame::MAX_SEND_BYTES {
            return Err(SessionError::BadSize(data.len()));
        }
        let seq = self.send_seq;
        self.send_seq = self.send_seq.checked_add(1).ok_or(SessionError::Replay)?;
        let data_len = frame::IV_LEN + data.len() + frame::TAG_LEN;
        let mut out = Vec::with_capacity(frame::SESSION_HEADER_LEN + data_len);
        frame::SessionHeader {
            seq,
            flags: 0,
            data_len: data_len as u32,
        }
        .emit(&mut out);
        let mut iv = [0u8; frame::IV_LEN];
        iv[..4].copy_from_slice(&seq.to_le_bytes());
        c.random(&mut iv[4..]);
        out.extend_from_slice(&iv);
        let start = out.len();
        out.extend_from_slice(data);
        self.gcm.seal_in_place(&iv, &mut out, start)?;
        Ok(out)
    }

    /// Opens one packet body (`IV | ct | tag`), decrypting in place. The
    /// authenticated IV prefix must equal the header seq and grow strictly, so a
    /// replayed or reordered packet is refused.
    pub fn open(&mut self, header_seq: i32, mut body: Vec<u8>) -> Result<Vec<u8>, SessionError> {
        let r = (|| {
            if body.len() < frame::IV_LEN + frame::TAG_LEN {
                return Err(SessionError::Frame(FrameError::ShortBody));
            }
            let mut iv = [0u8; frame::IV_LEN];
            iv.copy_from_slice(&body[..frame::IV_LEN]);
            self.gcm.open_in_place(&iv, &mut body, frame::IV_LEN)?;
            let iv_seq = i32::from_le_bytes([iv[0], iv[1], iv[2], iv[3]]);
            if iv_seq != header_seq || self.last_recv.is_some_and(|l| iv_seq <= l) {
                return Err(SessionError::Replay);
            }
            self.last_recv = Some(iv_seq);
            body.drain(..frame::IV_LEN);
            Ok(body)
        })();
        if r.is_err() {
            self.bad += 1;
        }
        r
    }

    /// Whether the peer has sent too many bad packets.
    pub fn exhausted(&self) -> bool {
        self.bad > MAX_BAD_PACKETS
    }
}

/// Server side of one session connection before and after open.
#[derive(Debug)]
pub struct SessionConn {
    deframer: Deframer,
    /// Set once the open handshake succeeded.
    pub channel: Option<DataChannel>,
}

impl Default for SessionConn {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionConn {
    /// A connection waiting for its open packet.
    pub fn new() -> Self {
        Self {
            deframer: Deframer::new(HeaderKind::Auth, frame::MAX_SESSION_OPEN_DATA),
            channel: None,
        }
    }

    /// Feeds bytes; returns the frames now complete. A framing error closes the connection.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Frame>, SessionError> {
        self.deframer.push(data);
        let mut frames = Vec::new();
        while let Some(f) = self.deframer.next_frame()? {
            let is_open = matches!(f, Frame::Auth(..));
            frames.push(f);
            if is_open {
                // Everything after the open packet uses 16-byte headers.
                self.deframer.set_kind(HeaderKind::Session, MAX_DATA_BODY);
            }
        }
        Ok(frames)
    }

    /// Decrypts and parses an open body with the auth key `key`.
    pub fn open_request(
        c: &dyn Crypto,
        body: &[u8],
        key: &[u8],
    ) -> Result<OpenRequest, SessionError> {
        let plain = Zeroizing::new(frame::auth_open(c, body, key)?);
        parse_open(&plain)
    }
}

/// What a client session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server accepted; its reply JSON.
    Opened(Value),
    /// A message arrived.
    Bytes(Vec<u8>),
}

/// Client side of one session: sends the open packet, then data.
#[derive(Debug)]
pub struct SessionClient {
    deframer: Deframer,
    auth_key: Zeroizing<[u8; 16]>,
    channel: DataChannel,
    opened: bool,
    out: VecDeque<Vec<u8>>,
}

impl SessionClient {
    /// Chooses a fresh 32-byte session key and queues the open packet for `name`,
    /// encrypted with the auth key `auth_key` under `key_index`.
    pub fn new(
        c: &mut dyn Crypto,
        name: &str,
        key_index: i32,
        auth_key: &[u8; 16],
    ) -> Result<Self, SessionError> {
        check_name(name)?;
        let mut key = Zeroizing::new([0u8; 32]);
        c.random(&mut key[..]);
        let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&key[..]));
        let body = Zeroizing::new(
            serde_json::json!({"BUS_NAME": name, "SESSION_KEY": b64.as_str()}).to_string(),
        );
        let pkt = frame::auth_sealed(
            c,
            auth_key,
            key_index,
            Module::SESSION,
            i64::from(key_index),
            0,
            body.as_bytes(),
        )?;
        let mut out = VecDeque::new();
        out.push_back(pkt);
        Ok(Self {
            deframer: Deframer::new(HeaderKind::Auth, frame::MAX_SESSION_OPEN_DATA),
            auth_key: Zeroizing::new(*auth_key),
            channel: DataChannel::new(c, &key)?,
            opened: false,
            out,
        })
    }

    /// Whether the open reply arrived.
    pub fn is_open(&self) -> bool {
        self.opened
    }

    /// Queues one message (1..=4048 bytes). Allowed before the reply arrives (pipelined).
    pub fn send(&mut self, c: &mut dyn Crypto, data: &[u8]) -> Result<(), SessionError> {
        let pkt = self.channel.seal(c, data)?;
        self.out.push_back(pkt);
        Ok(())
    }

    /// Next packet to write, one write per packet.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Feeds stream bytes. Undecryptable data packets are dropped (counted);
    /// framing errors and a refused open are fatal.
    pub fn handle_data(
        &mut self,
        c: &mut dyn Crypto,
        data: &[u8],
    ) -> Result<Vec<ClientEvent>, SessionError> {
        self.deframer.push(data);
        let mut events = Vec::new();
        while let Some(f) = self.deframer.next_frame()? {
            match f {
                Frame::Auth(h, body) => {
                    if h.module != Module::SESSION || h.flags & FLAG_REPLY == 0 {
                        return Err(SessionError::Malformed("open reply header"));
                    }
                    let plain = frame::auth_open(c, &body, &self.auth_key[..])?;
                    let v: Value = serde_json::from_slice(&plain)
                        .map_err(|_| SessionError::Malformed("open reply JSON"))?;
                    if v.get("CODE").and_then(Value::as_i64) != Some(1) {
                        // Our refusals say why; any other reply is shown whole.
                        let why = v.get("REASON").and_then(Value::as_str).map_or_else(
                            || v.to_string(),
                            |r| r.chars().take(MAX_REASON_CHARS).collect(),
                        );
                        return Err(SessionError::Refused(why));
                    }
                    self.opened = true;
                    self.deframer.set_kind(HeaderKind::Session, MAX_DATA_BODY);
                    events.push(ClientEvent::Opened(v));
                }
                Frame::Session(h, body) => match self.channel.open(h.seq, body) {
                    Ok(b) => events.push(ClientEvent::Bytes(b)),
                    Err(e) if !self.channel.exhausted() => {
                        tracing::debug!(error = %e, "dropped session packet")
                    }
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(events)
    }
}
