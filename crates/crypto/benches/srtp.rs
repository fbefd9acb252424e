//! SRTP's cipher backends on 1200-byte packets (docs/adr/0010): a whole
//! protect per profile, and the primitives from OpenSSL and ring side by side.
use criterion::{criterion_group, criterion_main, Criterion};
use softbus_bus::crypto::Crypto;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::srtp::{Context, Profile, SrtpCrypto};

fn packet(seq: u16) -> Vec<u8> {
    softbus_rtc::rtp::RtpBuilder {
        payload_type: 96,
        sequence: seq,
        ssrc: 1,
        payload: &[0xab; 1188],
        ..Default::default()
    }
    .build()
    .expect("a plain packet builds")
}

fn protect(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_protect_1200");
    for p in [
        Profile::Aes128CmSha1_80,
        Profile::AeadAes128Gcm,
        Profile::AeadAes256Gcm,
    ] {
        let mut ctx = Context::new(
            p,
            &vec![7; p.key_len()],
            &vec![9; p.salt_len()],
            Box::new(OpenSslCrypto::new()),
        )
        .expect("keys of the right length");
        let mut seq = 0u16;
        g.bench_function(p.name(), |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                ctx.protect_rtp(&packet(seq)).expect("protects")
            })
        });
    }
    g.finish();
}

fn primitives(c: &mut Criterion) {
    let data = vec![0xabu8; 1200];
    let key16 = [7u8; 16];
    let mut g = c.benchmark_group("primitives_1200");
    let ossl = OpenSslCrypto::new();
    g.bench_function("hmac_sha1_rustcrypto", |b| {
        b.iter(|| SrtpCrypto::hmac_sha1(&ossl, &[1u8; 20], &[&data]).expect("hmac"))
    });
    let pk = openssl::pkey::PKey::hmac(&[1u8; 20]).expect("key");
    g.bench_function("hmac_sha1_openssl", |b| {
        b.iter(|| {
            let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), &pk)
                .expect("signer");
            s.update(&data).expect("update");
            s.sign_to_vec().expect("sign")
        })
    });
    let rk = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[1u8; 20]);
    g.bench_function("hmac_sha1_ring", |b| {
        b.iter(|| ring::hmac::sign(&rk, &data))
    });
    g.bench_function("aes128_ctr_rustcrypto", |b| {
        let mut d = data.clone();
        b.iter(|| ossl.aes_ctr(&key16, &[0; 16], &mut d).expect("ctr"))
    });
    g.bench_function("aes128_ctr_openssl", |b| {
        let mut d = data.clone();
        b.iter(|| {
            let mut ctx = openssl::cipher_ctx::CipherCtx::new().expect("ctx");
            ctx.encrypt_init(
                Some(openssl::cipher::Cipher::aes_128_ctr()),
                Some(&key16),
                Some(&[0; 16]),
            )
            .expect("init");
            let n = d.len();
            ctx.cipher_update_inplace(&mut d, n).expect("update");
        })
    });
    g.bench_function("aes128_gcm_ring", |b| {
        let mut out = Vec::with_capacity(1300);
        b.iter(|| {
            out.clear();
            out.extend_from_slice(&data);
            ossl.gcm_seal(&key16, &[0; 12], &[0; 12], &mut out, 0)
                .expect("seal")
        })
    });
    g.bench_function("aes128_gcm_openssl", |b| {
        let mut out = Vec::with_capacity(1300);
        b.iter(|| {
            out.clear();
            Crypto::aes_gcm_seal(&ossl, &key16, &[0; 12], &data, &mut out).expect("seal")
        })
    });
    g.finish();
}

criterion_group!(benches, protect, primitives);
criterion_main!(benches);
