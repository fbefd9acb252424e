//! The gateway (issue 19, item 1) with headless Chromium and real nodes: a data
//! channel labelled `DEVICE/echo` on the gateway node reaches the echo server
//! of another softbus node, the device, which the gateway authenticates to with
//! the PIN it was given for it (`--gateway-pin`). A device it holds neither a
//! pairing nor a PIN for is refused on the channel with a reason, and so is
//! the PIN path on a `--paired-only` gateway. Runs in a loopback-only network
//! namespace the test creates. Skipped with a message when Chromium or
//! namespaces are missing, unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::process::Command;
use support::*;

/// A device: a softbus node on `ip` with PIN 246810 and its `echo` server.
fn device(ns: &Ns, ip: &str, dir: &std::path::Path) -> NodeProc {
    NodeProc::start(
        &ns.exec(),
        &[
            "--ip",
            ip,
            "--pin",
            "246810",
            "--web",
            "off",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
    )
}

/// The gateway on 127.0.0.1 with its web side, and `extra` arguments.
fn gateway(ns: &Ns, dir: &std::path::Path, extra: &[&str]) -> NodeProc {
    let mut args = vec![
        "--ip",
        "127.0.0.1",
        "--web",
        "127.0.0.1:0",
        "--web-origin",
        PAGE_ORIGIN,
        "--pin",
        "1",
        "--web-token",
        TEST_TOKEN,
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    NodeProc::start(&ns.exec(), &args)
}

/// `POST /api/discover` for `targets`, then the gateway's `device_found` for each.
fn discover(ns: &Ns, gw: &NodeProc, web: &str, devices: &[(&str, &str)]) {
    let targets: Vec<String> = devices.iter().map(|(ip, _)| format!("{ip}:5684")).collect();
    let body = serde_json::json!({ "targets": targets }).to_string();
    let script = format!(
        "import urllib.request as u; r = u.Request('{web}/api/discover', data={body:?}.encode(), \
         headers={{'Authorization': 'Bearer {TEST_TOKEN}', 'Content-Type': 'application/json'}}); \
         print(u.urlopen(r).status)"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "202",
        "{out:?}"
    );
    // In whatever order they answer.
    let mut missing: Vec<&str> = devices.iter().map(|(_, id)| *id).collect();
    while !missing.is_empty() {
        let found = gw.wait_for(|v| {
            v["event"] == "device_found" && missing.contains(&v["device_id"].as_str().unwrap_or(""))
        });
        missing.retain(|id| found["device_id"] != *id);
    }
}

/// Chromium opens a channel labelled `label` on the gateway and sends text
/// and binary messages of `sizes` bytes, each to be echoed; its report.
fn page(ns: &Ns, web: &str, label: &str, sizes: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", &path, web, label])
        .env("PAGE_PORT", PAGE_PORT)
        .env("NODE_TOKEN", TEST_TOKEN)
        .env("PAGE_SIZES", sizes)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Chromium's channel to `DEVICE/echo` does not open, and the gateway says
/// why: `reason` is in its `gateway_refused`.
fn refused(ns: &Ns, gw: &NodeProc, web: &str, device: &str, reason: &str) {
    let r = page(ns, web, &format!("{device}/echo"), "1");
    assert_eq!(r["ok"], false, "{r}");
    let refused = gw.wait_for(|v| v["event"] == "gateway_refused");
    assert!(
        refused["reason"].as_str().unwrap().contains(reason),
        "{refused}"
    );
}

#[test]
fn chromium_reaches_a_device_session_through_the_gateway() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return skip("Chromium is not installed (apt-get install chromium)");
    }
    let dirs: Vec<_> = ["gwg", "gwd", "gwe", "gwp"]
        .iter()
        .map(|t| temp_dir(t))
        .collect();
    let Some(ns) = Ns::create("sbgw") else {
        return;
    };
    let lamp = device(&ns, "127.0.0.2", &dirs[1]);
    let stranger = device(&ns, "127.0.0.3", &dirs[2]);
    let lamp_id = lamp.ready["device_id"].as_str().unwrap().to_owned();
    let stranger_id = stranger.ready["device_id"].as_str().unwrap().to_owned();
    let allowed = format!("{lamp_id}=246810");
    let gw = gateway(&ns, &dirs[0], &["--gateway-pin", &allowed]);
    let web = gw.ready["web"].as_str().unwrap().to_owned();
    discover(
        &ns,
        &gw,
        &web,
        &[("127.0.0.2", &lamp_id), ("127.0.0.3", &stranger_id)],
    );

    // Text and binary of 1 and 4,048 bytes (softbus_lite's largest) echoed by
    // the device, through the gateway.
    let r = page(&ns, &web, &format!("{lamp_id}/echo"), "1,4048");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["steps"].as_array().unwrap().len(), 2, "{r}");
    let opened = gw.wait_for(|v| v["event"] == "gateway_opened");
    assert_eq!(
        (
            opened["device_id"].as_str(),
            opened["session"].as_str(),
            opened["who"].as_str()
        ),
        (Some(lamp_id.as_str()), Some("echo"), Some("web")),
        "{opened}"
    );
    let on_lamp = lamp.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(on_lamp["session"], "echo");
    assert_eq!(on_lamp["peer_device_id"], gw.ready["device_id"]);
    assert_eq!(on_lamp["auth"], "pin");
    // The page ends with DELETE: the device's session closes too.
    let closed = lamp.wait_for(|v| v["event"] == "session_closed");
    assert_eq!(closed["session_id"], on_lamp["session_id"]);

    // No pairing and no PIN for this device: refused, with the reason.
    refused(&ns, &gw, &web, &stranger_id, "no pairing with device");
    drop(gw);

    // A paired-only gateway does not use the PIN it was given.
    let gw = gateway(&ns, &dirs[3], &["--gateway-pin", &allowed, "--paired-only"]);
    let web = gw.ready["web"].as_str().unwrap().to_owned();
    discover(&ns, &gw, &web, &[("127.0.0.2", &lamp_id)]);
    refused(&ns, &gw, &web, &lamp_id, "accepts paired devices only");
    drop((gw, lamp, stranger));
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}
