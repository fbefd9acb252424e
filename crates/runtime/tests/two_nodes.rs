//! The seed's two acceptance tests between two nodes on loopback addresses:
//! 1. discovery returns device info and the auth port (the session port comes from VerifyIp);
//! 2. the echo server returns the same bytes.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_bus::auth::PinPolicy;
use softbus_runtime::client::{self, ClientIdentity};
use softbus_runtime::events::NodeEvent;
use softbus_runtime::{Node, NodeConfig};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(name: &str, ip: [u8; 4], tag: &str) -> Node {
    let mut cfg = NodeConfig::new(
        name,
        Ipv4Addr::from(ip),
        data_dir(tag),
        PinPolicy::pin("135790"),
    );
    cfg.echo = vec!["echo-server".into()];
    Node::start(cfg).await.expect("node starts")
}

#[tokio::test]
async fn node_discovers_node_then_echo() {
    let a = start("node-a", [127, 0, 0, 2], "a").await;
    let b = start("node-b", [127, 0, 0, 3], "b").await;
    let (ai, bh) = (a.handle().info().clone(), b.handle());
    let mut events = bh.subscribe();

    // Test 1: node B discovers node A through its own discoverer.
    bh.discover(vec![SocketAddrV4::new(ai.ip, ai.discovery_port)])
        .await
        .unwrap();
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(NodeEvent::DeviceFound {
                device_id,
                name,
                device_type,
                ip,
                auth_port,
                capabilities,
            }) = events.recv().await
            {
                if device_id == ai.device_id {
                    return (name, device_type, ip, auth_port, capabilities);
                }
            }
        }
    })
    .await
    .expect("node A answers");
    assert_eq!(
        found,
        (
            "node-a".into(),
            0xF2,
            "127.0.0.2".into(),
            Some(ai.auth_port),
            vec!["ddmpCapability".to_owned()]
        )
    );
    assert!(bh
        .snapshot()
        .await
        .unwrap()
        .devices
        .iter()
        .any(|d| d.device_id == ai.device_id));

    // Test 2: authenticate from B's address, learn the session port, echo.
    let me = ClientIdentity {
        device_id: bh.info().device_id.clone(),
        name: "node-b".into(),
        device_type: 0xF2,
        ip: Ipv4Addr::new(127, 0, 0, 3),
    };
    let mut peer = client::authenticate(
        &me,
        SocketAddrV4::new(ai.ip, found.3.unwrap()),
        "135790",
        900,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(peer.info().session_port, ai.session_port);
    assert_eq!(peer.info().device_id, ai.device_id);
    assert_eq!(peer.info().device_name, "node-a");
    let mut s = peer.open_session("echo-server").await.unwrap();
    assert_eq!(s.open_reply().unwrap()["DEVICE_ID"], ai.device_id.as_str());
    for msg in [
        b"hello softbus".to_vec(),
        vec![0u8; 1],
        (0..4048u32).map(|i| i as u8).collect(),
    ] {
        s.send(&msg).await.unwrap();
        assert_eq!(s.recv().await.unwrap(), msg);
    }
    // The node shows the session with B's device id, and A trusts B from now on.
    let snap = a.handle().snapshot().await.unwrap();
    assert_eq!(snap.sessions.len(), 1);
    assert_eq!(snap.sessions[0].peer_device_id, bh.info().device_id);
    assert_eq!(snap.trusted[0].device_id, bh.info().device_id);
    assert_eq!(snap.trusted[0].ip, "127.0.0.3");
    drop(s);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn wrong_pin_and_unknown_server_are_refused_and_node_keeps_serving() {
    let a = start("node-c", [127, 0, 0, 4], "c").await;
    let ai = a.handle().info().clone();
    let me = ClientIdentity {
        device_id: "EF".repeat(32),
        name: "c".into(),
        device_type: 0x0E,
        ip: Ipv4Addr::new(127, 0, 0, 5),
    };
    let addr = SocketAddrV4::new(ai.ip, ai.auth_port);
    let err = client::authenticate(&me, addr, "000000", 1, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            softbus_runtime::Error::Auth(softbus_bus::auth::AuthError::WrongPin)
        ),
        "{err}"
    );
    let mut peer = client::authenticate(&me, addr, "135790", 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(peer.open_session("nope").await.is_err());
    let mut s = peer.open_session("echo-server").await.unwrap();
    s.send(b"ok").await.unwrap();
    assert_eq!(s.recv().await.unwrap(), b"ok");
    a.shutdown().await;
}

#[tokio::test]
async fn discard_server_counts_and_reports() {
    let mut cfg = NodeConfig::new(
        "node-d",
        Ipv4Addr::new(127, 0, 0, 6),
        data_dir("d"),
        PinPolicy::pin("1"),
    );
    cfg.discard = vec!["sink".into()];
    let a = Node::start(cfg).await.unwrap();
    let ai = a.handle().info().clone();
    a.handle()
        .create_session_server("app", softbus_runtime::ServerMode::App)
        .await
        .unwrap();
    let me = ClientIdentity {
        device_id: "EE".repeat(32),
        name: "d".into(),
        device_type: 0x0E,
        ip: Ipv4Addr::new(127, 0, 0, 7),
    };
    let mut peer = client::authenticate(
        &me,
        SocketAddrV4::new(ai.ip, ai.auth_port),
        "1",
        3,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let mut s = peer.open_session("sink").await.unwrap();
    for len in [1usize, 100, 4048] {
        s.send(&vec![7u8; len]).await.unwrap();
    }
    s.send(b"?").await.unwrap();
    assert_eq!(s.recv().await.unwrap(), b"4149");
    // An application server gets events and nothing is sent back by the node.
    let mut events = a.handle().subscribe();
    let mut app = peer.open_session("app").await.unwrap();
    app.send(b"hi").await.unwrap();
    let id = loop {
        if let Ok(NodeEvent::BytesReceived { session_id, len: 2 }) = events.recv().await {
            break session_id;
        }
    };
    a.handle()
        .send_bytes(id, b"from the app".to_vec())
        .await
        .unwrap();
    assert_eq!(app.recv().await.unwrap(), b"from the app");
    a.handle().close_session(id).await.unwrap();
    assert!(app.recv().await.is_err(), "closed by the node");
    a.shutdown().await;
}
