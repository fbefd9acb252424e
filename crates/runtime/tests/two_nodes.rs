//! The seed's two acceptance tests between two nodes on loopback addresses:
//! 1. discovery returns device info and the auth port (the session port comes from VerifyIp);
//! 2. the echo server returns the same bytes. Node B is the client: it
//!    authenticates and opens sessions through its own node core.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_bus::auth::PinPolicy;
use softbus_runtime::events::NodeEvent;
use softbus_runtime::{NodeConfig, NodeTask};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

fn data_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

async fn start(name: &str, ip: [u8; 4], tag: &str) -> NodeTask {
    let mut cfg = NodeConfig::new(
        name,
        Ipv4Addr::from(ip),
        data_dir(tag),
        PinPolicy::pin("135790"),
    );
    cfg.echo = vec!["echo-server".into()];
    NodeTask::start(cfg).await.expect("node starts")
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

    // Test 2: B authenticates to A, learns the session port, echoes.
    let peer = bh
        .connect(SocketAddr::from((ai.ip, found.3.unwrap())), "135790")
        .await
        .unwrap();
    assert_eq!(peer.peer.session_port, ai.session_port);
    assert_eq!(peer.peer.device_id, ai.device_id);
    assert_eq!(peer.peer.device_name, "node-a");
    let mut s = bh.open_session(&peer, "echo-server").await.unwrap();
    for msg in [
        b"hello softbus".to_vec(),
        vec![0u8; 1],
        (0..4048u32).map(|i| i as u8).collect(),
    ] {
        s.send(&msg).await.unwrap();
        assert_eq!(s.recv(Duration::from_secs(5)).await.unwrap(), msg);
    }
    // B's own table has the session, transport tcp, A's device id.
    let mine = bh.snapshot().await.unwrap().sessions;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].info.peer_device_id, ai.device_id);
    // The node shows the session with B's device id, and A trusts B from now on.
    let snap = a.handle().snapshot().await.unwrap();
    assert_eq!(snap.sessions.len(), 1);
    assert_eq!(snap.sessions[0].info.peer_device_id, bh.info().device_id);
    assert_eq!(snap.trusted[0].device_id, bh.info().device_id);
    assert_eq!(snap.trusted[0].ip, "127.0.0.3");
    s.close().await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn wrong_pin_and_unknown_server_are_refused_and_node_keeps_serving() {
    let a = start("node-c", [127, 0, 0, 4], "c").await;
    let c = start("client-c", [127, 0, 0, 5], "c-client").await;
    let (ai, ch) = (a.handle().info().clone(), c.handle());
    let addr = SocketAddr::from((ai.ip, ai.auth_port));
    let err = ch.connect(addr, "000000").await.unwrap_err();
    assert!(
        matches!(
            err,
            softbus_runtime::Error::Refused(softbus_node::ConnClosed::Auth(
                softbus_bus::auth::AuthError::WrongPin
            ))
        ),
        "{err}"
    );
    let peer = ch.connect(addr, "135790").await.unwrap();
    let err = ch.open_session(&peer, "nope").await.unwrap_err();
    assert!(
        matches!(
            err,
            softbus_runtime::Error::NotOpened(softbus_node::SessionClosed::Connection(
                softbus_node::ConnClosed::Session(softbus_bus::session::SessionError::Refused(
                    ref why
                ))
            )) if why == "no session server named \"nope\""
        ),
        "{err}"
    );
    let mut s = ch.open_session(&peer, "echo-server").await.unwrap();
    s.send(b"ok").await.unwrap();
    assert_eq!(s.recv(Duration::from_secs(5)).await.unwrap(), b"ok");
    // A refused TCP connect names the reason.
    let err = ch
        .connect(SocketAddr::from((ai.ip, 1)), "135790")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            softbus_runtime::Error::Refused(softbus_node::ConnClosed::ConnectFailed(_))
        ),
        "{err}"
    );
    a.shutdown().await;
    c.shutdown().await;
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
    let a = NodeTask::start(cfg).await.unwrap();
    let ai = a.handle().info().clone();
    a.handle()
        .create_session_server("app", softbus_runtime::ServerMode::App)
        .await
        .unwrap();
    let d = start("client-d", [127, 0, 0, 7], "d-client").await;
    let dh = d.handle();
    let peer = dh
        .connect(SocketAddr::from((ai.ip, ai.auth_port)), "1")
        .await
        .unwrap();
    let mut s = dh.open_session(&peer, "sink").await.unwrap();
    for len in [1usize, 100, 4048] {
        s.send(&vec![7u8; len]).await.unwrap();
    }
    s.send(b"?").await.unwrap();
    assert_eq!(s.recv(Duration::from_secs(5)).await.unwrap(), b"4149");
    // An application server gets events and nothing is sent back by the node.
    let mut events = a.handle().subscribe();
    let mut app = dh.open_session(&peer, "app").await.unwrap();
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
    assert_eq!(
        app.recv(Duration::from_secs(5)).await.unwrap(),
        b"from the app"
    );
    a.handle().close_session(id).await.unwrap();
    assert!(
        matches!(
            app.recv(Duration::from_secs(5)).await,
            Err(softbus_runtime::Error::Closed(_))
        ),
        "closed by the node"
    );
    a.shutdown().await;
    d.shutdown().await;
}
