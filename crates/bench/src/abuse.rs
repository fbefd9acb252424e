//! `softbus bench abuse`: the attacks of issue 7 run in parallel against one
//! node while paired clients discover it, authenticate (STS, no PIN) and echo.
//! The same clients run first without the attacks; the report compares their
//! success rate and round trips. Loopback only (the node on 127.0.0.60, good
//! clients on 127.0.1.x, attackers on 127.0.2.x), bounded in time.
//!
//! Attacks: PIN guessing from 8 addresses; key-agreement floods (5 PAKE
//! requests per connection) from 4; idle auth connections held from 8
//! addresses (8 each); garbage on the auth and session ports; garbage
//! datagrams on the discovery and WebRTC ports; slow HTTP headers (300
//! connections); slow bodies of offers signed as a paired device (300
//! connections from 10 addresses); HTTP offers without the token, with a wrong
//! one, and with a foreign Origin; a session hog (the PIN from one address,
//! a fresh device id on each of 8 auth connections, every session it can get).

use crate::load;
use softbus_bus::auth::hichain::{Identity, Pairings};
use softbus_bus::auth::ClientAuth;
use softbus_bus::crypto::Crypto;
use softbus_bus::discovery::{Discovery, DiscoveryConfig, DiscoveryEvent, LocalDevice};
use softbus_crypto::OpenSslCrypto;
use softbus_runtime::client::ClientIdentity;
use softbus_runtime::{NodeConfig, NodeTask, PinPolicy};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arguments of `softbus bench abuse`.
#[derive(clap::Args, Debug, Clone)]
pub struct AbuseArgs {
    /// Paired clients (each on its own loopback address, at most 250).
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Rounds, each a quiet phase then an attacked one.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Echo round trips per client.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Seconds a phase may last at most (clients that have not finished fail).
    #[arg(long, default_value_t = 60.0)]
    limit: f64,
    /// Print one JSON object with every number.
    #[arg(long)]
    json: bool,
    /// Which attacks run (comma-separated): hog, pin, pake, idle, tcp, udp, slow, body, http.
    #[arg(long, default_value = "hog,pin,pake,idle,tcp,udp,slow,body,http")]
    attacks: String,
    /// (internal) be the attackers against DISCOVERY,AUTH,SESSION,RTC,WEB_PORT
    /// until stdin closes.
    #[arg(long, hide = true)]
    attack: Option<String>,
}

const NODE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 60);
const PIN: &str = "135790";
const TOKEN: &str = "abuse-suite-token-0123456789abcdef";
/// Clients start this far apart (a fleet coming up over about two seconds).
const STAGGER: Duration = Duration::from_millis(10);

/// What a phase measured.
impl Phase {
    /// Pools another run of the same kind into this one.
    fn merge(&mut self, o: Phase) {
        self.clients += o.clients;
        self.succeeded += o.succeeded;
        self.discovered += o.discovered;
        self.auth_retries += o.auth_retries;
        self.rtts.extend(o.rtts);
        self.auth_times.extend(o.auth_times);
        for (k, n) in o.failures {
            *self.failures.entry(k).or_default() += n;
        }
        self.seconds += o.seconds;
    }
}

