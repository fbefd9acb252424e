//! Pairing (hichain BIND) and paired authentication (STS), issue 7 item 1, at
//! the engine level: a client pairs with the PIN, then authenticates with no
//! PIN; an unpaired device, a wrong PIN, a forged server and a second key for
//! a paired id are all refused.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
mod common;

use softbus_bus::auth::hichain::{Identity, Pairings, PeerKey};
use softbus_bus::auth::{
    AuthClient, AuthError, AuthMethod, Authenticated, ClientAuth, LocalAuthInfo, PinPolicy,
};
use softbus_bus::crypto::Crypto;
use softbus_bus::node::{Bus, BusConfig, BusEvent, Listener, LocalConfig};
use softbus_bus::{ConnId, Transmit};
use softbus_crypto::OpenSslCrypto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

const NODE: &str = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB";
const PHONE: &str = "CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD";

fn node() -> Bus {
    let mut b = Bus::new(
        BusConfig {
            pin: PinPolicy::pin("246810"),
            ..Default::default()
        },
        LocalConfig {
            device_id: NODE.into(),
            name: "node".into(),
            device_type: 0xF2,
            ip: [10, 0, 0, 2].into(),
        },
        Box::new(OpenSslCrypto::seeded(3)),
    );
    b.set_ports(40001, 40002);
    b.set_identity([1; 32]).unwrap();
    b
}

fn identity(id: &str, seed: u8) -> Arc<Identity> {
    Arc::new(Identity::new(&OpenSslCrypto::new(), id, [seed; 32]).unwrap())
}

fn local(id: &str) -> LocalAuthInfo {
    LocalAuthInfo {
        device_id: id.into(),
        device_name: "phone".into(),
        device_type: "DEV_L1".into(),
        auth_port: 0,
        session_port: 0,
    }
}

/// Runs `client` against the node on a new connection `conn` from 10.0.0.`host`:
/// the client's result, and whether the node closed the connection.
fn run(
    b: &mut Bus,
    conn: u64,
    host: u8,
    mut client: AuthClient,
) -> (Result<Authenticated, AuthError>, bool) {
    let now = Instant::now();
    let conn = ConnId(conn);
    b.handle_accept(
        now,
        conn,
        Listener::Auth,
        SocketAddr::from(([10, 0, 0, host], 40000)),
    )
    .unwrap();
    let mut c = OpenSslCrypto::seeded(u64::from(host) + conn.0);
    let x = common::exchange(b, now, conn, &mut client, &mut c);
    let result = x.result.unwrap_or(Err(AuthError::Misbehaved("no answer")));
    (result, x.closed)
}

fn pair(pin: &str, who: &str, id: &Arc<Identity>) -> AuthClient {
    AuthClient::with_auth(
        local(who),
        ClientAuth::Pair {
            pin: Zeroizing::new(pin.as_bytes().to_vec()),
            identity: id.clone(),
        },
        7,
    )
}

fn paired(who: &str, id: &Arc<Identity>, node_key: [u8; 32]) -> AuthClient {
    let mut p = Pairings::new();
    p.insert(NODE.into(), node_key);
    AuthClient::with_auth(
        local(who),
        ClientAuth::Paired {
            identity: id.clone(),
            pairings: Arc::new(p),
        },
        9,
    )
}

fn events(b: &mut Bus) -> Vec<BusEvent> {
    std::iter::from_fn(|| b.poll_event()).collect()
}

#[test]
fn pair_with_the_pin_then_authenticate_without_it() {
    let mut b = node();
    let node_key = *b.identity().unwrap().public();
    let phone = identity(PHONE, 5);
    let (r, _) = run(&mut b, 1, 3, pair("246810", PHONE, &phone));
    let a = r.unwrap();
    // Each side holds the other's key, under the id it announced.
    assert_eq!(
        a.paired,
        Some(PeerKey {
            auth_id: NODE.into(),
            public: node_key
        })
    );
    assert_eq!(b.pairings().get(PHONE), Some(phone.public()));
    let ev = events(&mut b);
    assert!(ev.iter().any(
        |e| matches!(e, BusEvent::Paired { device_id, public_key, .. }
            if device_id == PHONE && public_key == phone.public())
    ));
    assert!(ev
        .iter()
        .any(|e| matches!(e, BusEvent::PeerVerified { .. })));

    // Later, on a new connection: STS, no PIN.
    let (r, closed) = run(&mut b, 2, 3, paired(PHONE, &phone, node_key));
    let a = r.unwrap();
    assert_eq!(a.method, AuthMethod::Paired);
    assert_eq!(a.peer.device_id, NODE);
    assert!(!closed);
    // Both sides hold the same 16-byte key: the VerifyIp exchange under it
    // succeeded (PeerVerified on the node).
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, BusEvent::PeerVerified { .. })));
}

