//! Media through the relay with real browsers: headless Chromium publishes its
//! fake camera and microphone with WHIP, a second page (in a frame) plays the
//! stream with WHEP, and the viewer's `getStats` must show decoded frames of the
//! camera's size and received audio samples, for VP8 and for H264. Runs in a
//! loopback-only network namespace the test creates; skipped with a message
//! when Chromium or namespaces are missing, unless SOFTBUS_REQUIRE_INTEROP=1.
//! While Chromium publishes, an aiortc viewer (PyPI, in target/interop-venv)
//! plays the same stream and must decode its frames.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::process::{Child, Command};
use support::*;

/// What one run reports: the page's result, the aiortc viewer's (if aiortc is
/// there), and the node's stream events.
struct Run {
    page: serde_json::Value,
    aiortc: Option<serde_json::Value>,
    events: Vec<serde_json::Value>,
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The page that publishes the fake camera to `stream` with `codec` preferred,
/// plays it in a frame, and keeps publishing until `viewers` have come and gone.
fn publisher_page(ns: &Ns, web: &str, codec: &str, stream: &str, viewers: usize) -> Child {
    let path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", &path, web, "echo"])
        .env("PAGE", "whip.html")
        .env(
            "PAGE_QUERY",
            format!("codec={codec}&stream={stream}&viewers={viewers}"),
        )
        .env("PAGE_TIMEOUT", "90")
        .env("PAGE_PORT", PAGE_PORT)
        .env("NODE_TOKEN", TEST_TOKEN)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// One browser test at a time: three headless Chromiums and aiortc at once
/// starve a 2-core machine past the tests' event deadlines.
static BROWSERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Publishes and plays one stream with `codec` preferred.
fn publish_and_play(codec: &str) -> Option<Run> {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        skip("Chromium is not installed (apt-get install chromium)");
        return None;
    }
    let dir = temp_dir(&format!("media-{codec}"));
    let ns = Ns::create(&format!("sbm{}", &codec[..2].to_lowercase()))?;
    let node = NodeProc::webrtc_echo(&ns.exec(), "127.0.0.1", &dir);
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let aiortc = venv_python("aiortc");
    let stream = format!("cam-{codec}");
    let page = publisher_page(&ns, &web, codec, &stream, 1 + usize::from(aiortc.is_some()));
    let mut events = vec![node.wait_for(|v| v["event"] == "stream_started")];
    // The same stream, to aiortc, while Chromium publishes.
    let aiortc = aiortc.map(|py| aiortc_whep(&ns.0, py, &web, &stream));
    let page = json_of(&page.wait_with_output().unwrap());
    for name in ["viewer_joined", "viewer_left", "stream_publisher_left"] {
        events.push(node.wait_for(|v| v["event"] == name));
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    Some(Run {
        page,
        aiortc,
        events,
    })
}

fn check(codec: &str) {
    let Some(Run {
        page: r,
        aiortc,
        events,
    }) = publish_and_play(codec)
    else {
        return;
    };
    eprintln!("{codec}: {r}");
    assert_eq!(r["whip_status"], 201, "{r}");
    assert_eq!(r["patch_status"], 204, "{r}");
    let v = &r["viewer"];
    assert_eq!(v["whep_status"], 201, "{r}");
    assert_eq!(v["answer_has_ssrc"], true, "{r}");
    assert!(v["frames_decoded"].as_u64().unwrap() >= 60, "{r}");
    // The fake camera's frames (640×480), or Chromium's own step down from
    // it: without congestion feedback from the node its encoder may lower the
    // resolution within seconds, sooner on a loaded machine (480×360 was seen
    // in CI; issue 22 brings the feedback and the strict check back).
    let (w, h) = (
        v["frame_width"].as_u64().unwrap_or(0),
        v["frame_height"].as_u64().unwrap_or(0),
    );
    assert!(
        (160..=640).contains(&w) && h * 4 == w * 3,
        "not the camera's picture: {w}x{h}: {r}"
    );
    assert_eq!(v["video_codec"], format!("video/{codec}"), "{r}");
    assert_eq!(v["audio_codec"], "audio/opus", "{r}");
    assert!(v["audio_samples"].as_u64().unwrap() >= 48_000, "{r}");
    assert_eq!(v["whep_delete_status"], 200, "{r}");
    assert_eq!(r["whip_delete_status"], 200, "{r}");
    assert_eq!(r["ok"], true, "{r}");
    let started = &events[0];
    assert_eq!(started["stream"], format!("cam-{codec}"));
    assert_eq!(started["auth"], "web_token");
    assert_eq!(started["tracks"], serde_json::json!(["audio", "video"]));
    assert_eq!(events[1]["stream"], format!("cam-{codec}"));
    assert_eq!(events[2]["reason"], "closed by DELETE");
    eprintln!(
        "{codec}: first frame after {} ms, {} frames decoded, {} audio samples",
        v["first_frame_ms"], v["frames_decoded"], v["audio_samples"]
    );
    if let Some(a) = aiortc {
        eprintln!("{codec} to aiortc: {a}");
        assert_aiortc_played(&a, 640, 480);
        assert_eq!(a["delete_status"], 200, "{a}");
        assert_eq!(r["viewers_seen"], 2, "both viewers at once: {r}");
    }
}

#[test]
fn chromium_whip_to_whep_vp8() {
    check("VP8");
}

#[test]
fn chromium_whip_to_whep_h264() {
    check("H264");
}

/// The dashboard's player plays a stream: the dashboard link with
/// `play=STREAM&stop_after=30` joins as a viewer and leaves (DELETE) only once
/// 30 frames were decoded.
#[test]
fn the_dashboard_plays_a_stream() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return skip("Chromium is not installed (apt-get install chromium)");
    }
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("media-dash");
    let Some(ns) = Ns::create("sbmd") else { return };
    let node = NodeProc::webrtc_echo(&ns.exec(), "127.0.0.1", &dir.join("n"));
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let page = publisher_page(&ns, &web, "VP8", "cam-dash", 2);
    node.wait_for(|v| v["event"] == "stream_started");
    let mut dash = chromium(
        &ns.0,
        &dir.join("profile"),
        &format!(
            "{web}/login?token={TEST_TOKEN}&next=%2F%3Floopback%3D1%26play%3Dcam-dash%26stop_after%3D30"
        ),
    );
    // Both viewers (the publisher page's frame and the dashboard) leave by
    // DELETE; the dashboard does only after decoding 30 frames.
    let mut left = 0;
    while left < 2 {
        let v = node.wait_for(|v| v["event"] == "viewer_left");
        assert_eq!(v["reason"], "closed by DELETE", "{v}");
        left += 1;
    }
    let r = json_of(&page.wait_with_output().unwrap());
    assert_eq!(r["viewers_seen"], 2, "{r}");
    let _ = dash.kill();
    let _ = dash.wait();
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