#[derive(Debug, Default)]
struct Phase {
    clients: usize,
    succeeded: usize,
    discovered: usize,
    auth_retries: u64,
    rtts: Vec<Duration>,
    auth_times: Vec<Duration>,
    failures: BTreeMap<String, usize>,
    seconds: f64,
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

struct Target {
    node_id: String,
    node_key: [u8; 32],
    discovery_port: u16,
    auth_port: u16,
    session_port: u16,
    rtc_port: u16,
    web: SocketAddr,
}

/// The attackers as a process of their own (`--attack`): they run at the
/// lowest priority on the clients' CPU, as other machines would, using only
/// what the good clients leave; their counts go to stdout as JSON at the end.
async fn attacker_process(ports: &str, which: &str) -> Result<(), String> {
    let p: Vec<u16> = ports.split(',').filter_map(|x| x.parse().ok()).collect();
    let [discovery_port, auth_port, session_port, rtc_port, web_port] = p[..] else {
        return Err("--attack DISCOVERY,AUTH,SESSION,RTC,WEB_PORT".into());
    };
    softbus_runtime::node::pin_to_cpu(Some(crate::placement::CLIENT_CPU));
    let t = Arc::new(Target {
        node_id: String::new(),
        node_key: [0; 32],
        discovery_port,
        auth_port,
        session_port,
        rtc_port,
        web: SocketAddr::from((NODE_IP, web_port)),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            stop.store(true, Ordering::Relaxed);
        });
    }
    let which: Vec<String> = which.split(',').map(|w| w.trim().to_owned()).collect();
    {
        // "ready" once every attack has made its first attempt (at most 15 s),
        // so the attacked phase never starts before an attack has begun.
        let (c, which) = (counters.clone(), which.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + READY_WITHIN;
            while Instant::now() < deadline && !all_started(&c, &which) {
                std::thread::sleep(Duration::from_millis(20));
            }
            println!("ready");
        });
    }
    attack(t, stop, counters.clone(), which).await;
    let map: BTreeMap<&str, u64> = counters.map.lock().map(|m| m.clone()).unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({"attacks": map, "garbage_bytes": counters.bytes.load(Ordering::Relaxed)})
    );
    Ok(())
}

