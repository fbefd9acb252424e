#![no_main]
//! RTP and RTCP from a publisher and two viewers into the node core's media
//! relay: rewriting, the packet cache, NACK and PLI handling, sender reports,
//! viewers leaving and the publisher's grace period.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(provider) = softbus_crypto::dtls::fuzz_provider() else {
        return;
    };
    let _ = softbus_node::fuzzing::relay(std::time::Instant::now(), data, provider);
});
