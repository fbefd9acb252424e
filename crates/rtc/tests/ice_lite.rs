//! The ICE-lite agent against checks a controlling agent would send (built with the
//! STUN builder), in virtual time: answer, nominate, reject, consent expiry.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap asserts; Instant::now only picks an origin
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::ice::{Credentials, IceError, IceEvent, IceLite, IceState, Via, CONSENT_TIMEOUT};
use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, StunError, BINDING};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LPWD: &str = "lite-password-0123456789";

fn agent() -> IceLite {
    IceLite::new(Credentials {
        local_ufrag: "lite".into(),
        local_pwd: LPWD.into(),
        remote_ufrag: Some("ctl".into()),
    })
}

fn check(tid: u8, username: &str, pwd: &str, nominate: bool, controlling: bool) -> Vec<u8> {
    let c = OpenSslCrypto::new();
    let mut b = MessageBuilder::new(Class::Request, BINDING, [tid; 12])
        .attribute(0xC057, &[0, 1, 0, 10]) // GOOG-NETWORK-INFO, as Chromium sends
        .attribute(attr::USERNAME, username.as_bytes())
        .attribute(attr::PRIORITY, &1_853_817_087u32.to_be_bytes());
    b = if controlling {
        b.attribute(attr::ICE_CONTROLLING, &7u64.to_be_bytes())
    } else {
        b.attribute(attr::ICE_CONTROLLED, &7u64.to_be_bytes())
    };
    if nominate {
        b = b.attribute(attr::USE_CANDIDATE, &[]);
    }
    b.message_integrity(&c, pwd.as_bytes()).fingerprint()
}

fn events(a: &mut IceLite) -> Vec<IceEvent> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

#[test]
fn answers_checks_and_takes_the_nomination() {
    let c = OpenSslCrypto::new();
    let mut a = agent();
    let t0 = Instant::now();
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    a.handle_stun(t0, from, &check(1, "lite:ctl", LPWD, false, true), &c)
        .unwrap();
    let (to, resp) = a.poll_transmit().unwrap();
    assert_eq!(to, from);
    let m = Message::parse(&resp).unwrap();
    assert_eq!((m.class(), m.transaction_id()), (Class::Success, [1; 12]));
    assert_eq!(m.xor_mapped_address().unwrap(), from);
    m.verify_integrity(&c, LPWD.as_bytes()).unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(a.state(), IceState::Checking);
    a.handle_stun(t0, from, &check(2, "lite:ctl", LPWD, true, true), &c)
        .unwrap();
    assert_eq!(
        events(&mut a),
        vec![
            IceEvent::StateChanged(IceState::Checking),
            IceEvent::Selected(Via::Host, from),
            IceEvent::StateChanged(IceState::Connected)
        ]
    );
    assert_eq!(a.selected(), Some(from));
    assert_eq!(a.poll_timeout(), Some(t0 + CONSENT_TIMEOUT));
}

#[test]
fn unauthenticated_checks_get_401_and_change_nothing() {
    let c = OpenSslCrypto::new();
    let mut a = agent();
    let t0 = Instant::now();
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    for (req, err) in [
        (
            check(3, "lite:ctl", "wrong-password", true, true),
            IceError::Stun(StunError::IntegrityFailed),
        ),
        (
            check(4, "lite:someone-else", LPWD, true, true),
            IceError::BadUsername,
        ),
        (
            check(5, "other:ctl", LPWD, true, true),
            IceError::BadUsername,
        ),
    ] {
        assert_eq!(a.handle_stun(t0, from, &req, &c), Err(err));
        let (_, resp) = a.poll_transmit().unwrap();
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.class(), Class::Error);
        assert_eq!(&m.get(attr::ERROR_CODE).unwrap()[2..4], &[4, 1]);
    }
    // controlled peer: 487
    assert_eq!(
        a.handle_stun(t0, from, &check(6, "lite:ctl", LPWD, true, false), &c),
        Err(IceError::RoleConflict)
    );
    let (_, resp) = a.poll_transmit().unwrap();
    assert_eq!(
        &Message::parse(&resp)
            .unwrap()
            .get(attr::ERROR_CODE)
            .unwrap()[2..4],
        &[4, 87]
    );
    // no fingerprint: silently dropped
    let nofp = MessageBuilder::new(Class::Request, BINDING, [7; 12])
        .attribute(attr::USERNAME, b"lite:ctl")
        .message_integrity(&c, LPWD.as_bytes())
        .build();
    assert_eq!(
        a.handle_stun(t0, from, &nofp, &c),
        Err(IceError::Stun(StunError::Missing))
    );
    // responses and garbage are not checks
    assert_eq!(
        a.handle_stun(t0, from, &[0u8; 10], &c),
        Err(IceError::Stun(StunError::NotStun))
    );
    let resp = MessageBuilder::new(Class::Success, BINDING, [8; 12]).fingerprint();
    assert_eq!(
        a.handle_stun(t0, from, &resp, &c),
        Err(IceError::NotBindingRequest)
    );
    assert!(a.poll_transmit().is_none());
    assert_eq!(a.state(), IceState::New);
    assert!(events(&mut a).is_empty());
}

#[test]
fn consent_freshness() {
    let c = OpenSslCrypto::new();
    let mut a = agent();
    let t0 = Instant::now();
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    a.handle_stun(t0, from, &check(1, "lite:ctl", LPWD, true, true), &c)
        .unwrap();
    // refreshed at 20 s: still connected at 45 s, gone at 50 s
    a.handle_stun(
        t0 + Duration::from_secs(20),
        from,
        &check(2, "lite:ctl", LPWD, false, true),
        &c,
    )
    .unwrap();
    a.handle_timeout(t0 + Duration::from_secs(45));
    assert_eq!(a.state(), IceState::Connected);
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    a.handle_timeout(t0 + Duration::from_secs(50));
    assert_eq!(a.state(), IceState::Disconnected);
    // checks from another address do not renew the selected pair's consent
    let mut b = agent();
    b.handle_stun(t0, from, &check(1, "lite:ctl", LPWD, true, true), &c)
        .unwrap();
    b.handle_stun(
        t0 + Duration::from_secs(29),
        "127.0.0.1:50001".parse().unwrap(),
        &check(2, "lite:ctl", LPWD, false, true),
        &c,
    )
    .unwrap();
    b.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(b.state(), IceState::Disconnected);
    b.close();
    assert_eq!(
        b.handle_stun(t0, from, &check(3, "lite:ctl", LPWD, true, true), &c),
        Err(IceError::Closed)
    );
}
