//! hichain DL-SPEKE known answers (shared fixture, computed independently and checked against
//! deviceauth_lite; re-derived with Python's standard library by tools/vectors.py) and the
//! server/client engines replaying them byte for byte.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
mod common;
use common::{hexv, vectors, ScriptedCrypto};
use serde_json::Value;
use softbus_bus::auth::pake::{self, ClientStep, PakeClient, PakeServer, ServerStep};
use softbus_bus::auth::AuthError;
use softbus_crypto::OpenSslCrypto;

fn cases() -> Vec<Value> {
    vectors()["pake"].as_array().unwrap().clone()
}

#[test]
fn derivations_match_vectors() {
    let c = OpenSslCrypto::new();
    for v in cases() {
        let name = v["name"].as_str().unwrap();
        let pin = v["pin_utf8"].as_str().unwrap().as_bytes();
        let salt = hexv(&v["salt"]);
        let base = pake::base(&c, pin, &salt).unwrap();
        assert_eq!(base, hexv(&v["base"]), "{name}: base");
        let cpk = pake::exp(&c, &base, &hexv(&v["client_esk"])).unwrap();
        let spk = pake::exp(&c, &base, &hexv(&v["server_esk"])).unwrap();
        assert_eq!(cpk, hexv(&v["client_epk"]), "{name}: client epk");
        assert_eq!(spk, hexv(&v["server_epk"]), "{name}: server epk");
        let shared = pake::exp(&c, &spk, &hexv(&v["client_esk"])).unwrap();
        assert_eq!(shared, hexv(&v["shared_secret"]), "{name}: shared");
        assert_eq!(
            pake::exp(&c, &cpk, &hexv(&v["server_esk"])).unwrap(),
            shared
        );
        let keys = pake::derive(&c, &shared, &salt).unwrap();
        assert_eq!(
            keys.session_key.to_vec(),
            hexv(&v["pake_session_key"]),
            "{name}: session key"
        );
        assert_eq!(
            keys.hmac_key.to_vec(),
            hexv(&v["hmac_key"]),
            "{name}: hmac key"
        );
        let (cc, sc) = (hexv(&v["client_challenge"]), hexv(&v["server_challenge"]));
        assert_eq!(
            pake::kcf(&c, &keys, &cc, &sc).unwrap().to_vec(),
            hexv(&v["client_kcf"]),
            "{name}: client kcf"
        );
        assert_eq!(
            pake::kcf(&c, &keys, &sc, &cc).unwrap().to_vec(),
            hexv(&v["server_kcf"]),
            "{name}: server kcf"
        );
        assert_eq!(
            pake::export(&c, &keys, &salt).unwrap().to_vec(),
            hexv(&v["exported_auth_key"]),
            "{name}: export"
        );
    }
}

fn payload(msg: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(msg).unwrap();
    v["payload"].clone()
}

/// The engines, with their random draws scripted from the vectors, put the vectors' values on the wire.
#[test]
fn engines_replay_vectors() {
    for v in cases() {
        let name = v["name"].as_str().unwrap();
        let pin = v["pin_utf8"].as_str().unwrap().as_bytes();
        let mut sc = ScriptedCrypto::new(vec![
            hexv(&v["salt"]),
            hexv(&v["server_challenge"]),
            hexv(&v["server_esk"]),
        ]);
        let mut cc =
            ScriptedCrypto::new(vec![hexv(&v["client_challenge"]), hexv(&v["client_esk"])]);
        let mut server = PakeServer::new(pin);
        let mut client = PakeClient::new(pin);
        let req = client.start(&mut cc);
        assert_eq!(
            String::from_utf8(req.clone()).unwrap(),
            r#"{"message":1,"payload":{"operationCode":6,"support256mod":true,"version":{"currentVersion":"1.0.0","minVersion":"1.0.0"}}}"#
        );
        let ServerStep::Reply(resp) = server.handle(&mut sc, &req, None).unwrap() else {
            panic!("{name}")
        };
        let p = payload(&resp);
        assert_eq!(
            p["epk"].as_str().unwrap(),
            v["server_epk"].as_str().unwrap(),
            "{name}: epk keeps its leading zero byte"
        );
        assert_eq!(p["salt"], v["salt"]);
        let ClientStep::Send(confirm) = client.handle(&mut cc, &resp).unwrap() else {
            panic!()
        };
        let p = payload(&confirm);
        assert_eq!(p["kcfData"], v["client_kcf"], "{name}");
        assert_eq!(p["epk"], v["client_epk"], "{name}");
        let ServerStep::Done(fin, skey) = server.handle(&mut sc, &confirm, None).unwrap() else {
            panic!("{name}")
        };
        assert_eq!(payload(&fin)["kcfData"], v["server_kcf"], "{name}");
        let ClientStep::Done(ckey, _) = client.handle(&mut cc, &fin).unwrap() else {
            panic!()
        };
        assert_eq!(skey.to_vec(), hexv(&v["exported_auth_key"]));
        assert_eq!(ckey.to_vec(), hexv(&v["exported_auth_key"]));
    }
}

