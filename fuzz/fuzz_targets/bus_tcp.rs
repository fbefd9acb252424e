#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    softbus_bus::fuzzing::bus_tcp(std::time::Instant::now(), Box::new(softbus_crypto::OpenSslCrypto::seeded(1)), data);
});
