//! The HTTP side cannot be held by slow or many clients (issue 7, item 5): a
//! request whose headers do not arrive in time is closed, and connections over
//! the cap are closed as they arrive, over loopback.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_runtime::{Node, NodeConfig, PinPolicy};
use softbus_web::{serve_with, WebLimits};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

async fn web(ip: [u8; 4], tag: &str, limits: WebLimits) -> (Node, String) {
    let dir = std::env::temp_dir().join(format!("softbus-web-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = NodeConfig::new("web", Ipv4Addr::from(ip), dir, PinPolicy::pin("1"));
    cfg.discovery_port = 0;
    let node = Node::start(cfg).await.unwrap();
    let l = tokio::net::TcpListener::bind((Ipv4Addr::from(ip), 0))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = node.handle();
    tokio::spawn(async move { serve_with(l, h, limits).await });
    (node, addr)
}

/// Reads until the server closes; how long that took (bounded by `max`).
fn closed_within(mut s: TcpStream, max: Duration) -> Option<Duration> {
    s.set_read_timeout(Some(max)).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(t0.elapsed()),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_do_not_arrive_in_time_are_closed() {
    let limits = WebLimits {
        header_timeout: Duration::from_millis(500),
        max_connections: 16,
    };
    let (node, addr) = web([127, 0, 0, 71], "slow", limits).await;
    let a = addr.clone();
    let took = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&a).unwrap();
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        closed_within(s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    let took = took.expect("the slow client is closed");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A whole request is still answered.
    let body = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_closed() {
    let limits = WebLimits {
        header_timeout: Duration::from_secs(10),
        max_connections: 3,
    };
    let (node, addr) = web([127, 0, 0, 72], "cap", limits).await;
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(200));
        let extra = TcpStream::connect(&addr).unwrap();
        let took = closed_within(extra, Duration::from_secs(3)).expect("closed at once");
        assert!(took < Duration::from_secs(1), "{took:?}");
        drop(held);
        std::thread::sleep(Duration::from_millis(200));
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    })
    .await
    .unwrap();
    node.shutdown().await;
}