/// Runs both phases and prints the report.
pub async fn run(a: AbuseArgs) -> Result<(), String> {
    // Hundreds of connections on each side: lift the soft descriptor limit.
    softbus_runtime::net::raise_descriptor_limit(65_536);
    if let Some(ports) = &a.attack {
        return attacker_process(ports, &a.attacks).await;
    }
    if a.clients == 0 || a.clients > 250 {
        return Err("--clients must be 1..=250".into());
    }
    let limit = Duration::from_secs_f64(a.limit.clamp(5.0, 600.0));
    let dir = std::env::temp_dir().join(format!("softbus-abuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The node's key and the clients' pairings exist before it starts, as if
    // each client had paired (pairing itself is tested elsewhere).
    let c = OpenSslCrypto::new();
    let node_seed = softbus_runtime::store::load_or_create_identity_key(&dir, |b| b.fill(0x42))
        .map_err(|e| e.to_string())?;
    let node_key = c.ed25519_public(&node_seed).map_err(|e| e.to_string())?;
    let pairs = softbus_runtime::store::PairStore::open(&dir).map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    for i in 0..a.clients {
        let device_id = format!("{:064X}", 0xC1_0000 + i);
        let id =
            Identity::new(&c, &device_id, [(i % 250) as u8 + 1; 32]).map_err(|e| e.to_string())?;
        pairs
            .add(&device_id, id.public(), 0)
            .map_err(|e| e.to_string())?;
        clients.push(Arc::new(id));
    }
    let mut cfg = NodeConfig::new("abused", NODE_IP, dir.clone(), PinPolicy::pin(PIN));
    cfg.discovery_port = 0;
    cfg.cpu = Some(crate::placement::SERVER_CPU);
    // An operator serving this many devices raises the session limit.
    cfg.limits.max_sessions = 256;
    let node = NodeTask::start(cfg).await.map_err(|e| e.to_string())?;
    let h = node.handle();
    let info = h.info().clone();
    // The web side on the server's CPU too, on a runtime of its own (as the
    // CLI serves it beside the node's thread), not on the clients' thread.
    let web = std::net::TcpListener::bind((NODE_IP, 0)).map_err(|e| e.to_string())?;
    web.set_nonblocking(true).map_err(|e| e.to_string())?;
    let web_addr = web.local_addr().map_err(|e| e.to_string())?;
    let token = softbus_web::WebToken::new("web", TOKEN).map_err(str::to_owned)?;
    let hw = h.clone();
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        softbus_runtime::node::pin_to_cpu(Some(crate::placement::SERVER_CPU));
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(l) = tokio::net::TcpListener::from_std(web) else {
                return;
            };
            let access = softbus_web::WebAccess::with_token(token);
            tokio::select! {
                _ = softbus_web::serve_with(l, hw, softbus_web::WebLimits::default(), access) => {}
                _ = web_stopped => {}
            }
        });
    });
    let mut events = h.subscribe();
    // The node and the web side run on the server CPU; this thread (the good
    // clients) and the attackers' thread on the client CPU.
    softbus_runtime::node::pin_to_cpu(Some(crate::placement::CLIENT_CPU));
    let target = Arc::new(Target {
        node_id: info.device_id.clone(),
        node_key,
        discovery_port: info.discovery_port,
        auth_port: info.auth_port,
        session_port: info.session_port,
        rtc_port: info.rtc_port,
        web: web_addr,
    });

    // pin_locked events, counted as they come (the broadcast may lag under
    // the attack's error events; a lag is skipped, not the end).
    let locked = Arc::new(AtomicU64::new(0));
    let counter = {
        let locked = locked.clone();
        tokio::task::spawn_local(async move {
            loop {
                match events.recv().await {
                    Ok(softbus_runtime::events::NodeEvent::PinLocked { .. }) => {
                        locked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        })
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let ports = format!(
        "{},{},{},{},{}",
        target.discovery_port,
        target.auth_port,
        target.session_port,
        target.rtc_port,
        web_addr.port()
    );
    // Rounds alternate a quiet phase and an attacked one, so slow drifts of
    // the machine touch both alike; the samples of each kind are pooled.
    let (mut baseline, mut abused) = (Phase::default(), Phase::default());
    let mut counts = BTreeMap::<String, u64>::new();
    let mut garbage = 0u64;
    for round in 1..=a.rounds.max(1) {
        eprintln!(
            "abuse: round {round}: {} paired clients, {} round trips each, without attacks",
            a.clients, a.messages
        );
        baseline.merge(phase(&clients, &target, a.messages, limit).await);
        eprintln!("abuse: round {round}: the same with the attacks running");
        let mut attackers = std::process::Command::new("nice")
            .args(["-n", "19"])
            .arg(&exe)
            .args(["abuse", "--attack", &ports, "--attacks", &a.attacks])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the attackers (nice): {e}"))?;
        // The attackers say "ready" once every attack has made its first
        // attempt; then a second more lets them ramp up (the idle
        // connections fill, the guesses start).
        let stdout = attackers
            .stdout
            .take()
            .ok_or("the attackers have no stdout")?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let counts_of = tokio::task::spawn_blocking(move || {
            use std::io::{BufRead, Read};
            let mut out = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            let _ = ready_tx.send(line.trim() == "ready");
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
            rest
        });
        let ready = tokio::time::timeout(READY_WITHIN + Duration::from_secs(5), ready_rx).await;
        if !matches!(ready, Ok(Ok(true))) {
            let _ = attackers.kill();
            return Err("the attackers did not start".into());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        abused.merge(phase(&clients, &target, a.messages, limit).await);
        // Closing their stdin stops the attackers; they print their counts.
        drop(attackers.stdin.take());
        let rest = counts_of.await.map_err(|e| e.to_string())?;
        let _ = tokio::task::spawn_blocking(move || attackers.wait())
            .await
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&rest).unwrap_or(serde_json::Value::Null);
        if let Some(m) = v["attacks"].as_object() {
            for (k, n) in m {
                *counts.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        garbage += v["garbage_bytes"].as_u64().unwrap_or(0);
    }
    counter.abort();
    let counts = serde_json::json!({"attacks": counts, "garbage_bytes": garbage});
    let locked = locked.load(Ordering::Relaxed) as usize;
    let _ = web_stop.send(());
    let _ = server.join();
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    report(&a, baseline, abused, &counts, locked);
    Ok(())
}

/// Every client once: discover, authenticate as a paired device, open `echo`,
/// `messages` round trips, close.
async fn phase(
    clients: &[Arc<Identity>],
    t: &Arc<Target>,
    messages: usize,
    limit: Duration,
) -> Phase {
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let mut tasks = Vec::new();
    for (i, id) in clients.iter().enumerate() {
        let (id, t) = (id.clone(), t.clone());
        tasks.push(tokio::task::spawn_local(async move {
            tokio::time::sleep(STAGGER * i as u32).await;
            match tokio::time::timeout_at(deadline, good_client(i, id, t, messages)).await {
                Ok(r) => r,
                Err(_) => Outcome::failed("phase time limit"),
            }
        }));
    }
    let mut p = Phase {
        clients: clients.len(),
        ..Default::default()
    };
    for task in tasks {
        let o = task
            .await
            .unwrap_or_else(|_| Outcome::failed("task panicked"));
        p.discovered += usize::from(o.discovered);
        p.auth_retries += o.auth_retries;
        p.rtts.extend(o.rtts);
        p.auth_times.extend(o.auth_time);
        match o.error {
            None => p.succeeded += 1,
            Some(e) => *p.failures.entry(e).or_default() += 1,
        }
    }
    p.seconds = t0.elapsed().as_secs_f64();
    p
}

#[derive(Default)]
struct Outcome {
    discovered: bool,
    auth_retries: u64,
    auth_time: Option<Duration>,
    rtts: Vec<Duration>,
    error: Option<String>,
}

impl Outcome {
    fn failed(why: &str) -> Self {
        Self {
            error: Some(why.to_owned()),
            ..Default::default()
        }
    }
}

fn client_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, (i + 1) as u8)
}

async fn good_client(i: usize, id: Arc<Identity>, t: Arc<Target>, messages: usize) -> Outcome {
    let mut o = Outcome::default();
    let ip = client_ip(i);
    // Discovery: the node answers to <our ip>:<its discovery port>.
    let auth_port = match discover(ip, &t).await {
        Ok(p) => p,
        Err(e) => {
            o.error = Some(format!("discovery: {e}"));
            return o;
        }
    };
    o.discovered = true;
    let me = ClientIdentity {
        device_id: id.auth_id().to_owned(),
        name: format!("client{i}"),
        device_type: 0x0E,
        ip,
    };
    let mut pairings = Pairings::new();
    pairings.insert(t.node_id.clone(), t.node_key);
    let pairings = Arc::new(pairings);
    let peer = SocketAddrV4::new(NODE_IP, auth_port);
    let t_auth = Instant::now();
    let mut auth = None;
    for attempt in 0..100u64 {
        let how = ClientAuth::Paired {
            identity: id.clone(),
            pairings: pairings.clone(),
        };
        match load::authenticate_as(&me, peer, how, 1 + attempt as i64, Duration::from_secs(3))
            .await
        {
            Ok(p) => {
                auth = Some(p);
                break;
            }
            Err(_) => {
                // Refused at accept (rate or slot limits): back off and retry.
                o.auth_retries += 1;
                tokio::time::sleep(Duration::from_millis(50 + (attempt * 37 + i as u64) % 100))
                    .await;
            }
        }
    }
    let Some(mut peer) = auth else {
        o.error = Some("authentication: refused 100 times".into());
        return o;
    };
    o.auth_time = Some(t_auth.elapsed());
    let mut session = None;
    for _ in 0..20 {
        match peer.open_session("echo").await {
            Ok(s) => {
                session = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let Some(mut s) = session else {
        o.error = Some("session open: refused 20 times".into());
        return o;
    };
    let msg: Vec<u8> = (0..64u8).map(|b| b ^ i as u8).collect();
    for _ in 0..messages {
        let t0 = Instant::now();
        if let Err(e) = s.send(&msg).await {
            o.error = Some(format!("send: {e}"));
            return o;
        }
        match s.recv().await {
            Ok(back) if back == msg => o.rtts.push(t0.elapsed()),
            Ok(_) => {
                o.error = Some("echo differs".into());
                return o;
            }
            Err(e) => {
                o.error = Some(format!("echo: {e}"));
                return o;
            }
        }
    }
    o
}

/// One discovery request (repeated up to 6 times, 500 ms apart); the auth
/// port the node's answer names.
async fn discover(ip: Ipv4Addr, t: &Target) -> Result<u16, String> {
    let sock = softbus_runtime::net::bind_udp(ip, t.discovery_port).map_err(|e| e.to_string())?;
    let mut d = Discovery::new(
        DiscoveryConfig {
            port: t.discovery_port,
            ..Default::default()
        },
        LocalDevice {
            device_id: "C0".repeat(32),
            name: "client".into(),
            device_type: 0x0E,
            ip,
            auth_port: None,
        },
    );
    let node = SocketAddrV4::new(NODE_IP, t.discovery_port);
    d.start_discovery(Instant::now(), vec![node]);
    let request = d.poll_transmit().ok_or("no request")?.payload;
    let mut buf = vec![0u8; 2048];
    for _ in 0..6 {
        sock.send_to(&request, node)
            .await
            .map_err(|e| e.to_string())?;
        let end = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
            let _ = d.handle_datagram(Instant::now(), from, &buf[..n]);
            while let Some(e) = d.poll_event() {
                if let DiscoveryEvent::DeviceFound(f) = e {
                    if let Some(p) = f.auth_port {
                        return Ok(p);
                    }
                }
            }
        }
    }
    Err("no answer".into())
}

/// What the attackers did and what they got.
#[derive(Default)]
struct Counters {
    map: Mutex<BTreeMap<&'static str, u64>>,
    bytes: AtomicU64,
}

impl Counters {
    fn add(&self, what: &'static str) {
        if let Ok(mut m) = self.map.lock() {
            *m.entry(what).or_default() += 1;
        }
    }
}

/// How long the attackers may take to make each attack's first attempt.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// The counters whose presence shows that an attack has made an attempt.
fn first_signs(attack: &str) -> &'static [&'static str] {
    match attack {
        "pin" => &["pin guess: "],
        "pake" => &["pake flood: "],
        "idle" => &["idle auth: "],
        "tcp" => &["tcp garbage: "],
        "udp" => &["udp garbage: "],
        "slow" => &["slow http: connections"],
        "body" => &["slow body: connections"],
        "http" => &[
            "http: no token",
            "http: wrong token",
            "http: foreign cookie",
        ],
        _ => &[],
    }
}

fn all_started(c: &Counters, which: &[String]) -> bool {
    let Ok(m) = c.map.lock() else { return false };
    which
        .iter()
        .flat_map(|w| first_signs(w))
        .all(|sign| m.keys().any(|k| k.starts_with(sign)))
}

fn attacker_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 2, n)
}

async fn tcp_from(ip: Ipv4Addr, to: SocketAddr) -> Option<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::from((ip, 0))).ok()?;
    tokio::time::timeout(Duration::from_secs(2), s.connect(to))
        .await
        .ok()?
        .ok()
}

