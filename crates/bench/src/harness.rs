//! The measurements of `softbus bench`: end-to-end, over loopback, each against a baseline
//! measured in the same run (BENCHMARKS.md explains how to read them).
//!
//! - throughput: 4048-byte messages through an encrypted echo session vs the same
//!   pattern over plain TCP to a plain echo server;
//! - discovery: answers per second from a node vs a raw UDP echo loop;
//! - memory: RSS per idle open session of a `softbus node` process holding N sessions
//!   vs a plain tokio server holding N idle TCP connections.

use crate::load as client;
use crate::placement::{CLIENT_CPU, SERVER_CPU};
use softbus_bus::discovery::{Discovery, DiscoveryConfig, LocalDevice};
use softbus_runtime::client::ClientIdentity;
use softbus_runtime::PinPolicy;
use softbus_runtime::{NodeConfig, NodeTask};
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Arguments of `softbus bench`.
#[derive(clap::Args, Debug)]
#[allow(clippy::struct_field_names)]
pub struct BenchArgs {
    /// Seconds per throughput / discovery measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Idle sessions for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Run one measurement: stream, throughput (echo), datachannel, discovery,
    /// relay or memory.
    #[arg(long)]
    only: Option<String>,
    /// Viewers of the relay fan-out measurement.
    #[arg(long, default_value_t = 50)]
    viewers: usize,
    /// Print one JSON object with every number.
    #[arg(long)]
    json: bool,
    /// (internal) run the plain TCP baseline server for the memory measurement.
    #[arg(long, hide = true)]
    serve_plain: Option<SocketAddr>,
}

const MSG: usize = 4048;
const WINDOW: usize = 32;
const PIN: &str = "bench";

fn data_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn me(ip: [u8; 4]) -> ClientIdentity {
    ClientIdentity {
        device_id: "BE".repeat(32),
        name: "bench".into(),
        device_type: 0x0C,
        ip: Ipv4Addr::from(ip),
    }
}

