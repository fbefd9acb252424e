#![no_main]
//! Length-prefixed datagrams into an answered peer: RFC 7983 demux, ICE-lite, DTLS, SCTP.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    softbus_crypto::dtls::fuzz_peer(std::time::Instant::now(), data);
});
