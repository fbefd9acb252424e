//! Past the LAN's edge, with real peers: two homes behind nftables NAT
//! routers (one port-restricted cone, one symmetric) and a public network
//! with coturn (Debian's package, started with a config of its own), all in
//! network namespaces the test makes (interop/nat_topology.sh). Only the
//! node's web port is forwarded into its home.
//!
//! - Headless Chromium in the symmetric home opens a data channel to the node
//!   in the cone home and gets its echo, through the TURN relay; a WHEP viewer
//!   there plays a stream published from the node's own home; `softbus send
//!   --transport webrtc` from that home reaches the node too.
//! - With only STUN, the two cone homes connect by server-reflexive
//!   candidates, and two symmetric homes fail with an error saying a TURN
//!   server is needed.
//!
//! Skipped with a message when coturn, nftables, Chromium or namespaces are
//! missing, unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::skip;
use std::process::{Command, Output};
use support::*;

const WEB_PORT: &str = "8080";
const SECRET: &str = "softbus-turn-secret-0123456789";
const TURN: &str = "turn:198.18.0.1:3478?transport=udp";
const STUN: &str = "stun:198.18.0.1:3478";
/// Nothing answers there.
const SILENT_STUN: &str = "stun:198.18.0.1:3479";
/// The node's home router's public address (its web port is forwarded).
const NODE_PUBLIC: &str = "198.18.0.3";

/// The namespaces of one run; taken down on drop.
struct Homes(String);

impl Homes {
    fn up(tag: &str, a: &str, b: &str) -> Option<Self> {
        for (cmd, pkg) in [("turnserver", "coturn"), ("nft", "nftables")] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {cmd}")])
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                skip(&format!("{cmd} is not installed (apt-get install {pkg})"));
                return None;
            }
        }
        let t = format!("{tag}{}", std::process::id() % 10_000);
        let homes = Homes(t.clone());
        let out = Command::new("bash")
            .arg(script())
            .args(["up", &t, a, b, WEB_PORT, SECRET])
            .output()
            .unwrap();
        if !out.status.success() {
            skip(&format!(
                "cannot build the NAT namespaces (needs root): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        Some(homes)
    }

    /// `ip netns exec` into one of them: `ha`, `hb` (the homes).
    fn exec(&self, which: &str) -> Vec<String> {
        ["ip", "netns", "exec"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("{}{which}", self.0)])
            .collect()
    }

    fn prefix(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
}

impl Drop for Homes {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["down", &self.0])
            .status();
    }
}

