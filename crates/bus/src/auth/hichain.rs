//! hichain BIND and AUTHENTICATE (softbus-wire.md §3.5): pairing two devices by
//! exchanging their long-term Ed25519 keys under the PAKE key, and
//! authenticating a paired device afterwards without a PIN (STS: X25519
//! ephemerals signed with the long-term keys).
//!
//! Every signature is Ed25519 over SHA-256 of the signed bytes, as HUKS signs
//! hichain's digests. Auth ids are the ASCII text of the 64-hex device ids.

use super::message::{self, errcode, hex_field, CHALLENGE_LEN, SALT_LEN};
use super::AuthError;
use crate::crypto::Crypto;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub const MSG_EXCHANGE_REQUEST: u64 = 0x0003;
pub const MSG_EXCHANGE_RESPONSE: u64 = 0x8003;
pub const MSG_AUTH_START_REQUEST: u64 = 0x0011;
pub const MSG_AUTH_START_RESPONSE: u64 = 0x8011;
pub const MSG_AUTH_ACK_REQUEST: u64 = 0x0012;
pub const MSG_AUTH_ACK_RESPONSE: u64 = 0x8012;
/// `operationCode` of AUTHENTICATE.
pub const OP_AUTHENTICATE: u64 = 2;

const AAD_REQUEST: &[u8] = b"hichain_exchange_request";
const AAD_RESPONSE: &[u8] = b"hichain_exchange_response";
/// Largest hex-decoded `exAuthInfo` and its plaintext (deviceauth_lite's limits).
const MAX_EXCHANGE_BLOB: usize = 350;
const MAX_EXCHANGE_PLAIN: usize = 300;
/// Longest auth id.
pub const MAX_AUTH_ID: usize = 64;
const NONCE: usize = 12;
const SIG: usize = 64;

/// This device's long-term identity: its auth id and Ed25519 key pair.
#[derive(Clone)]
pub struct Identity {
    seed: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    auth_id: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("auth_id", &self.auth_id)
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The identity of `auth_id` (the device id) with the Ed25519 private key `seed`.
    pub fn new(c: &dyn Crypto, auth_id: &str, seed: [u8; 32]) -> Result<Self, AuthError> {
        let seed = Zeroizing::new(seed);
        let public = c.ed25519_public(&seed)?;
        Ok(Self {
            seed,
            public,
            auth_id: auth_id.to_owned(),
        })
    }

    /// The Ed25519 public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The auth id (the device id).
    pub fn auth_id(&self) -> &str {
        &self.auth_id
    }

    /// Ed25519 over SHA-256 of the concatenation of `parts`.
    pub fn sign(&self, c: &dyn Crypto, parts: &[&[u8]]) -> Result<[u8; 64], AuthError> {
        let digest = c.sha256(parts)?;
        Ok(c.ed25519_sign(&self.seed, &digest)?)
    }
}

/// Whether `sig` is `public`'s hichain signature of the concatenation of `parts`.
pub fn verify(c: &dyn Crypto, public: &[u8; 32], parts: &[&[u8]], sig: &[u8]) -> bool {
    match c.sha256(parts) {
        Ok(d) => c.ed25519_verify(public, &d, sig),
        Err(_) => false,
    }
}

/// The device id a softbus device derives from its Ed25519 public key:
/// SHA-256 over a context string and the key, 64 upper-case hex digits. An id
/// equal to it is proved by proving the key; any other (a softbus_lite
/// device's random id) is only claimed.
pub fn key_id(c: &dyn Crypto, public: &[u8; 32]) -> Result<String, AuthError> {
    Ok(hex::encode_upper(c.sha256(&[KEY_ID_CONTEXT, public])?))
}

/// What [`key_id`] hashes before the key.
pub const KEY_ID_CONTEXT: &[u8] = b"softbus device id\0";

/// Whether `id` is the one [`key_id`] derives from `public`.
pub fn id_is_derived(c: &dyn Crypto, id: &str, public: &[u8; 32]) -> bool {
    key_id(c, public).is_ok_and(|k| k.eq_ignore_ascii_case(id))
}

