//! Media through the relay with real browsers: headless Chromium publishes its
//! fake camera and microphone with WHIP, a second page (in a frame) plays the
//! stream with WHEP, and the viewer's `getStats` must show decoded frames of the
//! camera's size and received audio samples, for VP8 and for H264. Runs in a
//! loopback-only network namespace the test creates; skipped with a message
//! when Chromium or namespaces are missing, unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::process::Command;
use support::*;

/// Publishes and plays one stream with `codec` preferred; returns the page's report.
fn publish_and_play(codec: &str) -> Option<(serde_json::Value, Vec<serde_json::Value>)> {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        skip("Chromium is not installed (apt-get install chromium)");
        return None;
    }
    let dir = temp_dir(&format!("media-{codec}"));
    let ns = Ns::create(&format!("sbm{}", &codec[..2].to_lowercase()))?;
    let node = NodeProc::webrtc_echo(&ns.exec(), "127.0.0.1", &dir);
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", &path, &web, "echo"])
        .env("PAGE", "whip.html")
        .env("PAGE_QUERY", format!("codec={codec}&stream=cam-{codec}"))
        .env("PAGE_TIMEOUT", "90")
        .env("PAGE_PORT", PAGE_PORT)
        .env("NODE_TOKEN", TEST_TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut events = Vec::new();
    for name in [
        "stream_started",
        "viewer_joined",
        "viewer_left",
        "stream_publisher_left",
    ] {
        events.push(node.wait_for(|v| v["event"] == name));
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    Some((r, events))
}

fn check(codec: &str) {
    let Some((r, events)) = publish_and_play(codec) else {
        return;
    };
    eprintln!("{codec}: {r}");
    assert_eq!(r["whip_status"], 201, "{r}");
    assert_eq!(r["patch_status"], 204, "{r}");
    let v = &r["viewer"];
    assert_eq!(v["whep_status"], 201, "{r}");
    assert_eq!(v["answer_has_ssrc"], true, "{r}");
    assert!(v["frames_decoded"].as_u64().unwrap() >= 60, "{r}");
    // The fake camera's frames, at their size.
    assert_eq!(
        (v["frame_width"].as_u64(), v["frame_height"].as_u64()),
        (Some(640), Some(480)),
        "{r}"
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
}

#[test]
fn chromium_whip_to_whep_vp8() {
    check("VP8");
}

#[test]
fn chromium_whip_to_whep_h264() {
    check("H264");
}
