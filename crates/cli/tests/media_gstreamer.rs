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

#[test]
fn simple_whip_client_publishes_and_aiortc_decodes() {
    if !std::path::Path::new("/usr/bin/whip-client").exists() {
        return skip("simple-whip-client is not installed (apt-get install simple-whip-client)");
    }
    let Some(py) = venv_python("aiortc") else {
        return;
    };
    let dir = temp_dir("gstwhip");
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
        return skip("no C compiler for the whip-client shim");
    }
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
