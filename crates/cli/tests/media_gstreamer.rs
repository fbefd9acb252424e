//! A third-party publisher: Debian's `simple-whip-client` (`whip-client`, over
//! GStreamer's webrtcbin, with test sources, trickling its candidates with
//! PATCH) publishes VP8 and Opus to a node, and an aiortc viewer decodes the
//! frames. Runs in a network namespace the test creates, with a veth end
//! carrying 127.0.0.1 (libnice gathers nothing on `lo`), and with the
//! `LD_PRELOAD` shim of interop/whip_client_shim.c (Debian 12's build links
//! libsoup 2 while libnice pulls in libsoup 3). Skipped with a message when a
//! piece is missing, unless SOFTBUS_REQUIRE_INTEROP=1. Also: whip-client
//! publishing H264 (x264) to a Chromium viewer, and the refusal a Chromium
//! viewer gets for a stream it cannot decode.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod support;
use softbus_testkit::interop::{skip, LoopbackNs as Ns};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// One GStreamer publisher at a time: two at once (with a browser or aiortc
/// beside each) starve a 2-core machine past the event deadlines.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

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

/// Starts a whip-client with `start(stream)` and waits for the node's
/// `stream_started`. GStreamer's whip-client sometimes stalls after it took
/// the answer (webrtcbin never links its inputs and sends no ICE check, so the
/// node never hears from it; seen in about 1 run in 10, twice in a row once):
/// up to two more clients, each on a stream name of its own (`NAME-2`,
/// `NAME-3`), get a try. The client, the event and the stream's name.
fn publish(
    node: &NodeProc,
    name: &str,
    start: impl Fn(&str) -> std::process::Child,
) -> (std::process::Child, serde_json::Value, String) {
    for stream in [name.to_owned(), format!("{name}-2"), format!("{name}-3")] {
        let mut client = start(&stream);
        let started = node.wait_for_within(Duration::from_secs(10), |v| {
            v["event"] == "stream_started" && v["stream"] == stream.as_str()
        });
        match started {
            Some(started) => return (client, started, stream),
            None => {
                eprintln!("whip-client did not connect within 10 s on {stream}; trying again");
                let _ = client.kill();
                let _ = client.wait();
            }
        }
    }
    panic!("whip-client did not publish")
}

#[test]
fn simple_whip_client_publishes_and_aiortc_decodes() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
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
    let (mut client, started, stream) = publish(&node, "gst", |stream| {
        Command::new("ip")
        .args(["netns", "exec", &ns.0, "whip-client", "-u"])
        .arg(format!("{web}/whip/{stream}"))
        .args(["-t", TEST_TOKEN, "-l", "3", "-A"])
        .arg("audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100")
        .arg("-V")
        .arg("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240 ! videoconvert ! queue ! vp8enc deadline=1 ! rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96")
        .env("LD_PRELOAD", &shim)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    });
    assert_eq!(started["tracks"], serde_json::json!(["video", "audio"]));
    let a = aiortc_whep(&ns.0, py, &web, &stream);
    let _ = client.kill();
    let _ = client.wait();
    eprintln!("whip-client to aiortc: {a}");
    assert_aiortc_played(&a, 320, 240);
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `whip-client` publishing H264 (x264, constrained baseline) and Opus to `stream`.
fn h264_publisher(ns: &Ns, web: &str, shim: &std::path::Path, stream: &str) -> std::process::Child {
    Command::new("ip")
        .args(["netns", "exec", &ns.0, "whip-client", "-u"])
        .arg(format!("{web}/whip/{stream}"))
        .args(["-t", TEST_TOKEN, "-l", "3", "-A"])
        .arg("audiotestsrc is-live=true wave=red-noise ! audioconvert ! audioresample ! queue ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100")
        .arg("-V")
        .arg("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! queue ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=96 ssrc=2 config-interval=-1 aggregate-mode=zero-latency ! queue ! application/x-rtp,media=video,encoding-name=H264,payload=96")
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

/// A publisher that offers only H264 High (GStreamer's webrtcbin writes the
/// fmtp it is given), posted from inside the namespace; its WHIP status.
fn post_high_only_offer(ns: &Ns, web: &str, stream: &str) -> String {
    let offer = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE video0\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:webr\r\n\
         a=ice-pwd:webrtcbin-password-00000\r\na=fingerprint:sha-256 {}\r\na=setup:actpass\r\n\
         a=mid:video0\r\na=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:96 H264/90000\r\n\
         a=rtcp-fb:96 nack pli\r\na=fmtp:96 packetization-mode=1;profile-level-id=640032\r\n\
         a=ssrc:1234 cname:gst\r\n",
        vec!["AB"; 32].join(":")
    );
    let script = "import sys,urllib.request as u\n\
        r=u.Request(sys.argv[1],data=sys.stdin.buffer.read(),method='POST',headers={'Content-Type':'application/sdp','Authorization':'Bearer '+sys.argv[2]})\n\
        print(u.urlopen(r).status)";
    let mut p = Command::new("ip")
        .args(["netns", "exec", &ns.0, "python3", "-c", script])
        .arg(format!("{web}/whip/{stream}"))
        .arg(TEST_TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut p.stdin.take().unwrap(), offer.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A GStreamer H264 publisher and a Chromium WHEP viewer (issue 16, item 2):
/// whip-client publishing H264 (x264) is played in Chromium, frames decoded as
/// H264. A publisher that offers only H264 High, which Chromium does not offer
/// to take, makes the viewer's WHEP request fail with 406 and a reason naming
/// both sides' formats, instead of a connection that never shows a frame.
#[test]
fn a_gstreamer_h264_stream_plays_in_chromium_and_an_unplayable_one_is_refused() {
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
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
    let (mut client, started, stream) = publish(&node, "cam", |stream| {
        h264_publisher(&ns, &web, &shim, stream)
    });
    assert_eq!(
        started["tracks"],
        serde_json::json!(["video", "audio"]),
        "{started}"
    );
    let v = chromium_viewer(&ns, &web, &stream);
    let _ = client.kill();
    let _ = client.wait();
    eprintln!("whip-client H264 to Chromium: {v}");
    assert_eq!(v["whep_status"], 201, "{v}");
    assert!(v["frames_decoded"].as_u64().unwrap_or(0) >= 60, "{v}");
    assert_eq!(v["video_codec"], "video/H264", "{v}");
    assert_eq!(
        (v["frame_width"].as_u64(), v["frame_height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
    assert_eq!(post_high_only_offer(&ns, &web, "high"), "201");
    let v = chromium_viewer(&ns, &web, "high");
    eprintln!("a High-only stream to Chromium: {v}");
    assert_eq!(v["whep_status"], 406, "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("WHEP: 406 WebRTC: the stream's video is H264 (packetization-mode=1;profile-level-id=640032); this offer takes none of it (it offers VP8, VP9, H264 (42001f, 42e01f, 4d001f"),
        "{v}"
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
