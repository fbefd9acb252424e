//! The full (controlling) agent against the ICE-lite agent in virtual time through a
//! seeded link: completes under 20% loss each way with reordering; consent is lost
//! (and the connection declared disconnected) when the lite side goes silent.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::ice::agent::{AgentConfig, IceAgent};
use softbus_rtc::ice::{Credentials, IceEvent, IceLite, IceState, Via};
use softbus_testkit::{Datagram, Driven, LinkConfig, Net, Step};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const C: &str = "10.0.0.1:40000";
const L: &str = "10.0.0.2:50000";

fn agents(seed: u64) -> (IceAgent, IceLite) {
    let mut n = seed;
    let full = IceAgent::new(
        AgentConfig {
            local_ufrag: "full".into(),
            local_pwd: "full-password-000000000".into(),
            remote_ufrag: "lite".into(),
            remote_pwd: "lite-password-000000000".into(),
            tie_breaker: 42,
            priority: 2_130_706_431,
            controlling: true,
        },
        Box::new(move || {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut t = [0u8; 12];
            t[..8].copy_from_slice(&n.to_le_bytes());
            t
        }),
    );
    let lite = IceLite::new(Credentials {
        local_ufrag: "lite".into(),
        local_pwd: "lite-password-000000000".into(),
        remote_ufrag: Some("full".into()),
    });
    (full, lite)
}

/// The full agent on the shared test network.
struct Full<'a>(&'a mut IceAgent, &'a OpenSslCrypto);

impl Driven for Full<'_> {
    fn owns(&self, a: SocketAddr) -> bool {
        a == C.parse().unwrap()
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        let (_, to, payload) = self.0.poll_transmit()?;
        Some(Datagram {
            from: C.parse().unwrap(),
            to,
            payload,
        })
    }
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        let _ = self
            .0
            .handle_stun(now, Via::Host, d.from, &d.payload, self.1);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now, self.1);
    }
}

/// The lite agent, which stops answering from `silent_from`.
struct Lite<'a>(&'a mut IceLite, &'a OpenSslCrypto, Option<Instant>);

impl Driven for Lite<'_> {
    fn owns(&self, a: SocketAddr) -> bool {
        a == L.parse().unwrap()
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        let (to, payload) = self.0.poll_transmit()?;
        Some(Datagram {
            from: L.parse().unwrap(),
            to,
            payload,
        })
    }
    fn handle_datagram(&mut self, now: Instant, d: Datagram) {
        if self.2.is_none_or(|t| now < t) {
            let _ = self.0.handle_stun(now, d.from, &d.payload, self.1);
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }
}

/// Runs `secs` of virtual time with `loss` each way (5 ms delay, up to 40 ms
/// jitter); the lite side goes silent after `silence_after`.
fn run(
    seed: u64,
    loss: f64,
    secs: u64,
    silence_after: Option<Duration>,
) -> (IceAgent, Vec<(Duration, IceEvent)>) {
    let h = OpenSslCrypto::new();
    let (mut full, mut lite) = agents(seed);
    let mut net = Net::new(
        LinkConfig {
            loss,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(40),
        },
        seed,
    );
    let t0 = net.now();
    let deadline = net.deadline(Duration::from_secs(secs));
    full.add_remote_candidate(net.now(), L.parse().unwrap(), &h);
    let silent_from = silence_after.map(|s| t0 + s);
    let mut events = Vec::new();
    loop {
        let step = net.step(
            &mut [
                &mut Full(&mut full, &h),
                &mut Lite(&mut lite, &h, silent_from),
            ],
            deadline,
        );
        while let Some(e) = full.poll_event() {
            events.push((net.now() - t0, e));
        }
        if step == Step::Idle {
            break;
        }
    }
    (full, events)
}

#[test]
fn connects_under_twenty_percent_loss_with_reordering() {
    let mut times = Vec::new();
    for seed in 0..40 {
        let (full, events) = run(seed, 0.2, 60, None);
        assert_eq!(full.state(), IceState::Connected, "seed {seed}: {events:?}");
        let (t, _) = events
            .iter()
            .find(|(_, e)| matches!(e, IceEvent::Selected(..)))
            .unwrap();
        times.push(*t);
    }
    times.sort();
    assert!(
        times[times.len() / 2] < Duration::from_secs(1),
        "median {:?}",
        times[times.len() / 2]
    );
    // the same seed gives the same run
    assert_eq!(run(7, 0.2, 60, None).1, run(7, 0.2, 60, None).1);
}

#[test]
fn consent_loss_disconnects() {
    // Answers for 20 s, then silence: consent (last success about 20 s) expires about 30 s later.
    let (full, events) = run(3, 0.0, 90, Some(Duration::from_secs(20)));
    assert_eq!(full.state(), IceState::Disconnected, "{events:?}");
    let (t, _) = events
        .iter()
        .find(|(_, e)| *e == IceEvent::StateChanged(IceState::Disconnected))
        .unwrap();
    assert!(
        *t >= Duration::from_secs(45) && *t <= Duration::from_secs(55),
        "disconnected at {t:?}"
    );
    // With consent kept, it stays connected for the whole run.
    let (full, _) = run(3, 0.1, 90, None);
    assert_eq!(full.state(), IceState::Connected);
}

#[test]
fn unreachable_candidate_fails() {
    let (full, events) = run(1, 1.0, 30, None);
    // Every pair failed before one was selected: Failed, not Disconnected.
    assert_eq!(full.state(), IceState::Failed, "{events:?}");
}

/// A full agent answers checks from a full peer (and refuses unauthenticated ones with 401).
#[test]
fn full_agent_answers_checks() {
    use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, BINDING};
    let h = OpenSslCrypto::new();
    let (mut full, _) = agents(1);
    let t = Net::perfect().now();
    let from: SocketAddr = L.parse().unwrap();
    let check = |pwd: &str| {
        MessageBuilder::new(Class::Request, BINDING, [3; 12])
            .attribute(attr::USERNAME, b"full:lite")
            .attribute(attr::ICE_CONTROLLED, &1u64.to_be_bytes())
            .message_integrity(&h, pwd.as_bytes())
            .fingerprint()
    };
    full.handle_stun(t, Via::Host, from, &check("full-password-000000000"), &h)
        .unwrap();
    // The response first; then the agent's triggered check on the new pair.
    let (_, to, resp) = full.poll_transmit().unwrap();
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        (to, m.class(), m.xor_mapped_address().unwrap()),
        (from, Class::Success, from)
    );
    m.verify_integrity(&h, b"full-password-000000000").unwrap();
    let (_, _, triggered) = full.poll_transmit().unwrap();
    assert_eq!(Message::parse(&triggered).unwrap().class(), Class::Request);
    assert!(full
        .handle_stun(t, Via::Host, from, &check("wrong"), &h)
        .is_err());
    let (_, _, resp) = full.poll_transmit().unwrap();
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        (m.class(), &m.get(attr::ERROR_CODE).unwrap()[2..4]),
        (Class::Error, &[4u8, 1][..])
    );
}
