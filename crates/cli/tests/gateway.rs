//! The gateway (issue 19, item 1) from the command line: `softbus send
//! --transport webrtc --session DEVICE/echo` through a gateway node reaches the
//! echo server of a device it authenticates to with `--gateway-pin`.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use std::io::{Read, Write};
use support::*;

/// `POST /api/discover` for `target` on the node's web side: `202`.
fn discover(web: &str, target: &str) {
    let addr = web.trim_start_matches("http://");
    let body = format!(r#"{{"targets":["{target}"]}}"#);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/discover HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TEST_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
}

/// `GET path` with the test token: the body of a `200`.
fn get(web: &str, path: &str) -> String {
    let addr = web.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TEST_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn send_reaches_a_device_session_through_a_gateway() {
    let dir = temp_dir("gwsend");
    let lamp = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.71",
            "--pin",
            "246810",
            "--web",
            "off",
            "--data-dir",
            dir.join("lamp").to_str().unwrap(),
        ],
    );
    let lamp_id = lamp.ready["device_id"].as_str().unwrap().to_owned();
    let allowed = format!("{lamp_id}=246810");
    let gw = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.72",
            "--web",
            "127.0.0.72:0",
            "--pin",
            "1",
            "--web-token",
            TEST_TOKEN,
            "--gateway-pin",
            &allowed,
            "--data-dir",
            dir.join("gw").to_str().unwrap(),
        ],
    );
    let web = gw.ready["web"].as_str().unwrap().to_owned();
    discover(&web, "127.0.0.71:5684");
    gw.wait_for(|v| v["event"] == "device_found" && v["device_id"] == lamp_id.as_str());
    // The dashboard's list of what the gateway reaches.
    let list: serde_json::Value = serde_json::from_str(&get(&web, "/api/gateway")).unwrap();
    assert_eq!(
        list,
        serde_json::json!([{"device_id": lamp_id, "name": lamp.ready["name"], "via": "pin"}])
    );
    let label = format!("{lamp_id}/echo");
    let o = run(
        &[],
        &[
            "send",
            "--transport",
            "webrtc",
            "--peer",
            "127.0.0.72",
            "--web",
            &web,
            "--ip",
            "127.0.0.73",
            "--web-token",
            TEST_TOKEN,
            "--session",
            &label,
            "--count",
            "2",
            "--json",
            "--data-dir",
            dir.join("c").to_str().unwrap(),
            "to the lamp",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let replies = json_lines(&o);
    assert_eq!(replies.len(), 2, "{o:?}");
    assert!(
        replies.iter().all(|r| r["data"] == "to the lamp"),
        "{replies:?}"
    );
    let opened = gw.wait_for(|v| v["event"] == "gateway_opened");
    assert_eq!(opened["device_id"], lamp_id.as_str());
    let on_lamp = lamp.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(
        (on_lamp["session"].as_str(), on_lamp["auth"].as_str()),
        (Some("echo"), Some("pin"))
    );
    // The client's DELETE ends the channel; the device's session ends with it.
    let closed = lamp.wait_for(|v| v["event"] == "session_closed");
    assert_eq!(closed["session_id"], on_lamp["session_id"]);
    drop((gw, lamp));
    let _ = std::fs::remove_dir_all(&dir);
}
