//! DTLS 1.2 handshakes per second: a client and a server transport (OpenSSL, ECDHE-ECDSA
//! P-256) handshaking in memory, both in this process, fingerprint check and SRTP key
//! export included. BENCHMARKS.md compares it with the bound from `openssl speed`.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // bench: fixed inputs; Instant::now is the clock
use criterion::{criterion_group, criterion_main, Criterion};
use softbus_crypto::dtls::DtlsIdentity;
use softbus_rtc::dtls::{DtlsRole, DtlsState, DtlsTransport};
use std::time::Instant;

fn handshake(c: &mut Criterion) {
    let (ia, ib) = (
        DtlsIdentity::generate().unwrap(),
        DtlsIdentity::generate().unwrap(),
    );
    let (fa, fb) = (
        ia.fingerprint("sha-256").unwrap(),
        ib.fingerprint("sha-256").unwrap(),
    );
    let (ca, cb) = (ia.factory().unwrap(), ib.factory().unwrap());
    let mut g = c.benchmark_group("dtls");
    g.sample_size(30);
    g.bench_function("handshake_client_and_server", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut a = DtlsTransport::new(Box::new(ca.clone()), DtlsRole::Client);
            let mut s = DtlsTransport::new(Box::new(cb.clone()), DtlsRole::Server);
            a.set_remote_fingerprint(fb.clone());
            s.set_remote_fingerprint(fa.clone());
            a.set_ice_connected(now, true);
            s.set_ice_connected(now, true);
            for _ in 0..20 {
                while let Some(d) = a.poll_transmit() {
                    s.handle_datagram(now, &d);
                }
                while let Some(d) = s.poll_transmit() {
                    a.handle_datagram(now, &d);
                }
                if a.state() == DtlsState::Connected && s.state() == DtlsState::Connected {
                    break;
                }
            }
            assert_eq!(
                (a.state(), s.state()),
                (DtlsState::Connected, DtlsState::Connected)
            );
        })
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
