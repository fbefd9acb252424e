//! Pairing end to end from the command line (issue 7, items 1 and 2; issue 17):
//! `softbus pair`, sessions without a PIN, `devices`, `unpair`.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use support::*;

/// Pairing end to end (issue 7, items 1 and 2): with `--paired-only` a PIN
/// alone opens nothing; `softbus pair` with a wrong PIN fails, with the right
/// one pairs both sides; then `send` needs no PIN over TCP or WebRTC (the
/// node-to-node offer is signed with the pairing, no web token), the sessions
/// carry the device id and `paired`; `devices` lists the pairing and `unpair`
/// on the node's side ends it while the node runs.
#[test]
fn pair_then_send_without_a_pin() {
    let dir = temp_dir("pair");
    let (ndir, cdir) = (dir.join("n"), dir.join("c"));
    let node = NodeProc::start(
        &[],
        &[
            "--ip",
            "127.0.0.52",
            "--discovery-port",
            "0",
            "--pin",
            "246810",
            "--paired-only",
            "--web",
            "127.0.0.1:0",
            "--echo",
            "echo",
            "--data-dir",
            ndir.to_str().unwrap(),
        ],
    );
    let node_id = node.ready["device_id"].as_str().unwrap().to_owned();
    let peer = format!("127.0.0.52:{}", node.port("auth_port"));
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let cd = cdir.to_str().unwrap();
    let send = |extra: &[&str]| {
        let mut args = vec![
            "send",
            "--peer",
            &peer,
            "--ip",
            "127.0.0.53",
            "--session",
            "echo",
            "--json",
            "--timeout",
            "3",
            "--data-dir",
            cd,
        ];
        args.extend_from_slice(extra);
        args.push("paired hello");
        run(&[], &args)
    };
    // The PIN alone: authenticated, but the session is refused (paired only).
    let o = send(&["--pin", "246810"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let refused = node.wait_for(|v| v["event"] == "error");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("paired devices only"),
        "{refused}"
    );
    // No PIN, not paired yet: says what to do.
    let o = send(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("softbus pair"),
        "{o:?}"
    );
    // A wrong PIN pairs nothing.
    let pair = |pin: &str| {
        run(
            &[],
            &[
                "pair",
                "--peer",
                &peer,
                "--ip",
                "127.0.0.53",
                "--pin",
                pin,
                "--json",
                "--data-dir",
                cd,
            ],
        )
    };
    let o = pair("135790");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let o = pair("246810");
    assert!(o.status.success(), "{o:?}");
    let p = &json_lines(&o)[0];
    assert_eq!(
        (p["event"].as_str(), p["device_id"].as_str()),
        (Some("paired"), Some(node_id.as_str()))
    );
    let client_id = std::fs::read_to_string(cdir.join("client/deviceid")).unwrap();
    let client_id = client_id.trim();
    let paired = node.wait_for(|v| v["event"] == "paired");
    assert_eq!(paired["device_id"], client_id);
    // The client's id is derived from its key (issue 17): the pairing proves it.
    assert_eq!(paired["id"], "key", "{paired}");
    // Both sides keep the pairing, 0600.
    for f in [ndir.join("paired.json"), cdir.join("client/paired.json")] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Now with no PIN, over TCP...
    let o = send(&[]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(json_lines(&o)[0]["data"], "paired hello");
    let opened = node.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(
        (opened["auth"].as_str(), opened["peer_device_id"].as_str()),
        (Some("paired"), Some(client_id))
    );
    assert_eq!(opened["id"], "key", "{opened}");
    // Now that the id is paired, a PIN does not let anyone show it.
    let o = send(&["--pin", "246810"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("this device id is paired with the peer"),
        "{o:?}"
    );
    // ...and over WebRTC, with no web token: the offer is signed with the pairing.
    let o = send(&["--transport", "webrtc", "--web", &web]);
    assert!(o.status.success(), "{o:?}");
    let opened = node.wait_for(|v| v["event"] == "session_opened" && v["transport"] == "webrtc");
    assert_eq!(
        (opened["auth"].as_str(), opened["peer_device_id"].as_str()),
        (Some("paired"), Some(client_id))
    );
    assert_eq!(opened["id"], "key", "{opened}");
    // `devices` on both sides.
    let o = run(&[], &["devices", "--json", "--data-dir", cd]);
    let l = json_lines(&o);
    assert!(
        l.iter()
            .any(|d| d["role"] == "client" && d["device_id"] == node_id.as_str()),
        "{l:?}"
    );
    let o = run(
        &[],
        &["devices", "--json", "--data-dir", ndir.to_str().unwrap()],
    );
    let l = json_lines(&o);
    assert!(
        l.iter()
            .any(|d| d["role"] == "node" && d["device_id"] == client_id && d["id"] == "key"),
        "{l:?}"
    );
    // Unpair on the node's side while it runs, by the first 8 digits of the
    // id: it notices, and refuses.
    let o = run(
        &[],
        &[
            "unpair",
            &client_id[..8],
            "--data-dir",
            ndir.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("unpaired {client_id} (node)")),
        "{o:?}"
    );
    assert!(o.status.success(), "{o:?}");
    let gone = node.wait_for(|v| v["event"] == "unpaired");
    assert_eq!(gone["device_id"], client_id);
    let o = send(&[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let o = run(
        &[],
        &["unpair", client_id, "--data-dir", ndir.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "not paired any more");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `unpair` takes a unique prefix of at least 8 hex digits; an ambiguous one
/// lists the ids it starts, a short one is refused (exit 2).
#[test]
fn unpair_takes_a_unique_prefix_and_lists_an_ambiguous_one() {
    let dir = temp_dir("prefix");
    let key = "00".repeat(32);
    let ids = [
        format!("ABCDEF01{}", "1".repeat(56)),
        format!("ABCDEF01{}", "2".repeat(56)),
        format!("12345678{}", "3".repeat(56)),
    ];
    let devices: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"device_id": id, "public_key": key, "paired_at": 1}))
        .collect();
    std::fs::write(
        dir.join("paired.json"),
        serde_json::json!({"version": 1, "devices": devices}).to_string(),
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let o = run(&[], &["unpair", "abcdef01", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ABCDEF01 is the start of 2 paired devices' ids")
            && err.contains(&ids[0])
            && err.contains(&ids[1]),
        "{err}"
    );
    let o = run(&[], &["unpair", "ABCD", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("\"ABCD\" is not a device id or a prefix of one (8 to 64 hex digits)"));
    let o = run(&[], &["unpair", "ABCDEF012", "--data-dir", d]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("unpaired {} (node)", ids[1])));
    let o = run(&[], &["unpair", "FFFFFFFF", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not paired"));
    let _ = std::fs::remove_dir_all(&dir);
}
