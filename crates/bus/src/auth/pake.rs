//! hichain lite DL-SPEKE (softbus-wire.md §3.4, §9): the math over the RFC 3526
//! 2048-bit MODP group and the four PAKE messages of AUTH_KEY_AGREEMENT.

use super::AuthError;
use crate::crypto::Crypto;
use serde_json::{json, Value};
use zeroize::Zeroizing;

pub use super::message::{
    check_version, envelope, errcode, error_message, hex_field, version, CHALLENGE_LEN, MSG_INFORM,
    SALT_LEN,
};

/// RFC 3526 §3, the 2048-bit MODP group prime (group 14), big-endian hex.
pub const P2048_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);
/// Width of big numbers on the wire.
pub const P_LEN: usize = 256;
/// Secret exponent length of the lite (server) build.
pub const SERVER_ESK_LEN: usize = 28;
/// Secret exponent length of the full build (our client).
pub const CLIENT_ESK_LEN: usize = 32;
/// Length of the key handed to softbus (the auth key).
pub const EXPORT_LEN: usize = 16;

pub const MSG_PAKE_REQUEST: u64 = 0x0001;
pub const MSG_PAKE_RESPONSE: u64 = 0x8001;
pub const MSG_PAKE_CLIENT_CONFIRM: u64 = 0x0002;
pub const MSG_PAKE_SERVER_CONFIRM: u64 = 0x8002;
/// `operationCode` of AUTH_KEY_AGREEMENT.
pub const OP_AUTH_KEY_AGREEMENT: u64 = 6;
/// `operationCode` of BIND: the PAKE, then the long-term keys are exchanged.
pub const OP_BIND: u64 = 1;

/// The prime as bytes.
pub fn prime() -> Vec<u8> {
    hex::decode(P2048_HEX).expect("constant is valid hex")
}

/// `(HKDF(pin, salt, "hichain_speke_base_info", 32))² mod p`.
pub fn base(c: &dyn Crypto, pin: &[u8], salt: &[u8]) -> Result<Vec<u8>, AuthError> {
    let mut h = Zeroizing::new([0u8; 32]);
    c.hkdf_sha256(pin, salt, b"hichain_speke_base_info", &mut h[..])?;
    Ok(c.mod_exp(&h[..], &[2], &prime())?)
}

/// `x ^ esk mod p`, 256 bytes.
pub fn exp(c: &dyn Crypto, x: &[u8], esk: &[u8]) -> Result<Vec<u8>, AuthError> {
    Ok(c.mod_exp(x, esk, &prime())?)
}

/// Whether `1 < v < p − 1` (fixed-width big-endian).
pub fn public_value_ok(v: &[u8]) -> bool {
    if v.len() != P_LEN {
        return false;
    }
    let mut p_minus_1 = prime();
    p_minus_1[P_LEN - 1] -= 1;
    let mut one = [0u8; P_LEN];
    one[P_LEN - 1] = 1;
    v > &one[..] && v < &p_minus_1[..]
}

/// Keys derived from the shared secret.
#[derive(Debug)]
pub struct PakeKeys {
    pub session_key: Zeroizing<[u8; 16]>,
    /// HKDF[16..32] followed by 16 zero bytes (the de-facto protocol).
    pub hmac_key: Zeroizing<[u8; 32]>,
}

/// Derives the PAKE session key and the HMAC key from `shared`.
pub fn derive(c: &dyn Crypto, shared: &[u8], salt: &[u8]) -> Result<PakeKeys, AuthError> {
    let mut okm = Zeroizing::new([0u8; 32]);
    c.hkdf_sha256(shared, salt, b"hichain_speke_sessionkey_info", &mut okm[..])?;
    let mut session_key = Zeroizing::new([0u8; 16]);
    session_key.copy_from_slice(&okm[..16]);
    let mut hmac_key = Zeroizing::new([0u8; 32]);
    hmac_key[..16].copy_from_slice(&okm[16..]);
    Ok(PakeKeys {
        session_key,
        hmac_key,
    })
}

