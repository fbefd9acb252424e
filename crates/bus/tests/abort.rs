//! A client that gives up on a hichain exchange tells the device first.
//!
//! softbus_lite keeps one hichain instance and two auth-session slots, freed
//! only when an exchange ends in success or an error message; a client that
//! just closes TCP leaves them taken, and two such aborts lock the device until
//! it restarts. Here a client `Bus` runs against a scripted device (a server
//! `Bus` whose replies the script may change or withhold) that records every
//! frame it receives: when the client aborts (a bad key confirmation, a bad STS
//! signature, a device gone silent until the handshake timeout), the hichain
//! error message `{"message":32896,"payload":{"errorCode":N}}` with the
//! exchange's module and seq reaches the device before the close.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap is the assertion; Instant::now only picks an origin
use serde_json::Value;
use softbus_bus::auth::hichain::Pairings;
use softbus_bus::auth::pake::{self, errcode};
use softbus_bus::auth::PinPolicy;
use softbus_bus::crypto::Crypto;
use softbus_bus::frame::{Deframer, Frame, HeaderKind, Module, LITE_MAX_AUTH_DATA};
use softbus_bus::node::{Bus, BusConfig, BusEvent, ConnClosed, Listener, LocalConfig};
use softbus_bus::{ConnId, Transmit};
use softbus_crypto::OpenSslCrypto;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DEVICE: &str = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB";
const CLIENT: &str = "CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD";

fn bus(id: &str, ip: [u8; 4], seed: u64) -> Bus {
    let mut b = Bus::new(
        BusConfig {
            pin: PinPolicy::pin("246810"),
            ..Default::default()
        },
        LocalConfig {
            device_id: id.into(),
            name: "dev".into(),
            device_type: 0xF2,
            ip: ip.into(),
        },
        Box::new(OpenSslCrypto::seeded(seed)),
    );
    b.set_ports(40001, 40002);
    b.set_identity([seed as u8; 32]).unwrap();
    b
}

/// A client `Bus` dialing the device for a PIN key agreement with `pin`.
fn dial(pin: &[u8]) -> (Bus, ConnId) {
    let mut client = bus(CLIENT, [10, 0, 0, 3], 3);
    let conn = client
        .connect_auth(
            Instant::now(),
            SocketAddr::from(([10, 0, 0, 2], 40001)),
            pin,
        )
        .unwrap();
    (client, conn)
}

/// What the scripted device does with a reply of its server engine.
enum Script {
    /// Sends it unchanged.
    Pass,
    /// Sends it changed.
    Change(Vec<u8>),
    /// Sends nothing, ever again.
    Silent,
}

/// An auth frame the device received: module, seq and the JSON body (if any).
#[derive(Debug)]
struct Got {
    module: Module,
    seq: i64,
    json: Option<Value>,
}

/// Runs the client's auth connection to the device; `script` sees each
/// hichain reply of the device's engine (by its `message` code). Returns the
/// frames the device received, whether the close came after them, and the
/// client's drop reason.
fn run(
    client: &mut Bus,
    conn: ConnId,
    mut device: Bus,
    mut script: impl FnMut(u64, &[u8]) -> Script,
) -> (Vec<Got>, bool, Option<ConnClosed>) {
    let t0 = Instant::now();
    let dev_conn = ConnId(1);
    device
        .handle_accept(
            t0,
            dev_conn,
            Listener::Auth,
            SocketAddr::from(([10, 0, 0, 3], 50000)),
        )
        .unwrap();
    let mut deframer = Deframer::new(HeaderKind::Auth, LITE_MAX_AUTH_DATA);
    let (mut got, mut closed_after, mut reason, mut silent) = (Vec::new(), false, None, false);
    let mut now = t0;
    // Until the client drops the connection: bytes move, or the client's
    // timers run; two minutes of virtual time is far past every timeout.
    while now < t0 + Duration::from_secs(120) {
        let mut to_device = Vec::new();
        while let Some(t) = client.poll_transmit() {
            match t {
                Transmit::Dial { conn: c, .. } if c == conn => {
                    client.handle_dialed(now, conn, Ok(()));
                }
                Transmit::Tcp { conn: c, bytes } if c == conn => {
                    assert!(!closed_after, "bytes after the close");
                    to_device.push(bytes);
                }
                Transmit::Close { conn: c } if c == conn => closed_after = true,
                _ => {}
            }
        }
        for e in std::iter::from_fn(|| client.poll_event()) {
            if let BusEvent::ConnDropped {
                conn: c, reason: r, ..
            } = e
            {
                if c == conn {
                    reason = Some(r);
                }
            }
        }
        for bytes in &to_device {
            deframer.push(bytes);
            while let Some(Frame::Auth(h, body)) = deframer.next_frame().unwrap() {
                got.push(Got {
                    module: h.module,
                    seq: h.seq,
                    json: serde_json::from_slice(&body).ok(),
                });
            }
            if !silent {
                let _ = device.handle_tcp_data(now, dev_conn, bytes);
            }
        }
        if reason.is_some() {
            break;
        }
        let mut replies = Vec::new();
        while let Some(t) = device.poll_transmit() {
            if let Transmit::Tcp { bytes, .. } = t {
                replies.push(bytes);
            }
        }
        for r in replies {
            if silent {
                break;
            }
            let code = serde_json::from_slice::<Value>(&r[24..])
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_u64));
            let out = match code {
                Some(code) => script(code, &r),
                None => Script::Pass,
            };
            match out {
                Script::Pass => client.handle_tcp_data(now, conn, &r).unwrap(),
                Script::Change(b) => client.handle_tcp_data(now, conn, &b).unwrap(),
                Script::Silent => silent = true,
            }
        }
        if to_device.is_empty() {
            // Nothing moves: let the client's timers run.
            now = client
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1));
            client.handle_timeout(now);
        }
    }
    (got, closed_after, reason)
}

