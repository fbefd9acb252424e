//! A third-party publisher: Debian's `simple-whip-client` (`whip-client`, over
//! GStreamer's webrtcbin, with test sources, trickling its candidates with
//! PATCH) publishes VP8 and Opus to a node, and an aiortc viewer decodes the
//! frames. Runs in a network namespace the test creates, with a veth end
//! carrying 127.0.0.1 (libnice gathers nothing on `lo`), and with the
//! `LD_PRELOAD` shim of interop/whip_client_shim.c (Debian 12's build links
//! libsoup 2 while libnice pulls in libsoup 3). Skipped with a message when a
//! piece is missing, unless SOFTBUS_REQUIRE_INTEROP=1.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::process::{Command, Stdio};
use support::*;

/// Builds the whip-client shim in `dir`; None (after the skip message) if it
/// cannot be.
fn whip_client_shim(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    if !std::path::Path::new("/usr/bin/whip-client").exists() {
        skip("simple-whip-client is not installed (apt-get install simple-whip-client)");
        return None;
    }
    let shim = dir.join("whip_client_shim.so");
    let interop = format!("{}/../../interop", env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&shim)
        .arg(format!("{interop}/whip_client_shim.c"))
        .arg("-ldl")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        skip("no C compiler for the whip-client shim");
        return None;
    }
    Some(shim)
}

#[test]
fn simple_whip_client_publishes_and_aiortc_decodes() {
    let dir = temp_dir("gstwhip");
    let Some(shim) = whip_client_shim(&dir) else {
        return;
    };
    let Some(py) = venv_python("aiortc") else {
        return;
    };
    let Some(ns) = Ns::create("sbgs") else { return };
    if !ns.add_loopback_link() {
        return;
    }
    let node = NodeProc::webrtc_echo(&ns.exec(), "127.0.0.1", &dir);
    let web = node.ready["web"].as_str().unwrap().to_owned();
    let mut client = Command::new("ip")
        .args(["netns", "exec", &ns.0, "whip-client", "-u"])
        .arg(format!("{web}/whip/gst"))
        .args(["-t", TEST_TOKEN, "-l", "3", "-A"])
        .arg("audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100")
        .arg("-V")
        .arg("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240 ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96")
        .env("LD_PRELOAD", &shim)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = node.wait_for(|v| v["event"] == "stream_started");
    assert_eq!(started["stream"], "gst");
    assert_eq!(started["tracks"], serde_json::json!(["video", "audio"]));
    let a = aiortc_whep(&ns.0, py, &web, "gst");
    let _ = client.kill();
    let _ = client.wait();
    eprintln!("whip-client to aiortc: {a}");
    assert_aiortc_played(&a, 320, 240);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `whip-client` publishing H264 with x264 in `profile` (and Opus) to `stream`.
fn h264_publisher(
    ns: &Ns,
    web: &str,
    shim: &std::path::Path,
    stream: &str,
    profile: &str,
) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.0, "whip-client", "-u"])
        .arg(format!("{web}/whip/{stream}"))
        .args(["-t", TEST_TOKEN, "-l", "3", "-A"])
        .arg("audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100")
        .arg("-V")
        .arg(format!("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! queue ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile={profile} ! rtph264pay pt=96 ssrc=2 config-interval=-1 aggregate-mode=zero-latency ! queue ! application/x-rtp,media=video,encoding-name=H264,payload=96"))
        .env("LD_PRELOAD", shim)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Headless Chromium plays `stream` with WHEP (interop/watch.html) and reports
/// what it decoded, or the refusal.
fn chromium_viewer(ns: &Ns, web: &str, stream: &str) -> serde_json::Value {
    let path = format!(
        "{}/../../interop/chromium_datachannel.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", &path, web, "echo"])
        .env("PAGE", "watch.html")
        .env("PAGE_QUERY", format!("stream={stream}"))
        .env("PAGE_TIMEOUT", "60")
        .env("PAGE_PORT", PAGE_PORT)
        .env("NODE_TOKEN", TEST_TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A GStreamer H264 publisher and a Chromium WHEP viewer (issue 16, item 2):
/// one publishing constrained baseline is played (frames decoded, as H264);
/// one that can only send High, which Chromium does not offer to take, makes
/// the viewer's WHEP request fail with 406 and a reason naming both sides'
/// formats, instead of a connection that never shows a frame.
#[test]
fn a_gstreamer_h264_stream_plays_in_chromium_or_is_refused_with_the_reason() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        return skip("Chromium is not installed (apt-get install chromium)");
    }
    let dir = temp_dir("gsth264");
    let Some(shim) = whip_client_shim(&dir) else {
        return;
    };
    let x264 = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .any(|d| std::path::Path::new(&format!("{d}/gstreamer-1.0/libgstx264.so")).exists());
    if !x264 {
        return skip(
            "GStreamer's x264enc is not installed (apt-get install gstreamer1.0-plugins-ugly)",
        );
    }
    let Some(ns) = Ns::create("sbgh") else { return };
    if !ns.add_loopback_link() {
        return;
    }
    let node = NodeProc::webrtc_echo(&ns.exec(), "127.0.0.1", &dir);
    let web = node.ready["web"].as_str().unwrap().to_owned();
    for (profile, stream) in [("constrained-baseline", "cb"), ("high", "high")] {
        let mut client = h264_publisher(&ns, &web, &shim, stream, profile);
        let started = node.wait_for(|v| v["event"] == "stream_started" && v["stream"] == stream);
        assert_eq!(
            started["tracks"],
            serde_json::json!(["video", "audio"]),
            "{started}"
        );
        let v = chromium_viewer(&ns, &web, stream);
        let _ = client.kill();
        let _ = client.wait();
        eprintln!("whip-client H264 {profile} to Chromium: {v}");
        if profile == "high" {
            assert_eq!(v["whep_status"], 406, "{v}");
            let error = v["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("the stream's video is H264 (")
                    && error.contains("profile-level-id=64")
                    && error.contains("this offer takes none of it (it offers VP8"),
                "{v}"
            );
        } else {
            assert_eq!(v["whep_status"], 201, "{v}");
            assert!(v["frames_decoded"].as_u64().unwrap_or(0) >= 60, "{v}");
            assert_eq!(v["video_codec"], "video/H264", "{v}");
            assert_eq!(
                (v["frame_width"].as_u64(), v["frame_height"].as_u64()),
                (Some(320), Some(240)),
                "{v}"
            );
        }
    }
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