#[test]
fn an_unpaired_device_is_refused_and_the_pin_is_not_charged() {
    let mut b = node();
    let node_key = *b.identity().unwrap().public();
    let stranger = identity(PHONE, 6);
    for i in 0..6 {
        let (r, closed) = run(&mut b, 10 + i, 4, paired(PHONE, &stranger, node_key));
        assert!(matches!(r, Err(AuthError::Refused(_))), "{r:?}");
        assert!(closed);
    }
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, BusEvent::PakeFailed { code: 17, .. })));
    // Six STS refusals did not lock this address out of the PIN.
    let (r, _) = run(&mut b, 20, 4, pair("246810", PHONE, &stranger));
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn a_wrong_pin_pairs_nothing() {
    let mut b = node();
    let phone = identity(PHONE, 5);
    let (r, closed) = run(&mut b, 1, 3, pair("135790", PHONE, &phone));
    assert_eq!(r.unwrap_err(), AuthError::WrongPin);
    assert!(closed);
    assert!(b.pairings().is_empty());
    assert!(!events(&mut b)
        .iter()
        .any(|e| matches!(e, BusEvent::Paired { .. })));
}

#[test]
fn a_forged_node_key_is_caught_by_the_client() {
    let mut b = node();
    let phone = identity(PHONE, 5);
    let (r, _) = run(&mut b, 1, 3, pair("246810", PHONE, &phone));
    r.unwrap();
    // The client believes the node has another key: the node's signature fails.
    let (r, _) = run(
        &mut b,
        2,
        3,
        paired(PHONE, &phone, *identity(NODE, 9).public()),
    );
    assert!(matches!(r, Err(AuthError::Misbehaved(_))), "{r:?}");
}

#[test]
fn a_second_key_for_a_paired_id_is_refused() {
    let mut b = node();
    let phone = identity(PHONE, 5);
    run(&mut b, 1, 3, pair("246810", PHONE, &phone)).0.unwrap();
    // Someone with the PIN claims the phone's id with another key.
    let thief = identity(PHONE, 8);
    let (r, closed) = run(&mut b, 2, 5, pair("246810", PHONE, &thief));
    assert_eq!(r.unwrap_err(), AuthError::PeerError(31));
    assert!(closed);
    assert_eq!(b.pairings().get(PHONE), Some(phone.public()));
}

#[test]
fn an_id_other_than_the_announced_one_is_refused() {
    let mut b = node();
    // Announces PHONE on getAuthInfo but signs its key as NODE's id.
    let liar = identity(NODE, 5);
    let (r, _) = run(&mut b, 1, 3, pair("246810", PHONE, &liar));
    assert_eq!(r.unwrap_err(), AuthError::PeerError(26));
    assert!(b.pairings().is_empty());
}

#[test]
fn unpaired_devices_authenticate_no_more() {
    let mut b = node();
    let node_key = *b.identity().unwrap().public();
    let phone = identity(PHONE, 5);
    run(&mut b, 1, 3, pair("246810", PHONE, &phone)).0.unwrap();
    assert!(b.unpair(PHONE));
    let (r, closed) = run(&mut b, 2, 3, paired(PHONE, &phone, node_key));
    assert!(matches!(r, Err(AuthError::Refused(_))), "{r:?}");
    assert!(closed);
}

#[test]
fn the_pin_only_path_stays_for_lite_peers() {
    let mut b = node();
    let (r, _) = run(&mut b, 1, 3, AuthClient::new(local(PHONE), b"246810", 3));
    let a = r.unwrap();
    assert_eq!(a.method, AuthMethod::Pin);
    assert!(a.paired.is_none());
    assert!(b.pairings().is_empty());
}

