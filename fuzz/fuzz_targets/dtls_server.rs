#![no_main]
//! Arbitrary datagrams into a DTLS server transport (OpenSSL backend) waiting for a handshake.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    softbus_crypto::dtls::fuzz_server(std::time::Instant::now(), data);
});