fn run(server_pin: &[u8], client_pin: &[u8]) -> (Result<(), u32>, Result<(), AuthError>) {
    let mut c = OpenSslCrypto::seeded(3);
    let mut server = PakeServer::new(server_pin);
    let mut client = PakeClient::new(client_pin);
    let req = client.start(&mut c);
    let ServerStep::Reply(resp) = server.handle(&mut c, &req, None).unwrap() else {
        panic!()
    };
    let ClientStep::Send(confirm) = client.handle(&mut c, &resp).unwrap() else {
        panic!()
    };
    match server.handle(&mut c, &confirm, None).unwrap() {
        ServerStep::Failed(msg, code) => (Err(code), client.handle(&mut c, &msg).map(|_| ())),
        ServerStep::Done(msg, _) => (Ok(()), client.handle(&mut c, &msg).map(|_| ())),
        ServerStep::Reply(_) | ServerStep::Exchanged(..) => panic!(),
    }
}

#[test]
fn wrong_pin_fails_on_both_sides() {
    let (s, c) = run(b"123456", b"654321");
    assert_eq!(s, Err(pake::errcode::WRONG_PIN));
    assert_eq!(c, Err(AuthError::WrongPin));
    assert_eq!(run(b"1", b"1"), (Ok(()), Ok(())));
}

#[test]
fn server_error_codes() {
    let mut c = OpenSslCrypto::seeded(4);
    let mut s = PakeServer::new(b"1");
    let code = |step| match step {
        ServerStep::Failed(m, code) => {
            assert_eq!(
                String::from_utf8(m).unwrap(),
                format!("{{\"message\":32896, \"payload\":{{\"errorCode\":{code}}}}}")
            );
            code
        }
        _ => 0,
    };
    assert_eq!(code(s.handle(&mut c, b"not json", None).unwrap()), 9);
    assert_eq!(
        code(
            s.handle(&mut c, br#"{"message":1,"payload":{}}"#, None)
                .unwrap()
        ),
        9
    );
    assert_eq!(code(s.handle(&mut c, br#"{"message":1,"payload":{"version":{"currentVersion":"2.0.0","minVersion":"2.0.0"},"support256mod":true,"operationCode":6}}"#, None).unwrap()), 12);
    assert_eq!(code(s.handle(&mut c, br#"{"message":1,"payload":{"version":{"currentVersion":"1.0.0","minVersion":"1.0.0"},"operationCode":6}}"#, None).unwrap()), 15);
    assert_eq!(
        code(
            s.handle(&mut c, br#"{"message":2,"payload":{}}"#, None)
                .unwrap()
        ),
        38
    );
    assert_eq!(
        code(
            s.handle(&mut c, br#"{"message":99,"payload":{}}"#, None)
                .unwrap()
        ),
        5
    );
    // A public value of 1 or p-1 is refused.
    let mut client = PakeClient::new(b"1");
    let req = client.start(&mut c);
    let ServerStep::Reply(_) = s.handle(&mut c, &req, None).unwrap() else {
        panic!()
    };
    let one = format!("{:0>512}", "1");
    let msg = format!(
        r#"{{"message":2,"payload":{{"kcfData":"{}","challenge":"{}","epk":"{}"}}}}"#,
        "00".repeat(32),
        "00".repeat(16),
        one
    );
    assert_eq!(code(s.handle(&mut c, msg.as_bytes(), None).unwrap()), 19);
    assert!(!pake::public_value_ok(&{
        let mut p = pake::prime();
        p[255] -= 1;
        p
    }));
    assert!(pake::public_value_ok(&{
        let mut p = pake::prime();
        p[255] -= 2;
        p
    }));
}

/// tools/vectors.py (Python standard library only): the fixture's cases re-derived and new ones.
#[test]
fn python_vectors() {
    let v: Value = serde_json::from_str(include_str!("vectors/python-vectors.json")).unwrap();
    let c = OpenSslCrypto::new();
    let cases = v["pake"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for v in cases {
        let name = v["name"].as_str().unwrap();
        let salt = hexv(&v["salt"]);
        let base = pake::base(&c, v["pin_utf8"].as_str().unwrap().as_bytes(), &salt).unwrap();
        assert_eq!(base, hexv(&v["base"]), "{name}");
        let spk = pake::exp(&c, &base, &hexv(&v["server_esk"])).unwrap();
        assert_eq!(spk, hexv(&v["server_epk"]), "{name}");
        let shared = pake::exp(&c, &spk, &hexv(&v["client_esk"])).unwrap();
        let keys = pake::derive(&c, &shared, &salt).unwrap();
        let (cc, sc) = (hexv(&v["client_challenge"]), hexv(&v["server_challenge"]));
        assert_eq!(
            pake::kcf(&c, &keys, &cc, &sc).unwrap().to_vec(),
            hexv(&v["client_kcf"]),
            "{name}"
        );
        assert_eq!(
            pake::export(&c, &keys, &salt).unwrap().to_vec(),
            hexv(&v["exported_auth_key"]),
            "{name}"
        );
    }
    let mut h = Vec::new();
    softbus_bus::frame::AuthHeader {
        module: softbus_bus::frame::Module::CONNECTION,
        seq: 900,
        flags: 1,
        data_len: 283,
    }
    .emit(&mut h);
    assert_eq!(h, hexv(&v["auth_header_module5_seq900_reply_len283"]));
    let mut h = Vec::new();
    softbus_bus::frame::SessionHeader {
        seq: 7,
        flags: 0,
        data_len: 41,
    }
    .emit(&mut h);
    assert_eq!(h, hexv(&v["session_header_seq7_len41"]));
    let m = softbus_bus::coap::Message::parse(&hexv(&v["coap_lite_reply_to_10_77_0_3"])).unwrap();
    assert_eq!(m.emit().unwrap(), hexv(&v["coap_lite_reply_to_10_77_0_3"]));
    assert_eq!(m.uri_path(), "device_discover");
}
