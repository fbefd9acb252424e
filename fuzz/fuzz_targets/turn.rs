#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = softbus_crypto::OpenSslCrypto::new();
    softbus_rtc::fuzzing::turn(&c, std::time::Instant::now(), data);
});
