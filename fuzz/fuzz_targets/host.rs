#![no_main]
//! Datagrams from four addresses into a node's WebRTC host: routing by address
//! and ufrag, two answered peers (one closed), DTLS and SCTP behind them.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    softbus_crypto::dtls::fuzz_host(std::time::Instant::now(), data);
});
