//! `softbus`: run a node, discover devices, send to a session server.
#![forbid(unsafe_code)]

use base64::Engine as _;
use clap::{Parser, Subcommand};
use softbus_runtime::client::{self, ClientIdentity};
use softbus_runtime::events::NodeEvent;
use softbus_runtime::wire::{device_type_from_name, full_stack_capability_bit, CAPABILITIES};
use softbus_runtime::PinPolicy;
use softbus_runtime::{net, store, NodeConfig, NodeTask, Transport};
use softbus_web::launch;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod devices;
mod ice_args;
mod man;
use devices::{DevicesArgs, UnpairArgs};
mod progress;
use progress::Progress;

#[derive(Parser)]
#[command(
    name = "softbus",
    version,
    about = "A distributed soft bus, wire-compatible with OpenHarmony softbus_lite"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node: answer discovery, authenticate peers, serve sessions, dashboard.
    Node(NodeArgs),
    /// Send discovery requests and print every device that answers.
    Discover(DiscoverArgs),
    /// Authenticate to a peer, open a session, send a message, print the replies.
    Send(SendArgs),
    /// Pair with a device using its PIN: both keep the other's long-term key,
    /// and later `send` needs no PIN.
    Pair(PairArgs),
    /// List the paired devices (of the node, and of this machine's client).
    Devices(DevicesArgs),
    /// Forget a paired device: it must pair again to authenticate without a PIN.
    Unpair(UnpairArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    /// for `softbus`, e.g. `softbus completions bash > /etc/bash_completion.d/softbus`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): of `softbus`, or of one command (`softbus man
    /// node | man -l -`); with --out DIR, write them all there (softbus.1,
    /// softbus-node.1, …).
    Man {
        /// The command whose page to print (default: softbus itself).
        command: Option<String>,
        /// Write every page into this directory (made if missing) instead.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out: Option<PathBuf>,
    },
    /// Measure throughput, discovery rate and per-session memory against baselines
    /// (runs `softbus-bench` from beside this binary; `softbus bench --help` for its options).
    #[command(disable_help_flag = true)]
    Bench {
        /// Options of softbus-bench (`softbus bench --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Device name, 1..=63 bytes (default: host name).
    #[arg(long)]
    name: Option<String>,
    /// PHONE|PAD|TV|PC|AUDIO|CAR|L0|L1.
    #[arg(long, default_value = "L1")]
    device_type: String,
    /// Address to advertise and bind (default: first non-loopback IPv4).
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// UDP port of CoAP discovery (softbus_lite: 5684).
    #[arg(long, default_value_t = 5684)]
    discovery_port: u16,
    /// Published capability (repeatable; default ddmpCapability): softbus_lite's
    /// seven names or the full stack's (osdCapability, share, …; a phone's
    /// DeviceManager keeps only devices with osdCapability).
    #[arg(long = "capability")]
    capabilities: Vec<String>,
    /// Create an echo session server NAME (repeatable; default `echo`).
    #[arg(long = "echo")]
    echo: Vec<String>,
    /// Create a discard session server NAME: drops messages, answers `?` with the byte count.
    #[arg(long = "discard")]
    discard: Vec<String>,
    /// Pairing PIN for the key agreement (default: a random 6-digit PIN, printed on
    /// stderr). From the environment it stays out of the process list.
    #[arg(long, env = "SOFTBUS_PIN", hide_env_values = true)]
    pin: Option<String>,
    /// Accept the empty PIN (softbus_lite's default; it authenticates nobody).
    #[arg(long)]
    allow_empty_pin: bool,
    /// Dashboard and signaling address, or `off`.
    #[arg(long, default_value = "127.0.0.1:8080")]
    web: String,
    /// A host name requests to the web side may carry besides its address and
    /// `localhost` (repeatable).
    #[arg(long = "web-host")]
    web_hosts: Vec<String>,
    /// An origin (`http://HOST:PORT`) whose pages may call the web side (CORS;
    /// repeatable; none by default).
    #[arg(long = "web-origin")]
    web_origins: Vec<String>,
    /// Device id, keys and trust store (default: the user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Fixed auth port (default: chosen by the kernel).
    #[arg(long, default_value_t = 0)]
    auth_port: u16,
    /// Fixed session port (default: chosen by the kernel).
    #[arg(long, default_value_t = 0)]
    session_port: u16,
    /// Fixed UDP port of WebRTC (ICE, DTLS, SRTP and data channels; default:
    /// chosen by the kernel). With the auth, session, discovery and web ports
    /// fixed, a firewall can be opened for exactly these.
    #[arg(long, default_value_t = 0)]
    rtc_port: u16,
    /// Most open sessions (softbus_lite: 24).
    #[arg(long, default_value_t = 24)]
    max_sessions: usize,
    /// Most sessions one peer (device, or browser connection) may open to this node.
    #[arg(long, default_value_t = 16)]
    max_sessions_per_peer: usize,
    /// Most sessions devices at one IP address may open to this node, however
    /// many device ids they show (sessions of the web token's holder are not
    /// counted).
    #[arg(long, default_value_t = 16)]
    max_sessions_per_address: usize,
    /// Machine-readable events on stdout, one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Forget this node's device id, keys, pairings and trusted devices and
    /// start with a new identity (peers must pair again). Needed after a
    /// corrupt identity file.
    #[arg(long)]
    reset_identity: bool,
    /// Open sessions for paired devices only: a PIN key agreement without
    /// pairing (softbus_lite's way) opens none. The web token still does.
    #[arg(long)]
    paired_only: bool,
    /// Let the gateway (data channels labelled DEVICE/SESSION) authenticate
    /// to this device with this PIN: for softbus_lite devices that never pair.
    /// DEVICE is its device id. Repeatable; an empty PIN needs --allow-empty-pin.
    #[arg(long, value_name = "DEVICE=PIN")]
    gateway_pin: Vec<String>,
    /// The web token every /api and /rtc request needs (at least 32
    /// characters; default: made on first start, kept in DATA_DIR/web-token).
    /// From the environment it stays out of the process list.
    #[arg(long, env = "SOFTBUS_WEB_TOKEN", hide_env_values = true)]
    web_token: Option<String>,
    #[command(flatten)]
    ice: ice_args::IceArgs,
}

#[derive(clap::Args)]
struct PairArgs {
    /// The device: IPV4:AUTH_PORT, or IPV4 to find the auth port by discovery.
    #[arg(long)]
    peer: String,
    /// The device's pairing PIN.
    #[arg(long)]
    pin: String,
    #[command(flatten)]
    reach: Reach,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// How `send` and `pair` reach a peer from this machine's client node.
#[derive(clap::Args)]
struct Reach {
    /// Local address (default: the one that routes to the peer).
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// The peer's discovery port, to find its auth port when --peer has none.
    #[arg(long, default_value_t = 5684)]
    discovery_port: u16,
    /// Seconds to wait for each step.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Where this machine's client identity and pairings live (default: the
    /// user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The client node `send` or `pair` runs, toward one peer.
struct Client {
    node: NodeTask,
    peer_ip: Ipv4Addr,
    /// The auth port --peer gave, if any.
    port: Option<u16>,
    timeout: Duration,
}

impl Reach {
    /// Checks --timeout (before anything else is checked: `first`) and --peer,
    /// then starts the client node on the address toward the peer.
    async fn start(
        &self,
        peer: &str,
        ice: softbus_runtime::ice::IceConfig,
        first: impl FnOnce() -> Result<(), ExitCode>,
    ) -> Result<Client, ExitCode> {
        let Some(timeout) = timeout_arg(self.timeout) else {
            return Err(usage("--timeout must be a positive number of seconds"));
        };
        first()?;
        let (peer_ip, port) = parse_peer(peer)?;
        let local_ip = match self.ip {
            Some(ip) => ip,
            None => local_ip_for(peer_ip, self.discovery_port),
        };
        // With the auth port given there is nothing to discover: no
        // discovery socket, so no port 5684 is taken from anyone.
        let node = client_node(
            self.data_dir.clone(),
            local_ip,
            self.discovery_port,
            port.is_none(),
            ice,
        )
        .await?;
        Ok(Client {
            node,
            peer_ip,
            port,
            timeout,
        })
    }
}

#[derive(clap::Args)]
struct DiscoverArgs {
    /// Local address to send from and listen on (default: first non-loopback IPv4).
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// Unicast target IPV4[:PORT] (repeatable; default: the broadcast address of --ip).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// Seconds to wait for answers (with --target: at most; it returns as soon
    /// as every target answered).
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Discovery port to listen on and send to.
    #[arg(long, default_value_t = 5684)]
    port: u16,
    /// Where this machine's client identity lives (default: the user's data dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print each device as a `device_found` JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SendArgs {
    /// The peer: IPV4:AUTH_PORT, or IPV4 to find the auth port by discovery.
    #[arg(long)]
    peer: String,
    /// Session server name on the peer.
    #[arg(long)]
    session: String,
    /// Authenticate with this PIN, without pairing (softbus_lite's way; `''`
    /// for lite devices' empty PIN). Without it, the pairing made with
    /// `softbus pair` is used.
    #[arg(long)]
    pin: Option<String>,
    /// The other node's web token for --transport webrtc (default: the pairing).
    #[arg(long)]
    web_token: Option<String>,
    /// Send the message this many times on the one session, each after the
    /// previous reply.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Seconds to wait between messages (with --count; the session stays open meanwhile).
    #[arg(long, default_value_t = 0.0)]
    interval: f64,
    #[command(flatten)]
    reach: Reach,
    /// Print each reply as a `reply` JSON object per line.
    #[arg(long)]
    json: bool,
    /// tcp (the soft bus session protocol) or webrtc (a data channel via the node's /rtc/offer).
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    transport: TransportArg,
    /// The node's HTTP address for --transport webrtc (default http://PEER_IP:8080).
    #[arg(long)]
    web: Option<String>,
    #[command(flatten)]
    ice: ice_args::IceArgs,
    /// The message (UTF-8).
    message: String,
}

/// `softbus bench`: the harness is its own binary (`softbus-bench`, crates/bench),
/// run from beside this one with the same arguments.
fn bench(args: &[String]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(me) => me.with_file_name("softbus-bench"),
        Err(e) => return failure(format!("cannot find softbus-bench: {e}")),
    };
    match std::process::Command::new(&exe).args(args).status() {
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => failure(format!(
            "cannot run {}: {e} (build it with cargo build --release -p softbus-bench)",
            exe.display()
        )),
    }
}

/// A command line clap refused: `--help` and `--version` print as clap
/// writes them (exit 0); anything else is one line naming the problem and
/// where to read more, exit 2 (docs/interfaces.md).
fn parse_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's message up to its usage and tip lines, as one line.
    let text = e.render().to_string();
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let first = first.join(" ");
    let first = first.trim_start_matches("error: ");
    // The subcommand named on the command line, if it is one of ours.
    let sub = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| {
            use clap::CommandFactory;
            Cli::command().find_subcommand(a).is_some()
        });
    let help = match sub {
        Some(s) => format!("softbus {s} --help"),
        None => "softbus --help".to_owned(),
    };
    usage(format!("{first} (see {help})"))
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    progress::erase();
    eprintln!("softbus: {msg}");
    ExitCode::from(2)
}

