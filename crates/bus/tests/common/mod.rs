//! Shared helpers for the bus integration tests.
#![allow(dead_code)]
use serde_json::Value;

/// The known-answer fixture (copied from the project's shared fixtures; computed by an
/// independent implementation checked against deviceauth_lite).
pub fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/softbus-vectors.json")).expect("fixture is valid JSON")
}

pub fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}
