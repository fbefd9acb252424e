//! Relay fan-out: one publisher at a fixed bit rate (2.5 Mbit/s of 1200-byte
//! RTP packets) to N viewers over loopback, through a node (WHIP in, WHEP out,
//! DTLS-SRTP both ways), against a plain UDP fan-out of the same packets to the
//! same number of sockets. Each side's server thread is timed by the kernel's
//! own account of its CPU time (`/proc/.../schedstat`), so the comparison is
//! packets forwarded per CPU-second: packets per second per core.

use crate::placement::SERVER_CPU;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::crypto::ice_chars;
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{Peer, PeerEvent};
use softbus_rtc::rtp::RtpBuilder;
use softbus_rtc::sdp::Direction;
use softbus_rtc::srtp::Context;
use softbus_runtime::{NodeConfig, NodeTask, PinPolicy, Principal};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const PACKET: usize = 1200;
const BITRATE: f64 = 2_500_000.0;

/// Nanoseconds the thread named `name` of this process has run, from the
/// scheduler's statistics.
fn thread_cpu_ns(name: &str) -> Result<u64, String> {
    for t in std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())? {
        let dir = t.map_err(|e| e.to_string())?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let s = std::fs::read_to_string(dir.join("schedstat")).map_err(|e| e.to_string())?;
            return s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| "unreadable schedstat".to_owned());
        }
    }
    Err(format!("no thread named {name}"))
}

/// The calling thread's CPU time in nanoseconds.
fn own_cpu_ns() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").map_err(|e| e.to_string())?;
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "unreadable schedstat".to_owned())
}

/// One media client: an offering peer on a UDP socket of its own.
struct Client {
    sock: UdpSocket,
    peer: Peer,
    hmac: OpenSslCrypto,
    tx: Option<Context>,
    rx: Option<Context>,
    connected: bool,
    received: u64,
}

impl Client {
    fn offer(dir: Direction) -> Result<(Self, String), String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        sock.set_nonblocking(true).map_err(|e| e.to_string())?;
        let id = DtlsIdentity::generate().map_err(|e| e.to_string())?;
        let mut rng = OpenSslCrypto::new();
        let (peer, offer) = Peer::offer_with_media(
            sock.local_addr().map_err(|e| e.to_string())?,
            &id.fingerprint("sha-256").map_err(|e| e.to_string())?,
            Box::new(id.factory().map_err(|e| e.to_string())?),
            u64::from(sock.local_addr().map_err(|e| e.to_string())?.port()),
            Box::new(move |n| ice_chars(&mut rng, n)),
            &[(MediaKind::Audio, dir), (MediaKind::Video, dir)],
        )
        .map_err(|e| e.to_string())?;
        Ok((
            Self {
                sock,
                peer,
                hmac: OpenSslCrypto::new(),
                tx: None,
                rx: None,
                connected: false,
                received: 0,
            },
            offer,
        ))
    }

    fn answer(&mut self, sdp: &str) -> Result<(), String> {
        let mut r = OpenSslCrypto::new();
        self.peer
            .apply_answer(
                Instant::now(),
                sdp,
                &self.hmac,
                Box::new(move || {
                    let mut b = [0u8; 12];
                    softbus_bus::crypto::Crypto::random(&mut r, &mut b);
                    b
                }),
            )
            .map_err(|e| e.to_string())
    }

    /// Reads what arrived, fires timers, sends what the peer has.
    fn pump(&mut self, buf: &mut [u8]) {
        let now = Instant::now();
        while let Ok((n, from)) = self.sock.recv_from(buf) {
            self.peer.handle_datagram(now, from, &buf[..n], &self.hmac);
        }
        if self.peer.poll_timeout().is_some_and(|t| t <= now) {
            self.peer.handle_timeout(now, &self.hmac);
        }
        while let Some(e) = self.peer.poll_event() {
            match e {
                PeerEvent::SrtpKeys(k) => {
                    self.tx = Context::from_dtls(
                        &k,
                        true,
                        Box::new(softbus_crypto::SrtpBackend::default()),
                    )
                    .ok();
                    self.rx = Context::from_dtls(
                        &k,
                        false,
                        Box::new(softbus_crypto::SrtpBackend::default()),
                    )
                    .ok();
                }
                PeerEvent::Connected => self.connected = true,
                // RTP (not RTCP, RFC 5761) that authenticates.
                PeerEvent::Media(d)
                    if d.get(1).is_some_and(|b| !(192..=223).contains(b))
                        && self
                            .rx
                            .as_mut()
                            .is_some_and(|c| c.unprotect_rtp(&d).is_ok()) =>
                {
                    self.received += 1;
                }
                _ => {}
            }
        }
        while let Some((to, d)) = self.peer.poll_transmit() {
            let _ = self.sock.send_to(&d, to);
        }
    }
}

fn packet(seq: u16) -> Vec<u8> {
    let payload = [0x5Au8; PACKET - 12];
    RtpBuilder {
        payload_type: 96,
        sequence: seq,
        timestamp: u32::from(seq) * 3000,
        ssrc: 0x0B0B,
        payload: &payload,
        ..Default::default()
    }
    .build()
    .unwrap_or_default()
}

