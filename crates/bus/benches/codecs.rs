//! Codec and engine costs, each group with its baseline in the same run:
//! - `session_4048`: sealing/opening a session packet vs raw AES-256-GCM on the same bytes;
//! - `discovery`: answering one request (parse CoAP + JSON, build the reply) vs parsing
//!   the CoAP header alone;
//! - `pake`: one full key agreement (both sides) vs one 2048-bit modular exponentiation.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // benches: fixed inputs; Instant::now only as origin
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use softbus_bus::auth::pake::{self, ClientStep, PakeClient, PakeServer, ServerStep};
use softbus_bus::crypto::Crypto;
use softbus_bus::discovery::publish::PublishInfo;
use softbus_bus::discovery::{Discovery, DiscoveryConfig, LocalDevice};
use softbus_bus::session::DataChannel;
use softbus_crypto::OpenSslCrypto;
use std::net::SocketAddr;
use std::time::Instant;

fn session(c: &mut Criterion) {
    let mut crypto = OpenSslCrypto::seeded(1);
    let key = [7u8; 32];
    let data = vec![0x5a; 4048];
    let mut g = c.benchmark_group("session_4048");
    g.throughput(Throughput::Bytes(4048));
    g.bench_function("baseline_raw_aes256gcm_seal", |b| {
        let mut out = Vec::with_capacity(4100);
        b.iter(|| {
            out.clear();
            crypto
                .aes_gcm_seal(&key, &[1; 12], &data, &mut out)
                .unwrap();
        })
    });
    let mut tx = DataChannel::new(&crypto, &key).unwrap();
    g.bench_function("seal_packet", |b| {
        b.iter(|| tx.seal(&mut crypto, &data).unwrap())
    });
    let mut tx = DataChannel::new(&crypto, &key).unwrap();
    let pkts: Vec<Vec<u8>> = (0..100_000)
        .map(|_| tx.seal(&mut crypto, &data).unwrap())
        .collect();
    let mut rx = DataChannel::new(&crypto, &key).unwrap();
    let mut i = 0;
    g.bench_function("open_packet", |b| {
        b.iter(|| {
            let p = &pkts[i % pkts.len()];
            if i % pkts.len() == 0 {
                rx = DataChannel::new(&crypto, &key).unwrap();
            }
            i += 1;
            let seq = i32::from_le_bytes([p[4], p[5], p[6], p[7]]);
            rx.open(seq, p[16..].to_vec()).unwrap()
        })
    });
    g.finish();
}

fn discovery(c: &mut Criterion) {
    let now = Instant::now();
    let local = LocalDevice {
        device_id: "AB".repeat(32),
        name: "bench".into(),
        device_type: 0xF2,
        ip: [10, 0, 0, 2].into(),
        auth_port: Some(1),
    };
    let mut server = Discovery::new(
        DiscoveryConfig {
            reply_rate: u32::MAX,
            ..Default::default()
        },
        local,
    );
    server
        .publish(Some("m"), &PublishInfo::coap(1, "ddmpCapability"))
        .unwrap();
    let mut client = Discovery::new(
        DiscoveryConfig::default(),
        LocalDevice {
            device_id: "CD".repeat(32),
            name: "phone".into(),
            device_type: 0x0E,
            ip: [10, 0, 0, 3].into(),
            auth_port: None,
        },
    );
    client.start_discovery(now, vec!["10.0.0.2:5684".parse().unwrap()]);
    let req = client.poll_transmit().unwrap().payload;
    let from: SocketAddr = "10.0.0.3:5684".parse().unwrap();
    let mut g = c.benchmark_group("discovery");
    g.bench_function("baseline_coap_header_check", |b| {
        b.iter(|| {
            softbus_bus::coap::Packet::new_checked(&req[..])
                .unwrap()
                .message_id()
        })
    });
    g.bench_function("answer_request", |b| {
        b.iter(|| {
            server.handle_datagram(now, from, &req).unwrap();
            server.poll_transmit().unwrap()
        })
    });
    g.finish();
}

fn pake_bench(c: &mut Criterion) {
    let mut crypto = OpenSslCrypto::seeded(2);
    let p = pake::prime();
    let mut g = c.benchmark_group("pake");
    g.sample_size(20);
    g.bench_function("baseline_one_modexp_2048", |b| {
        b.iter(|| crypto.mod_exp(&p[..200], &[0x77; 32], &p).unwrap())
    });
    g.bench_function("full_key_agreement", |b| {
        b.iter(|| {
            let mut s = PakeServer::new(b"123456");
            let mut cl = PakeClient::new(b"123456");
            let req = cl.start(&mut crypto);
            let ServerStep::Reply(r) = s.handle(&mut crypto, &req, None).unwrap() else {
                unreachable!()
            };
            let ClientStep::Send(conf) = cl.handle(&mut crypto, &r).unwrap() else {
                unreachable!()
            };
            let ServerStep::Done(fin, _) = s.handle(&mut crypto, &conf, None).unwrap() else {
                unreachable!()
            };
            cl.handle(&mut crypto, &fin).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, session, discovery, pake_bench);
criterion_main!(benches);