/// Key confirmation: `HMAC(hmac_key, first ‖ second)`; the client's proof puts its
/// own challenge first, the server's proof puts the server challenge first.
pub fn kcf(
    c: &dyn Crypto,
    keys: &PakeKeys,
    first: &[u8],
    second: &[u8],
) -> Result<[u8; 32], AuthError> {
    Ok(c.hmac_sha256(&keys.hmac_key[..], &[first, second])?)
}

/// The 16-byte key handed to softbus: `HKDF(session_key, salt, "hichain_return_key", 16)`.
pub fn export(
    c: &dyn Crypto,
    keys: &PakeKeys,
    salt: &[u8],
) -> Result<Zeroizing<[u8; 16]>, AuthError> {
    let mut out = Zeroizing::new([0u8; EXPORT_LEN]);
    c.hkdf_sha256(
        &keys.session_key[..],
        salt,
        b"hichain_return_key",
        &mut out[..],
    )?;
    Ok(out)
}

/// One hichain message out of the server engine.
#[derive(Debug)]
pub enum ServerStep {
    /// Send this and keep going.
    Reply(Vec<u8>),
    /// Send this; the key agreement succeeded with this exported key. For a
    /// BIND the same exchange then expects EXCHANGE_REQUEST
    /// ([`PakeServer::awaits_exchange`]).
    Done(Vec<u8>, Zeroizing<[u8; 16]>),
    /// Send this; a BIND's exchange succeeded: the peer's auth id and Ed25519 key.
    Exchanged(Vec<u8>, super::hichain::PeerKey),
    /// Send this error; the exchange failed with this hichain code.
    Failed(Vec<u8>, u32),
}

#[derive(Debug)]
enum ServerState {
    Idle,
    AwaitConfirm {
        salt: [u8; SALT_LEN],
        challenge: [u8; CHALLENGE_LEN],
        esk: Zeroizing<Vec<u8>>,
        bind: bool,
    },
    /// BIND: the PAKE is confirmed; the exchange comes next.
    AwaitExchange(super::hichain::ExchangeKeys),
    Finished,
}

/// The PAKE server (softbus_lite's `HC_ACCESSORY` role) for one exchange.
#[derive(Debug)]
pub struct PakeServer {
    pin: Zeroizing<Vec<u8>>,
    state: ServerState,
}

impl PakeServer {
    /// A server that authenticates peers knowing `pin`.
    pub fn new(pin: &[u8]) -> Self {
        Self {
            pin: Zeroizing::new(pin.to_vec()),
            state: ServerState::Idle,
        }
    }

    /// Whether this is a BIND whose PAKE is confirmed and whose exchange is due.
    pub fn awaits_exchange(&self) -> bool {
        matches!(self.state, ServerState::AwaitExchange(_))
    }

