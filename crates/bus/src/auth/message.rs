//! The hichain message envelope both PAKE and the BIND/STS exchanges speak:
//! `{"message":n,"payload":{…}}`, the INFORM error message, the version
//! object, hex fields, and the error codes deviceauth_lite uses.

use serde_json::{json, Value};

pub const CHALLENGE_LEN: usize = 16;
pub const SALT_LEN: usize = 16;

pub const MSG_INFORM: u64 = 0x8080;

/// hichain error codes seen from deviceauth_lite.
pub mod errcode {
    pub const UNKNOWN_MESSAGE: u32 = 5;
    pub const BAD_BODY: u32 = 9;
    pub const UNSUPPORTED_VERSION: u32 = 12;
    pub const NO_256_MOD: u32 = 15;
    pub const WRONG_PIN: u32 = 17;
    pub const BAD_PUBLIC_VALUE: u32 = 19;
    pub const X25519_FAILED: u32 = 21;
    pub const HKDF_FAILED: u32 = 22;
    pub const BAD_SEAL: u32 = 26;
    pub const SHORT_EXCHANGE: u32 = 28;
    pub const BAD_SIGNATURE: u32 = 29;
    pub const SIGN_FAILED: u32 = 30;
    pub const STORE_FAILED: u32 = 31;
    pub const CONFIRM_WITHOUT_REQUEST: u32 = 38;
    pub const WRONG_OPERATION: u32 = 39;
    pub const SIGNATURE_TOO_LONG: u32 = 40;
    /// What a lite client itself sends when it ends an exchange; ours for an
    /// exchange it gives up on without a fault of the peer's (a timeout, a
    /// local error).
    pub const ABORTED: u32 = 2;

    /// What a code means, in words for logs and errors (`None`: unknown).
    pub fn describe(code: u32) -> Option<&'static str> {
        Some(match code {
            ABORTED => "the other side gave up",
            UNKNOWN_MESSAGE => "unknown message",
            BAD_BODY => "malformed message",
            UNSUPPORTED_VERSION => "unsupported version",
            NO_256_MOD => "the empty PIN is refused",
            WRONG_PIN => "wrong PIN",
            BAD_PUBLIC_VALUE => "bad public value",
            BAD_SEAL | BAD_SIGNATURE => "the keys do not match",
            STORE_FAILED => "the key could not be kept",
            WRONG_OPERATION => "refused for this device id",
            _ => return None,
        })
    }

    /// `describe(code)` with the code after it, or the code alone.
    pub fn words(code: u32) -> String {
        match describe(code) {
            Some(w) => format!("{w} (hichain error {code})"),
            None => format!("hichain error {code}"),
        }
    }
}

/// The version object both sides send.
pub fn version() -> Value {
    json!({"currentVersion": "1.0.0", "minVersion": "1.0.0"})
}

/// An INFORM error message, byte-exact as deviceauth_lite writes it.
pub fn error_message(code: u32) -> Vec<u8> {
    format!("{{\"message\":{MSG_INFORM}, \"payload\":{{\"errorCode\":{code}}}}}").into_bytes()
}

/// Reads `{"message":n,"payload":{…}}`.
pub fn envelope(body: &[u8]) -> Result<(u64, Value), u32> {
    let v: Value = serde_json::from_slice(body).map_err(|_| errcode::BAD_BODY)?;
    let m = v
        .get("message")
        .and_then(Value::as_u64)
        .ok_or(errcode::BAD_BODY)?;
    let payload = v.get("payload").cloned().unwrap_or(Value::Null);
    Ok((m, payload))
}

/// A hex field of exactly `len` bytes (either case); big numbers may come shorter and are left-padded.
pub fn hex_field(p: &Value, key: &str, len: usize, pad: bool) -> Option<Vec<u8>> {
    let b = hex::decode(p.get(key)?.as_str()?).ok()?;
    if b.len() == len {
        Some(b)
    } else if pad && b.len() < len {
        let mut v = vec![0u8; len - b.len()];
        v.extend_from_slice(&b);
        Some(v)
    } else {
        None
    }
}

fn version_tuple(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.').map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Checks a peer's version object against ours (1.0.0).
pub fn check_version(p: &Value) -> Result<(), u32> {
    let v = p.get("version").ok_or(errcode::BAD_BODY)?;
    let min = v
        .get("minVersion")
        .and_then(Value::as_str)
        .and_then(version_tuple)
        .ok_or(errcode::BAD_BODY)?;
    if min > (1, 0, 0) {
        return Err(errcode::UNSUPPORTED_VERSION);
    }
    Ok(())
}
