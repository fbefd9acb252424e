//! Shared helpers for the bus integration tests.
#![allow(dead_code, clippy::unwrap_used)]
use serde_json::Value;

/// The known-answer fixture (copied from the project's shared fixtures; computed by an
/// independent implementation checked against deviceauth_lite).
pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/softbus-vectors.json"))
        .expect("fixture is valid JSON")
}

pub fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

use softbus_bus::crypto::{Crypto, CryptoError, GcmKey};
use softbus_crypto::OpenSslCrypto;
use std::collections::VecDeque;

/// OpenSSL crypto whose random bytes come from a script (to replay known answers).
pub struct ScriptedCrypto {
    inner: OpenSslCrypto,
    script: VecDeque<Vec<u8>>,
}

impl ScriptedCrypto {
    pub fn new(script: Vec<Vec<u8>>) -> Self {
        Self {
            inner: OpenSslCrypto::new(),
            script: script.into(),
        }
    }
}

impl Crypto for ScriptedCrypto {
    fn gcm_key(&self, k: &[u8]) -> Result<Box<dyn GcmKey>, CryptoError> {
        self.inner.gcm_key(k)
    }
    fn aes_gcm_seal(
        &self,
        k: &[u8],
        iv: &[u8; 12],
        p: &[u8],
        o: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.inner.aes_gcm_seal(k, iv, p, o)
    }
    fn aes_gcm_open(
        &self,
        k: &[u8],
        iv: &[u8; 12],
        s: &[u8],
        o: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.inner.aes_gcm_open(k, iv, s, o)
    }
    fn hmac_sha256(&self, k: &[u8], p: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
        self.inner.hmac_sha256(k, p)
    }
    fn hkdf_sha256(&self, i: &[u8], s: &[u8], n: &[u8], o: &mut [u8]) -> Result<(), CryptoError> {
        self.inner.hkdf_sha256(i, s, n, o)
    }
    fn mod_exp(&self, b: &[u8], e: &[u8], m: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.mod_exp(b, e, m)
    }
    fn aes_gcm_seal_aad(
        &self,
        k: &[u8],
        iv: &[u8; 12],
        a: &[u8],
        p: &[u8],
        o: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.inner.aes_gcm_seal_aad(k, iv, a, p, o)
    }
    fn aes_gcm_open_aad(
        &self,
        k: &[u8],
        iv: &[u8; 12],
        a: &[u8],
        s: &[u8],
        o: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.inner.aes_gcm_open_aad(k, iv, a, s, o)
    }
    fn sha256(&self, p: &[&[u8]]) -> Result<[u8; 32], CryptoError> {
        self.inner.sha256(p)
    }
    fn ed25519_public(&self, s: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        self.inner.ed25519_public(s)
    }
    fn ed25519_sign(&self, s: &[u8; 32], m: &[u8]) -> Result<[u8; 64], CryptoError> {
        self.inner.ed25519_sign(s, m)
    }
    fn ed25519_verify(&self, p: &[u8; 32], m: &[u8], s: &[u8]) -> bool {
        self.inner.ed25519_verify(p, m, s)
    }
    fn x25519_public(&self, s: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        self.inner.x25519_public(s)
    }
    fn x25519(&self, s: &[u8; 32], p: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
        self.inner.x25519(s, p)
    }
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        self.inner.ct_eq(a, b)
    }
    fn random(&mut self, buf: &mut [u8]) {
        let next = self
            .script
            .pop_front()
            .expect("script has enough random draws");
        assert_eq!(
            next.len(),
            buf.len(),
            "scripted draw has the requested length"
        );
        buf.copy_from_slice(&next);
    }
}

use softbus_bus::auth::{AuthClient, AuthError, Authenticated};
use softbus_bus::node::Bus;
use softbus_bus::{ConnId, Transmit};
use std::time::Instant;

/// How a client's key agreement with a [`Bus`] ended.
#[derive(Debug)]
pub struct Exchange {
    /// The client's result; `None` when the bus went quiet before it finished.
    pub result: Option<Result<Authenticated, AuthError>>,
    /// Whether the bus closed the connection.
    pub closed: bool,
    /// Everything else the bus said meanwhile (other connections, datagrams).
    pub other: Vec<Transmit>,
}

/// Runs `client` against `bus` on its accepted auth connection `conn`: each
/// round the client speaks and the bus answers, until the client finishes or
/// fails, the bus closes the connection, or a round brings no answer.
pub fn exchange(
    bus: &mut Bus,
    now: Instant,
    conn: ConnId,
    client: &mut AuthClient,
    c: &mut dyn Crypto,
) -> Exchange {
    let mut out = Exchange {
        result: None,
        closed: false,
        other: Vec::new(),
    };
    loop {
        while let Some(bytes) = client.poll_transmit() {
            bus.handle_tcp_data(now, conn, &bytes)
                .expect("the bus takes the client's bytes");
        }
        let mut replies = Vec::new();
        while let Some(t) = bus.poll_transmit() {
            match t {
                Transmit::Tcp { conn: x, bytes } if x == conn => replies.push(bytes),
                Transmit::Close { conn: x } if x == conn => out.closed = true,
                other => out.other.push(other),
            }
        }
        let quiet = replies.is_empty();
        for r in replies {
            match client.handle_data(c, &r) {
                Ok(None) => {}
                Ok(Some(a)) => {
                    out.result = Some(Ok(a));
                    return out;
                }
                Err(e) => {
                    out.result = Some(Err(e));
                    return out;
                }
            }
        }
        if quiet || out.closed {
            return out;
        }
    }
}