/// The signatures are hichain's: Ed25519 over SHA-256 of the signed bytes.
#[test]
fn signatures_are_over_the_sha256_digest() {
    let c = OpenSslCrypto::new();
    let id = identity(PHONE, 5);
    let sig = id.sign(&c, &[b"ab", b"cd"]).unwrap();
    let digest = c.sha256(&[b"abcd"]).unwrap();
    assert!(c.ed25519_verify(id.public(), &digest, &sig));
    assert!(!c.ed25519_verify(id.public(), b"abcd", &sig));
}

/// getAuthInfo with a TEData other than the TEDeviceId: STS would prove one id
/// while sessions show the other, so it is refused (as is a BIND).
#[test]
fn a_device_cannot_show_another_id_than_it_proves() {
    use softbus_bus::frame::{auth_plain, Module};
    let mut b = node();
    let node_key = *b.identity().unwrap().public();
    let phone = identity(PHONE, 5);
    run(&mut b, 1, 3, pair("246810", PHONE, &phone)).0.unwrap();
    let now = Instant::now();
    let conn = ConnId(2);
    b.handle_accept(
        now,
        conn,
        Listener::Auth,
        SocketAddr::from(([10, 0, 0, 3], 40000)),
    )
    .unwrap();
    // TEData names a victim, TEDeviceId the paired phone.
    let hello = format!(
        r#"{{"TECmd":"getAuthInfo","TEData":"{}","TEDeviceId":"{PHONE}"}}"#,
        "EE".repeat(32)
    );
    b.handle_tcp_data(
        now,
        conn,
        &auth_plain(Module::TRUST_ENGINE, 9, 0, hello.as_bytes()),
    )
    .unwrap();
    let mut c = OpenSslCrypto::new();
    let (_, start) =
        softbus_bus::auth::hichain::StsClient::start(&mut c, &phone, NODE, node_key).unwrap();
    let _ = b.handle_tcp_data(now, conn, &auth_plain(Module::AUTH_SDK, 9, 0, &start));
    let mut closed = false;
    while let Some(t) = b.poll_transmit() {
        if matches!(t, Transmit::Close { conn: x } if x == conn) {
            closed = true;
        }
    }
    assert!(closed, "refused");
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, BusEvent::PakeFailed { code: 9, .. })));
}

/// After softbus_lite's `SetCommonDeviceInfo(DEVNAME)` the node's VerifyIp
/// reply carries the name set, as the real lite's does, not the one it started
/// with.
#[test]
fn verify_ip_carries_the_name_set_by_set_common_device_info() {
    use softbus_bus::discovery::publish::{PublishInfo, KEY_DEVNAME};
    let mut b = node();
    b.discovery_mut()
        .publish(Some("m"), &PublishInfo::coap(1, "ddmpCapability"))
        .unwrap();
    let before = run(&mut b, 31, 5, AuthClient::new(local(PHONE), b"246810", 3))
        .0
        .unwrap();
    assert_eq!(before.peer.device_name, "node");
    b.set_common_device_info(&[(KEY_DEVNAME, "kitchen-lite")])
        .unwrap();
    let after = run(&mut b, 32, 5, AuthClient::new(local(PHONE), b"246810", 4))
        .0
        .unwrap();
    assert_eq!(after.peer.device_name, "kitchen-lite");
    assert_eq!(b.discovery().local().name, "kitchen-lite");
}

/// A softbus device's identity: its id derived from its key.
fn derived(seed: u8) -> Arc<Identity> {
    let c = OpenSslCrypto::new();
    let public = c.ed25519_public(&[seed; 32]).unwrap();
    let id = softbus_bus::auth::hichain::key_id(&c, &public).unwrap();
    identity(&id, seed)
}

fn paired_event(ev: &[BusEvent]) -> Option<(String, softbus_bus::auth::IdProof)> {
    ev.iter().find_map(|e| match e {
        BusEvent::Paired { device_id, id, .. } => Some((device_id.clone(), *id)),
        _ => None,
    })
}