    /// Handles one hichain message from the client. `identity` answers a BIND
    /// (without one, BIND is refused as an unknown operation).
    pub fn handle(
        &mut self,
        c: &mut dyn Crypto,
        body: &[u8],
        identity: Option<&super::hichain::Identity>,
    ) -> Result<ServerStep, AuthError> {
        let fail = |code| Ok(ServerStep::Failed(error_message(code), code));
        let (msg, p) = match envelope(body) {
            Ok(x) => x,
            Err(code) => return fail(code),
        };
        match msg {
            MSG_PAKE_REQUEST => {
                if let Err(code) = check_version(&p) {
                    return fail(code);
                }
                if p.get("support256mod").and_then(Value::as_bool) != Some(true) {
                    return fail(errcode::NO_256_MOD);
                }
                let bind = match p.get("operationCode").and_then(Value::as_u64) {
                    Some(OP_AUTH_KEY_AGREEMENT) => false,
                    Some(OP_BIND) if identity.is_some() => true,
                    _ => return fail(errcode::WRONG_OPERATION),
                };
                let mut salt = [0u8; SALT_LEN];
                let mut challenge = [0u8; CHALLENGE_LEN];
                let mut esk = Zeroizing::new(vec![0u8; SERVER_ESK_LEN]);
                c.random(&mut salt);
                c.random(&mut challenge);
                c.random(&mut esk);
                let base = Zeroizing::new(base(c, &self.pin, &salt)?);
                let epk = exp(c, &base, &esk)?;
                let reply = json!({"message": MSG_PAKE_RESPONSE, "payload": {
                    "version": version(),
                    "challenge": hex::encode_upper(challenge),
                    "salt": hex::encode_upper(salt),
                    "epk": hex::encode_upper(&epk),
                }});
                self.state = ServerState::AwaitConfirm {
                    salt,
                    challenge,
                    esk,
                    bind,
                };
                Ok(ServerStep::Reply(reply.to_string().into_bytes()))
            }
            MSG_PAKE_CLIENT_CONFIRM => {
                let ServerState::AwaitConfirm {
                    salt,
                    challenge,
                    esk,
                    bind,
                } = std::mem::replace(&mut self.state, ServerState::Finished)
                else {
                    return fail(errcode::CONFIRM_WITHOUT_REQUEST);
                };
                let (Some(peer_kcf), Some(peer_challenge), Some(peer_epk)) = (
                    hex_field(&p, "kcfData", 32, false),
                    hex_field(&p, "challenge", CHALLENGE_LEN, false),
                    hex_field(&p, "epk", P_LEN, true),
                ) else {
                    return fail(errcode::BAD_BODY);
                };
                if !public_value_ok(&peer_epk) {
                    return fail(errcode::BAD_PUBLIC_VALUE);
                }
                let shared = Zeroizing::new(exp(c, &peer_epk, &esk)?);
                let keys = derive(c, &shared, &salt)?;
                let expect = kcf(c, &keys, &peer_challenge, &challenge)?;
                if !c.ct_eq(&expect, &peer_kcf) {
                    return fail(errcode::WRONG_PIN);
                }
                let proof = kcf(c, &keys, &challenge, &peer_challenge)?;
                let key = export(c, &keys, &salt)?;
                let reply = json!({"message": MSG_PAKE_SERVER_CONFIRM, "payload": {"kcfData": hex::encode_upper(proof)}});
                if bind {
                    self.state = ServerState::AwaitExchange(super::hichain::ExchangeKeys {
                        session_key: keys.session_key.clone(),
                        own_challenge: challenge,
                        peer_challenge: peer_challenge.try_into().unwrap_or_default(),
                    });
                }
                Ok(ServerStep::Done(reply.to_string().into_bytes(), key))
            }
            super::hichain::MSG_EXCHANGE_REQUEST => {
                let ServerState::AwaitExchange(keys) =
                    std::mem::replace(&mut self.state, ServerState::Finished)
                else {
                    return fail(errcode::CONFIRM_WITHOUT_REQUEST);
                };
                let Some(id) = identity else {
                    return fail(errcode::WRONG_OPERATION);
                };
                match super::hichain::answer_exchange(c, &keys, id, &p) {
                    Ok((reply, peer)) => Ok(ServerStep::Exchanged(reply, peer)),
                    Err(code) => fail(code),
                }
            }
            _ => fail(errcode::UNKNOWN_MESSAGE),
        }
    }
}

#[derive(Debug)]
enum ClientState {
    Start,
    AwaitResponse {
        challenge: [u8; CHALLENGE_LEN],
        esk: Zeroizing<Vec<u8>>,
    },
    AwaitConfirm {
        keys: PakeKeys,
        challenge: [u8; CHALLENGE_LEN],
        peer_challenge: Vec<u8>,
        salt: Vec<u8>,
    },
    Finished,
}

/// One hichain message out of the client engine.
#[derive(Debug)]
pub enum ClientStep {
    /// Send this and wait for the next message.
    Send(Vec<u8>),
    /// The key agreement succeeded: the exported key, and what a BIND's
    /// exchange is sealed and signed with.
    Done(Zeroizing<[u8; 16]>, super::hichain::ExchangeKeys),
}

/// The PAKE client (the phone's role).
#[derive(Debug)]
pub struct PakeClient {
    pin: Zeroizing<Vec<u8>>,
    op: u64,
    state: ClientState,
}

impl PakeClient {
    /// A client proving knowledge of `pin` for AUTH_KEY_AGREEMENT (no pairing).
    pub fn new(pin: &[u8]) -> Self {
        Self::with_operation(pin, OP_AUTH_KEY_AGREEMENT)
    }

