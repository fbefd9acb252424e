//! The command line and its JSON events against spec/interfaces.md, on loopback.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use std::io::Write;
use support::*;

#[test]
fn discover_and_send_between_loopback_addresses() {
    let dir = temp_dir("ds");
    let node = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.12",
            "--pin",
            "4711",
            "--web",
            "127.0.0.1:0",
            "--name",
            "seed-node",
            "--echo",
            "echo-server",
            "--data-dir",
            dir.join("n").to_str().unwrap(),
        ],
    );
    let id = node.ready["device_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(node.ready["ip"], "127.0.0.12");
    assert_eq!(node.ready["discovery_port"], 5684);

    let cdir = dir.join("c");
    let started = std::time::Instant::now();
    let o = run(
        &[],
        &[
            "discover",
            "--ip",
            "127.0.0.13",
            "--target",
            "127.0.0.12",
            "--timeout",
            "10",
            "--json",
            "--data-dir",
            cdir.to_str().unwrap(),
        ],
    );
    // Every target answered: it returns then, not at the 10 s timeout.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "took {took:?}");
    assert!(o.status.success(), "{o:?}");
    let found = json_lines(&o);
    assert_eq!(found.len(), 1);
    let d = &found[0];
    assert_eq!(
        (
            d["event"].as_str(),
            d["device_id"].as_str(),
            d["name"].as_str(),
            d["ip"].as_str()
        ),
        (
            Some("device_found"),
            Some(id.as_str()),
            Some("seed-node"),
            Some("127.0.0.12")
        )
    );
    assert_eq!(d["auth_port"], node.ready["auth_port"]);
    assert_eq!(d["device_type"], 242);
    assert_eq!(d["capabilities"], serde_json::json!(["ddmpCapability"]));

    let o = run(
        &[],
        &[
            "send",
            "--peer",
            "127.0.0.12",
            "--ip",
            "127.0.0.13",
            "--session",
            "echo-server",
            "--pin",
            "4711",
            "--count",
            "3",
            "--json",
            "--data-dir",
            cdir.to_str().unwrap(),
            "hello softbus",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let replies = json_lines(&o);
    assert_eq!(replies.len(), 3);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(
            (
                r["event"].as_str(),
                r["index"].as_u64(),
                r["len"].as_u64(),
                r["data"].as_str()
            ),
            (
                Some("reply"),
                Some(i as u64),
                Some(13),
                Some("hello softbus")
            )
        );
        assert!(r["rtt_ms"].as_f64().unwrap() >= 0.0);
    }
    let opened = node.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(
        (opened["session"].as_str(), opened["transport"].as_str()),
        (Some("echo-server"), Some("tcp"))
    );
    let client_id = std::fs::read_to_string(cdir.join("client/deviceid")).unwrap();
    assert_eq!(opened["peer_device_id"].as_str(), Some(client_id.trim()));
    // A PIN proves the PIN, not the id the client said.
    assert_eq!(opened["id"], "claimed", "{opened}");
    let r = node.wait_for(|v| v["event"] == "bytes_received");
    assert_eq!(r["len"], 13);
    node.wait_for(|v| v["event"] == "session_closed");

    // A session server the node does not have: one line naming the session,
    // the address and the reason the node gave in its open reply.
    let o = run(
        &[],
        &[
            "send",
            "--peer",
            &format!("127.0.0.12:{}", node.ready["auth_port"]),
            "--ip",
            "127.0.0.13",
            "--session",
            "nosuch",
            "--pin",
            "4711",
            "--data-dir",
            cdir.to_str().unwrap(),
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    let err: Vec<&str> = err.lines().collect();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("\"nosuch\"")
            && err[0].contains("127.0.0.12:")
            && err[0].ends_with("peer refused: no session server named \"nosuch\""),
        "{err:?}"
    );

    // The JSON API sees this device and the trusted client.
    let web = node.ready["web"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    // The token the node made on first start, kept 0600 in its data dir.
    let token = std::fs::read_to_string(dir.join("n/web-token")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("n/web-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(token.trim().len() >= 32);
    let body = http_get(&web, "/api/device", token.trim());
    assert!(body.contains(&id), "{body}");
    let trusted = http_get(&web, "/api/trusted", token.trim());
    assert!(trusted.contains(client_id.trim()), "{trusted}");
    // The session stays in view after it closed, with what it carried
    // (3 × 13 bytes each way: the echo server sent back what it got).
    let closed = http_get(&web, "/api/sessions/closed", token.trim());
    assert!(
        closed.contains("\"session\":\"echo-server\"")
            && closed.contains("\"bytes_in\":39")
            && closed.contains("\"bytes_out\":39")
            && closed.contains("\"closed_at_ms\":"),
        "{closed}"
    );
    // The node keeps its last events, in words and as JSON, for a dashboard
    // that reloads.
    let recent = http_get(&web, "/api/recent", token.trim());
    assert!(
        recent.contains("opened to \\\"echo-server\\\" by")
            && recent.contains("\"event\":\"session_opened\"")
            && recent.contains("\"at_ms\":"),
        "{recent}"
    );
    let page = http_get(&web, "/", "");
    assert!(page.contains("<h1>softbus node"), "{page}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn http_get(addr: &str, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[test]
fn exit_codes() {
    let dir = temp_dir("ec");
    let d = dir.to_str().unwrap();
    let empty_gateway_pin = format!("{}=", "AB".repeat(32));
    // bad usage: 2, one line naming what is wrong (docs/interfaces.md)
    for (args, names) in [
        (vec!["node", "--device-type", "FRIDGE"], "FRIDGE"),
        (
            vec!["node", "--capability", "frobCapability"],
            "frobCapability",
        ),
        (vec!["node", "--pin", ""], "--pin"),
        (vec!["node", "--name", ""], "--name"),
        (vec!["node", "--bogus"], "--bogus"),
        (vec!["discover", "--target", "not-an-ip"], "not-an-ip"),
        (vec!["discover", "--timeout", "-1"], "-1"),
        (vec!["discover", "--port", "x"], "--port"),
        (
            vec!["send", "--peer", "x", "--session", "echo", "m"],
            "--peer",
        ),
        (
            vec!["send", "--peer", "127.0.0.1:1", "--session", "echo", ""],
            "MESSAGE",
        ),
        (vec!["send", "--peer", "127.0.0.1:1"], "--session"),
        // A misspelt transport is a usage error, never TCP.
        (
            vec![
                "send",
                "--peer",
                "127.0.0.1:1",
                "--session",
                "echo",
                "--transport",
                "webrt",
                "m",
            ],
            "possible values: tcp, webrtc",
        ),
        (vec!["frobnicate"], "frobnicate"),
        // The gateway's PINs name devices by id, and an empty one needs consent.
        (
            vec!["node", "--gateway-pin", "lamp=1234"],
            "\"lamp\" is not a device id",
        ),
        (vec!["node", "--gateway-pin", "1234"], "expected DEVICE=PIN"),
        (
            vec!["node", "--gateway-pin", empty_gateway_pin.as_str()],
            "an empty PIN authenticates nobody",
        ),
    ] {
        let o = run(&[], &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].starts_with("softbus: "), "{args:?}: {err}");
        assert!(lines[0].contains(names), "{args:?} names {names}: {err}");
    }
    // nobody answers: 1
    let o = run(
        &[],
        &[
            "discover",
            "--ip",
            "127.0.0.14",
            "--target",
            "127.0.0.15",
            "--timeout",
            "0.5",
            "--data-dir",
            d,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("127.0.0.15:5684"), "names the target: {err}");
    // connection refused: 1
    let o = run(
        &[],
        &[
            "send",
            "--peer",
            "127.0.0.15:1",
            "--ip",
            "127.0.0.14",
            "--session",
            "echo",
            "--data-dir",
            d,
            "m",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("127.0.0.15:1"),
        "names the address: {o:?}"
    );
    for cmd in [
        "node",
        "discover",
        "send",
        "pair",
        "devices",
        "unpair",
        "completions",
        "man",
    ] {
        let o = run(&[], &[cmd, "--help"]);
        assert!(o.status.success(), "{cmd}: {o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
    }
    // Completions and the man page come from the same definitions.
    let o = run(&[], &["completions", "bash"]);
    assert!(o.status.success());
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(script.contains("_softbus") && script.contains("--paired-only"));
    let o = run(&[], &["man"]);
    assert!(o.status.success());
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains(".TH softbus 1") && page.contains("discover"));
    // A page per command, with every option its --help lists.
    let help = String::from_utf8_lossy(&run(&[], &["node", "--help"]).stdout).into_owned();
    let o = run(&[], &["man", "node"]);
    assert!(o.status.success(), "{o:?}");
    let page = String::from_utf8_lossy(&o.stdout).replace("\\-", "-");
    assert!(page.contains(".TH softbus-node 1"), "{page}");
    let options: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    assert!(options.len() >= 30, "{options:?}");
    for opt in options {
        assert!(page.contains(opt), "softbus man node lacks {opt}");
    }
    // An --ip this machine does not have is said at once (exit 2).
    let o = run(&[], &["discover", "--ip", "203.0.113.77", "--timeout", "5"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("--ip 203.0.113.77: this machine has no such address (it has 127.0.0.1"),
        "{o:?}"
    );
    let o = run(&[], &["man", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the pages are: node, discover"));
    let mans = dir.join("man/man1");
    let o = run(&[], &["man", "--out", mans.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    for name in [
        "softbus.1",
        "softbus-node.1",
        "softbus-send.1",
        "softbus-unpair.1",
    ] {
        assert!(mans.join(name).is_file(), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Garbage on the real sockets costs only its sender.
#[test]
fn malformed_traffic_does_not_disturb_others() {
    use std::net::{TcpStream, UdpSocket};
    let dir = temp_dir("neg");
    let node = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.16",
            "--pin",
            "1",
            "--web",
            "off",
            "--data-dir",
            dir.join("n").to_str().unwrap(),
        ],
    );
    let auth = format!("127.0.0.16:{}", node.port("auth_port"));
    let sess = format!("127.0.0.16:{}", node.port("session_port"));
    let mut hdr = vec![0xCE, 0xFA, 0xBE, 0xBA, 1, 0, 0, 0];
    hdr.extend_from_slice(&[0; 12]);
    hdr.extend_from_slice(&0x7fff_0000u32.to_le_bytes());
    for (addr, bytes) in [
        (&auth, hdr.clone()),
        (&auth, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        (&sess, hdr.clone()),
        (&sess, vec![0xff; 64]),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&bytes).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            std::io::Read::read(&mut s, &mut buf).unwrap_or(0),
            0,
            "node hangs up on garbage"
        );
    }
    let u = UdpSocket::bind("127.0.0.17:0").unwrap();
    for d in [
        vec![0x50u8; 1500],
        vec![0x40, 0x02, 0, 1, 0xff, b'{'],
        vec![],
    ] {
        u.send_to(&d, "127.0.0.16:5684").unwrap();
    }
    let o = run(
        &[],
        &[
            "send",
            "--peer",
            &auth,
            "--ip",
            "127.0.0.17",
            "--session",
            "echo",
            "--pin",
            "1",
            "--data-dir",
            dir.join("c").to_str().unwrap(),
            "still serving",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "still serving");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Node to node over WebRTC: `softbus send --transport webrtc` offers (full ICE,
/// DTLS client), the node answers (ICE-lite, DTLS server), the echo comes back.
#[test]
fn send_over_webrtc_between_loopback_addresses() {
    let dir = temp_dir("rtcsend");
    let node = NodeProc::webrtc_echo(&[], "127.0.0.43", &dir.join("n"));
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let o = run(
        &[],
        &[
            "send",
            "--transport",
            "webrtc",
            "--peer",
            "127.0.0.43",
            "--web",
            &web,
            "--ip",
            "127.0.0.44",
            "--web-token",
            TEST_TOKEN,
            "--session",
            "echo",
            "--count",
            "3",
            "--json",
            "--data-dir",
            dir.join("c").to_str().unwrap(),
            "over a data channel",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let replies = json_lines(&o);
    assert_eq!(replies.len(), 3);
    assert!(replies
        .iter()
        .all(|r| r["data"] == "over a data channel" && r["len"] == 19));
    let opened = node.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(opened["transport"], "webrtc");
    assert_eq!(opened["auth"], "web_token");
    assert_eq!(opened["peer_device_id"], "web");
    let closed = node.wait_for(|v| v["event"] == "session_closed");
    assert_eq!(closed["reason"], "closed by DELETE");
    // A label with no session server: the channel is closed and send fails.
    let o = run(
        &[],
        &[
            "send",
            "--transport",
            "webrtc",
            "--peer",
            "127.0.0.43",
            "--web",
            &web,
            "--ip",
            "127.0.0.44",
            "--web-token",
            TEST_TOKEN,
            "--session",
            "nope",
            "--timeout",
            "2",
            "--data-dir",
            dir.join("c").to_str().unwrap(),
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let o = run(
        &[],
        &[
            "send",
            "--transport",
            "carrier-pigeon",
            "--peer",
            "127.0.0.43",
            "--session",
            "echo",
            "x",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Garbage on the WebRTC port (junk, forged STUN, DTLS-looking bytes) from another
/// address disturbs none of the open WebRTC sessions.
#[test]
fn webrtc_garbage_does_not_disturb_peers() {
    use softbus_runtime::{NodeConfig, NodeTask, PinPolicy, WebAuth};
    use std::net::{Ipv4Addr, UdpSocket};
    use std::time::Duration;
    let dir = temp_dir("rtcgarbage");
    let node = NodeProc::webrtc_echo(&[], "127.0.0.47", &dir);
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let rtc_port = node.port("rtc_port");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = Duration::from_secs(5);
        // Two client nodes offer from their own WebRTC ports.
        let client = |ip: [u8; 4], tag: &str| {
            let mut cfg = NodeConfig::new(
                tag,
                Ipv4Addr::from(ip),
                dir.join(tag),
                PinPolicy {
                    pin: None,
                    allow_empty: false,
                },
            );
            cfg.discovery_port = 0;
            cfg.echo.clear();
            cfg.capabilities.clear();
            NodeTask::start(cfg)
        };
        let (na, nb) = (
            client([127, 0, 0, 48], "a").await.unwrap(),
            client([127, 0, 0, 49], "b").await.unwrap(),
        );
        let mut a = na
            .handle()
            .open_webrtc_session(&web, "echo", t, WebAuth::Token(TEST_TOKEN.into()))
            .await
            .unwrap();
        let mut b = nb
            .handle()
            .open_webrtc_session(&web, "echo", t, WebAuth::Token(TEST_TOKEN.into()))
            .await
            .unwrap();
        let junk = UdpSocket::bind("127.0.0.50:0").unwrap();
        let mut forged_stun = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
        forged_stun.extend_from_slice(&[7; 12]);
        forged_stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x04, b'x', b':', b'y', b'z']);
        for d in [
            vec![0xffu8; 1200],
            vec![],
            forged_stun,
            vec![22u8; 300],
            vec![0x80; 100],
        ] {
            for _ in 0..50 {
                junk.send_to(&d, ("127.0.0.47", rtc_port)).unwrap();
            }
        }
        for (s, msg) in [(&mut a, b"still a".to_vec()), (&mut b, b"still b".to_vec())] {
            s.send(&msg).await.unwrap();
            assert_eq!(s.recv(t).await.unwrap(), msg);
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
        na.shutdown().await;
        nb.shutdown().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A corrupt identity stops the node with an error that names the file and the
/// way out; `--reset-identity` starts over with a new one.
#[test]
fn a_corrupt_identity_stops_the_node_until_reset() {
    let dir = temp_dir("identity");
    std::fs::write(dir.join("deviceid"), "not an id").unwrap();
    let d = dir.to_str().unwrap();
    let args = [
        "--ip",
        "127.0.0.61",
        "--pin",
        "1",
        "--web",
        "off",
        "--discovery-port",
        "0",
        "--data-dir",
        d,
    ];
    let o = run(&[], &[&["node"][..], &args[..]].concat());
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    // One line: the file, and what to do.
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("softbus: ")
            && err.contains("deviceid")
            && err.contains("--reset-identity"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("deviceid")).unwrap(),
        "not an id",
        "left as it was"
    );
    let mut reset = args.to_vec();
    reset.push("--reset-identity");
    let node = NodeProc::start(&[], &reset);
    let id = node.ready["device_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    drop(node);
    assert_eq!(std::fs::read_to_string(dir.join("deviceid")).unwrap(), id);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One node per data directory and per discovery address: a second `softbus
/// node` on the same data directory (other address) or on the same address
/// (other directory) refuses to start with one line naming the directory and
/// the process holding it, or the address and the other device; `--reset-identity`
/// does not wipe a running node's files. A node on another address with its own
/// directory starts beside it, and once the first stops, its directory and
/// address are free again.
#[test]
fn one_node_per_data_directory_and_per_address() {
    let dir = temp_dir("one-node");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let args = |ip: &'static str, d: &str| {
        [
            "--ip",
            ip,
            "--pin",
            "1",
            "--web",
            "off",
            "--name",
            "first",
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([d.to_owned()])
        .collect::<Vec<_>>()
    };
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let first_args = args("127.0.0.64", a);
    let first = NodeProc::start(&[], &refs(&first_args));
    let id = first.ready["device_id"].as_str().unwrap().to_owned();
    let refused = |v: Vec<String>| {
        let o = run(&[], &[&["node"][..], &refs(&v)[..]].concat());
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    };
    // Same directory, another address.
    let err = refused(args("127.0.0.65", a));
    assert!(
        err.starts_with(&format!(
            "softbus: data dir {a} is in use by another softbus node (process "
        )) && err.contains("--data-dir"),
        "{err}"
    );
    let mut reset = args("127.0.0.65", a);
    reset.push("--reset-identity".into());
    let err = refused(reset);
    assert!(err.contains(&format!("data dir {a} is in use")), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("a/deviceid")).unwrap(),
        id,
        "the running node's identity is untouched"
    );
    // Same address (the default discovery port), another directory.
    let err = refused(args("127.0.0.64", b));
    assert_eq!(
        err.trim_end(),
        format!("softbus: 127.0.0.64:5684 already has a softbus node answering discovery: first ({id}); stop it, or start this one with another --ip")
    );
    // Another address and directory: fine, beside it.
    let second_args = args("127.0.0.65", b);
    let second = NodeProc::start(&[], &refs(&second_args));
    drop(second);
    // Once the first stops, both are free again.
    drop(first);
    let again = NodeProc::start(&[], &refs(&args("127.0.0.64", b)));
    drop(again);
    let again = NodeProc::start(&[], &refs(&first_args));
    assert_eq!(again.ready["device_id"].as_str().unwrap(), id);
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A long wait shows what it waits for, and for how long, on a terminal
/// (stderr a pty, made with util-linux `script`), and erases that line when
/// it ends; off a terminal stderr has only the one-line error.
#[test]
fn long_waits_show_progress_on_a_terminal() {
    let dir = temp_dir("progress");
    let args = [
        "discover",
        "--ip",
        "127.0.0.43",
        "--target",
        "127.0.0.44",
        "--timeout",
        "1.5",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let cmd = std::iter::once(bin())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let o = match std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            return softbus_testkit::interop::skip(&format!(
                "util-linux script is not available: {e}"
            ))
        }
    };
    let tty = String::from_utf8_lossy(&o.stdout);
    // Redrawn in place (carriage return, erase line) with the time waited.
    assert!(
        tty.contains("\r\x1b[Ksoftbus: asking 127.0.0.44:5684 … 1.") && tty.contains(" s of 1.5 s"),
        "{tty:?}"
    );
    let redraws = tty.matches("\r\x1b[Ksoftbus: asking").count();
    assert!(redraws >= 5, "{redraws} redraws in 1.3 s: {tty:?}");
    // Erased, then the error on a line of its own.
    assert!(
        tty.contains("\r\x1b[Ksoftbus: no device answered 127.0.0.44:5684 within 1.5 s"),
        "{tty:?}"
    );
    // A wait that fails: the error starts a clean line, not the end of the
    // progress line.
    let cmd = format!(
        "{} send --peer 127.0.0.44 --ip 127.0.0.43 --session echo --pin 1 --timeout 1 --data-dir {} hi",
        bin(),
        dir.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(
        tty.contains("\r\x1b[Ksoftbus: discovering the auth port of 127.0.0.44 … ")
            && tty.contains("\r\x1b[Ksoftbus: 127.0.0.44 did not answer discovery"),
        "{tty:?}"
    );
    // Not a terminal: nothing but the error.
    let o = run(&[], &args);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "softbus: no device answered 127.0.0.44:5684 within 1.5 s\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `softbus send` on the node's own machine, without `--ip` (the README's
/// Usage line), in a namespace of its own: toward a node on 127.0.0.2 on the
/// default discovery port, the client picks a loopback address that is not the
/// peer's (binding the peer's 5684 failed or stole its answers), discovers the
/// auth port and echoes. With `--peer IP:AUTH_PORT` it binds no discovery port
/// at all: it still echoes while another program holds 127.0.0.1:5684 without
/// address reuse, where any bind of that port would fail.
#[test]
fn send_without_ip_on_the_nodes_machine() {
    use softbus_testkit::interop::LoopbackNs;
    let Some(ns) = LoopbackNs::create("sbnoip") else {
        return;
    };
    let dir = temp_dir("noip");
    let (nd, cd) = (dir.join("n"), dir.join("c"));
    let node = NodeProc::start(
        &ns.exec(),
        &[
            "--ip",
            "127.0.0.2",
            "--pin",
            "1234",
            "--web",
            "off",
            "--data-dir",
            nd.to_str().unwrap(),
        ],
    );
    let auth = node.port("auth_port");
    let send = |peer: &str| {
        run(
            &ns.exec(),
            &[
                "send",
                "--peer",
                peer,
                "--session",
                "echo",
                "--pin",
                "1234",
                "--data-dir",
                cd.to_str().unwrap(),
                "hello from the same machine",
            ],
        )
    };
    let o = send("127.0.0.2");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from the same machine\n"
    );
    let mut blocker = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c"])
        .arg(
            "import socket,sys,time\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.bind(('127.0.0.1',5684))\n\
             print('bound',flush=True)\n\
             time.sleep(30)",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(blocker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "bound\n");
    let o = send(&format!("127.0.0.2:{auth}"));
    let _ = blocker.kill();
    let _ = blocker.wait();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hello from the same machine\n"
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A refusal says why: after 5 wrong PINs from one address even the right PIN
/// is refused at accept; `softbus send` then says so, naming the address and
/// when it may try again, and the node reports the refusal as an event (once,
/// for the address).
#[test]
fn a_locked_out_address_is_told_why() {
    let dir = temp_dir("lockout");
    let node = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.67",
            "--pin",
            "246810",
            "--web",
            "off",
            "--discovery-port",
            "0",
            "--data-dir",
            dir.join("n").to_str().unwrap(),
        ],
    );
    let auth = node.port("auth_port");
    let peer = format!("127.0.0.67:{auth}");
    let send = |pin: &str| {
        run(
            &[],
            &[
                "send",
                "--peer",
                &peer,
                "--ip",
                "127.0.0.68",
                "--session",
                "echo",
                "--pin",
                pin,
                "--data-dir",
                dir.join("c").to_str().unwrap(),
                "hi",
            ],
        )
    };
    for _ in 0..5 {
        let o = send("000000");
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("wrong PIN"),
            "{o:?}"
        );
    }
    // The node's log says it in words too, not only as hichain's code.
    let failed = node.wait_for(|e| e["event"] == "error");
    assert!(
        failed["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed: wrong PIN (hichain error 17)")),
        "{failed}"
    );
    let o = send("246810");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "softbus: authenticating to {peer}: refused: too many failed attempts from 127.0.0.68, try again in "
        )) && err.trim_end().ends_with(" s"),
        "{err}"
    );
    let ev = node.wait_for(|e| e["event"] == "auth_refused");
    assert_eq!(ev["ip"], "127.0.0.68");
    let retry = ev["retry_after_s"].as_u64().unwrap();
    assert!((1..=60).contains(&retry), "{ev}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// contrib/softbus.service works as shipped: `systemd-analyze verify` finds
/// nothing wrong with it (its binary path pointed at this build) nor with the
/// override its header documents, which is one assignment (unquoted, systemd
/// split it and the node got a bare `--pin`). Started as the unit starts it, in
/// a namespace, with the PIN from the environment file and the override's words:
/// every port is the fixed one asked for, the PIN works, and stderr (the
/// journal) names the token file instead of printing the token.
#[test]
fn the_service_unit_works_as_shipped() {
    use softbus_testkit::interop::{skip, LoopbackNs};
    use std::io::BufRead;
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/softbus.service"
    ))
    .unwrap();
    let dir = temp_dir("unit");
    std::fs::write(
        dir.join("softbus.service"),
        unit.replace("/usr/local/bin/softbus", bin()),
    )
    .unwrap();
    // The override the header documents: `#   [Service]` and the lines after it.
    let documented: Vec<&str> = unit
        .lines()
        .skip_while(|l| l.trim() != "#   [Service]")
        .skip(1)
        .take_while(|l| l.starts_with("#   Environment"))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    assert_eq!(documented.len(), 1, "{unit}");
    std::fs::create_dir_all(dir.join("softbus.service.d")).unwrap();
    std::fs::write(
        dir.join("softbus.service.d/override.conf"),
        format!("[Service]\n{}\n", documented[0]),
    )
    .unwrap();
    match std::process::Command::new("systemd-analyze")
        .args(["verify", dir.join("softbus.service").to_str().unwrap()])
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .output()
    {
        Err(_) => return skip("systemd-analyze not installed (apt-get install systemd)"),
        Ok(o) => {
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success() && said.trim().is_empty(), "{said}");
        }
    }
    // What systemd hands the node: $SOFTBUS_ARGS split into words.
    let args_value = documented[0]
        .trim_start_matches("Environment=\"SOFTBUS_ARGS=")
        .trim_end_matches('"');
    let Some(ns) = LoopbackNs::create("sbunit") else {
        return;
    };
    let data = dir.join("data");
    let mut node = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            bin(),
            "node",
            "--json",
            "--ip",
            "127.0.0.2",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(args_value.split_whitespace())
        .env("SOFTBUS_PIN", "246810")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(node.stdout.take().unwrap());
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap_or_default();
    let stderr = node.stderr.take().unwrap();
    let o = run(
        &ns.exec(),
        &[
            "send",
            "--peer",
            "127.0.0.2:40001",
            "--session",
            "echo",
            "--pin",
            "246810",
            "--data-dir",
            dir.join("c").to_str().unwrap(),
            "through the unit",
        ],
    );
    let _ = node.kill();
    let _ = node.wait();
    let err: String = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        (
            &ready["auth_port"],
            &ready["session_port"],
            &ready["rtc_port"],
            &ready["web"]
        ),
        (
            &serde_json::json!(40001),
            &serde_json::json!(40002),
            &serde_json::json!(40003),
            &serde_json::json!("http://0.0.0.0:8080")
        ),
        "{ready}\n{err}"
    );
    assert!(o.status.success(), "{o:?}\n{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "through the unit\n");
    let token = std::fs::read_to_string(data.join("web-token")).unwrap();
    assert!(
        !err.contains(token.trim()),
        "the token reached stderr:\n{err}"
    );
    assert!(
        err.contains(&format!(
            "dashboard http://0.0.0.0:8080 (log in with the web token in {})",
            data.join("web-token").display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("pairing PIN"),
        "the PIN came from the environment:\n{err}"
    );
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