/// Runs all (or one) measurements.
pub async fn run(a: BenchArgs) -> ExitCode {
    if let Some(addr) = a.serve_plain {
        return serve_plain(addr).await;
    }
    match measure(&a).await {
        Ok(report) => {
            if a.json {
                println!("{}", serde_json::Value::Object(report.0));
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The results so far, as the JSON report.
#[derive(Default)]
struct Report(serde_json::Map<String, serde_json::Value>);

impl Report {
    /// Prints a measurement's line and keeps its JSON entry; a failed measurement
    /// ends the run with its error.
    fn record(
        &mut self,
        name: &str,
        result: Result<(f64, f64), String>,
        show: impl FnOnce(f64, f64) -> (String, serde_json::Value),
    ) -> Result<(), ExitCode> {
        let (a, b) = result.map_err(|e| crate::failure(format!("{name}: {e}")))?;
        let (line, json) = show(a, b);
        eprintln!("{line}");
        self.0.insert(name.into(), json);
        Ok(())
    }
}

async fn measure(a: &BenchArgs) -> Result<Report, ExitCode> {
    let secs = Duration::from_secs_f64(a.seconds.clamp(0.2, 600.0));
    let want = |m: &str| a.only.as_deref().is_none_or(|o| o == m);
    let mut report = Report::default();
    let vs_tcp = |what: String| {
        move |sb: f64, plain: f64| {
            (
                format!(
                    "{what}: softbus {:.1} MB/s, plain TCP {:.1} MB/s, ratio {:.2} (goal >= 0.6)",
                    sb / 1e6,
                    plain / 1e6,
                    sb / plain
                ),
                serde_json::json!({"softbus_bytes_per_s": sb, "plain_tcp_bytes_per_s": plain, "ratio": sb / plain}),
            )
        }
    };
    if want("throughput") {
        let r = on_client_cpu(move || throughput(secs));
        report.record(
            "throughput",
            r,
            vs_tcp(format!("throughput 4048 B messages, echo, window {WINDOW}")),
        )?;
    }
    if want("stream") {
        let r = on_client_cpu(move || stream(secs));
        report.record(
            "stream",
            r,
            vs_tcp("stream 4048 B messages one way into a discard server".into()),
        )?;
    }
    if want("datachannel") {
        let r = on_client_cpu(move || datachannel(secs));
        report.record("datachannel", r, |bytes_per_s, _| {
            (
                format!("data channel node to node, 16 KiB messages one way into a discard server: {:.1} MB/s", bytes_per_s / 1e6),
                serde_json::json!({"softbus_bytes_per_s": bytes_per_s}),
            )
        })?;
    }
    if want("discovery") {
        let r = on_client_cpu(move || discovery(secs));
        report.record("discovery", r, |sb, echo| {
            (
                format!("discovery: node {sb:.0} answers/s, raw UDP echo {echo:.0}/s, ratio {:.2} (goal >= 0.5)", sb / echo),
                serde_json::json!({"softbus_answers_per_s": sb, "udp_echo_per_s": echo, "ratio": sb / echo}),
            )
        })?;
    }
    if want("relay") {
        let n = a.viewers.clamp(1, 60);
        let r = on_client_cpu(move || crate::relay::fanout(secs, n));
        report.record("relay", r, |sb, plain| {
            (
                format!("relay fan-out, one 2.5 Mbit/s publisher to {n} viewers: node {sb:.0} packets per CPU-second, plain UDP fan-out {plain:.0}, ratio {:.2} (goal >= 0.5)", sb / plain),
                serde_json::json!({"viewers": n, "softbus_packets_per_cpu_s": sb, "plain_udp_packets_per_cpu_s": plain, "ratio": sb / plain}),
            )
        })?;
    }
    if want("memory") {
        let n = a.sessions;
        report.record("memory", memory(n).await, |sb, plain| {
            (
                format!("memory per idle session ({n} sessions): softbus node {sb:.0} B, plain tokio server {plain:.0} B per connection, ratio {:.2} (goal < 16384 B)", sb / plain),
                serde_json::json!({"sessions": n, "softbus_bytes_per_session": sb, "plain_bytes_per_connection": plain, "ratio": sb / plain}),
            )
        })?;
    }
    Ok(report)
}

/// A node under test: on `ip`, pinned to the server CPU, kernel-chosen ports.
fn bench_config(ip: [u8; 4], tag: &str) -> NodeConfig {
    let mut cfg = NodeConfig::new(
        "bench",
        Ipv4Addr::from(ip),
        data_dir(tag),
        PinPolicy::pin(PIN),
    );
    cfg.discovery_port = 0;
    cfg.cpu = Some(SERVER_CPU);
    cfg
}

async fn start_node(ip: [u8; 4], tag: &str, max_sessions: usize) -> Result<NodeTask, String> {
    let mut cfg = bench_config(ip, tag);
    cfg.limits.max_sessions = max_sessions;
    cfg.limits.max_sessions_per_peer = max_sessions;
    cfg.limits.max_sessions_per_address = max_sessions;
    cfg.bus.discovery.reply_rate = u32::MAX;
    NodeTask::start(cfg).await.map_err(|e| e.to_string())
}

/// Runs a baseline server on a thread of its own with a single-threaded runtime,
/// as the node runs (so both sides of every comparison get one thread each).
/// `bind` runs inside that runtime; the bound address is returned.
fn spawn_server<Fut>(
    bind: impl FnOnce() -> std::io::Result<(SocketAddr, Fut)> + Send + 'static,
) -> Result<SocketAddr, String>
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => return drop(tx.send(Err(e.to_string()))),
        };
        rt.block_on(async move {
            match bind() {
                Ok((addr, serve)) => {
                    let _ = tx.send(Ok(addr));
                    serve.await;
                }
                Err(e) => drop(tx.send(Err(e.to_string()))),
            }
        });
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// The baseline side of a comparison: `serve` on its own thread and runtime at
/// `bind`, and a plain TCP client (Nagle off, like the node's sockets) connected to it.
async fn plain_client<Fut>(
    bind: &'static str,
    serve: fn(TcpListener) -> Fut,
) -> Result<TcpStream, String>
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    let addr = spawn_server(move || {
        let l = std_listener(bind)?;
        Ok((l.local_addr()?, serve(l)))
    })?;
    let c = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    c.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(c)
}

fn std_listener(addr: &str) -> std::io::Result<TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    TcpListener::from_std(l)
}

/// Runs a measurement's client side on a thread pinned to [`CLIENT_CPU`] with a
/// single-threaded runtime. The caller's thread stays unpinned, so child
/// processes it spawns do not inherit the pin.
fn on_client_cpu<Fut>(make: impl FnOnce() -> Fut + Send + 'static) -> Result<(f64, f64), String>
where
    Fut: std::future::Future<Output = Result<(f64, f64), String>> + 'static,
{
    std::thread::spawn(move || {
        softbus_runtime::node::pin_to_cpu(Some(CLIENT_CPU));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(make())
    })
    .join()
    .map_err(|_| "measurement thread panicked".to_owned())?
}

/// Rounds per measurement; each side runs `secs / ROUNDS` per round, alternating,
/// and the medians are compared (scheduling on two cores makes single runs noisy).
const ROUNDS: u32 = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn softbus_round(
    s: &mut client::ClientSession,
    msg: &[u8],
    dt: Duration,
) -> Result<f64, String> {
    let t0 = Instant::now();
    let mut bytes = 0u64;
    while t0.elapsed() < dt {
        for _ in 0..WINDOW {
            s.send(msg).await.map_err(|e| e.to_string())?;
        }
        for _ in 0..WINDOW {
            bytes += s.recv().await.map_err(|e| e.to_string())?.len() as u64;
        }
    }
    Ok(bytes as f64 / t0.elapsed().as_secs_f64())
}

async fn plain_round(
    c: &mut TcpStream,
    msg: &[u8],
    buf: &mut [u8],
    dt: Duration,
) -> Result<f64, String> {
    let t0 = Instant::now();
    let mut bytes = 0u64;
    while t0.elapsed() < dt {
        for _ in 0..WINDOW {
            c.write_all(msg).await.map_err(|e| e.to_string())?;
        }
        let mut want = WINDOW * MSG;
        while want > 0 {
            let chunk = want.min(buf.len());
            let n = c.read(&mut buf[..chunk]).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("plain echo closed".into());
            }
            want -= n;
            bytes += n as u64;
        }
    }
    Ok(bytes as f64 / t0.elapsed().as_secs_f64())
}

/// One-way stream of 4048-byte messages into a discard server for `dt`, then `?`;
/// returns bytes per second counted by the receiver.
async fn softbus_stream(
    s: &mut client::ClientSession,
    msg: &[u8],
    dt: Duration,
    counted: &mut u64,
) -> Result<f64, String> {
    let t0 = Instant::now();
    while t0.elapsed() < dt {
        for _ in 0..WINDOW {
            s.send(msg).await.map_err(|e| e.to_string())?;
        }
    }
    s.send(b"?").await.map_err(|e| e.to_string())?;
    let total: u64 = String::from_utf8_lossy(&s.recv().await.map_err(|e| e.to_string())?)
        .parse()
        .map_err(|_| "bad count")?;
    let got = total - *counted;
    *counted = total;
    Ok(got as f64 / t0.elapsed().as_secs_f64())
}

/// The same over plain TCP: the server counts until a `?` byte and answers the count.
async fn plain_stream(c: &mut TcpStream, msg: &[u8], dt: Duration) -> Result<f64, String> {
    let t0 = Instant::now();
    while t0.elapsed() < dt {
        for _ in 0..WINDOW {
            c.write_all(msg).await.map_err(|e| e.to_string())?;
        }
    }
    c.write_all(b"?").await.map_err(|e| e.to_string())?;
    let mut n = [0u8; 8];
    c.read_exact(&mut n).await.map_err(|e| e.to_string())?;
    Ok(u64::from_le_bytes(n) as f64 / t0.elapsed().as_secs_f64())
}

async fn plain_discard_server(l: TcpListener) {
    while let Ok((mut c, _)) = l.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut count = 0u64;
            while let Ok(n) = c.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                match buf[..n].iter().position(|&b| b == b'?') {
                    Some(i) => {
                        count += i as u64;
                        if c.write_all(&count.to_le_bytes()).await.is_err() {
                            break;
                        }
                        count = (n - i - 1) as u64;
                    }
                    None => count += n as u64,
                }
            }
        });
    }
}

