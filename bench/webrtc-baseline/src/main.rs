//! Baseline for BENCHMARKS.md: data channel throughput between two webrtc-rs peers in
//! one process on loopback, 16 KiB messages one way with bufferedAmount backpressure,
//! counted at the receiver. Prints one JSON object.
//! usage: webrtc-baseline [SECONDS] [MAX_BUFFERED_BYTES]
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::peer_connection::configuration::RTCConfiguration;

const MSG: usize = 16 * 1024;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let max_buffered: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(64 * 1024);
    let api = || {
        let mut s = SettingEngine::default();
        s.set_include_loopback_candidate(true);
        s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
        APIBuilder::new().with_setting_engine(s).build()
    };
    let (api_a, api_b) = (api(), api());
    let a = Arc::new(api_a.new_peer_connection(RTCConfiguration::default()).await?);
    let b = Arc::new(api_b.new_peer_connection(RTCConfiguration::default()).await?);
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    b.on_data_channel(Box::new(move |dc| {
        let r = r.clone();
        Box::pin(async move {
            dc.on_message(Box::new(move |m: DataChannelMessage| {
                r.fetch_add(m.data.len() as u64, Ordering::Relaxed);
                Box::pin(async {})
            }));
        })
    }));
    let dc = a.create_data_channel("bench", None).await?;
    let opened = Arc::new(Notify::new());
    let o = opened.clone();
    dc.on_open(Box::new(move || {
        o.notify_one();
        Box::pin(async {})
    }));
    let offer = a.create_offer(None).await?;
    let mut gathered = a.gathering_complete_promise().await;
    a.set_local_description(offer).await?;
    let _ = gathered.recv().await;
    b.set_remote_description(a.local_description().await.ok_or("no offer")?).await?;
    let answer = b.create_answer(None).await?;
    let mut gathered = b.gathering_complete_promise().await;
    b.set_local_description(answer).await?;
    let _ = gathered.recv().await;
    a.set_remote_description(b.local_description().await.ok_or("no answer")?).await?;
    tokio::time::timeout(Duration::from_secs(10), opened.notified()).await?;

    let low = Arc::new(Notify::new());
    let l = low.clone();
    dc.set_buffered_amount_low_threshold(max_buffered / 2).await;
    dc.on_buffered_amount_low(Box::new(move || {
        l.notify_one();
        Box::pin(async {})
    }))
    .await;
    let payload = Bytes::from(vec![0xa5u8; MSG]);
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        if dc.buffered_amount().await >= max_buffered {
            let _ = tokio::time::timeout(Duration::from_millis(50), low.notified()).await;
            continue;
        }
        dc.send(&payload).await?;
        sent += MSG as u64;
    }
    let end = Instant::now() + Duration::from_secs(10);
    while received.load(Ordering::Relaxed) < sent && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let got = received.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    println!("{{\"webrtc_rs_bytes_per_s\":{},\"bytes\":{got},\"seconds\":{elapsed:.3}}}", got as f64 / elapsed);
    a.close().await?;
    b.close().await?;
    Ok(())
}
