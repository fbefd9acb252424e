//! The C side of the library, built by the system C compiler against the
//! installed headers and `pkg-config` file, over loopback (127.0.3.x):
//! the two examples are discovered and echo `softbus send` byte-exact; the
//! headers agree with the Rust structs and functions; a misuse program under
//! AddressSanitizer gets every documented error code and neither crashes nor
//! leaks; the echo server is reached through a gateway node.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_testkit::interop::{skip, LoopbackNs};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// target/<profile>, from this test's own path (target/<profile>/deps/…).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `cargo build -p softbus-capi -p softbus-cli` once, in this test's profile:
/// the `.so`, the `.a`, the headers, `softbus.pc` and the `softbus` binary.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "-q", "-p", "softbus-capi", "-p", "softbus-cli"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let s = c.status().unwrap();
        assert!(s.success(), "cargo build failed");
        for f in [
            "libsoftbus.so",
            "libsoftbus.a",
            "include/softbus/session.h",
            "pkgconfig/softbus.pc",
            "softbus",
        ] {
            assert!(dir.join(f).exists(), "{f} was not built");
        }
        dir
    })
}

/// Compiles `src` with the flags `pkg-config --cflags --libs softbus` gives
/// (plus `extra`), into a temporary executable.
fn compile(src: &str, extra: &[&str]) -> PathBuf {
    let dir = built();
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "softbus"])
        .env("PKG_CONFIG_PATH", dir.join("pkgconfig"))
        .output()
        .unwrap();
    assert!(flags.status.success(), "{flags:?}");
    let flags = String::from_utf8(flags.stdout).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Tests run in parallel and may build the same source: one file each.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let out = std::env::temp_dir().join(format!(
        "softbus-capi-{}-{}-{}",
        Path::new(src).file_stem().unwrap().to_string_lossy(),
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let o = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-g"])
        .args(extra)
        .arg(root.join(src))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cc {src}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// A C program started with the SOFTBUS_* variables for `ip`, killed on drop.
struct Program {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    data: PathBuf,
}

impl Program {
    fn start(exe: &Path, ip: &str, extra_env: &[(&str, &str)]) -> Program {
        Self::start_in(&[], exe, ip, extra_env)
    }

    /// The same, under `prefix` (e.g. `ip netns exec NS`).
    fn start_in(prefix: &[&str], exe: &Path, ip: &str, extra_env: &[(&str, &str)]) -> Program {
        let data =
            std::env::temp_dir().join(format!("softbus-capi-data-{ip}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = cmd
            .env("SOFTBUS_IP", ip)
            .env("SOFTBUS_PIN", "246810")
            .env("SOFTBUS_DATA_DIR", &data)
            .envs(extra_env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let p = Program {
            child,
            lines: rx,
            data,
        };
        p.wait_line(|l| l == "ready");
        p
    }

    fn wait_line(&self, f: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if f(&l) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("line not seen")
    }

    /// SIGTERM; the exit status and what it printed on stderr.
    fn stop(self) -> (Option<i32>, String) {
        let (code, err, _) = self.stop_with_output();
        (code, err)
    }

    /// SIGTERM; the exit status, stderr, and the stdout lines not yet read.
    fn stop_with_output(mut self) -> (Option<i32>, String, Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = std::fs::remove_dir_all(&self.data);
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            out.push(l);
        }
        (status.code(), err, out)
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn softbus(args: &[&str]) -> std::process::Output {
    Command::new(built().join("softbus"))
        .args(args)
        .output()
        .unwrap()
}

/// `softbus ARGS MESSAGE` for messages of 1, 1,000 and 4,048 bytes: each
/// comes back byte-exact from the echo server `e`, which reports the session
/// opened and closed; `opened` runs between the two.
fn echoes_each_size(e: &Program, args: &[&str], mut opened: impl FnMut()) {
    for n in [1usize, 1000, 4048] {
        let msg: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let all: Vec<&str> = args.iter().copied().chain([msg.as_str()]).collect();
        let o = softbus(&all);
        assert!(o.status.success(), "{n}: {o:?}");
        let r = &json_lines(&o)[0];
        assert_eq!(r["len"], n);
        assert_eq!(r["data"].as_str(), Some(msg.as_str()), "{n}");
        let line = e.wait_line(|l| l.starts_with("opened "));
        assert!(line.contains(" echo-server from "), "{line}");
        opened();
        e.wait_line(|l| l.starts_with("closed "));
    }
}

fn json_lines(o: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_headers_and_the_library_agree() {
    use softbus::{CommonDeviceInfo, IPublishCallback, ISessionListener, PublishInfo};
    use std::mem::{offset_of, size_of};
    let exe = compile("crates/capi/tests/c/abi.c", &[]);
    let o = Command::new(&exe).output().unwrap();
    assert!(o.status.success());
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let _ = std::fs::remove_file(&exe);
    assert_eq!(c["functions"], 10, "every declared function resolved");
    assert_eq!(
        c["PublishInfo"],
        serde_json::json!([
            size_of::<PublishInfo>(),
            offset_of!(PublishInfo, publishId),
            offset_of!(PublishInfo, mode),
            offset_of!(PublishInfo, medium),
            offset_of!(PublishInfo, freq),
            offset_of!(PublishInfo, capability),
            offset_of!(PublishInfo, capabilityData),
            offset_of!(PublishInfo, dataLen)
        ])
    );
    assert_eq!(
        c["IPublishCallback"],
        serde_json::json!([
            size_of::<IPublishCallback>(),
            offset_of!(IPublishCallback, onPublishSuccess),
            offset_of!(IPublishCallback, onPublishFail)
        ])
    );
    assert_eq!(
        c["CommonDeviceInfo"],
        serde_json::json!([
            size_of::<CommonDeviceInfo>(),
            offset_of!(CommonDeviceInfo, key),
            offset_of!(CommonDeviceInfo, value)
        ])
    );
    assert_eq!(
        c["ISessionListener"],
        serde_json::json!([
            size_of::<ISessionListener>(),
            offset_of!(ISessionListener, onSessionOpened),
            offset_of!(ISessionListener, onSessionClosed),
            offset_of!(ISessionListener, onBytesReceived)
        ])
    );
    assert_eq!(c["enum"], size_of::<softbus::CEnum>());
    assert_eq!(c["UNKNOWN"], softbus::PUBLISH_FAIL_REASON_UNKNOWN);
    assert_eq!(c["ERROR_NONEXIST"], softbus::ERROR_NONEXIST);
    assert_eq!(c["SEND_BYTES_MAX"], softbus::SEND_BYTES_MAX);
}

/// Each function's prototype in the headers, normalised: `ret name(type, type)`.
fn prototypes(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    // Without comments and preprocessor lines.
    let mut plain = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        plain.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    plain.push_str(rest);
    let flat: String = plain
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for stmt in flat.split(';') {
        let s = stmt.trim();
        let Some(open) = s.find('(') else { continue };
        let head = &s[..open];
        let name = head
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .trim_start_matches('*');
        const NAMES: [&str; 10] = [
            "PublishService",
            "UnPublishService",
            "SetCommonDeviceInfo",
            "CreateSessionServer",
            "RemoveSessionServer",
            "SendBytes",
            "GetMySessionName",
            "GetPeerSessionName",
            "GetPeerDeviceId",
            "CloseSession",
        ];
        if !NAMES.contains(&name) || head.contains('{') || head.contains("typedef") {
            continue;
        }
        let ret = head[..head.len() - name.len()]
            .split_whitespace()
            .last()
            .unwrap_or("");
        let args: Vec<String> = s[open + 1..s.rfind(')').unwrap_or(s.len())]
            .split(',')
            .map(|a| {
                // Drop the parameter name; keep the type, `struct ` and `const` alike.
                let a = a.trim().replace("struct ", "");
                let mut words: Vec<&str> = a.split_whitespace().collect();
                if words.len() > 1 {
                    let last = words.pop().unwrap();
                    let stars = last.chars().take_while(|c| *c == '*').count();
                    let mut t = words.join(" ");
                    t.push_str(&"*".repeat(stars));
                    t.replace(" *", "*")
                } else {
                    a
                }
            })
            .collect();
        out.insert(
            name.to_owned(),
            format!("{ret} {name}({})", args.join(", ")),
        );
    }
    out
}

/// cbindgen reads the Rust functions; their C prototypes must be the headers'.
#[test]
fn the_header_prototypes_are_the_rust_signatures() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let generated = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_language(cbindgen::Language::C)
        .with_no_includes()
        .generate()
        .unwrap();
    let mut buf = Vec::new();
    generated.write(&mut buf);
    let rust = prototypes(&String::from_utf8(buf).unwrap());
    let mut headers = String::new();
    for h in ["discovery_service.h", "session.h"] {
        headers.push_str(
            &std::fs::read_to_string(Path::new(crate_dir).join("include").join(h)).unwrap(),
        );
    }
    let c = prototypes(&headers);
    assert_eq!(c.len(), 10, "{c:#?}");
    // cbindgen spells the enum and integer types the way the Rust side
    // declares them; map them to the headers' names.
    let normalise = |s: &str| {
        s.replace("CEnum", "int")
            .replace("PublishFailReason", "int")
            .replace("ExchangeMedium", "int")
            .replace("unsigned int", "uint")
            .replace("uint32_t", "uint")
            .replace("int32_t", "int")
    };
    for (name, proto) in &c {
        let r = rust
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not exported by the Rust side: {rust:#?}"));
        assert_eq!(normalise(proto), normalise(r), "{name}");
    }
}

#[test]
fn the_examples_are_discovered_and_echo_byte_exact() {
    let publish = compile("examples/c/publish.c", &[]);
    let echo = compile("examples/c/echo_server.c", &[]);
    let cdata = std::env::temp_dir().join(format!("softbus-capi-client-{}", std::process::id()));
    let cd = cdata.to_str().unwrap();
    // The publisher: discovered with the name and type it set.
    let p = Program::start(&publish, "127.0.3.1", &[]);
    let o = softbus(&[
        "discover",
        "--ip",
        "127.0.3.2",
        "--target",
        "127.0.3.1",
        "--timeout",
        "2",
        "--json",
        "--data-dir",
        cd,
    ]);
    assert!(o.status.success(), "{o:?}");
    let found = json_lines(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["name"], "c-publisher");
    assert_eq!(found[0]["device_type"], 0x9C, "TV");
    assert_eq!(
        found[0]["capabilities"],
        serde_json::json!(["ddmpCapability"])
    );
    assert!(found[0]["auth_port"].as_u64().is_some());
    let (code, err) = p.stop();
    assert_eq!(code, Some(0), "{err}");
    // The echo server: discovered, and every size comes back byte-exact.
    let e = Program::start(&echo, "127.0.3.3", &[]);
    let o = softbus(&[
        "discover",
        "--ip",
        "127.0.3.4",
        "--target",
        "127.0.3.3",
        "--timeout",
        "2",
        "--json",
        "--data-dir",
        cd,
    ]);
    assert_eq!(json_lines(&o).len(), 1, "{o:?}");
    echoes_each_size(
        &e,
        &[
            "send",
            "--peer",
            "127.0.3.3",
            "--ip",
            "127.0.3.4",
            "--session",
            "echo-server",
            "--pin",
            "246810",
            "--json",
            "--data-dir",
            cd,
        ],
        || {},
    );
    let (code, err) = e.stop();
    assert_eq!(code, Some(0), "{err}");
    for f in [publish, echo] {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir_all(&cdata);
}

#[test]
fn misuse_gets_the_documented_codes_under_address_sanitizer() {
    let exe = compile(
        "crates/capi/tests/c/misuse.c",
        &["-fsanitize=address", "-fno-omit-frame-pointer"],
    );
    let p = Program::start(&exe, "127.0.3.5", &[]);
    let cdata = std::env::temp_dir().join(format!("softbus-capi-mclient-{}", std::process::id()));
    let o = softbus(&[
        "send",
        "--peer",
        "127.0.3.5",
        "--ip",
        "127.0.3.6",
        "--session",
        "misuse",
        "--pin",
        "246810",
        "--count",
        "2",
        "--json",
        "--data-dir",
        cdata.to_str().unwrap(),
        "hi",
    ]);
    assert!(o.status.success(), "{o:?}");
    // The echo, then the largest message SendBytes takes: the client asks for
    // a second reply, so the session is open while the program sends both.
    let replies = json_lines(&o);
    assert_eq!(replies[0]["data"], "hi");
    assert_eq!(replies[1]["len"], 4048);
    // The program counts the session's close before it stops.
    std::thread::sleep(Duration::from_millis(500));
    let (code, err, out) = p.stop_with_output();
    let _ = std::fs::remove_file(&exe);
    let _ = std::fs::remove_dir_all(&cdata);
    assert!(
        !err.contains("AddressSanitizer") && !err.contains("LeakSanitizer"),
        "{err}"
    );
    let last = out.last().cloned().unwrap_or_default();
    assert!(last.starts_with("ok "), "{out:?} {err}");
    assert!(last[3..].parse::<u32>().unwrap() >= 60, "{last}");
    assert_eq!(code, Some(0), "{out:?} {err}");
}

/// The C echo server also serves a browser: headless Chromium, in a
/// loopback-only namespace, opens a data channel labelled `echo-server`
/// through the library's web side (with its token) and gets text and binary
/// messages of 1, 1000 and 4048 bytes back; DELETE closes it.
#[test]
fn the_echo_server_serves_a_chromium_data_channel() {
    if !Path::new("/usr/bin/chromium").exists() {
        return skip("Chromium is not installed (apt-get install chromium)");
    }
    let Some(ns) = LoopbackNs::create("sbc") else {
        return;
    };
    let echo = compile("examples/c/echo_server.c", &[]);
    let token = "capi-test-token-0123456789abcdef0123";
    let e = Program::start_in(
        &ns.exec(),
        &echo,
        "127.0.0.1",
        &[
            ("SOFTBUS_WEB", "127.0.0.1:18095"),
            ("SOFTBUS_WEB_TOKEN", token),
            ("SOFTBUS_WEB_ORIGIN", "http://127.0.0.1:18091"),
        ],
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/chromium_datachannel.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3"])
        .arg(script)
        .args(["http://127.0.0.1:18095", "echo-server"])
        .env("PAGE_PORT", "18091")
        .env("NODE_TOKEN", token)
        .env("PAGE_SIZES", "1,1000,4048")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["steps"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(r["delete_status"], 204, "{r}");
    let opened = e.wait_line(|l| l.starts_with("opened "));
    assert!(opened.ends_with(" echo-server from web"), "{opened}");
    e.wait_line(|l| l.starts_with("closed "));
    let (code, err) = e.stop();
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_file(echo);
}

/// The gateway (issue 19, item 1) toward a lite-compatible device: the C echo
/// server, built against libsoftbus, is reached through a softbus node by
/// `softbus send --transport webrtc --session DEVICE/echo-server`, the node
/// authenticating to it with the PIN it was given for it (`--gateway-pin`);
/// every size up to softbus_lite's 4,048 bytes comes back byte-exact.
#[test]
fn the_echo_server_is_reached_through_a_gateway_node() {
    let echo = compile("examples/c/echo_server.c", &[]);
    let cdata = std::env::temp_dir().join(format!("softbus-capi-gw-{}", std::process::id()));
    let cd = cdata.to_str().unwrap();
    let e = Program::start(&echo, "127.0.3.11", &[]);
    // Its device id, as discovery reports it.
    let o = softbus(&[
        "discover",
        "--ip",
        "127.0.3.13",
        "--target",
        "127.0.3.11",
        "--timeout",
        "2",
        "--json",
        "--data-dir",
        cd,
    ]);
    let found = json_lines(&o);
    assert_eq!(found.len(), 1, "{o:?}");
    let device = found[0]["device_id"].as_str().unwrap().to_owned();
    // The gateway node, allowed the device's PIN.
    let token = "capi-test-token-0123456789abcdef0123";
    let allowed = format!("{device}=246810");
    let gdata = cdata.join("gw");
    let mut gw = Command::new(built().join("softbus"))
        .args([
            "node",
            "--json",
            "--ip",
            "127.0.3.12",
            "--web",
            "127.0.3.12:0",
            "--pin",
            "1",
            "--web-token",
            token,
            "--gateway-pin",
            &allowed,
            "--data-dir",
        ])
        .arg(&gdata)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(gw.stdout.take().unwrap()).lines();
    let mut next_event = |name: &str| -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            let Some(Ok(l)) = lines.next() else { break };
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            if v["event"] == name {
                return v;
            }
        }
        panic!("no {name} event from the gateway node")
    };
    let web = next_event("ready")["web"].as_str().unwrap().to_owned();
    // The gateway discovers the device.
    let o = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import urllib.request as u; print(u.urlopen(u.Request('{web}/api/discover', \
             data=b'{{\"targets\":[\"127.0.3.11:5684\"]}}', headers={{'Authorization': \
             'Bearer {token}', 'Content-Type': 'application/json'}})).status)"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "202", "{o:?}");
    let found = next_event("device_found");
    assert_eq!(found["device_id"], device.as_str());
    let label = format!("{device}/echo-server");
    echoes_each_size(
        &e,
        &[
            "send",
            "--transport",
            "webrtc",
            "--peer",
            "127.0.3.12",
            "--web",
            &web,
            "--ip",
            "127.0.3.13",
            "--web-token",
            token,
            "--session",
            &label,
            "--json",
            "--data-dir",
            cd,
        ],
        || {
            let bridged = next_event("gateway_opened");
            assert_eq!(bridged["session"], "echo-server");
        },
    );
    let _ = gw.kill();
    let _ = gw.wait();
    let (code, err) = e.stop();
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_file(echo);
    let _ = std::fs::remove_dir_all(&cdata);
}