/// The one-line error, on a line of its own (a progress line erased first).
fn failure(msg: impl std::fmt::Display) -> ExitCode {
    progress::erase();
    eprintln!("softbus: {msg}");
    ExitCode::from(1)
}

fn timeout_arg(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0 && secs < 86_400.0).then(|| Duration::from_secs_f64(secs))
}

fn client_identity(data_dir: Option<PathBuf>, ip: Ipv4Addr) -> Result<ClientIdentity, ExitCode> {
    let dir = data_dir
        .unwrap_or_else(store::default_data_dir)
        .join("client");
    // The client's id is derived from its key, as the node's is (the same
    // files its pairings use).
    let own = softbus_runtime::store::load_or_create_identity(&dir, |b| {
        rand::Rng::fill(&mut rand::rng(), b)
    })
    .map_err(|e| failure(format!("data dir {}: {e}", dir.display())))?;
    Ok(ClientIdentity {
        device_id: own.device_id,
        name: net::host_name(),
        device_type: 0x0E,
        ip,
    })
}

/// `--transport`: the node core's [`Transport`], as clap parses it (a typo is
/// a usage error, never TCP).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum TransportArg {
    Tcp,
    Webrtc,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Webrtc => Transport::WebRtc,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return parse_error(&e),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // sctp-proto logs an ordinary peer ABORT as an error; the node reports it as session_closed.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sctp_proto=off".into()),
        )
        .init();
    match &cli.cmd {
        Cmd::Bench { args } => return bench(args),
        Cmd::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "softbus",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Cmd::Man { command, out } => {
            use clap::CommandFactory;
            let cmd = Cli::command();
            return match (out, command) {
                (Some(dir), _) => match man::write_all(&cmd, dir) {
                    Ok(files) => {
                        for f in files {
                            println!("{f}");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => failure(e),
                },
                (None, c) => match man::print(&cmd, c.as_deref()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) if e.starts_with("no command") => usage(e),
                    Err(e) => failure(e),
                },
            };
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return failure(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Node(a) => node(a).await,
            Cmd::Discover(a) => discover(a).await,
            Cmd::Send(a) => send(a).await,
            Cmd::Pair(a) => pair(a).await,
            Cmd::Devices(a) => devices::devices(a),
            Cmd::Unpair(a) => devices::unpair(a),
            Cmd::Bench { .. } | Cmd::Completions { .. } | Cmd::Man { .. } => ExitCode::SUCCESS,
        }
    })
}

