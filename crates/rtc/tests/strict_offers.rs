//! Offers that break what RFC 8839, 8841 and 8843 require are refused before any
//! of them is used, each with its reason.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_crypto::dtls::DtlsIdentity;
use softbus_rtc::peer::{LocalParams, Peer, PeerError};
use softbus_rtc::sdp::SdpOffer;

const CHROME: &str = include_str!("fixtures/chrome-offer-datachannel.sdp");

fn answer(offer: &str) -> Result<String, PeerError> {
    let id = DtlsIdentity::generate().unwrap();
    let local = LocalParams {
        candidate: "127.0.0.1:50000".parse().unwrap(),
        ice_ufrag: "answ".into(),
        ice_pwd: "answerer-password-000000".into(),
        fingerprint: id.fingerprint("sha-256").unwrap(),
        session_id: 9,
        full_ice: None,
    };
    let offer = SdpOffer::parse(offer)?;
    let mut r = softbus_crypto::OpenSslCrypto::seeded(2);
    let random = Box::new(move |n| softbus_rtc::crypto::ice_chars(&mut r, n));
    Peer::answer(&offer, &local, Box::new(id.factory().unwrap()), random).map(|(_, a)| a)
}

fn edit(from: &str, to: &str) -> String {
    assert!(CHROME.contains(from), "fixture has {from:?}");
    CHROME.replace(from, to)
}

#[test]
fn chromes_offer_is_answered() {
    let a = answer(CHROME).unwrap();
    assert!(a.contains("a=mid:0\r\n"), "{a}");
}

#[test]
fn an_offer_without_ice_pwd_is_refused() {
    let offer = edit("a=ice-pwd:UDNVNQqLe3ssnnKlPzU7ePHx", "a=x-no-pwd");
    assert_eq!(answer(&offer), Err(PeerError::Missing("a=ice-pwd")));
}

#[test]
fn an_sctp_port_outside_1_to_65535_is_refused() {
    for port in ["0", "65536", "70000", "-1", "x"] {
        let offer = edit("a=sctp-port:5000", &format!("a=sctp-port:{port}"));
        assert_eq!(
            answer(&offer),
            Err(PeerError::Invalid("a=sctp-port: not in 1..=65535")),
            "{port}"
        );
    }
    for port in ["1", "65535"] {
        let offer = edit("a=sctp-port:5000", &format!("a=sctp-port:{port}"));
        assert!(answer(&offer).is_ok(), "{port}");
    }
}

#[test]
fn a_mid_with_a_control_character_is_refused() {
    for mid in ["0\u{1}", "\u{7f}", "a\tb", ""] {
        let offer = edit("a=mid:0", &format!("a=mid:{mid}"))
            .replace("a=group:BUNDLE 0", &format!("a=group:BUNDLE {mid}"));
        assert_eq!(
            answer(&offer),
            Err(PeerError::Invalid(
                "a=mid: empty or with a control character"
            )),
            "{mid:?}"
        );
    }
}