/// Whether a key learnt in a BIND may be filed under `id` beside `stored`
/// (the key on file for it, if any): the same key, no key yet, or a key that
/// derives the id where the one on file does not (a device proving its own
/// id displaces whoever claimed it first). A key that only claims the id
/// never displaces another.
pub fn may_file(c: &dyn Crypto, id: &str, new: &[u8; 32], stored: Option<&[u8; 32]>) -> bool {
    match stored {
        None => true,
        Some(k) if k == new => true,
        Some(k) => id_is_derived(c, id, new) && !id_is_derived(c, id, k),
    }
}

/// The key on file for `id`, its case ignored (ids are hex: `ab..` and `AB..`
/// name one device).
pub fn filed<'a>(pairings: &'a Pairings, id: &str) -> Option<&'a [u8; 32]> {
    pairings.get(id).or_else(|| {
        pairings
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, v)| v)
    })
}

/// Paired devices: device id (auth id) → its Ed25519 public key.
pub type Pairings = BTreeMap<String, [u8; 32]>;

/// A peer's long-term key, learnt in a BIND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerKey {
    pub auth_id: String,
    pub public: [u8; 32],
}

/// What a confirmed PAKE leaves for a BIND's exchange.
#[derive(Debug, Clone)]
pub struct ExchangeKeys {
    /// The PAKE session key (HKDF bytes 0..16), not the exported key.
    pub session_key: Zeroizing<[u8; 16]>,
    pub own_challenge: [u8; CHALLENGE_LEN],
    pub peer_challenge: [u8; CHALLENGE_LEN],
}