async fn node(a: NodeArgs) -> ExitCode {
    let name = a.name.unwrap_or_else(net::host_name);
    if name.is_empty() || name.len() > 63 {
        return usage("--name must be 1..=63 bytes");
    }
    let Some(device_type) = device_type_from_name(&a.device_type) else {
        return usage(format!(
            "--device-type {:?}: expected PHONE|PAD|TV|PC|AUDIO|CAR|L0|L1",
            a.device_type
        ));
    };
    let caps = if a.capabilities.is_empty() {
        vec!["ddmpCapability".to_owned()]
    } else {
        a.capabilities
    };
    if let Some(bad) = caps.iter().find(|c| full_stack_capability_bit(c).is_none()) {
        return usage(format!(
            "--capability {bad:?}: expected one of {}",
            CAPABILITIES.join(", ")
        ));
    }
    if caps.len() > 3 {
        return usage("at most 3 --capability values (softbus publishes 3 services)");
    }
    let gateway_pins = match launch::gateway_pins(&a.gateway_pin, a.allow_empty_pin) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let ice = match a.ice.config() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let (pin, renewable) =
        match launch::pin_policy(a.pin, a.allow_empty_pin, "--pin", "--allow-empty-pin") {
            Ok(p) => p,
            Err(e) => return usage(e),
        };
    let web_addr = match launch::web_addr(&a.web, "--web") {
        Ok(w) => w,
        Err(e) => return usage(e),
    };
    let ip = a.ip.unwrap_or_else(net::default_ipv4);
    let data_dir = a.data_dir.unwrap_or_else(store::default_data_dir);
    if a.reset_identity {
        if let Err(e) = softbus_runtime::store::reset_identity(&data_dir) {
            return failure(e);
        }
        eprintln!(
            "softbus: identity and trusted devices in {} reset",
            data_dir.display()
        );
    }
    let mut cfg = NodeConfig::new(&name, ip, data_dir, pin);
    cfg.pin_renewable = renewable;
    cfg.device_type = device_type;
    cfg.discovery_port = a.discovery_port;
    cfg.auth_port = a.auth_port;
    cfg.session_port = a.session_port;
    cfg.rtc_port = a.rtc_port;
    cfg.capabilities = caps;
    cfg.bus.discovery.full_stack_capabilities = true;
    cfg.limits.max_sessions = a.max_sessions;
    cfg.limits.max_sessions_per_peer = a.max_sessions_per_peer;
    cfg.limits.max_sessions_per_address = a.max_sessions_per_address;
    if !a.echo.is_empty() {
        cfg.echo = a.echo;
    }
    cfg.discard = a.discard;
    cfg.paired_only = a.paired_only;
    cfg.gateway_pins = gateway_pins;
    cfg.ice = ice;
    let data_dir = cfg.data_dir.clone();
    let node = match NodeTask::start(cfg).await {
        Ok(n) => n,
        Err(e) => return failure(e),
    };
    let handle = node.handle();
    let mut events = handle.subscribe();
    let web = match web_addr {
        None => None,
        Some(addr) => {
            let o = launch::WebOptions {
                token: a.web_token.clone(),
                hosts: a.web_hosts.clone(),
                origins: a.web_origins.clone(),
            };
            match launch::serve_web(&handle, addr, &data_dir, o).await {
                Ok(url) => Some(url),
                Err(e @ launch::LaunchError::Config(_)) => return usage(e),
                Err(launch::LaunchError::Runtime(e)) => return failure(e),
            }
        }
    };
    let i = handle.info();
    let ready = NodeEvent::Ready {
        device_id: i.device_id.clone(),
        name: i.name.clone(),
        ip: i.ip.to_string(),
        discovery_port: i.discovery_port,
        auth_port: i.auth_port,
        session_port: i.session_port,
        rtc_port: i.rtc_port,
        web: web.clone(),
    };
    emit(&if a.json {
        ready.to_json()
    } else {
        ready.to_words()
    });
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            ev = events.recv() => match ev {
                Ok(e) => {
                    match &e {
                        NodeEvent::PinReplaced {} => {
                            if let Some(p) = handle.current_pin() {
                                eprintln!("softbus: pairing PIN {} (the previous one was locked after too many failed attempts)", p.as_str());
                            }
                        }
                        NodeEvent::PinLocked { failures, retry_after_s } if *retry_after_s > 0 => eprintln!(
                            "softbus: PIN pairing paused for {retry_after_s} s after {failures} failed attempts (paired devices are not affected)"
                        ),
                        _ => {}
                    }
                    emit(&if a.json { e.to_json() } else { e.to_words() });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => eprintln!("softbus: {n} events not shown (output too slow)"),
                Err(_) => break,
            },
        }
    }
    node.shutdown().await;
    ExitCode::SUCCESS
}