    /// A client for `op`: [`OP_AUTH_KEY_AGREEMENT`] or [`OP_BIND`].
    pub fn with_operation(pin: &[u8], op: u64) -> Self {
        Self {
            pin: Zeroizing::new(pin.to_vec()),
            op,
            state: ClientState::Start,
        }
    }

    /// The PAKE_REQUEST that starts the exchange.
    pub fn start(&mut self, c: &mut dyn Crypto) -> Vec<u8> {
        let mut challenge = [0u8; CHALLENGE_LEN];
        let mut esk = Zeroizing::new(vec![0u8; CLIENT_ESK_LEN]);
        c.random(&mut challenge);
        c.random(&mut esk);
        self.state = ClientState::AwaitResponse { challenge, esk };
        json!({"message": MSG_PAKE_REQUEST, "payload": {
            "version": version(), "support256mod": true, "operationCode": self.op,
        }})
        .to_string()
        .into_bytes()
    }

    /// Handles the server's next message.
    pub fn handle(&mut self, c: &mut dyn Crypto, body: &[u8]) -> Result<ClientStep, AuthError> {
        let (msg, p) = envelope(body).map_err(|_| AuthError::Malformed("hichain message"))?;
        if msg == MSG_INFORM {
            let code = p.get("errorCode").and_then(Value::as_u64).unwrap_or(0) as u32;
            self.state = ClientState::Finished;
            return Err(if code == errcode::WRONG_PIN {
                AuthError::WrongPin
            } else {
                AuthError::PeerError(code)
            });
        }
        match (
            msg,
            std::mem::replace(&mut self.state, ClientState::Finished),
        ) {
            (MSG_PAKE_RESPONSE, ClientState::AwaitResponse { challenge, esk }) => {
                check_version(&p).map_err(|_| AuthError::Incompatible("hichain version"))?;
                let (Some(salt), Some(peer_challenge), Some(peer_epk)) = (
                    hex_field(&p, "salt", SALT_LEN, false),
                    hex_field(&p, "challenge", CHALLENGE_LEN, false),
                    hex_field(&p, "epk", P_LEN, true),
                ) else {
                    return Err(AuthError::Malformed("PAKE response"));
                };
                if !public_value_ok(&peer_epk) {
                    return Err(AuthError::Misbehaved("server public value out of range"));
                }
                let b = Zeroizing::new(base(c, &self.pin, &salt)?);
                let epk = exp(c, &b, &esk)?;
                let shared = Zeroizing::new(exp(c, &peer_epk, &esk)?);
                let keys = derive(c, &shared, &salt)?;
                let proof = kcf(c, &keys, &challenge, &peer_challenge)?;
                let msg = json!({"message": MSG_PAKE_CLIENT_CONFIRM, "payload": {
                    "kcfData": hex::encode_upper(proof),
                    "challenge": hex::encode_upper(challenge),
                    "epk": hex::encode_upper(&epk),
                }});
                self.state = ClientState::AwaitConfirm {
                    keys,
                    challenge,
                    peer_challenge,
                    salt,
                };
                Ok(ClientStep::Send(msg.to_string().into_bytes()))
            }
            (
                MSG_PAKE_SERVER_CONFIRM,
                ClientState::AwaitConfirm {
                    keys,
                    challenge,
                    peer_challenge,
                    salt,
                },
            ) => {
                let proof = hex_field(&p, "kcfData", 32, false)
                    .ok_or(AuthError::Malformed("server confirm"))?;
                let expect = kcf(c, &keys, &peer_challenge, &challenge)?;
                if !c.ct_eq(&expect, &proof) {
                    return Err(AuthError::WrongPin);
                }
                let exchange = super::hichain::ExchangeKeys {
                    session_key: keys.session_key.clone(),
                    own_challenge: challenge,
                    peer_challenge: peer_challenge.try_into().unwrap_or_default(),
                };
                Ok(ClientStep::Done(export(c, &keys, &salt)?, exchange))
            }
            _ => Err(AuthError::Misbehaved("unexpected hichain message")),
        }
    }
}
