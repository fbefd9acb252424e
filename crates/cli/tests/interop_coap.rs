//! CoAP interop with libcoap (Debian `libcoap3-bin`): its client talks to our
//! node, and our codec talks to its server. Skipped with a message when the tools
//! are missing, unless SOFTBUS_REQUIRE_INTEROP=1 (CI installs them and sets it).
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_bus::coap::{self, Message, MessageType};
use softbus_bus::discovery::{Discovery, DiscoveryConfig, LocalDevice};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn have(tool: &str) -> bool {
    if Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        return true;
    }
    if std::env::var("SOFTBUS_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!(
            "SOFTBUS_REQUIRE_INTEROP=1 but {tool} is not installed (apt-get install libcoap3-bin)"
        );
    }
    eprintln!("SKIPPED: {tool} not installed (apt-get install libcoap3-bin)");
    false
}

#[test]
fn libcoap_client_gets_ack_and_lite_reply() {
    if !have("coap-client-notls") {
        return;
    }
    let dir = temp_dir("coap1");
    let node = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.20",
            "--pin",
            "1",
            "--web",
            "off",
            "--name",
            "coap-node",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
    );
    // The requester's wlanIp: the reply goes to 127.0.0.21:5684, not to coap-client's port.
    // Bound as a node's discovery socket is (address reuse), so a node left
    // running on 0.0.0.0:5684 does not take this address away.
    let listener: UdpSocket =
        softbus_runtime::net::bind_reusable_udp("127.0.0.21:5684".parse().unwrap())
            .unwrap()
            .into();
    listener.set_nonblocking(false).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let body = r#"{"deviceId":"{\"UDID\":\"C0A9C0A9\"}","devicename":"libcoap","type":14,"wlanIp":"127.0.0.21","coapUri":"coap://127.0.0.21/device_discover"}"#;
    let out = Command::new("coap-client-notls")
        .args([
            "-B",
            "2",
            "-v",
            "7",
            "-m",
            "post",
            "coap://127.0.0.20:5684/device_discover",
            "-e",
            body,
        ])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // coap-client sends CON POST with Uri-Port and Uri-Path; our node acknowledges it.
    assert!(log.contains("t:CON c:POST"), "{log}");
    assert!(
        log.contains("t:ACK c:0.00"),
        "the node acknowledged the CON request: {log}"
    );
    assert!(
        log.contains("removed 1"),
        "the ACK stopped retransmission: {log}"
    );
    let mut buf = [0u8; 1500];
    let (n, _) = listener
        .recv_from(&mut buf)
        .expect("reply arrives at wlanIp:5684");
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        (m.message_type, m.code, m.token.len()),
        (MessageType::NON, coap::CODE_POST, 0)
    );
    assert_eq!(
        m.option_values(coap::OPT_URI_HOST).next(),
        Some(&b"127.0.0.21"[..])
    );
    assert_eq!(m.uri_path(), "device_discover");
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    let udid: serde_json::Value = serde_json::from_str(v["deviceId"].as_str().unwrap()).unwrap();
    assert_eq!(udid["UDID"], node.ready["device_id"]);
    assert_eq!(v["devicename"], "coap-node");
    // port, then each service's (here empty) capability data and a comma, as softbus_lite writes it
    assert_eq!(
        v["serviceData"],
        format!("port:{},,", node.port("auth_port"))
    );
    assert_eq!(v["wlanIp"], "127.0.0.20");
    assert_eq!(v["capabilityBitmap"], serde_json::json!([64]));
    let seen = node.wait_for(|e| e["event"] == "device_found");
    assert_eq!(seen["name"], "libcoap");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn our_request_to_libcoap_server() {
    if !have("coap-server-notls") {
        return;
    }
    let mut server = Command::new("coap-server-notls")
        .args(["-A", "127.0.0.22", "-p", "5684", "-d", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut d = Discovery::new(
        DiscoveryConfig::default(),
        LocalDevice {
            device_id: "AB".repeat(32),
            name: "softbus".into(),
            device_type: 0xF2,
            ip: [127, 0, 0, 23].into(),
            auth_port: Some(1),
        },
    );
    d.start_discovery(Instant::now(), vec!["127.0.0.22:5684".parse().unwrap()]);
    let req = d.poll_transmit().unwrap();
    let sock = UdpSocket::bind("127.0.0.23:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut reply = None;
    // The server needs a moment to bind; NON requests are not retransmitted, so resend.
    for _ in 0..20 {
        sock.send_to(&req.payload, "127.0.0.22:5684").unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            reply = Some(Message::parse(&buf[..n]).unwrap());
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let m = reply.expect("libcoap answers our request");
    // 2.01 Created (first POST) or 2.04 Changed, with the resource as Location-Path.
    assert!(m.code == 0x41 || m.code == 0x44, "code {:#x}", m.code);
    assert_eq!(
        m.option_values(coap::OPT_LOCATION_PATH).next(),
        Some(&b"device_discover"[..])
    );
    // Then a GET returns the stored payload: our JSON survived libcoap's parser byte for byte.
    let get = Message {
        message_type: MessageType::CON,
        code: coap::CODE_GET,
        message_id: 77,
        token: vec![1, 2],
        options: vec![coap::CoapOption {
            number: coap::OPT_URI_PATH,
            value: b"device_discover".to_vec(),
        }],
        payload: vec![],
    };
    let mut server = Command::new("coap-server-notls")
        .args(["-A", "127.0.0.24", "-p", "5684", "-d", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got = None;
    for _ in 0..20 {
        sock.send_to(&req.payload, "127.0.0.24:5684").unwrap();
        if sock.recv_from(&mut buf).is_ok() {
            sock.send_to(&get.emit().unwrap(), "127.0.0.24:5684")
                .unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got = Some(Message::parse(&buf[..n]).unwrap());
                break;
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let m = got.expect("GET answered");
    assert_eq!(
        (m.message_type, m.code, m.message_id, m.token.as_slice()),
        (MessageType::ACK, 0x45, 77, &[1u8, 2][..])
    );
    let sent = Message::parse(&req.payload).unwrap().payload;
    assert_eq!(m.payload, sent);
}