/// Prints one stdout line; a closed stdout (the reader went away) must not stop the node.
fn emit(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn parse_target(s: &str, port: u16) -> Option<SocketAddrV4> {
    s.parse::<SocketAddrV4>().ok().or_else(|| {
        s.parse::<Ipv4Addr>()
            .ok()
            .map(|ip| SocketAddrV4::new(ip, port))
    })
}

async fn discover(a: DiscoverArgs) -> ExitCode {
    let Some(timeout) = timeout_arg(a.timeout) else {
        return usage("--timeout must be a positive number of seconds");
    };
    let ip = a.ip.unwrap_or_else(net::default_ipv4);
    // 127.0.0.0/8 is all this machine's; any other address must be one of its own.
    let own = net::local_ipv4s();
    if !ip.is_loopback() && !own.contains(&ip) {
        let list: Vec<String> = own.iter().map(|a| a.to_string()).collect();
        return usage(format!(
            "--ip {ip}: this machine has no such address (it has {})",
            list.join(", ")
        ));
    }
    let mut targets = Vec::new();
    for t in &a.targets {
        match parse_target(t, a.port) {
            Some(x) => targets.push(x),
            None => return usage(format!("--target {t:?}: expected IPV4 or IPV4:PORT")),
        }
    }
    if targets.is_empty() {
        match net::broadcast_of(ip).filter(|_| !ip.is_loopback()) {
            Some(b) => targets.push(SocketAddrV4::new(b, a.port)),
            None if ip.is_loopback() => {
                return usage(format!(
                    "{ip} is loopback, which has no broadcast: pass --target IPV4[:PORT] (a node on this machine: its --ip)"
                ))
            }
            None => return usage(format!("no broadcast address for {ip}; pass --target")),
        }
    }
    let me = match client_identity(a.data_dir, ip) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let json = a.json;
    // With unicast targets, done as soon as each has answered; a broadcast
    // may be answered by any number of devices, so it waits its timeout.
    let mut waiting: std::collections::BTreeSet<Ipv4Addr> = if a.targets.is_empty() {
        Default::default()
    } else {
        targets.iter().map(|t| *t.ip()).collect()
    };
    let unicast = !waiting.is_empty();
    let asked: Vec<String> = targets.iter().map(ToString::to_string).collect();
    let progress = Progress::start(format!("asking {}", asked.join(", ")), timeout);
    let mut answered = 0;
    let found = client::discover(&me, a.port, targets, timeout, |d| {
        progress.above(|| {
            if json {
                println!("{}", NodeEvent::found(d).to_json());
            } else {
                println!(
                    "{}\t{}\t{}\tauth port {}\t{}",
                    d.name,
                    d.device_id,
                    d.ip,
                    d.auth_port.map(|p| p.to_string()).unwrap_or("-".into()),
                    d.capabilities.join(",")
                );
            }
        });
        answered += 1;
        progress.say(format!("asking {}: {answered} answered", asked.join(", ")));
        waiting.remove(&d.ip);
        !(unicast && waiting.is_empty())
    })
    .await;
    drop(progress);
    match found {
        Ok(f) if !f.is_empty() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!(
                "softbus: no device answered {} within {} s",
                asked.join(", "),
                a.timeout
            );
            ExitCode::from(1)
        }
        Err(e) => failure(e),
    }
}

