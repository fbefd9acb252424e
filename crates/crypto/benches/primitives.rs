//! Raw AES-GCM throughput: the baseline the session cipher is compared with.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use softbus_bus::crypto::Crypto;
use softbus_crypto::OpenSslCrypto;

fn gcm(c: &mut Criterion) {
    let crypto = OpenSslCrypto::new();
    let key = [7u8; 32];
    let iv = [1u8; 12];
    let mut g = c.benchmark_group("aes256gcm_seal");
    for size in [64usize, 1024, 4048] {
        let data = vec![0xabu8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, d| {
            let mut out = Vec::with_capacity(size + 32);
            b.iter(|| {
                out.clear();
                crypto
                    .aes_gcm_seal(&key, &iv, d, &mut out)
                    .expect("16-byte key seals");
            })
        });
    }
}

criterion_group!(benches, gcm);
criterion_main!(benches);
