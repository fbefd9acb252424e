#![no_main]
//! Arbitrary packets as SRTP/SRTCP, and protect/unprotect round trips.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    softbus_rtc::fuzzing::srtp(data, || Box::new(softbus_crypto::SrtpBackend::default()));
});