fn print_reply(json: bool, i: u32, reply: &[u8], rtt_ms: f64) {
    let text = match std::str::from_utf8(reply) {
        Ok(t) => t.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(reply),
    };
    if json {
        let line = Reply {
            event: "reply",
            index: i,
            len: reply.len(),
            rtt_ms: (rtt_ms * 1000.0).round() / 1000.0,
            data: text,
        };
        println!("{}", serde_json::to_string(&line).unwrap_or_default());
    } else {
        println!("{text}");
    }
}

/// `softbus send --json` line, keys in the documented order.
#[derive(serde::Serialize)]
struct Reply {
    event: &'static str,
    index: u32,
    len: usize,
    rtt_ms: f64,
    data: String,
}

/// The client's local address toward `peer` when --ip is not given: the one
/// that routes to it, except on loopback, where that is the peer's own address
/// (whose discovery port the peer holds): then the first of 127.0.0.1,
/// 127.0.0.2, … that is neither the peer's nor held by a node.
fn local_ip_for(peer: Ipv4Addr, discovery_port: u16) -> Ipv4Addr {
    let routed = local_ip_toward(peer).unwrap_or(Ipv4Addr::LOCALHOST);
    if !routed.is_loopback() {
        return routed;
    }
    (1..=254u8)
        .map(|n| Ipv4Addr::new(127, 0, 0, n))
        .find(|ip| *ip != peer && !net::address_claimed(SocketAddrV4::new(*ip, discovery_port)))
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

fn local_ip_toward(peer: Ipv4Addr) -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((
        if peer.is_loopback() {
            peer
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        0,
    ))
    .ok()?;
    s.connect((peer, 9)).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(v4) => Some(*v4.ip()),
        SocketAddr::V6(_) => None,
    }
}