fn seal(c: &mut dyn Crypto, key: &[u8], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, AuthError> {
    let mut nonce = [0u8; NONCE];
    c.random(&mut nonce);
    let mut out = nonce.to_vec();
    c.aes_gcm_seal_aad(key, &nonce, aad, plain, &mut out)?;
    Ok(out)
}

fn open(c: &dyn Crypto, key: &[u8], aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE + 16 {
        return None;
    }
    let nonce: [u8; NONCE] = blob[..NONCE].try_into().ok()?;
    let mut out = Vec::new();
    c.aes_gcm_open_aad(key, &nonce, aad, &blob[NONCE..], &mut out)
        .ok()?;
    Some(out)
}

/// `exAuthInfo` of this side: `{"authId":…, "authPk":…} ‖ signature`, sealed.
fn exchange_blob(
    c: &mut dyn Crypto,
    keys: &ExchangeKeys,
    id: &Identity,
    aad: &[u8],
) -> Result<String, AuthError> {
    let info = format!(
        "{{\"authId\":\"{}\", \"authPk\":\"{}\"}}",
        hex::encode_upper(id.auth_id.as_bytes()),
        hex::encode_upper(id.public)
    );
    let sig = id.sign(
        c,
        &[&keys.own_challenge, &keys.peer_challenge, info.as_bytes()],
    )?;
    let mut plain = info.into_bytes();
    plain.extend_from_slice(&sig);
    Ok(hex::encode_upper(seal(
        c,
        &keys.session_key[..],
        aad,
        &plain,
    )?))
}

/// Opens and checks the other side's `exAuthInfo` (deviceauth_lite's steps and
/// error codes). `sender_first` is the sender's own challenge.
fn read_exchange(
    c: &dyn Crypto,
    keys: &ExchangeKeys,
    aad: &[u8],
    payload: &Value,
    sender_first: &[u8],
    receiver_second: &[u8],
) -> Result<PeerKey, u32> {
    let blob = payload
        .get("exAuthInfo")
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .ok_or(errcode::BAD_BODY)?;
    if blob.len() > MAX_EXCHANGE_BLOB {
        return Err(errcode::BAD_BODY);
    }
    let plain = open(c, &keys.session_key[..], aad, &blob).ok_or(errcode::BAD_SEAL)?;
    if plain.len() > MAX_EXCHANGE_PLAIN {
        return Err(errcode::BAD_SEAL);
    }
    if plain.len() <= SIG {
        return Err(errcode::SHORT_EXCHANGE);
    }
    let (info, sig) = plain.split_at(plain.len() - SIG);
    let v: Value = serde_json::from_slice(info).map_err(|_| errcode::BAD_SEAL)?;
    let auth_id = v
        .get("authId")
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .filter(|b| !b.is_empty() && b.len() <= MAX_AUTH_ID)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(errcode::BAD_SEAL)?;
    // Exactly 32 bytes, though the lite parser takes up to 64.
    let public: [u8; 32] = hex_field(&v, "authPk", 32, false)
        .and_then(|b| b.try_into().ok())
        .ok_or(errcode::BAD_SEAL)?;
    if !verify(c, &public, &[sender_first, receiver_second, info], sig) {
        return Err(errcode::BAD_SIGNATURE);
    }
    Ok(PeerKey { auth_id, public })
}

/// Server: answers EXCHANGE_REQUEST with our key; the peer's key on success,
/// else the hichain error code.
pub fn answer_exchange(
    c: &mut dyn Crypto,
    keys: &ExchangeKeys,
    id: &Identity,
    payload: &Value,
) -> Result<(Vec<u8>, PeerKey), u32> {
    let peer = read_exchange(
        c,
        keys,
        AAD_REQUEST,
        payload,
        &keys.peer_challenge,
        &keys.own_challenge,
    )?;
    let blob = exchange_blob(c, keys, id, AAD_RESPONSE).map_err(|_| errcode::SIGN_FAILED)?;
    let reply = json!({"message": MSG_EXCHANGE_RESPONSE, "payload": {"exAuthInfo": blob}});
    Ok((reply.to_string().into_bytes(), peer))
}

/// Client: the EXCHANGE_REQUEST that follows a confirmed BIND PAKE.
pub fn exchange_request(
    c: &mut dyn Crypto,
    keys: &ExchangeKeys,
    id: &Identity,
) -> Result<Vec<u8>, AuthError> {
    let blob = exchange_blob(c, keys, id, AAD_REQUEST)?;
    Ok(
        json!({"message": MSG_EXCHANGE_REQUEST, "payload": {"exAuthInfo": blob}})
            .to_string()
            .into_bytes(),
    )
}

/// Client: reads EXCHANGE_RESPONSE: the server's key.
pub fn exchange_response(
    c: &dyn Crypto,
    keys: &ExchangeKeys,
    body: &[u8],
) -> Result<PeerKey, AuthError> {
    let (msg, p) = message::envelope(body).map_err(|_| AuthError::Malformed("hichain message"))?;
    if msg == message::MSG_INFORM {
        let code = p.get("errorCode").and_then(Value::as_u64).unwrap_or(0) as u32;
        return Err(AuthError::PeerError(code));
    }
    if msg != MSG_EXCHANGE_RESPONSE {
        return Err(AuthError::Misbehaved("expected EXCHANGE_RESPONSE"));
    }
    read_exchange(
        c,
        keys,
        AAD_RESPONSE,
        &p,
        &keys.peer_challenge,
        &keys.own_challenge,
    )
    .map_err(|code| match code {
        errcode::BAD_SIGNATURE => AuthError::Misbehaved("exchange signature does not verify"),
        _ => AuthError::Misbehaved("exchange does not open"),
    })
}

/// `K = HKDF(shared, salt, "hichain_auth_info", 16)`.
fn sts_key(
    c: &dyn Crypto,
    esk: &[u8; 32],
    peer_epk: &[u8; 32],
    salt: &[u8],
) -> Result<Zeroizing<[u8; 16]>, u32> {
    let shared = Zeroizing::new(
        c.x25519(esk, peer_epk)
            .map_err(|_| errcode::X25519_FAILED)?,
    );
    let mut k = Zeroizing::new([0u8; 16]);
    c.hkdf_sha256(&shared[..], salt, b"hichain_auth_info", &mut k[..])
        .map_err(|_| errcode::HKDF_FAILED)?;
    Ok(k)
}

/// The key handed to softbus: `HKDF(K, salt, "hichain_return_key", 16)`.
fn sts_export(c: &dyn Crypto, k: &[u8; 16], salt: &[u8]) -> Result<Zeroizing<[u8; 16]>, AuthError> {
    let mut out = Zeroizing::new([0u8; 16]);
    c.hkdf_sha256(k, salt, b"hichain_return_key", &mut out[..])?;
    Ok(out)
}

fn arr<const N: usize>(p: &Value, key: &str) -> Option<[u8; N]> {
    hex_field(p, key, N, false).and_then(|b| b.try_into().ok())
}

/// One step of the STS server.
#[derive(Debug)]
pub enum StsStep {
    Reply(Vec<u8>),
    /// Send this; the paired device `auth_id` is authenticated with this key.
    Done(Vec<u8>, Zeroizing<[u8; 16]>),
    /// Send this error; authentication failed with this code.
    Failed(Vec<u8>, u32),
}

#[derive(Debug)]
enum StsState {
    Idle,
    AwaitAck {
        k: Zeroizing<[u8; 16]>,
        salt: [u8; SALT_LEN],
        client_challenge: [u8; CHALLENGE_LEN],
        challenge: [u8; CHALLENGE_LEN],
        epk: [u8; 32],
        client_epk: [u8; 32],
    },
    Finished,
}

/// The STS server (AUTHENTICATE) for one exchange: proves our identity, and
/// accepts the client only if its key is among the pairings under its
/// `TEDeviceId`.
#[derive(Debug)]
pub struct StsServer {
    state: StsState,
}

impl Default for StsServer {
    fn default() -> Self {
        Self::new()
    }
}

impl StsServer {
    pub fn new() -> Self {
        Self {
            state: StsState::Idle,
        }
    }

    /// Handles one message; `peer_id` is the client's `TEDeviceId`.
    pub fn handle(
        &mut self,
        c: &mut dyn Crypto,
        body: &[u8],
        id: &Identity,
        peer_id: &str,
        pairings: &Pairings,
    ) -> Result<StsStep, AuthError> {
        let fail = |code| Ok(StsStep::Failed(message::error_message(code), code));
        let (msg, p) = match message::envelope(body) {
            Ok(x) => x,
            Err(code) => return fail(code),
        };
        match (msg, std::mem::replace(&mut self.state, StsState::Finished)) {
            (MSG_AUTH_START_REQUEST, StsState::Idle) => {
                if p.get("operationCode").and_then(Value::as_u64) != Some(OP_AUTHENTICATE) {
                    return fail(errcode::WRONG_OPERATION);
                }
                if let Err(code) = message::check_version(&p) {
                    return fail(code);
                }
                let (Some(client_challenge), Some(client_epk)) =
                    (arr::<CHALLENGE_LEN>(&p, "challenge"), arr::<32>(&p, "epk"))
                else {
                    return fail(errcode::BAD_BODY);
                };
                let mut salt = [0u8; SALT_LEN];
                let mut challenge = [0u8; CHALLENGE_LEN];
                let mut esk = Zeroizing::new([0u8; 32]);
                c.random(&mut salt);
                c.random(&mut challenge);
                c.random(&mut esk[..]);
                let epk = c.x25519_public(&esk)?;
                let k = match sts_key(c, &esk, &client_epk, &salt) {
                    Ok(k) => k,
                    Err(code) => return fail(code),
                };
                let sig = id.sign(
                    c,
                    &[&epk, id.auth_id.as_bytes(), &client_epk, peer_id.as_bytes()],
                )?;
                let auth_data = seal(c, &k[..], &client_challenge, &sig)?;
                let reply = json!({"authForm": 0, "message": MSG_AUTH_START_RESPONSE, "payload": {
                    "authData": hex::encode_upper(auth_data),
                    "challenge": hex::encode_upper(challenge),
                    "epk": hex::encode_upper(epk),
                    "salt": hex::encode_upper(salt),
                    "version": message::version(),
                    "peerAuthId": hex::encode_upper(id.auth_id.as_bytes()),
                    "peerUserType": "0",
                }});
                self.state = StsState::AwaitAck {
                    k,
                    salt,
                    client_challenge,
                    challenge,
                    epk,
                    client_epk,
                };
                Ok(StsStep::Reply(reply.to_string().into_bytes()))
            }
            (
                MSG_AUTH_ACK_REQUEST,
                StsState::AwaitAck {
                    k,
                    salt,
                    client_challenge,
                    challenge,
                    epk,
                    client_epk,
                },
            ) => {
                let Some(blob) = p
                    .get("authData")
                    .and_then(Value::as_str)
                    .and_then(|h| hex::decode(h).ok())
                else {
                    return fail(errcode::BAD_BODY);
                };
                let Some(sig) = open(c, &k[..], &challenge, &blob) else {
                    return fail(errcode::BAD_SEAL);
                };
                if sig.len() > SIG {
                    return fail(errcode::SIGNATURE_TOO_LONG);
                }
                let known = pairings.get(peer_id);
                let ok = known.is_some_and(|pk| {
                    verify(
                        c,
                        pk,
                        &[&client_epk, peer_id.as_bytes(), &epk, id.auth_id.as_bytes()],
                        &sig,
                    )
                });
                if !ok {
                    return fail(errcode::WRONG_PIN);
                }
                let auth_return = seal(c, &k[..], &client_challenge, &[0u8])?;
                let key = sts_export(c, &k, &salt)?;
                let reply = json!({"authForm": 0, "message": MSG_AUTH_ACK_RESPONSE, "payload": {
                    "authReturn": hex::encode_upper(auth_return),
                }});
                Ok(StsStep::Done(reply.to_string().into_bytes(), key))
            }
            (MSG_AUTH_START_REQUEST | MSG_AUTH_ACK_REQUEST, _) => {
                fail(errcode::CONFIRM_WITHOUT_REQUEST)
            }
            _ => fail(errcode::UNKNOWN_MESSAGE),
        }
    }
}

#[derive(Debug)]
enum StsClientState {
    AwaitStart {
        esk: Zeroizing<[u8; 32]>,
        epk: [u8; 32],
        challenge: [u8; CHALLENGE_LEN],
    },
    AwaitAck {
        k: Zeroizing<[u8; 16]>,
        salt: [u8; SALT_LEN],
        challenge: [u8; CHALLENGE_LEN],
    },
    Finished,
}

/// The STS client: authenticates to a paired device whose key we hold.
#[derive(Debug)]
pub struct StsClient {
    peer_id: String,
    peer_key: [u8; 32],
    state: StsClientState,
}

/// One step of the STS client.
#[derive(Debug)]
pub enum StsClientStep {
    Send(Vec<u8>),
    Done(Zeroizing<[u8; 16]>),
}

impl StsClient {
    /// Starts AUTHENTICATE to `peer_id`, whose paired key is `peer_key`:
    /// the client and the AUTH_START_REQUEST to send.
    pub fn start(
        c: &mut dyn Crypto,
        id: &Identity,
        peer_id: &str,
        peer_key: [u8; 32],
    ) -> Result<(Self, Vec<u8>), AuthError> {
        let mut esk = Zeroizing::new([0u8; 32]);
        let mut challenge = [0u8; CHALLENGE_LEN];
        c.random(&mut esk[..]);
        c.random(&mut challenge);
        let epk = c.x25519_public(&esk)?;
        let msg = json!({"authForm": 0, "message": MSG_AUTH_START_REQUEST, "payload": {
            "challenge": hex::encode_upper(challenge),
            "epk": hex::encode_upper(epk),
            "operationCode": OP_AUTHENTICATE,
            "version": message::version(),
            "pkgName": "default",
            "serviceType": hex::encode_upper("default"),
            "peerAuthId": hex::encode_upper(id.auth_id.as_bytes()),
            "peerUserType": "1",
            "keyLength": "16",
        }});
        Ok((
            Self {
                peer_id: peer_id.to_owned(),
                peer_key,
                state: StsClientState::AwaitStart {
                    esk,
                    epk,
                    challenge,
                },
            },
            msg.to_string().into_bytes(),
        ))
    }

    /// Handles the server's next message.
    pub fn handle(
        &mut self,
        c: &mut dyn Crypto,
        id: &Identity,
        body: &[u8],
    ) -> Result<StsClientStep, AuthError> {
        let (msg, p) =
            message::envelope(body).map_err(|_| AuthError::Malformed("hichain message"))?;
        if msg == message::MSG_INFORM {
            let code = p.get("errorCode").and_then(Value::as_u64).unwrap_or(0) as u32;
            self.state = StsClientState::Finished;
            return Err(if code == errcode::WRONG_PIN {
                AuthError::Refused("the peer does not know this device's key (pair again)")
            } else {
                AuthError::PeerError(code)
            });
        }
        match (
            msg,
            std::mem::replace(&mut self.state, StsClientState::Finished),
        ) {
            (
                MSG_AUTH_START_RESPONSE,
                StsClientState::AwaitStart {
                    esk,
                    epk,
                    challenge,
                },
            ) => {
                message::check_version(&p)
                    .map_err(|_| AuthError::Incompatible("hichain version"))?;
                let (Some(salt), Some(server_challenge), Some(server_epk), Some(blob)) = (
                    arr::<SALT_LEN>(&p, "salt"),
                    arr::<CHALLENGE_LEN>(&p, "challenge"),
                    arr::<32>(&p, "epk"),
                    p.get("authData")
                        .and_then(Value::as_str)
                        .and_then(|h| hex::decode(h).ok()),
                ) else {
                    return Err(AuthError::Malformed("AUTH_START_RESPONSE"));
                };
                let k = sts_key(c, &esk, &server_epk, &salt)
                    .map_err(|_| AuthError::Misbehaved("bad STS public key"))?;
                let sig = open(c, &k[..], &challenge, &blob)
                    .ok_or(AuthError::Misbehaved("STS authData does not open"))?;
                if !verify(
                    c,
                    &self.peer_key,
                    &[
                        &server_epk,
                        self.peer_id.as_bytes(),
                        &epk,
                        id.auth_id.as_bytes(),
                    ],
                    &sig,
                ) {
                    return Err(AuthError::Misbehaved(
                        "the peer's signature does not match its paired key",
                    ));
                }
                let own = id.sign(
                    c,
                    &[
                        &epk,
                        id.auth_id.as_bytes(),
                        &server_epk,
                        self.peer_id.as_bytes(),
                    ],
                )?;
                let auth_data = seal(c, &k[..], &server_challenge, &own)?;
                let msg = json!({"authForm": 0, "message": MSG_AUTH_ACK_REQUEST, "payload": {
                    "authData": hex::encode_upper(auth_data),
                }});
                self.state = StsClientState::AwaitAck { k, salt, challenge };
                Ok(StsClientStep::Send(msg.to_string().into_bytes()))
            }
            (MSG_AUTH_ACK_RESPONSE, StsClientState::AwaitAck { k, salt, challenge }) => {
                let blob = p
                    .get("authReturn")
                    .and_then(Value::as_str)
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or(AuthError::Malformed("AUTH_ACK_RESPONSE"))?;
                // The C client ignores a failure here and goes on with a zero
                // key; a failure is a failure.
                open(c, &k[..], &challenge, &blob)
                    .ok_or(AuthError::Misbehaved("STS authReturn does not open"))?;
                Ok(StsClientStep::Done(sts_export(c, &k, &salt)?))
            }
            _ => Err(AuthError::Misbehaved("unexpected hichain message")),
        }
    }
}
