//! Data channel throughput between two endpoints exchanging SCTP packets in memory
//! (real clock, no sockets, no DTLS): what the SCTP layer alone can carry.
//! `cargo run --release -p softbus-rtc --example dc_throughput`
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // example: real clock, fixed inputs
use softbus_rtc::sctp::dcep::Reliability;
use softbus_rtc::sctp::{ChannelEvent, DataChannels, DEFAULT_MAX_MESSAGE};
use std::time::{Duration, Instant};

fn main() {
    let mut a = DataChannels::new(true, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE);
    let mut b = DataChannels::new(false, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE);
    a.connect(Instant::now(), DEFAULT_MAX_MESSAGE).unwrap();
    let mut id = None;
    let msg = vec![0u8; 16 * 1024];
    let (mut got, mut sent, mut packets) = (0u64, 0u64, 0u64);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        let now = Instant::now();
        if let Some(i) = id {
            if a.buffered_amount(i) < 1 << 20 {
                a.send(now, i, true, &msg).unwrap();
                sent += msg.len() as u64;
            }
        }
        while let Some(p) = a.poll_packet() {
            packets += 1;
            b.handle_packet(now, &p);
        }
        while let Some(p) = b.poll_packet() {
            a.handle_packet(now, &p);
        }
        while let Some(e) = a.poll_event() {
            if e == ChannelEvent::Connected {
                id = Some(
                    a.open_channel(now, "x", true, Reliability::Reliable)
                        .unwrap(),
                );
            }
        }
        while let Some(e) = b.poll_event() {
            if let ChannelEvent::Message { data, .. } = e {
                got += data.len() as u64;
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "in memory: queued {:.1} MB, delivered {:.1} MB/s in {packets} packets",
        sent as f64 / 1e6,
        got as f64 / s / 1e6
    );
}