/// A node with a discard server `discard`, pinned to the server CPU.
async fn discard_node(ip: [u8; 4], tag: &str) -> Result<NodeTask, String> {
    let mut cfg = bench_config(ip, tag);
    cfg.discard = vec!["discard".into()];
    NodeTask::start(cfg).await.map_err(|e| e.to_string())
}

async fn stream(secs: Duration) -> Result<(f64, f64), String> {
    let node = discard_node([127, 0, 0, 40], "st").await?;
    let info = node.handle().info().clone();
    let addr = SocketAddrV4::new(info.ip, info.auth_port);
    let mut peer = client::authenticate(&me([127, 0, 0, 41]), addr, PIN, 1, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let mut s = peer
        .open_session("discard")
        .await
        .map_err(|e| e.to_string())?;
    let mut c = plain_client("127.0.0.42:0", plain_discard_server).await?;
    let msg = vec![0xa5u8; MSG];
    let dt = secs / ROUNDS;
    let (mut sb, mut plain, mut counted) = (Vec::new(), Vec::new(), 0u64);
    // SOFTBUS_BENCH_PROFILE=1 runs only the softbus side (for a profiler).
    let profile = std::env::var("SOFTBUS_BENCH_PROFILE").as_deref() == Ok("1");
    for _ in 0..ROUNDS {
        sb.push(softbus_stream(&mut s, &msg, dt, &mut counted).await?);
        if profile {
            plain.push(f64::NAN);
            continue;
        }
        plain.push(plain_stream(&mut c, &msg, dt).await?);
    }
    drop(s);
    node.shutdown().await;
    Ok((median(sb), median(plain)))
}

async fn throughput(secs: Duration) -> Result<(f64, f64), String> {
    let node = start_node([127, 0, 0, 31], "tp", 24).await?;
    let info = node.handle().info().clone();
    let addr = SocketAddrV4::new(info.ip, info.auth_port);
    let mut peer = client::authenticate(&me([127, 0, 0, 32]), addr, PIN, 1, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let mut s = peer.open_session("echo").await.map_err(|e| e.to_string())?;

    let mut c = plain_client("127.0.0.33:0", echo_server).await?;
    let mut buf = vec![0u8; 16 * 1024];

    let msg = vec![0xa5u8; MSG];
    let dt = secs / ROUNDS;
    let (mut sb, mut plain) = (Vec::new(), Vec::new());
    let profile = std::env::var("SOFTBUS_BENCH_PROFILE").as_deref() == Ok("1");
    for _ in 0..ROUNDS {
        sb.push(softbus_round(&mut s, &msg, dt).await?);
        if profile {
            plain.push(f64::NAN);
            continue;
        }
        plain.push(plain_round(&mut c, &msg, &mut buf, dt).await?);
    }
    drop(s);
    node.shutdown().await;
    Ok((median(sb), median(plain)))
}

async fn echo_server(l: TcpListener) {
    while let Ok((mut c, _)) = l.accept().await {
        let _ = c.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = c.read(&mut buf).await {
                if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Node-to-node data channel throughput: our WebRTC client streams 16 KiB messages
/// into a node's discard server; the node's count is the measure.
async fn datachannel(secs: Duration) -> Result<(f64, f64), String> {
    let node = discard_node([127, 0, 0, 45], "dc").await?;
    let web = tokio::net::TcpListener::bind("127.0.0.45:0")
        .await
        .map_err(|e| e.to_string())?;
    let web_addr = web.local_addr().map_err(|e| e.to_string())?;
    let h = node.handle();
    let token = "bench-token-0123456789abcdef0123456789abcdef";
    let web_token = softbus_web::WebToken::new("bench", token).map_err(str::to_owned)?;
    let server = tokio::spawn(async move { softbus_web::serve(web, h, web_token).await });
    let mut s = crate::rtc_load::RtcClientSession::open(
        Ipv4Addr::new(127, 0, 0, 46),
        &format!("http://{web_addr}"),
        token,
        "discard",
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| e.to_string())?;
    let msg = vec![0xa5u8; 16 * 1024];
    let t0 = Instant::now();
    s.stream(&msg, secs, 64 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    s.send(b"?").await.map_err(|e| e.to_string())?;
    let counted: u64 = String::from_utf8_lossy(&s.recv().await.map_err(|e| e.to_string())?)
        .parse()
        .map_err(|_| "bad count")?;
    let rate = counted as f64 / t0.elapsed().as_secs_f64();
    let _ = s.close().await;
    server.abort();
    node.shutdown().await;
    Ok((rate, 0.0))
}

/// Sends windows of `request` to `dst` from `sock`, counting datagrams that come back.
async fn udp_loop(
    sock: &mut softbus_runtime::net::BatchUdp,
    dst: SocketAddr,
    request: &[u8],
    secs: Duration,
) -> Result<f64, String> {
    const W: usize = 16;
    let (mut out, mut gso) = (Vec::with_capacity(W), Vec::new());
    let t0 = Instant::now();
    let mut got = 0u64;
    while t0.elapsed() < secs {
        for _ in 0..W {
            out.push((dst, request.to_vec()));
        }
        sock.send_batch(&mut out, &mut gso);
        let mut window = 0;
        while window < W {
            match tokio::time::timeout(Duration::from_millis(50), sock.recv_batch()).await {
                Ok(Ok(_)) => window += sock.received().count(),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => break, // a lost datagram; send the next window
            }
        }
        got += window as u64;
    }
    Ok(got as f64 / t0.elapsed().as_secs_f64())
}

async fn discovery(secs: Duration) -> Result<(f64, f64), String> {
    let node = start_node([127, 0, 0, 34], "disc", 24).await?;
    let port = node.handle().info().discovery_port;
    // Replies go to <wlanIp>:<node's discovery port>, so the client listens there.
    // The client sends each window as one GSO train and reads with recvmmsg, so it
    // is not what limits either server.
    let mut sock = softbus_runtime::net::BatchUdp::new(
        softbus_runtime::net::bind_udp(Ipv4Addr::new(127, 0, 0, 35), port)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let local = LocalDevice {
        device_id: "BE".repeat(32),
        name: "bench".into(),
        device_type: 0x0C,
        ip: Ipv4Addr::new(127, 0, 0, 35),
        auth_port: None,
    };
    let mut d = Discovery::new(
        DiscoveryConfig {
            port,
            ..Default::default()
        },
        local,
    );
    d.start_discovery(
        Instant::now(),
        vec![SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 34), port)],
    );
    let request = d.poll_transmit().ok_or("no request")?.payload;
    let echo_addr = spawn_server(|| {
        let std = std::net::UdpSocket::bind("127.0.0.36:0")?;
        std.set_nonblocking(true)?;
        let echo = UdpSocket::from_std(std)?;
        let addr = echo.local_addr()?;
        Ok((addr, async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        }))
    })?;
    let node_addr = SocketAddr::from(([127, 0, 0, 34], port));
    let (mut sb, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        sb.push(udp_loop(&mut sock, node_addr, &request, secs / ROUNDS).await?);
        plain.push(udp_loop(&mut sock, echo_addr, &request, secs / ROUNDS).await?);
    }
    node.shutdown().await;
    Ok((median(sb), median(plain)))
}

fn rss_bytes(pid: u32) -> Result<f64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS")?;
    Ok(kb * 1024.0)
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `softbus` binary beside this one (`node` runs in its own process).
fn softbus_exe() -> Result<std::path::PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = me.with_file_name("softbus");
    if exe.exists() {
        Ok(exe)
    } else {
        Err(format!(
            "{} not found: build it with cargo build --release -p softbus-cli",
            exe.display()
        ))
    }
}

/// Starts `exe args` and returns it with the first line it prints.
fn spawn(exe: std::path::PathBuf, args: &[&str]) -> Result<(Child, String), String> {
    let mut c = std::process::Command::new(exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = c.stdout.take().ok_or("no stdout")?;
    let mut reader = std::io::BufReader::new(out);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    // Keep draining the child's stdout so its event lines never block or fail.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    Ok((Child(c), line))
}

/// RSS growth of a child process per connection opened by `open`.
async fn settle_rss(pid: u32) -> Result<f64, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    rss_bytes(pid)
}

async fn memory(n: usize) -> Result<(f64, f64), String> {
    let dir = data_dir("mem");
    let max = (n + 64).to_string(); // the measured sessions plus the warm-up ones
    let (child, ready) = spawn(
        softbus_exe()?,
        &[
            "node",
            "--json",
            "--ip",
            "127.0.0.37",
            "--pin",
            PIN,
            "--web",
            "off",
            "--discovery-port",
            "0",
            "--max-sessions",
            &max,
            "--max-sessions-per-peer",
            &max,
            "--max-sessions-per-address",
            &max,
            "--data-dir",
            dir.to_str().unwrap_or("/tmp"),
        ],
    )?;
    let ready: serde_json::Value =
        serde_json::from_str(&ready).map_err(|e| format!("node did not start: {e}"))?;
    let auth_port = ready["auth_port"].as_u64().ok_or("no auth port")? as u16;
    let pid = child.0.id();
    let mut peer = client::authenticate(
        &me([127, 0, 0, 38]),
        SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 37), auth_port),
        PIN,
        1,
        Duration::from_secs(5),
    )
    .await
    .map_err(|e| e.to_string())?;
    // Warm up allocator pools with a few sessions, then measure the growth over n.
    let mut warm = Vec::new();
    for _ in 0..64 {
        warm.push(peer.open_session("echo").await.map_err(|e| e.to_string())?);
    }
    let before = settle_rss(pid).await?;
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        sessions.push(
            peer.open_session("echo")
                .await
                .map_err(|e| format!("session {i}: {e}"))?,
        );
    }
    let after = settle_rss(pid).await?;
    let softbus = (after - before) / n as f64;
    drop(sessions);
    drop(warm);
    drop(child);

    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let (child, line) = spawn(me, &["--serve-plain", "127.0.0.39:0"])?;
    let addr: SocketAddr = line
        .trim()
        .parse()
        .map_err(|e| format!("plain server: {e}"))?;
    let pid = child.0.id();
    let mut warm = Vec::new();
    for _ in 0..64 {
        warm.push(TcpStream::connect(addr).await.map_err(|e| e.to_string())?);
    }
    let before = settle_rss(pid).await?;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(TcpStream::connect(addr).await.map_err(|e| e.to_string())?);
    }
    let after = settle_rss(pid).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((softbus, (after - before) / n as f64))
}

/// The baseline server: the usual tokio echo loop with a 4 KiB buffer per connection.
async fn serve_plain(addr: SocketAddr) -> ExitCode {
    let l = match softbus_runtime::net::bind_listener(
        match addr.ip() {
            std::net::IpAddr::V4(v4) => v4,
            std::net::IpAddr::V6(_) => return crate::usage("--serve-plain takes an IPv4 address"),
        },
        addr.port(),
        softbus_runtime::Bound::AuthListener,
    ) {
        Ok(l) => l,
        Err(e) => return crate::failure(e),
    };
    match l.local_addr() {
        Ok(a) => println!("{a}"),
        Err(e) => return crate::failure(e),
    }
    while let Ok((mut c, _)) = l.accept().await {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = c.read(&mut buf).await {
                if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
    ExitCode::SUCCESS
}
