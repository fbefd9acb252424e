#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = softbus_crypto::OpenSslCrypto::new();
    softbus_rtc::fuzzing::ice_lite(&c, std::time::Instant::now(), data);
});