fn script() -> String {
    format!(
        "{}/../../interop/nat_topology.sh",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The node in home B (10.0.2.2) with `ice` arguments; its web side answers
/// on the router's public address too.
fn node_in_b(homes: &Homes, dir: &std::path::Path, ice: &[&str]) -> NodeProc {
    node_in_b_with(homes, dir, ice, &[])
}

/// [`node_in_b`] with `env` (`NAME=VALUE`) in its environment.
fn node_in_b_with(homes: &Homes, dir: &std::path::Path, ice: &[&str], env: &[String]) -> NodeProc {
    let mut args = vec![
        "--ip",
        "10.0.2.2",
        "--web",
        "10.0.2.2:8080",
        "--web-host",
        NODE_PUBLIC,
        "--web-origin",
        PAGE_ORIGIN,
        "--web-token",
        TEST_TOKEN,
        "--pin",
        "1",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(ice);
    let mut prefix = homes.exec("hb");
    prefix.push("env".to_owned());
    prefix.extend(env.iter().cloned());
    NodeProc::start(&Homes::prefix(&prefix), &args)
}

/// `softbus send --transport webrtc` from home A to the node's public web address.
fn send_from_a(homes: &Homes, dir: &std::path::Path, ice: &[&str]) -> Output {
    send_from_a_logged(homes, dir, ice, "warn")
}

/// [`send_from_a`] with the client's log at `level` on stderr.
fn send_from_a_logged(homes: &Homes, dir: &std::path::Path, ice: &[&str], level: &str) -> Output {
    let mut args = vec![
        "send",
        "--transport",
        "webrtc",
        "--peer",
        "198.18.0.3:1",
        "--web",
        "http://198.18.0.3:8080",
        "--web-token",
        TEST_TOKEN,
        "--session",
        "echo",
        "--timeout",
        "20",
        "--json",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(ice);
    args.push("over the NAT");
    let mut prefix = homes.exec("ha");
    prefix.extend(["env".to_owned(), format!("RUST_LOG={level}")]);
    run(&Homes::prefix(&prefix), &args)
}

/// A page of interop/ in headless Chromium in `home`; its report.
fn page(homes: &Homes, home: &str, web: &str, page: &str, query: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &format!("{}{home}", homes.0),
        "python3",
        &path,
        web,
        "echo",
    ])
    .env("PAGE", page)
    .env("PAGE_QUERY", query)
    .env("PAGE_PORT", PAGE_PORT)
    .env("PAGE_TIMEOUT", "90")
    .env("NODE_TOKEN", TEST_TOKEN)
    .env("PAGE_SIZES", "1,4048");
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn relayed(r: &serde_json::Value) -> bool {
    r["local_type"] == "relay" || r["remote_type"] == "relay"
}

#[test]
fn through_turn_chromium_a_whep_viewer_and_softbus_send_reach_a_node_in_another_home() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return skip("Chromium is not installed (apt-get install chromium)");
    }
    let Some(homes) = Homes::up("sbt", "symmetric", "cone") else {
        return;
    };
    let (node_dir, client_dir) = (temp_dir("nat-node"), temp_dir("nat-client"));
    let node = node_in_b(
        &homes,
        &node_dir,
        &["--ice-server", TURN, "--turn-secret", SECRET],
    );
    let public = format!("http://{NODE_PUBLIC}:{WEB_PORT}");

    // A data channel from the symmetric home: only a relay crosses it. The
    // offer goes at once, candidates trickle both ways by PATCH, and then
    // ICE restarts over PATCH.
    let r = page(
        &homes,
        "ha",
        &public,
        "datachannel.html",
        "ice=node&trickle=1&restart=1",
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["steps"].as_array().unwrap().len(), 2, "{r}");
    assert!(relayed(&r), "the selected pair is not relayed: {r}");
    assert_eq!(r["ice_servers"], serde_json::json!([TURN]), "{r}");
    // The 201 names the TURN server with a time-limited credential (RFC 9725 §4.6).
    let link = r["link"].as_str().unwrap_or_default();
    assert!(
        link.starts_with(&format!("<{TURN}>; rel=\"ice-server\"; username=\""))
            && link.contains(":browser\"; credential=\""),
        "{r}"
    );
    assert_eq!(
        r["trickle_status"], 200,
        "a full node answers a trickle with its candidates: {r}"
    );
    assert!(r["trickled_out"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["trickled_in"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["restart_status"], 200, "{r}");
    assert_ne!(r["restart_etag"], r["etag"], "{r}");
    eprintln!(
        "data channel through TURN: open after {} ms (trickled {} out, {} in), pair {} -> {}, ICE restart to echo {} ms",
        r["open_ms"], r["trickled_out"], r["trickled_in"], r["local_type"], r["remote_type"], r["restart_ms"]
    );

    // A stream published from the node's home (Chromium on the LAN), played
    // by a WHEP viewer in the other home.
    let publisher_path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let publisher = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}hb", homes.0),
            "python3",
            &publisher_path,
            "http://10.0.2.2:8080",
            "echo",
        ])
        .env("PAGE", "whip.html")
        .env("PAGE_QUERY", "codec=VP8&stream=porch&viewers=2")
        .env("PAGE_TIMEOUT", "120")
        .env("PAGE_PORT", PAGE_PORT)
        .env("NODE_TOKEN", TEST_TOKEN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = node.wait_for(|v| v["event"] == "stream_started");
    assert_eq!(started["stream"], "porch");
    let v = page(&homes, "ha", &public, "view.html", "stream=porch&ice=node");
    let p = publisher.wait_with_output().unwrap();
    let p: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&p.stdout).trim()).unwrap();
    assert_eq!(v["whep_status"], 201, "{v}");
    assert!(v["frames_decoded"].as_u64().unwrap_or(0) >= 60, "{v}");
    // Decoded pictures arrive; their size is the publisher's choice (without
    // congestion feedback from the node Chromium steps down: issue 22).
    assert!(v["frame_width"].as_u64().unwrap_or(0) >= 160, "{v}");
    assert_eq!(v["video_codec"], "video/VP8", "{v}");
    assert!(v["audio_samples"].as_u64().unwrap_or(0) >= 48_000, "{v}");
    assert!(relayed(&v), "the viewer's pair is not relayed: {v}");
    assert_eq!(p["whip_status"], 201, "{p}");
    assert_eq!(
        p["patch_status"], 200,
        "a full-ICE node answers a trickle with its candidates: {p}"
    );
    eprintln!(
        "WHEP through TURN: first frame after {} ms, {} frames",
        v["first_frame_ms"], v["frames_decoded"]
    );

    // softbus send from the symmetric home, with the TURN server of its own.
    let out = send_from_a(
        &homes,
        &client_dir,
        &["--ice-server", TURN, "--turn-secret", SECRET],
    );
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out);
    let reply = lines.last().unwrap();
    assert_eq!(
        (reply["event"].as_str(), reply["data"].as_str()),
        (Some("reply"), Some("over the NAT")),
        "{lines:?}"
    );
    drop(node);
    for d in [node_dir, client_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// The node's `GET /api/ice-servers` from home A, once its servers have
/// settled (at most 10 s).
fn ice_status(homes: &Homes, _node: &NodeProc) -> String {
    for _ in 0..50 {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{}ha", homes.0), "python3", "-c"])
            .arg(format!(
                "import urllib.request as u; r = u.Request('http://{NODE_PUBLIC}:{WEB_PORT}/api/ice-servers', \
                 headers={{'Authorization': 'Bearer {TEST_TOKEN}'}}); print(u.urlopen(r).read().decode())"
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !text.is_empty() && !text.contains("\"gathering\"") {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("the node's ICE servers did not settle")
}

/// Asserts `softbus send` got its echo.
fn echoed(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {out:?}");
    let lines = json_lines(out);
    let reply = lines.last().unwrap();
    assert_eq!(
        (reply["event"].as_str(), reply["data"].as_str()),
        (Some("reply"), Some("over the NAT")),
        "{what}: {lines:?}"
    );
}

#[test]
fn with_stun_only_cone_homes_connect_and_symmetric_homes_are_told_to_use_turn() {
    for (tag, kind, works) in [("sbc", "cone", true), ("sbs", "symmetric", false)] {
        let Some(homes) = Homes::up(tag, kind, kind) else {
            return;
        };
        let (node_dir, client_dir) = (
            temp_dir(&format!("{tag}-node")),
            temp_dir(&format!("{tag}-cl")),
        );
        // A second STUN server that never answers keeps the node gathering:
        // its answer lacks end-of-candidates, so the client asks for the
        // rest by trickle PATCH.
        let node = node_in_b(
            &homes,
            &node_dir,
            &["--ice-server", STUN, "--ice-server", SILENT_STUN],
        );
        let out = send_from_a_logged(
            &homes,
            &client_dir,
            &["--ice-server", STUN],
            "softbus_runtime=info",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if works {
            echoed(&out, kind);
            assert!(
                err.contains("trickle: the node's candidates taken"),
                "{err}"
            );
        } else {
            assert!(!out.status.success(), "{kind}: {out:?}");
            assert!(
                err.contains("ICE failed, no candidate pair connected")
                    && err.contains("a TURN server is needed"),
                "{kind}: {err}"
            );
            // The same two homes with TURN, reached over TCP by both ends
            // (allocations over TCP, relayed datagrams as padded ChannelData).
            drop(node);
            let tcp_turn = "turn:198.18.0.1:3478?transport=tcp";
            let node = node_in_b(
                &homes,
                &node_dir,
                &["--ice-server", tcp_turn, "--turn-secret", SECRET],
            );
            let out = send_from_a(
                &homes,
                &client_dir,
                &["--ice-server", tcp_turn, "--turn-secret", SECRET],
            );
            echoed(&out, "TURN over TCP");
            // The node's allocation lives on a TCP connection to coturn.
            let ss = Command::new("ip")
                .args(["netns", "exec", &format!("{}pub", homes.0)])
                .args(["ss", "-tnH", "state", "established", "( sport = :3478 )"])
                .output()
                .unwrap();
            let conns = String::from_utf8_lossy(&ss.stdout);
            assert!(
                conns.contains("198.18.0.3:"),
                "no TCP connection from the node's router: {conns}"
            );
            drop(node);

            // TURN over TLS (turns:), the certificate checked: untrusted, the
            // node says so; trusted (SSL_CERT_FILE), it relays.
            let turns = "turns:198.18.0.1:5349";
            let pem = format!("/tmp/{}-turn.pem", homes.0);
            let node = node_in_b(
                &homes,
                &node_dir,
                &["--ice-server", turns, "--turn-secret", SECRET],
            );
            let status = ice_status(&homes, &node);
            assert!(status.contains("certificate not accepted"), "{status}");
            drop(node);
            let node = node_in_b_with(
                &homes,
                &node_dir,
                &["--ice-server", turns, "--turn-secret", SECRET],
                &[format!("SSL_CERT_FILE={pem}")],
            );
            // The client has STUN only: the node's relay over TLS is the one path.
            let out = send_from_a(&homes, &client_dir, &["--ice-server", STUN]);
            echoed(&out, "TURN over TLS");
            assert!(ice_status(&homes, &node).contains("\"ready\""));
            drop(node);
        }
        for d in [node_dir, client_dir] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