async fn send(a: SendArgs) -> ExitCode {
    let checks = || {
        if a.message.is_empty() || a.message.len() > softbus_runtime::wire::MAX_SEND_BYTES {
            return Err(usage("MESSAGE must be 1..=4048 bytes"));
        }
        if a.count == 0 {
            return Err(usage("--count must be at least 1"));
        }
        if !(0.0..=3600.0).contains(&a.interval) {
            return Err(usage("--interval must be 0..=3600 seconds"));
        }
        Ok(())
    };
    let ice = match a.ice.config() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let c = match a.reach.start(&a.peer, ice, checks).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let code = send_through(&a, &c.node.handle(), c.peer_ip, c.port, c.timeout).await;
    c.node.shutdown().await;
    code
}

/// The client side is a node of its own (the same engines and driver as
/// `softbus node`), with no session servers and no PIN of its own; its
/// identity and pairings live in DATA_DIR/client.
async fn client_node(
    data_dir: Option<PathBuf>,
    local_ip: Ipv4Addr,
    discovery_port: u16,
    discovery: bool,
    ice: softbus_runtime::ice::IceConfig,
) -> Result<NodeTask, ExitCode> {
    let dir = data_dir
        .unwrap_or_else(store::default_data_dir)
        .join("client");
    let mut cfg = NodeConfig::new(
        &net::host_name(),
        local_ip,
        dir,
        PinPolicy {
            pin: None,
            allow_empty: false,
        },
    );
    cfg.device_type = 0x0E;
    cfg.discovery_port = discovery_port;
    cfg.exclusive = false;
    cfg.discovery = discovery;
    cfg.capabilities.clear();
    cfg.echo.clear();
    cfg.ice = ice;
    NodeTask::start(cfg).await.map_err(failure)
}

fn parse_peer(peer: &str) -> Result<(Ipv4Addr, Option<u16>), ExitCode> {
    match (peer.parse::<SocketAddrV4>(), peer.parse::<Ipv4Addr>()) {
        (Ok(sa), _) => Ok((*sa.ip(), Some(sa.port()))),
        (_, Ok(ip)) => Ok((ip, None)),
        _ => Err(usage(format!("--peer {peer:?}: expected IPV4[:AUTH_PORT]"))),
    }
}

