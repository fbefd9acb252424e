//! The seed's tests between two network namespaces joined by a veth pair, with
//! discovery by broadcast. The test creates and removes the namespaces; where they
//! cannot be made (not root, no iproute2) it is skipped with a message, unless
//! SOFTBUS_REQUIRE_NETNS=1 demands it (CI sets this).
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use std::process::Command;
use support::*;

struct Namespaces {
    a: String,
    b: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Namespaces {
    fn create() -> Option<Namespaces> {
        let tag = std::process::id() % 100_000;
        let ns = Namespaces {
            a: format!("sbA{tag}"),
            b: format!("sbB{tag}"),
        };
        if !ip(&["netns", "add", &ns.a]) {
            return None;
        }
        let (va, vb) = (format!("sva{tag}"), format!("svb{tag}"));
        let ok = ip(&["netns", "add", &ns.b])
            && ip(&[
                "link", "add", &va, "netns", &ns.a, "type", "veth", "peer", "name", &vb, "netns",
                &ns.b,
            ])
            && ip(&[
                "-n",
                &ns.a,
                "addr",
                "add",
                "10.77.0.2/24",
                "brd",
                "+",
                "dev",
                &va,
            ])
            && ip(&[
                "-n",
                &ns.b,
                "addr",
                "add",
                "10.77.0.3/24",
                "brd",
                "+",
                "dev",
                &vb,
            ])
            && ip(&["-n", &ns.a, "link", "set", "lo", "up"])
            && ip(&["-n", &ns.b, "link", "set", "lo", "up"])
            && ip(&["-n", &ns.a, "link", "set", &va, "up"])
            && ip(&["-n", &ns.b, "link", "set", &vb, "up"]);
        ok.then_some(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth, and with it the pair.
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

#[test]
fn broadcast_discovery_and_echo_across_namespaces() {
    let Some(ns) = Namespaces::create() else {
        if std::env::var("SOFTBUS_REQUIRE_NETNS").as_deref() == Ok("1") {
            panic!("SOFTBUS_REQUIRE_NETNS=1 but network namespaces cannot be created here");
        }
        eprintln!("SKIPPED: cannot create network namespaces here (needs root and iproute2)");
        return;
    };
    let dir = temp_dir("netns");
    let in_a = ["ip", "netns", "exec", ns.a.as_str()];
    let in_b = ["ip", "netns", "exec", ns.b.as_str()];
    let node = NodeProc::start(
        &in_a,
        &[
            "--ip",
            "10.77.0.2",
            "--pin",
            "2468",
            "--web",
            "off",
            "--name",
            "ns-node",
            "--echo",
            "echo-server",
            "--data-dir",
            dir.join("n").to_str().unwrap(),
        ],
    );
    let cdir = dir.join("c");
    let cdir = cdir.to_str().unwrap();

    // Test 1: broadcast to 10.77.0.255 (no --target).
    let o = run(
        &in_b,
        &[
            "discover",
            "--ip",
            "10.77.0.3",
            "--timeout",
            "3",
            "--json",
            "--data-dir",
            cdir,
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let found = json_lines(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["ip"], "10.77.0.2");
    assert_eq!(found[0]["name"], "ns-node");
    assert_eq!(found[0]["device_id"], node.ready["device_id"]);
    assert_eq!(found[0]["auth_port"], node.ready["auth_port"]);
    // the node saw the discoverer's request too
    let seen = node.wait_for(|v| v["event"] == "device_found");
    assert_eq!(seen["ip"], "10.77.0.3");

    // Test 2: send finds the auth port by discovery, authenticates, echoes.
    let o = run(
        &in_b,
        &[
            "send",
            "--peer",
            "10.77.0.2",
            "--ip",
            "10.77.0.3",
            "--session",
            "echo-server",
            "--pin",
            "2468",
            "--count",
            "2",
            "--json",
            "--data-dir",
            cdir,
            "across the veth",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let replies = json_lines(&o);
    assert_eq!(replies.len(), 2);
    assert!(replies.iter().all(|r| r["data"] == "across the veth"));
    let opened = node.wait_for(|v| v["event"] == "session_opened");
    assert_eq!(opened["session"], "echo-server");
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