/// A PIN holder cannot pair as another device (issue 17, item 2): the id of
/// a device that paired with its own key can be claimed neither by a BIND
/// with another key (in any case of its hex digits) nor by a PIN key
/// agreement, which is refused with a reason and no key.
#[test]
fn a_claimed_id_cannot_take_a_paired_device_s_place() {
    use softbus_bus::auth::IdProof;
    let mut b = node();
    let phone = derived(5);
    let id = phone.auth_id().to_owned();
    run(&mut b, 1, 3, pair("246810", &id, &phone)).0.unwrap();
    assert_eq!(
        paired_event(&events(&mut b)),
        Some((id.clone(), IdProof::Key))
    );
    // The thief knows the PIN and the phone's id (discovery shows it).
    for (conn, claim) in [(2, id.clone()), (3, id.to_ascii_lowercase())] {
        let thief = identity(&claim, 8);
        let (r, closed) = run(&mut b, conn, 5, pair("246810", &claim, &thief));
        assert_eq!(r.unwrap_err(), AuthError::PeerError(31), "{claim}");
        assert!(closed);
    }
    let (r, closed) = run(&mut b, 4, 5, AuthClient::new(local(&id), b"246810", 3));
    assert_eq!(r.unwrap_err(), AuthError::PairedIdClaimed);
    assert!(closed);
    assert!(events(&mut b).iter().any(|e| matches!(
        e,
        BusEvent::ConnDropped {
            reason: softbus_bus::node::ConnClosed::Auth(AuthError::PairedIdClaimed),
            ..
        }
    )));
    assert_eq!(b.pairings().len(), 1);
    assert_eq!(b.pairings().get(&id), Some(phone.public()));
    // The phone itself still authenticates with its key.
    let node_key = *b.identity().unwrap().public();
    assert_eq!(
        run(&mut b, 5, 3, paired(&id, &phone, node_key))
            .0
            .unwrap()
            .method,
        AuthMethod::Paired
    );
}

/// Who claimed an id first does not keep it from the device it belongs to:
/// a pairing under an id its key does not derive is marked claimed, and the
/// device whose key derives the id displaces it; the claimer's key then
/// authenticates no more.
#[test]
fn the_device_whose_key_derives_the_id_displaces_a_claimer() {
    use softbus_bus::auth::IdProof;
    let mut b = node();
    let node_key = *b.identity().unwrap().public();
    let phone = derived(5);
    let id = phone.auth_id().to_owned();
    let thief = identity(&id, 8);
    run(&mut b, 1, 5, pair("246810", &id, &thief)).0.unwrap();
    assert_eq!(
        paired_event(&events(&mut b)),
        Some((id.clone(), IdProof::Claimed))
    );
    run(&mut b, 2, 3, pair("246810", &id, &phone)).0.unwrap();
    assert_eq!(
        paired_event(&events(&mut b)),
        Some((id.clone(), IdProof::Key))
    );
    assert_eq!(b.pairings().get(&id), Some(phone.public()));
    let (r, closed) = run(&mut b, 3, 5, paired(&id, &thief, node_key));
    assert!(r.is_err() && closed, "{r:?}");
    // And the thief cannot take it back.
    let (r, _) = run(&mut b, 4, 5, pair("246810", &id, &thief));
    assert_eq!(r.unwrap_err(), AuthError::PeerError(31));
    assert_eq!(b.pairings().get(&id), Some(phone.public()));
}

/// A softbus_lite device's random id is not derived from its key: it still
/// pairs (marked claimed), and a second key for it is refused as before.
#[test]
fn a_lite_device_s_random_id_still_pairs_and_is_marked_claimed() {
    use softbus_bus::auth::IdProof;
    let mut b = node();
    let lite = identity(PHONE, 5);
    run(&mut b, 1, 3, pair("246810", PHONE, &lite)).0.unwrap();
    assert_eq!(
        paired_event(&events(&mut b)),
        Some((PHONE.into(), IdProof::Claimed))
    );
    assert_eq!(b.id_proof(PHONE, AuthMethod::Paired), IdProof::Claimed);
    let other = identity(PHONE, 9);
    let (r, _) = run(&mut b, 2, 4, pair("246810", PHONE, &other));
    assert_eq!(r.unwrap_err(), AuthError::PeerError(31));
    assert_eq!(b.pairings().get(PHONE), Some(lite.public()));
}