/// Flips one hex digit of `field` in the hichain payload of an auth frame.
fn tamper(frame: &[u8], field: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&frame[24..]).unwrap();
    let s = v["payload"][field].as_str().unwrap().to_owned();
    let flipped = if s.starts_with('0') { "1" } else { "0" };
    v["payload"][field] = Value::String(format!("{flipped}{}", &s[1..]));
    let body = v.to_string().into_bytes();
    let mut out = frame[..24].to_vec();
    // The header's last field is the body length (little-endian i32).
    out[20..24].copy_from_slice(&(body.len() as i32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The last frame the device got is the hichain error message with `code`,
/// under the exchange's module and seq.
fn assert_error_last(got: &[Got], code: u32) {
    let first_hichain = got
        .iter()
        .find(|g| g.module == Module::AUTH_SDK)
        .expect("a hichain exchange started");
    let last = got.last().unwrap();
    assert_eq!(last.module, Module::AUTH_SDK, "{got:?}");
    assert_eq!(last.seq, first_hichain.seq, "{got:?}");
    let json = last.json.as_ref().expect("JSON");
    assert_eq!(json["message"].as_u64(), Some(pake::MSG_INFORM), "{json}");
    assert_eq!(
        json["payload"]["errorCode"].as_u64(),
        Some(u64::from(code)),
        "{json}"
    );
    assert_eq!(error_messages(got), 1, "one error message: {got:?}");
}

/// hichain error messages among what the device got.
fn error_messages(got: &[Got]) -> usize {
    got.iter()
        .filter(|g| {
            g.json
                .as_ref()
                .is_some_and(|j| j["message"].as_u64() == Some(pake::MSG_INFORM))
        })
        .count()
}

#[test]
fn a_bad_server_proof_ends_the_pake_with_an_error_message() {
    let (mut client, conn) = dial(b"246810");
    let (got, closed, reason) = run(
        &mut client,
        conn,
        bus(DEVICE, [10, 0, 0, 2], 2),
        |code, r| {
            if code == pake::MSG_PAKE_SERVER_CONFIRM {
                Script::Change(tamper(r, "kcfData"))
            } else {
                Script::Pass
            }
        },
    );
    assert!(closed, "the client closed");
    assert!(
        matches!(
            reason,
            Some(ConnClosed::Auth(softbus_bus::auth::AuthError::WrongPin))
        ),
        "{reason:?}"
    );
    assert_error_last(&got, errcode::WRONG_PIN);
}

#[test]
fn a_bad_sts_signature_ends_sts_with_an_error_message() {
    let mut client = bus(CLIENT, [10, 0, 0, 3], 3);
    // The client holds another key for the device than the one it signs with.
    let mut p = Pairings::new();
    p.insert(DEVICE.into(), [9; 32]);
    client.set_pairings(p);
    let conn = client
        .connect_paired(Instant::now(), SocketAddr::from(([10, 0, 0, 2], 40001)))
        .unwrap();
    // The device knows the client's real key: only the client's check fails.
    let mut device = bus(DEVICE, [10, 0, 0, 2], 2);
    let mut known = Pairings::new();
    known.insert(
        CLIENT.into(),
        OpenSslCrypto::new().ed25519_public(&[3; 32]).unwrap(),
    );
    device.set_pairings(known);
    let (got, closed, reason) = run(&mut client, conn, device, |_, _| Script::Pass);
    assert!(closed, "the client closed");
    assert!(matches!(reason, Some(ConnClosed::Auth(_))), "{reason:?}");
    assert_error_last(&got, errcode::WRONG_PIN);
}

#[test]
fn a_device_gone_silent_gets_the_error_message_at_the_timeout() {
    let (mut client, conn) = dial(b"246810");
    // The device answers the PAKE request, then never the confirmation.
    let (got, closed, reason) = run(
        &mut client,
        conn,
        bus(DEVICE, [10, 0, 0, 2], 2),
        |code, _| {
            if code == pake::MSG_PAKE_SERVER_CONFIRM {
                Script::Silent
            } else {
                Script::Pass
            }
        },
    );
    assert!(closed, "the client closed");
    assert!(matches!(reason, Some(ConnClosed::Timeout)), "{reason:?}");
    assert_error_last(&got, errcode::ABORTED);
}

#[test]
fn a_device_that_sent_its_own_error_gets_none_back() {
    let (mut client, conn) = dial(b"135790");
    // A wrong PIN: the device's engine ends the exchange with its error
    // message; the client has nothing to end.
    let (got, closed, reason) = run(&mut client, conn, bus(DEVICE, [10, 0, 0, 2], 2), |_, _| {
        Script::Pass
    });
    assert!(closed);
    assert!(reason.is_some());
    assert_eq!(error_messages(&got), 0, "{got:?}");
}

/// A lite device answers an empty PIN with errorCode 15 (its key store takes
/// no empty key): the client reports that, not an unsupported group, and has
/// no exchange left to end.
#[test]
fn errorcode_15_after_an_empty_pin_is_reported_as_such() {
    let (mut client, conn) = dial(b"");
    let device = bus(DEVICE, [10, 0, 0, 2], 2);
    let (got, closed, reason) = run(&mut client, conn, device, |code, r| {
        if code == pake::MSG_PAKE_RESPONSE {
            let mut out = r[..24].to_vec();
            let body = pake::error_message(errcode::NO_256_MOD);
            out[20..24].copy_from_slice(&(body.len() as i32).to_le_bytes());
            out.extend_from_slice(&body);
            Script::Change(out)
        } else {
            Script::Pass
        }
    });
    assert!(closed);
    let Some(ConnClosed::Auth(e)) = reason else {
        panic!("{reason:?}")
    };
    assert_eq!(e, softbus_bus::auth::AuthError::EmptyPinRefused);
    assert!(e.to_string().contains("empty PIN"), "{e}");
    assert_eq!(error_messages(&got), 0, "{got:?}");
}

/// The server side too: a client that starts a key agreement and goes silent
/// is given up at the handshake timeout with the error message for its
/// exchange (same seq) before the close, so a lite client frees its state.
#[test]
fn a_silent_client_gets_the_error_message_at_the_timeout() {
    use softbus_bus::auth::{AuthClient, LocalAuthInfo};
    let t0 = Instant::now();
    let mut node = bus(DEVICE, [10, 0, 0, 2], 2);
    let conn = ConnId(5);
    node.handle_accept(
        t0,
        conn,
        Listener::Auth,
        SocketAddr::from(([10, 0, 0, 3], 50000)),
    )
    .unwrap();
    let mut client = AuthClient::new(
        LocalAuthInfo {
            device_id: CLIENT.into(),
            device_name: "phone".into(),
            device_type: "DEV_L1".into(),
            auth_port: 0,
            session_port: 0,
        },
        b"246810",
        77,
    );
    let mut c = OpenSslCrypto::seeded(9);
    // getAuthInfo, then the PAKE request; the node answers both.
    for _ in 0..2 {
        while let Some(b) = client.poll_transmit() {
            node.handle_tcp_data(t0, conn, &b).unwrap();
        }
        while let Some(t) = node.poll_transmit() {
            if let Transmit::Tcp { bytes, .. } = t {
                client.handle_data(&mut c, &bytes).unwrap();
            }
        }
    }
    // The client's confirmation never comes.
    while client.poll_transmit().is_some() {}
    let late = node.poll_timeout().unwrap();
    node.handle_timeout(late);
    let mut got = Vec::new();
    let mut closed = false;
    let mut deframer = Deframer::new(HeaderKind::Auth, LITE_MAX_AUTH_DATA);
    while let Some(t) = node.poll_transmit() {
        match t {
            Transmit::Tcp { bytes, .. } => {
                assert!(!closed, "bytes after the close");
                deframer.push(&bytes);
                while let Some(Frame::Auth(h, body)) = deframer.next_frame().unwrap() {
                    got.push((
                        h.module,
                        h.seq,
                        serde_json::from_slice::<Value>(&body).unwrap(),
                    ));
                }
            }
            Transmit::Close { .. } => closed = true,
            _ => {}
        }
    }
    assert!(closed);
    assert_eq!(got.len(), 1, "{got:?}");
    let (module, seq, json) = &got[0];
    assert_eq!((*module, *seq), (Module::AUTH_SDK, 77));
    assert_eq!(json["message"].as_u64(), Some(pake::MSG_INFORM));
    assert_eq!(
        json["payload"]["errorCode"].as_u64(),
        Some(u64::from(errcode::ABORTED))
    );
}