/// The relay: packets the viewers received per CPU-second of the node's thread.
async fn through_node(secs: Duration, viewers: usize) -> Result<(f64, u64, u64), String> {
    let dir = std::env::temp_dir().join(format!("softbus-bench-relay-{}", std::process::id()));
    let mut cfg = NodeConfig::new(
        "bench",
        Ipv4Addr::LOCALHOST,
        dir.clone(),
        PinPolicy::pin("bench"),
    );
    cfg.discovery_port = 0;
    cfg.cpu = Some(SERVER_CPU);
    let node = NodeTask::start(cfg).await.map_err(|e| e.to_string())?;
    let h = node.handle();
    let who = Principal::WebToken {
        name: "bench".into(),
        credential: "bench".into(),
    };
    let (mut publisher, offer) = Client::offer(Direction::SendOnly)?;
    let (_, answer) = h
        .whip("bench".into(), offer, who.clone())
        .await
        .map_err(|e| e.to_string())?;
    publisher.answer(&answer)?;
    let mut clients = vec![publisher];
    for _ in 0..viewers {
        let (mut v, offer) = Client::offer(Direction::RecvOnly)?;
        let (_, answer) = h
            .whep("bench".into(), offer, who.clone())
            .await
            .map_err(|e| e.to_string())?;
        v.answer(&answer)?;
        clients.push(v);
    }
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !clients.iter().all(|c| c.connected && c.tx.is_some()) {
        if Instant::now() > deadline {
            return Err("media clients did not connect in 30 s".into());
        }
        for c in &mut clients {
            c.pump(&mut buf);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let interval = Duration::from_secs_f64(PACKET as f64 * 8.0 / BITRATE);
    let cpu0 = thread_cpu_ns("softbus-node")?;
    let sent = drive(&mut clients, secs, interval, &mut buf)?;
    let cpu = thread_cpu_ns("softbus-node")?.saturating_sub(cpu0);
    let got: u64 = clients[1..].iter().map(|c| c.received).sum();
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((got as f64 / (cpu as f64 / 1e9), got, sent * viewers as u64))
}

/// Sends the publisher's packets at the interval for `secs` while every client
/// reads; then lets the last ones arrive. Returns packets sent.
fn drive(
    clients: &mut [Client],
    secs: Duration,
    interval: Duration,
    buf: &mut [u8],
) -> Result<u64, String> {
    let start = Instant::now();
    let mut seq = 0u16;
    let mut sent = 0u64;
    while start.elapsed() < secs {
        let due = start + interval * u32::from(seq);
        if Instant::now() >= due {
            let p = &mut clients[0];
            let d =
                p.tx.as_mut()
                    .ok_or("no SRTP")?
                    .protect_rtp(&packet(seq))
                    .map_err(|e| e.to_string())?;
            p.peer.send_media(d);
            seq = seq.wrapping_add(1);
            sent += 1;
        }
        for c in clients.iter_mut() {
            c.pump(buf);
        }
    }
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        for c in clients.iter_mut() {
            c.pump(buf);
        }
    }
    Ok(sent)
}

/// The baseline: a thread that reads each packet and sends it to every viewer
/// socket, as plainly as UDP allows; packets received per CPU-second of it.
fn plain(secs: Duration, viewers: usize) -> Result<(f64, u64, u64), String> {
    let io = |e: std::io::Error| e.to_string();
    let server = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io)?;
    let server_addr = server.local_addr().map_err(io)?;
    let mut sinks = Vec::new();
    for _ in 0..viewers {
        let s = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
        s.set_nonblocking(true).map_err(io)?;
        sinks.push(s);
    }
    let dests: Vec<SocketAddr> = sinks.iter().filter_map(|s| s.local_addr().ok()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let fanout = std::thread::Builder::new()
        .name("plain-fanout".into())
        .spawn(move || -> Result<u64, String> {
            softbus_runtime::node::pin_to_cpu(Some(SERVER_CPU));
            let cpu0 = own_cpu_ns()?;
            let mut buf = [0u8; 2048];
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = server.recv(&mut buf) {
                    for d in &dests {
                        let _ = server.send_to(&buf[..n], d);
                    }
                }
            }
            Ok(own_cpu_ns()?.saturating_sub(cpu0))
        })
        .map_err(io)?;
    let publisher = UdpSocket::bind("127.0.0.1:0").map_err(io)?;
    let interval = Duration::from_secs_f64(PACKET as f64 * 8.0 / BITRATE);
    let start = Instant::now();
    let (mut seq, mut sent, mut got) = (0u16, 0u64, 0u64);
    let mut buf = [0u8; 2048];
    let mut read = |sinks: &[UdpSocket], got: &mut u64| {
        for s in sinks {
            while s.recv(&mut buf).is_ok() {
                *got += 1;
            }
        }
    };
    while start.elapsed() < secs {
        if Instant::now() >= start + interval * u32::from(seq) {
            let _ = publisher.send_to(&packet(seq), server_addr);
            seq = seq.wrapping_add(1);
            sent += 1;
        }
        read(&sinks, &mut got);
    }
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        read(&sinks, &mut got);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cpu = fanout
        .join()
        .map_err(|_| "the fan-out thread panicked".to_owned())??;
    Ok((got as f64 / (cpu as f64 / 1e9), got, sent * viewers as u64))
}

/// Packets forwarded per CPU-second: through the node, and by plain UDP.
pub async fn fanout(secs: Duration, viewers: usize) -> Result<(f64, f64), String> {
    let (relay, got, want) = through_node(secs, viewers).await?;
    eprintln!("relay: viewers received {got} of {want} packets");
    let (baseline, pgot, pwant) = plain(secs, viewers)?;
    eprintln!("plain fan-out: sinks received {pgot} of {pwant} packets");
    Ok((relay, baseline))
}
