//! The dashboard, driven in headless Chromium through WebDriver (Selenium and
//! Debian's chromedriver, `interop/webdriver.py`), the way a person uses it:
//! a second node appears in the device picture, pairing from the page fails
//! with a wrong PIN and works with the right one, a session opened by
//! `softbus send` shows its byte counts and stays in "Recent sessions", the
//! event log survives a reload, the chat echoes, the page fits a phone, and
//! unpairing from the page works. Each state is saved as a PNG under
//! `target/test-artifacts/dashboard/` (the README's screenshot is one of them).
//! Runs in a loopback-only network namespace the test creates; skipped with a
//! message when Chromium, chromedriver, Selenium or namespaces are missing,
//! unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use serde_json::{json, Value};
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::*;

/// One browser, one command at a time (`interop/webdriver.py`).
struct Browser {
    child: Child,
    input: ChildStdin,
    /// The driver's replies, a line each (read on a thread, so a hung driver
    /// fails the test instead of holding it).
    output: mpsc::Receiver<String>,
    shots: PathBuf,
}

/// Longest a driver command may take (its own waits are at most 60 s).
const REPLY_WITHIN: Duration = Duration::from_secs(90);

impl Browser {
    /// Starts the driver inside namespace `ns`; None (after a skip message)
    /// where Selenium cannot start Chromium.
    fn start(ns: &str, python: &str, shots: PathBuf) -> Option<Browser> {
        let script = format!("{}/../../interop/webdriver.py", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, python, &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let out: ChildStdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = output.recv_timeout(REPLY_WITHIN).unwrap_or_default();
        if !first.contains("ready") {
            let _ = child.kill();
            let _ = child.wait();
            skip(&format!("WebDriver did not start Chromium: {first:?}"));
            return None;
        }
        Some(Browser {
            child,
            input,
            output,
            shots,
        })
    }

    /// Runs one command; its value, or the driver's error.
    fn try_do(&mut self, c: Value) -> Result<Value, String> {
        writeln!(self.input, "{c}").unwrap();
        let line = self
            .output
            .recv_timeout(REPLY_WITHIN)
            .unwrap_or_else(|e| panic!("{c}: no answer from the driver: {e}"));
        let r: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{c}: {e}: {line:?}"));
        if r["ok"] == true {
            Ok(r["value"].clone())
        } else {
            Err(r["error"].as_str().unwrap_or_default().to_owned())
        }
    }

    fn go(&mut self, c: Value) -> Value {
        let what = c.to_string();
        self.try_do(c).unwrap_or_else(|e| {
            let _ = self.shot("failed");
            panic!("{what}: {e}")
        })
    }

    /// Waits (at most 20 s) for `css` whose text contains `text`; its text.
    fn wait(&mut self, css: &str, text: &str) -> String {
        self.go(json!({"op": "wait", "css": css, "contains": text}))
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn click(&mut self, css: &str) {
        self.go(json!({"op": "click", "css": css}));
    }

    fn type_in(&mut self, css: &str, text: &str) {
        self.go(json!({"op": "type", "css": css, "text": text}));
    }

    fn js(&mut self, script: &str) -> Value {
        self.go(json!({"op": "js", "script": script}))
    }

    fn shot(&mut self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        self.try_do(json!({"op": "shot", "path": path})).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.input, "{}", json!({"op": "quit"}));
        // Quitting closes Chromium; the namespace's drop stops what is left.
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(ns: &Ns, name: &str, ip: &str, pin: &str, data: &Path, web: bool) -> NodeProc {
    let mut args = vec![
        "--name",
        name,
        "--ip",
        ip,
        "--pin",
        pin,
        "--echo",
        "echo",
        "--data-dir",
        data.to_str().unwrap(),
        "--web-token",
        TEST_TOKEN,
    ];
    args.extend(if web {
        ["--web", "127.0.0.1:0"]
    } else {
        ["--web", "off"]
    });
    NodeProc::start(&ns.exec(), &args)
}

#[test]
fn the_dashboard_as_a_person_uses_it() {
    for (path, package) in [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ] {
        if !Path::new(path).exists() {
            return skip(&format!(
                "{path} is not installed (apt-get install {package})"
            ));
        }
    }
    let Some(python) = venv_python("selenium") else {
        return;
    };
    let dir = temp_dir("dashboard-ui");
    let Some(ns) = Ns::create("sbui") else {
        return;
    };
    let desk = node(&ns, "desk", "127.0.0.1", "1", &dir.join("desk"), true);
    let kitchen = node(&ns, "kitchen", "127.0.0.2", "246810", &dir.join("k"), false);
    let kitchen_id = kitchen.ready["device_id"].as_str().unwrap().to_owned();
    let web = desk.ready["web"].as_str().unwrap().to_owned();
    let shots =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/dashboard");
    let _ = std::fs::remove_dir_all(&shots);
    let Some(mut b) = Browser::start(&ns.0, python, shots.clone()) else {
        return;
    };

    // The dashboard link the node prints; `loopback=1` only lets this
    // namespace's Chromium gather a 127.0.0.1 candidate for the chat.
    b.go(json!({"op": "get", "url": format!("{web}/login?token={TEST_TOKEN}&next=%2F%3Floopback%3D1")}));
    b.wait("#name", "desk");

    // The second node appears in the picture once the page looks for it.
    b.type_in("#target", "127.0.0.2:5684");
    b.click("#discover");
    b.wait("#discover-result", "asked the network and 127.0.0.2:5684");
    let dev = format!("#picture g.dev[data-id='{kitchen_id}']");
    b.wait(&format!("{dev}[data-state='found']"), "kitchen");
    b.wait("#devices", "kitchen");
    b.shot("1-device-found");

    // A wrong PIN: refused, loudly, and nothing is paired.
    b.click(&format!("button[data-pair='{kitchen_id}']"));
    b.type_in("#pin", "135790");
    b.click("#pair-ok");
    let refused = b.wait("#pair-result.err", "failed");
    assert!(
        refused.contains("pairing with kitchen at 127.0.0.2:"),
        "{refused}"
    );
    b.shot("2-wrong-pin");
    assert_eq!(
        b.js(&format!(
            "return document.querySelector(\"{dev}\").dataset.state"
        )),
        "found"
    );

    // The right PIN pairs both sides.
    b.click(&format!("button[data-pair='{kitchen_id}']"));
    b.type_in("#pin", "246810");
    b.click("#pair-ok");
    b.wait("#pair-result.ok", "paired with kitchen");
    b.wait(&format!("{dev}[data-state='paired']"), "kitchen");
    // Both sides keep the other's key.
    let paired = desk.wait_for(|v| v["event"] == "paired");
    assert_eq!(paired["device_id"], kitchen_id.as_str(), "{paired}");
    kitchen.wait_for(|v| v["event"] == "paired");
    b.wait(&format!("button[data-unpair='{kitchen_id}']"), "Unpair");
    b.shot("3-paired");

    // A session from `softbus send`: open with its bytes, then in "recent".
    let client = dir.join("client");
    let mut send = Command::new("ip")
        .args(["netns", "exec", &ns.0, bin(), "send", "--peer", "127.0.0.1"])
        .args(["--session", "echo", "--pin", "1", "--ip", "127.0.0.3"])
        .args(["--count", "4", "--interval", "1.5", "--data-dir"])
        .arg(&client)
        .arg("hello, desk!!")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The client is named after this machine's host name.
    let verified = desk.wait_for(|v| v["event"] == "peer_verified" && v["ip"] == "127.0.0.3");
    let client_name = verified["name"].as_str().unwrap().to_owned();
    b.wait("#sessions", "echo");
    b.wait("#sessions", "13 B");
    b.shot("4-session-open");
    assert!(send.wait().unwrap().success());
    // 4 × 13 bytes each way.
    let recent = b.wait("#closed", "52 B");
    assert!(recent.contains("echo"), "{recent}");
    // The traffic chart draws the client's bytes, under the client's name.
    assert!(
        b.js("return document.querySelectorAll('#traffic polyline.peer').length")
            .as_u64()
            .unwrap()
            >= 1
    );
    b.wait("#traffic", &format!("{client_name}: "));
    b.shot("5-session-recent");

    // The event log survives a reload (the node keeps its last events).
    b.js("location.reload()");
    let log = b.wait("#log", "opened to \"echo\"");
    assert!(
        log.contains(&format!("paired with {}", &kitchen_id[..12])),
        "{log}"
    );
    b.wait("#closed", "52 B");
    // So does the traffic chart (this tab keeps it).
    b.wait("#traffic", &format!("{client_name}: "));

    // The chat echoes.
    b.wait("#server", "echo");
    b.click("#connect");
    b.wait("#chat", "connected to echo");
    b.type_in("#say", "hello from the page");
    b.click("#send");
    b.wait("#chat", "< hello from the page");
    let readme_shot = b.shot("6-chat");
    // The README's screenshot is this one; SOFTBUS_UPDATE_SCREENSHOT=1 renews it.
    if std::env::var("SOFTBUS_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/dashboard.png");
        std::fs::copy(&readme_shot, docs).unwrap();
    }

    // A phone: the page does not scroll sideways, tables scroll on their own.
    b.go(json!({"op": "size", "w": 390, "h": 844}));
    let width = b.js("return [document.documentElement.scrollWidth, window.innerWidth]");
    assert!(
        width[0].as_u64().unwrap() <= width[1].as_u64().unwrap(),
        "page wider than a phone: {width}"
    );
    b.shot("7-phone");
    b.go(json!({"op": "size", "w": 1280, "h": 900}));

    // Unpairing from the page (it asks first).
    b.click(&format!("button[data-unpair='{kitchen_id}']"));
    b.go(json!({"op": "accept"}));
    b.wait("#pair-result.ok", "unpaired kitchen");
    b.wait(&format!("{dev}[data-state='found']"), "kitchen");
    desk.wait_for(|v| v["event"] == "unpaired");
    eprintln!("dashboard screenshots in {}", shots.display());
    drop(b);
    drop((desk, kitchen));
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}