/// `softbus pair`: BIND with the device's PIN from this machine's client identity.
async fn pair(a: PairArgs) -> ExitCode {
    let Client {
        node,
        peer_ip,
        port,
        timeout,
    } = match a
        .reach
        .start(&a.peer, softbus_runtime::ice::IceConfig::default(), || {
            Ok(())
        })
        .await
    {
        Ok(c) => c,
        Err(code) => return code,
    };
    let h = node.handle();
    let code = match find_auth_port(&h, peer_ip, port, a.reach.discovery_port, timeout).await {
        Err(c) => c,
        Ok(auth_port) => {
            let addr = SocketAddr::from((peer_ip, auth_port));
            let waiting = Progress::start(format!("pairing with {addr}"), timeout);
            let paired = tokio::time::timeout(timeout, h.pair(addr, &a.pin)).await;
            drop(waiting);
            match paired {
                Ok(Ok(p)) => {
                    if a.json {
                        println!(
                            "{}",
                            serde_json::json!({"event": "paired", "device_id": p.peer.device_id, "name": p.peer.device_name, "ip": peer_ip.to_string()})
                        );
                    } else {
                        println!("paired with {} ({})", p.peer.device_name, p.peer.device_id);
                    }
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => failure(format!("pairing with {addr}: {e}")),
                Err(_) => failure(format!("pairing with {addr}: timed out")),
            }
        }
    };
    node.shutdown().await;
    code
}

/// Opens the session (over TCP: finds the auth port unless given and
/// authenticates; over WebRTC: offers to the peer's web side), sends `count`
/// messages and prints each reply.
async fn send_through(
    a: &SendArgs,
    h: &softbus_runtime::NodeHandle,
    peer_ip: Ipv4Addr,
    port: Option<u16>,
    timeout: Duration,
) -> ExitCode {
    let s = if Transport::from(a.transport) == Transport::WebRtc {
        let web = a
            .web
            .clone()
            .unwrap_or_else(|| format!("http://{peer_ip}:8080"));
        let auth = match &a.web_token {
            Some(t) => softbus_runtime::WebAuth::Token(t.clone()),
            None => softbus_runtime::WebAuth::Paired,
        };
        match h.open_webrtc_session(&web, &a.session, timeout, auth).await {
            Ok(s) => s,
            Err(softbus_runtime::Error::NotOpened(softbus_runtime::SessionClosed::PeerConnection(
                softbus_runtime::CloseReason::IceFailed,
            ))) => return failure(ice_failed_hint(&web, &a.ice)),
            // A refused data channel is closed, with no reason on the wire.
            Err(e @ softbus_runtime::Error::NotOpened(_)) => {
                return failure(format!(
                    "WebRTC session {:?} via {web}: {e}: the node has no session server of that name, or does not admit this credential",
                    a.session
                ))
            }
            Err(e) => return failure(format!("WebRTC session {:?} via {web}: {e}", a.session)),
        }
    } else {
        match open_tcp(a, h, peer_ip, port, timeout).await {
            Ok(s) => s,
            Err(code) => return code,
        }
    };
    exchange(a, s, timeout).await
}

/// What to do when no candidate pair connected, by what was configured.
fn ice_failed_hint(web: &str, ice: &ice_args::IceArgs) -> String {
    let turn = ice.ice_servers.iter().any(|u| u.starts_with("turn"));
    let why = if turn {
        "not even through the TURN relay: check that the TURN server is reachable from here and takes these credentials"
    } else if ice.ice_servers.is_empty() {
        "this machine and the node cannot reach each other's addresses: behind NAT a TURN server is needed (--ice-server turn:HOST:PORT with --turn-username and --turn-credential, or --turn-secret)"
    } else {
        "behind NATs that map each destination to another port (symmetric NAT), reflexive addresses do not connect: a TURN server is needed (--ice-server turn:HOST:PORT with --turn-username and --turn-credential, or --turn-secret)"
    };
    format!("WebRTC session via {web}: ICE failed, no candidate pair connected; {why}")
}

/// The auth port: `port` if given, else asked by discovery.
async fn find_auth_port(
    h: &softbus_runtime::NodeHandle,
    peer_ip: Ipv4Addr,
    port: Option<u16>,
    discovery_port: u16,
    timeout: Duration,
) -> Result<u16, ExitCode> {
    Ok(match port {
        Some(p) => p,
        None => {
            let _waiting =
                Progress::logged(format!("discovering the auth port of {peer_ip}"), timeout);
            let mut events = h.subscribe();
            let target = SocketAddrV4::new(peer_ip, discovery_port);
            if let Err(e) = h.discover(vec![target]).await {
                return Err(failure(e));
            }
            let found = tokio::time::timeout(timeout, async {
                loop {
                    match events.recv().await {
                        Ok(NodeEvent::DeviceFound { ip, auth_port, .. })
                            if ip == peer_ip.to_string() =>
                        {
                            return auth_port;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return None,
                    }
                }
            })
            .await;
            match found {
                Ok(Some(p)) => p,
                _ => {
                    return Err(failure(format!(
                        "{peer_ip} did not answer discovery; give --peer IP:AUTH_PORT"
                    )))
                }
            }
        }
    })
}

/// Over TCP: finds the auth port (unless given), authenticates (with the PIN
/// if given, else with the pairing), opens the session.
async fn open_tcp(
    a: &SendArgs,
    h: &softbus_runtime::NodeHandle,
    peer_ip: Ipv4Addr,
    port: Option<u16>,
    timeout: Duration,
) -> Result<softbus_runtime::SessionHandle, ExitCode> {
    let auth_port = find_auth_port(h, peer_ip, port, a.reach.discovery_port, timeout).await?;
    let addr = SocketAddr::from((peer_ip, auth_port));
    let waiting = Progress::start(format!("authenticating to {addr}"), timeout);
    let connected = match &a.pin {
        Some(pin) => tokio::time::timeout(timeout, h.connect(addr, pin)).await,
        None => tokio::time::timeout(timeout, h.connect_paired(addr)).await,
    };
    waiting.set(format!("opening session {:?} on {addr}", a.session));
    let peer = match connected {
        Ok(Ok(p)) => p,
        Ok(Err(e)) if a.pin.is_none() => {
            return Err(failure(format!(
                "authenticating to {addr} as a paired device: {e} (pair first with softbus pair --peer {addr} --pin PIN, or pass --pin)"
            )))
        }
        Ok(Err(e)) => return Err(failure(format!("authenticating to {addr}: {e}"))),
        Err(_) => return Err(failure(format!("authenticating to {addr}: timed out"))),
    };
    match tokio::time::timeout(timeout, h.open_session(&peer, &a.session)).await {
        Ok(Ok(s)) => Ok(s),
        // A softbus node says why it refused; softbus_lite only closes, with no
        // reason on the wire: say what that means.
        Ok(Err(
            e @ softbus_runtime::Error::NotOpened(softbus_runtime::SessionClosed::Connection(
                softbus_runtime::ConnClosed::PeerClosed,
            )),
        )) => Err(failure(format!(
            "opening session {:?} on {addr}: {e}: the node has no session server of that name, or does not admit this device",
            a.session
        ))),
        Ok(Err(e)) => Err(failure(format!(
            "opening session {:?} on {addr}: {e}",
            a.session
        ))),
        Err(_) => Err(failure(format!(
            "opening session {:?} on {addr}: no answer within {} s",
            a.session, a.reach.timeout
        ))),
    }
}

/// Sends the message `count` times on `s`, printing each reply, then closes.
async fn exchange(
    a: &SendArgs,
    mut s: softbus_runtime::SessionHandle,
    timeout: Duration,
) -> ExitCode {
    for i in 0..a.count {
        if i > 0 && a.interval > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(a.interval)).await;
        }
        let t0 = Instant::now();
        if let Err(e) = s.send(a.message.as_bytes()).await {
            return failure(e);
        }
        let reply = match s.recv(timeout).await {
            Ok(r) => r,
            Err(e) => return failure(format!("message {i}: {e}")),
        };
        print_reply(a.json, i, &reply, t0.elapsed().as_secs_f64() * 1000.0);
    }
    if let Err(e) = s.close().await {
        eprintln!("softbus: closing: {e}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every subcommand says what it is for.
    #[test]
    fn every_option_has_help_text() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("softbus {} --{id}", sub.get_name()));
                }
            }
            if sub.get_about().is_none() {
                missing.push(format!("softbus {}", sub.get_name()));
            }
        }
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
