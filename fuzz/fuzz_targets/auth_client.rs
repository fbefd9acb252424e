#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = softbus_crypto::OpenSslCrypto::seeded(1);
    softbus_bus::fuzzing::auth_client(&mut c, data);
});
