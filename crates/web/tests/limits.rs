//! The HTTP side cannot be held by slow or many clients (issue 7, item 5): a
//! request whose headers do not arrive in time is closed, and connections over
//! the cap are closed as they arrive, over loopback.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_runtime::{Node, NodeConfig, PinPolicy};
use softbus_web::{serve_with, WebAccess, WebLimits};
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
    tokio::spawn(async move { serve_with(l, h, limits, WebAccess::default()).await });
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
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: localhost\r\n")
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
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
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
        s.write_all(b"GET /api/device HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    })
    .await
    .unwrap();
    node.shutdown().await;
}

/// A request naming another host (DNS rebinding) gets 403; a cross-origin
/// preflight gets no Access-Control-Allow-Origin unless that origin was allowed.
#[tokio::test(flavor = "multi_thread")]
async fn host_and_origin_are_checked() {
    let dir = std::env::temp_dir().join(format!("softbus-web-access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = NodeConfig::new(
        "web",
        Ipv4Addr::new(127, 0, 0, 73),
        dir,
        PinPolicy::pin("1"),
    );
    cfg.discovery_port = 0;
    let node = Node::start(cfg).await.unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.73:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = node.handle();
    let access = WebAccess {
        hosts: vec!["softbus.lan".into()],
        origins: vec!["http://127.0.0.1:9999".into()],
    };
    tokio::spawn(async move { serve_with(l, h, WebLimits::default(), access).await });
    let ask = move |req: String| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let get = |host: &str| {
        format!("GET /api/trusted HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    let r = tokio::task::spawn_blocking({
        move || {
            let mut out = Vec::new();
            for host in ["evil.example", "evil.example:80", &addr.to_string(), "localhost:1", "SOFTBUS.lan"] {
                out.push(ask(get(host)));
            }
            let preflight = |origin: &str| {
                format!("OPTIONS /rtc/offer HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n")
            };
            out.push(ask(preflight("http://attacker.example")));
            out.push(ask(preflight("http://127.0.0.1:9999")));
            out
        }
    })
    .await
    .unwrap();
    assert!(r[0].starts_with("HTTP/1.1 403"), "{}", r[0]);
    assert!(r[1].starts_with("HTTP/1.1 403"), "{}", r[1]);
    for ok in &r[2..5] {
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
    let lower = |s: &str| s.to_ascii_lowercase();
    assert!(
        !lower(&r[5]).contains("access-control-allow-origin"),
        "{}",
        r[5]
    );
    assert!(
        lower(&r[6]).contains("access-control-allow-origin: http://127.0.0.1:9999"),
        "{}",
        r[6]
    );
    assert!(!lower(&r[6]).contains("access-control-allow-origin: *"));
    node.shutdown().await;
}
