//! The relay's repair loop in virtual time through a lossy link (issue 9): a
//! publisher's packets are rewritten for a viewer and cached; the viewer NACKs
//! what the link lost (RFC 4585 generic NACK over a lossy uplink too); the
//! relay answers from its cache with RTX (RFC 4588); every packet arrives.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
use softbus_rtc::rewrite::{rtx_original, rtx_packet, PacketCache, Rewriter};
use softbus_rtc::rtp::{build_nack, nack_lost, parse_rtcp, Rtcp, RtpBuilder, RtpPacket};
use softbus_testkit::{LinkConfig, LossyLink, VirtualClock};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const VIEWER_SSRC: u32 = 0xBEEF;
const RTX_SSRC: u32 = 0xBEF0;
const RTX_PT: u8 = 97;
const PACKETS: u16 = 300;

#[test]
fn nacked_packets_come_back_as_rtx_until_nothing_is_missing() {
    let mut clock = VirtualClock::new();
    let link = LinkConfig {
        loss: 0.10,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
    };
    let mut down: LossyLink<Vec<u8>> = LossyLink::new(link, 11);
    let mut up: LossyLink<Vec<u8>> = LossyLink::new(link, 12);
    let mut rewriter = Rewriter::new(VIEWER_SSRC, vec![(96, 96)]);
    let mut cache = PacketCache::new(512);
    let mut rtx_seq = 1000u16;
    let (mut nacks_sent, mut rtx_sent) = (0u32, 0u32);
    // The viewer: extended sequence number (from the first packet's, as RFC
    // 3550's receiver extends them) → payload, and how often each was NACKed.
    let mut got: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    let mut asked: BTreeMap<u16, u32> = BTreeMap::new();
    let payload = |i: u16| vec![(i % 251) as u8; 200];
    let start_seq = 65_400u16; // the publisher's numbering wraps during the run
    for tick in 0..(PACKETS as u32 + 100) {
        let now = clock.now();
        // The publisher sends one packet per 20 ms.
        if tick < u32::from(PACKETS) {
            let i = tick as u16;
            let p = RtpBuilder {
                payload_type: 96,
                sequence: start_seq.wrapping_add(i),
                timestamp: 3000 * u32::from(i),
                ssrc: 42,
                payload: &payload(i),
                ..Default::default()
            }
            .build()
            .unwrap();
            let out = rewriter.rewrite(&p).unwrap().unwrap();
            cache.insert(&out);
            down.send(now, out);
        }
        // The viewer takes what arrived: media and RTX.
        while let Some(d) = down.recv(now) {
            let p = RtpPacket::parse(&d).unwrap();
            if p.ssrc() == RTX_SSRC {
                let (osn, data) = rtx_original(&d).unwrap();
                got.insert(osn.wrapping_sub(start_seq), data.to_vec());
            } else {
                assert_eq!(p.ssrc(), VIEWER_SSRC);
                got.insert(p.sequence().wrapping_sub(start_seq), p.payload().to_vec());
            }
        }
        // Every 20 ms the viewer NACKs the holes below its highest packet.
        if let (Some(&first), Some(&last)) = (got.keys().next(), got.keys().last()) {
            let missing: Vec<u16> = (first..last)
                .filter(|s| !got.contains_key(s))
                .filter(|s| asked.get(s).copied().unwrap_or(0) < 20)
                .collect();
            if !missing.is_empty() {
                for s in &missing {
                    *asked.entry(*s).or_default() += 1;
                }
                let seqs: Vec<u16> = missing.iter().map(|i| start_seq.wrapping_add(*i)).collect();
                up.send(now, build_nack(VIEWER_SSRC, VIEWER_SSRC, &seqs));
                nacks_sent += 1;
            }
        }
        // The relay answers NACKs from its cache.
        while let Some(n) = up.recv(now) {
            for p in parse_rtcp(&n).unwrap() {
                let Rtcp::Nack { pairs, .. } = p else {
                    continue;
                };
                for seq in nack_lost(&pairs) {
                    if let Some(orig) = cache.get(seq) {
                        rtx_seq = rtx_seq.wrapping_add(1);
                        down.send(now, rtx_packet(orig, RTX_SSRC, RTX_PT, rtx_seq).unwrap());
                        rtx_sent += 1;
                    }
                }
            }
        }
        clock.advance(Duration::from_millis(20));
    }
    let (sent, dropped) = down.stats();
    assert!(
        dropped > 20,
        "the link did lose packets: {dropped} of {sent}"
    );
    // The viewer's numbering starts at the publisher's first (the rewriter's
    // offset is 0 until a source changes) and wraps like it.
    let want: BTreeSet<u16> = (0..PACKETS).collect();
    let have: BTreeSet<u16> = got.keys().copied().collect();
    assert_eq!(have, want, "every packet arrived, by RTX when lost");
    for i in 0..PACKETS {
        assert_eq!(got[&i], payload(i), "payload {i}");
    }
    eprintln!(
        "relay repair: {dropped} of {sent} downlink datagrams lost, {nacks_sent} NACKs, {rtx_sent} RTX, all {PACKETS} packets delivered"
    );
}
