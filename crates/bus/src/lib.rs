//! Sans-IO soft bus engines, wire-compatible with OpenHarmony softbus_lite.
//!
//! - [`coap`]: RFC 7252 message codec (header, token, options, payload marker).
//! - [`discovery`]: softbus_lite's JSON payload, publish/unpublish with the lite error
//!   codes, the responder and the discoverer with a device table.
//! - [`frame`]: the `0xBABEFACE` headers (24-byte auth, 16-byte session, little-endian)
//!   and the AES-GCM packet variants.
//! - [`auth`]: getAuthInfo, the hichain-compatible DL-SPEKE key agreement, VerifyIp and
//!   VerifyDeviceId, as server and as client.
//! - [`session`]: session servers and sessions (open, SendBytes, close).
//! - [`node`]: the [`node::Bus`] facade a node driver runs.
//!
//! Nothing here does I/O, reads a clock or draws randomness by itself: time is an
//! argument (`now`), crypto and randomness come through [`crypto::Crypto`], and TCP
//! connections are named by [`ConnId`]. After any input or command a driver drains
//! `poll_transmit()` and `poll_event()`, then sleeps until `poll_timeout()`.
//!
//! Error policy: every parser returns a typed error, never panics; a malformed
//! packet costs its sender (the datagram is dropped or the connection closed),
//! never the engine or other peers. Every table and queue has a limit.
#![forbid(unsafe_code)]

pub mod auth;
pub mod coap;
pub mod crypto;
pub mod discovery;
pub mod frame;
pub mod fuzzing;
pub mod node;
pub mod session;

pub use softbus_proto::{earliest, ConnId, Datagram, SessionId, Transmit};

/// Shortens an identifier for logs (device ids, keys are never logged whole).
pub fn redact(s: &str) -> String {
    let n = s.chars().count();
    if n <= 8 {
        "…".to_owned()
    } else {
        format!("{}…", s.chars().take(6).collect::<String>())
    }
}
