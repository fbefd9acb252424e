//! SRTP on 1200-byte RTP packets (docs/adr/0010, BENCHMARKS.md), per profile:
//! softbus's protect and unprotect in place (the node's path: the packet is
//! given away); the raw cipher and MAC of the same backend
//! over the same bytes (what any SRTP must spend); webrtc-rs's `webrtc-srtp`
//! encrypting and decrypting the same packets. Then the primitives from
//! OpenSSL, ring and RustCrypto side by side (why the backend is what it is).
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use softbus_bus::crypto::Crypto;
use softbus_crypto::{OpenSslCrypto, SrtpBackend};
use softbus_rtc::srtp::{Context, Profile, SrtpCrypto};
use webrtc_srtp::protection_profile::ProtectionProfile as Theirs;

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

const PROFILES: [(Profile, Theirs); 4] = [
    (Profile::Aes128CmSha1_80, Theirs::Aes128CmHmacSha1_80),
    (Profile::Aes128CmSha1_32, Theirs::Aes128CmHmacSha1_32),
    (Profile::AeadAes128Gcm, Theirs::AeadAes128Gcm),
    (Profile::AeadAes256Gcm, Theirs::AeadAes256Gcm),
];

fn ours(p: Profile) -> Context {
    Context::new(
        p,
        &vec![7; p.key_len()],
        &vec![9; p.salt_len()],
        Box::new(SrtpBackend::default()),
    )
    .expect("keys of the right length")
}

fn theirs(p: Profile, t: Theirs) -> webrtc_srtp::context::Context {
    webrtc_srtp::context::Context::new(&vec![7; p.key_len()], &vec![9; p.salt_len()], t, None, None)
        .expect("keys of the right length")
}

fn srtp(c: &mut Criterion) {
    for (p, t) in PROFILES {
        let mut g = c.benchmark_group(format!("srtp_1200/{}", p.name()));
        let mut tx = ours(p);
        let mut seq = 0u16;
        g.bench_function("softbus_protect", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    let mut p = packet(seq);
                    p.reserve(16);
                    p
                },
                |pkt| tx.protect_rtp_owned(pkt).expect("protects"),
                BatchSize::SmallInput,
            )
        });
        let (mut tx, mut rx) = (ours(p), ours(p));
        g.bench_function("softbus_unprotect", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    tx.protect_rtp(&packet(seq)).expect("protects")
                },
                |s| rx.unprotect_rtp_owned(s).expect("unprotects"),
                BatchSize::SmallInput,
            )
        });
        // The raw work of one packet with the same backend: the cipher over
        // the payload and, for the CM profiles, HMAC-SHA1 over packet and ROC.
        let backend = SrtpBackend::default();
        let key = vec![7u8; p.key_len()];
        let auth = [5u8; 20];
        let gcm = matches!(p, Profile::AeadAes128Gcm | Profile::AeadAes256Gcm);
        g.bench_function("raw_cipher_and_mac", |b| {
            b.iter_batched(
                || {
                    let mut p = packet(1);
                    p.reserve(16);
                    p
                },
                |mut pkt| {
                    if gcm {
                        let aad: [u8; 12] = pkt[..12].try_into().expect("a header");
                        backend
                            .gcm_seal(&key, &[1; 12], &aad, &mut pkt, 12)
                            .expect("seal");
                    } else {
                        backend
                            .aes_ctr(&key, &[1; 16], &mut pkt[12..])
                            .expect("ctr");
                        backend
                            .hmac_sha1(&auth, &[&pkt, &[0, 0, 0, 0]])
                            .expect("hmac");
                    }
                    pkt
                },
                BatchSize::SmallInput,
            )
        });
        let mut wtx = theirs(p, t);
        g.bench_function("webrtc_srtp_encrypt", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    packet(seq)
                },
                |pkt| wtx.encrypt_rtp(&pkt).expect("encrypts"),
                BatchSize::SmallInput,
            )
        });
        let (mut wtx, mut wrx) = (theirs(p, t), theirs(p, t));
        g.bench_function("webrtc_srtp_decrypt", |b| {
            b.iter_batched(
                || {
                    seq = seq.wrapping_add(1);
                    wtx.encrypt_rtp(&packet(seq)).expect("encrypts")
                },
                |s| wrx.decrypt_rtp(&s).expect("decrypts"),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

fn primitives(c: &mut Criterion) {
    let data = vec![0xabu8; 1200];
    let key16 = [7u8; 16];
    let mut g = c.benchmark_group("primitives_1200");
    let backend = SrtpBackend::default();
    g.bench_function("hmac_sha1_rustcrypto", |b| {
        b.iter(|| backend.hmac_sha1(&[1u8; 20], &[&data]).expect("hmac"))
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
        b.iter(|| backend.aes_ctr(&key16, &[0; 16], &mut d).expect("ctr"))
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
    g.bench_function("aes128_ctr_openssl_reused_ctx", |b| {
        let mut d = data.clone();
        let mut ctx = openssl::cipher_ctx::CipherCtx::new().expect("ctx");
        ctx.encrypt_init(
            Some(openssl::cipher::Cipher::aes_128_ctr()),
            Some(&key16),
            None,
        )
        .expect("init");
        b.iter(|| {
            ctx.encrypt_init(None, None, Some(&[0; 16])).expect("iv");
            let n = d.len();
            ctx.cipher_update_inplace(&mut d, n).expect("update");
        })
    });
    g.bench_function("sha1_openssl_hasher", |b| {
        b.iter(|| openssl::hash::hash(openssl::hash::MessageDigest::sha1(), &data).expect("sha1"))
    });
    g.bench_function("aes128_gcm_ring", |b| {
        let mut out = Vec::with_capacity(1300);
        b.iter(|| {
            out.clear();
            out.extend_from_slice(&data);
            backend
                .gcm_seal(&key16, &[0; 12], &[0; 12], &mut out, 0)
                .expect("seal")
        })
    });
    let ossl = OpenSslCrypto::new();
    g.bench_function("aes128_gcm_openssl", |b| {
        let mut out = Vec::with_capacity(1300);
        b.iter(|| {
            out.clear();
            Crypto::aes_gcm_seal(&ossl, &key16, &[0; 12], &data, &mut out).expect("seal")
        })
    });
    g.finish();
}

criterion_group!(benches, srtp, primitives);
criterion_main!(benches);
