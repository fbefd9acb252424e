//! Running the `softbus` binary in tests.
#![allow(dead_code, clippy::unwrap_used)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where interop/chromium_datachannel.py serves its page (PAGE_PORT), the one
/// origin the WebRTC test nodes let call them.
pub const PAGE_PORT: &str = "18091";
pub const PAGE_ORIGIN: &str = "http://127.0.0.1:18091";
/// The web token the WebRTC test nodes are started with.
pub const TEST_TOKEN: &str = "softbus-test-token-0123456789abcdef";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_softbus")
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `softbus node --json` process, killed on drop. `prefix` runs it under e.g. `ip netns exec NS`.
pub struct NodeProc {
    child: Child,
    pub ready: serde_json::Value,
    pub lines: mpsc::Receiver<String>,
}

impl NodeProc {
    pub fn start(prefix: &[&str], args: &[&str]) -> NodeProc {
        let (program, pre) = match prefix.split_first() {
            Some((p, rest)) => (
                p.to_string(),
                rest.iter()
                    .map(|s| s.to_string())
                    .chain([bin().to_owned()])
                    .collect::<Vec<_>>(),
            ),
            None => (bin().to_owned(), vec![]),
        };
        let mut child = Command::new(program)
            .args(pre)
            .arg("node")
            .arg("--json")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn softbus node");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("node prints ready");
        let ready: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(ready["event"], "ready", "{first}");
        NodeProc {
            child,
            ready,
            lines: rx,
        }
    }

    /// A node on `ip` with the web server on a free loopback port, PIN 1 and an
    /// echo server named `echo`: what the WebRTC tests talk to.
    pub fn webrtc_echo(prefix: &[&str], ip: &str, data_dir: &std::path::Path) -> NodeProc {
        NodeProc::start(
            prefix,
            &[
                "--ip",
                ip,
                "--web",
                "127.0.0.1:0",
                // The interop page's own origin (interop/chromium_datachannel.py).
                "--web-origin",
                PAGE_ORIGIN,
                "--pin",
                "1",
                "--echo",
                "echo",
                "--web-token",
                TEST_TOKEN,
                "--data-dir",
                data_dir.to_str().unwrap(),
            ],
        )
    }

    /// Waits for an event line satisfying `f`.
    pub fn wait_for(&self, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        // Generous: on a loaded 2-core machine a headless Chromium can take seconds
        // to start before the event it causes can happen.
        self.wait_for_within(Duration::from_secs(20), f)
            .unwrap_or_else(|| panic!("event not seen"))
    }

    /// The same within `limit`; `None` if it did not come.
    pub fn wait_for_within(
        &self,
        limit: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let end = std::time::Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                    if f(&v) {
                        return Some(v);
                    }
                }
                Err(_) => break,
            }
        }
        None
    }

    pub fn port(&self, key: &str) -> u16 {
        self.ready[key].as_u64().unwrap() as u16
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(prefix: &[&str], args: &[&str]) -> Output {
    let mut c = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    c.args(args).output().expect("run softbus")
}

pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Headless Chromium in namespace `ns` with a fresh profile at `profile`,
/// allowed loopback candidates and a fake camera, opening `url`; its output
/// is discarded.
pub fn chromium(ns: &str, profile: &std::path::Path, url: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "/usr/bin/chromium", "--headless"])
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--allow-loopback-in-peer-connection",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .args([
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The Python of the venv tools/test.sh makes (target/interop-venv), if it
/// can import `module`; otherwise None, after the skip message.
pub fn venv_python(module: &str) -> Option<&'static str> {
    let py = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/interop-venv/bin/python"
    );
    let ok = Command::new(py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        softbus_testkit::interop::skip(&format!(
            "{module} is not installed (tools/test.sh makes target/interop-venv)"
        ));
    }
    ok.then_some(py)
}

/// Plays `stream` of the node at `web` with aiortc (interop/aiortc_whep.py,
/// run by `python` inside namespace `ns`); its JSON report.
pub fn aiortc_whep(ns: &str, python: &str, web: &str, stream: &str) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/aiortc_whep.py");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, python, script, web, stream])
        .env("NODE_TOKEN", TEST_TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// An aiortc_whep.py report of a viewer that was answered and decoded 30
/// video frames of `width`×`height` and 25 audio frames.
pub fn assert_aiortc_played(a: &serde_json::Value, width: u64, height: u64) {
    assert_eq!(a["status"], 201, "{a}");
    assert_eq!(
        (a["video_frames"].as_u64(), a["audio_frames"].as_u64()),
        (Some(30), Some(25)),
        "{a}"
    );
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(width), Some(height)),
        "{a}"
    );
}