/// Reads until the peer closes (or `max`); whether it closed.
async fn until_closed(s: &mut tokio::net::TcpStream, max: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let end = tokio::time::Instant::now() + max;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

async fn attack(t: Arc<Target>, stop: Arc<AtomicBool>, c: Arc<Counters>, which: Vec<String>) {
    let on = |w: &str| which.iter().any(|x| x == w);
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            let mut tasks = Vec::new();
            let auth = SocketAddr::from((NODE_IP, t.auth_port));
            // Session hog (first, before the PIN guesses pause PIN pairing): the
            // PIN holder of issue 17 on one address, with a fresh device id on
            // each of 8 auth connections, opens all the sessions it can and
            // holds them until the end.
            if on("hog") {
                let (mut held, mut peers) = (Vec::new(), Vec::new());
                let peer = SocketAddrV4::new(NODE_IP, t.auth_port);
                let mut rng = OpenSslCrypto::new();
                for d in 0..8i64 {
                    let mut id = [0u8; 32];
                    rng.random(&mut id);
                    let me = ClientIdentity {
                        device_id: hex::encode_upper(id),
                        name: "hog".into(),
                        device_type: 0x0E,
                        ip: attacker_ip(60),
                    };
                    let Ok(mut p) = load::authenticate(&me, peer, PIN, 100 + d, Duration::from_secs(5)).await else {
                        c.add("session hog: authentication failed");
                        continue;
                    };
                    for _ in 0..4 {
                        match p.open_session("echo").await {
                            Ok(s) => {
                                c.add("session hog: sessions held");
                                held.push(s);
                            }
                            Err(e) if e.to_string().contains("node full for") => {
                                c.add("session hog: refused, its address full")
                            }
                            Err(_) => c.add("session hog: refused otherwise"),
                        }
                    }
                    peers.push(p);
                }
                let stop = stop.clone();
                tasks.push(tokio::task::spawn_local(async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    drop((held, peers));
                }));
            }
            // PIN guessing from 8 addresses.
            let auth_port = t.auth_port;
            for n in (1..=8u8).filter(|_| on("pin")) {
                let (stop, c) = (stop.clone(), c.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let me = ClientIdentity {
                        device_id: format!("{:064X}", 0xBAD0 + u32::from(n)),
                        name: "guesser".into(),
                        device_type: 0x0E,
                        ip: attacker_ip(n),
                    };
                    let mut guess = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        guess += 1;
                        let pin = format!("{:06}", (u32::from(n) * 100_000 + guess) % 1_000_000);
                        let peer = SocketAddrV4::new(NODE_IP, auth_port);
                        match load::authenticate(&me, peer, &pin, 1, Duration::from_secs(2)).await {
                            Ok(_) => c.add("pin guess: right (!)"),
                            // Locked out: the node said so before any key agreement.
                            Err(softbus_runtime::Error::Auth(
                                softbus_bus::auth::AuthError::LockedOut { .. },
                            )) => c.add("pin guess: refused or closed"),
                            // PIN pairing paused: the guess was not evaluated.
                            Err(softbus_runtime::Error::Auth(
                                softbus_bus::auth::AuthError::PinPaused { .. },
                            )) => c.add("pin guess: refused (pairing paused)"),
                            Err(softbus_runtime::Error::Auth(_)) => c.add("pin guess: answered wrong"),
                            Err(_) => c.add("pin guess: refused or closed"),
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }));
            }
            // Key-agreement floods: 5 PAKE requests per connection, from 4 addresses.
            for n in (11..=14u8).filter(|_| on("pake")) {
                let (stop, c) = (stop.clone(), c.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let mut rng = OpenSslCrypto::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Some(mut s) = tcp_from(attacker_ip(n), auth).await else {
                            c.add("pake flood: connect failed");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        };
                        let mut burst = Vec::new();
                        for seq in 1..=5 {
                            let body = softbus_bus::auth::pake::PakeClient::new(b"x").start(&mut rng);
                            burst.extend(softbus_bus::frame::auth_plain(
                                softbus_bus::frame::Module::AUTH_SDK,
                                seq,
                                0,
                                &body,
                            ));
                        }
                        let _ = s.write_all(&burst).await;
                        c.add("pake flood: 5 requests sent");
                        until_closed(&mut s, Duration::from_secs(2)).await;
                    }
                }));
            }
            // Idle auth connections: 8 per address from 8 addresses, held.
            for n in (21..=28u8).filter(|_| on("idle")) {
                for _ in 0..8 {
                    let (stop, c) = (stop.clone(), c.clone());
                    tasks.push(tokio::task::spawn_local(async move {
                        while !stop.load(Ordering::Relaxed) {
                            match tcp_from(attacker_ip(n), auth).await {
                                Some(mut s) => {
                                    c.add("idle auth: connection held");
                                    until_closed(&mut s, Duration::from_secs(30)).await;
                                }
                                None => c.add("idle auth: connect failed"),
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }));
                }
            }
            // Garbage on the auth and session ports.
            if on("tcp") {
                let (stop, c, t) = (stop.clone(), c.clone(), t.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let mut rng = OpenSslCrypto::new();
                    let mut junk = vec![0u8; 4096];
                    let mut k = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        k += 1;
                        let port = if k.is_multiple_of(2) { t.auth_port } else { t.session_port };
                        rng.random(&mut junk);
                        if let Some(mut s) = tcp_from(attacker_ip(31), SocketAddr::from((NODE_IP, port))).await {
                            let _ = s.write_all(&junk).await;
                            c.bytes.fetch_add(junk.len() as u64, Ordering::Relaxed);
                            if until_closed(&mut s, Duration::from_secs(2)).await {
                                c.add("tcp garbage: closed by the node");
                            } else {
                                c.add("tcp garbage: still open after 2 s");
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }));
            }
            // Garbage datagrams on the discovery and WebRTC ports (about 2,000/s).
            if on("udp") {
                let (stop, c, t) = (stop.clone(), c.clone(), t.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let Ok(sock) = softbus_runtime::net::bind_udp(attacker_ip(32), 0) else {
                        return;
                    };
                    let mut rng = OpenSslCrypto::new();
                    let mut d = vec![0u8; 200];
                    while !stop.load(Ordering::Relaxed) {
                        for k in 0..20u32 {
                            rng.random(&mut d);
                            let port = if k.is_multiple_of(2) { t.discovery_port } else { t.rtc_port };
                            if sock.send_to(&d, (NODE_IP, port)).await.is_ok() {
                                c.add("udp garbage: datagrams sent");
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }));
            }
            // Slow HTTP headers: 300 connections, one byte every 2 s.
            for _ in (0..300).filter(|_| on("slow")) {
                let (stop, c, t) = (stop.clone(), c.clone(), t.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(mut s) = tcp_from(attacker_ip(41), t.web).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        c.add("slow http: connections");
                        let _ = s.write_all(b"GET /api/sessions HTTP/1.1\r\nHost: ").await;
                        while !stop.load(Ordering::Relaxed) {
                            if s.write_all(b"x").await.is_err() || until_closed(&mut s, Duration::from_secs(2)).await {
                                c.add("slow http: closed by the node");
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }));
            }
            // Slow bodies: 300 connections from 10 addresses post offers signed
            // (wrongly) as a paired client and send the body one byte every 2 s.
            for k in (0..300u16).filter(|_| on("body")) {
                let (stop, c, t) = (stop.clone(), c.clone(), t.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let device = format!("{:064X}", 0xC1_0000);
                    while !stop.load(Ordering::Relaxed) {
                        let Some(mut s) = tcp_from(attacker_ip(50 + (k % 10) as u8), t.web).await else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        c.add("slow body: connections");
                        let head = format!("POST /rtc/offer HTTP/1.1\r\nHost: {}\r\nSoftbus-Device: {device}\r\nSoftbus-Signature: {}\r\nContent-Type: application/sdp\r\nContent-Length: 5000\r\n\r\nv", t.web, "00".repeat(64));
                        let _ = s.write_all(head.as_bytes()).await;
                        while !stop.load(Ordering::Relaxed) {
                            if s.write_all(b"=").await.is_err() || until_closed(&mut s, Duration::from_secs(2)).await {
                                c.add("slow body: closed by the node");
                                break;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }));
            }
            // Offers without the token, with a wrong one, and with a foreign Origin.
            if on("http") {
                let (stop, c, t) = (stop.clone(), c.clone(), t.clone());
                tasks.push(tokio::task::spawn_local(async move {
                    let offer = include_str!("../../rtc/tests/fixtures/chrome-offer-datachannel.sdp");
                    let kinds: [(&str, &'static str); 3] = [
                        ("", "http: no token"),
                        ("Authorization: Bearer abuse-suite-token-0123456789abcdeX\r\n", "http: wrong token"),
                        ("Cookie: softbus_session=00\r\nOrigin: http://evil.example\r\n", "http: foreign cookie"),
                    ];
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let (extra, what) = kinds[k % 3];
                        k += 1;
                        let Some(mut s) = tcp_from(attacker_ip(42), t.web).await else {
                            continue;
                        };
                        let req = format!("POST /rtc/offer HTTP/1.1\r\nHost: {}\r\nContent-Type: application/sdp\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{offer}", t.web, offer.len());
                        let _ = s.write_all(req.as_bytes()).await;
                        let mut resp = Vec::new();
                        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut resp)).await;
                        if resp.starts_with(b"HTTP/1.1 201") {
                            c.add("http: offer ACCEPTED (!)");
                        } else {
                            c.add(what);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
}

#[allow(clippy::too_many_lines)]
fn report(
    a: &AbuseArgs,
    mut base: Phase,
    mut abused: Phase,
    counts: &serde_json::Value,
    pin_locked: usize,
) {
    let line = |name: &str, p: &mut Phase| {
        format!(
            "{name}: {}/{} clients succeeded ({:.1}%), {} discovered, echo rtt p50 {:.3} ms p99 {:.3} ms, authentication p50 {:.1} ms p99 {:.1} ms ({} retries), {:.1} s{}",
            p.succeeded,
            p.clients,
            100.0 * p.succeeded as f64 / p.clients as f64,
            p.discovered,
            pct(&mut p.rtts, 0.5),
            pct(&mut p.rtts, 0.99),
            pct(&mut p.auth_times, 0.5),
            pct(&mut p.auth_times, 0.99),
            p.auth_retries,
            p.seconds,
            if p.failures.is_empty() {
                String::new()
            } else {
                format!("; failures {:?}", p.failures)
            }
        )
    };
    eprintln!("{}", line("without attacks", &mut base));
    eprintln!("{}", line("under attack   ", &mut abused));
    let ratio = pct(&mut abused.rtts, 0.99) / pct(&mut base.rtts, 0.99);
    eprintln!(
        "p99 round trip under attack / without: {ratio:.2} (goal <= 3); success rate goal 100%"
    );
    if let Some(m) = counts["attacks"].as_object() {
        for (what, n) in m {
            eprintln!("  attack {what}: {n}");
        }
    }
    eprintln!("  pin_locked events: {pin_locked}");
    if a.json {
        let phase = |p: &mut Phase| {
            serde_json::json!({
                "clients": p.clients, "succeeded": p.succeeded, "discovered": p.discovered,
                "rtt_p50_ms": pct(&mut p.rtts, 0.5), "rtt_p99_ms": pct(&mut p.rtts, 0.99),
                "auth_p50_ms": pct(&mut p.auth_times, 0.5), "auth_p99_ms": pct(&mut p.auth_times, 0.99),
                "auth_retries": p.auth_retries, "seconds": p.seconds, "failures": p.failures,
            })
        };
        println!(
            "{}",
            serde_json::json!({
                "without_attacks": phase(&mut base),
                "under_attack": phase(&mut abused),
                "p99_ratio": ratio,
                "attacks": counts["attacks"],
                "garbage_bytes": counts["garbage_bytes"],
                "pin_locked": pin_locked,
            })
        );
    }
}
