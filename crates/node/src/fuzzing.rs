//! Entry points of the node core's fuzz targets, shared with the tests that
//! replay their corpora.

use crate::media::{MediaLimits, MediaTransmit, Relay};
use crate::Principal;
use softbus_rtc::crypto::Provider;
use softbus_rtc::host::{Host, HostConfig};
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{MediaAnswer, Peer};
use softbus_rtc::sdp::Direction;
use std::time::{Duration, Instant};

/// An offer from a client with audio and video sections in `dir`.
fn offer(provider: &mut Provider, dir: Direction) -> Option<String> {
    let fp = provider.dtls.fingerprint("sha-256").ok()?;
    let mut r = provider.random.fork();
    Peer::offer_with_media(
        std::net::SocketAddr::from(([127, 0, 0, 2], 7000)),
        &fp,
        provider.dtls.clone_box(),
        1,
        Box::new(move |n| softbus_rtc::crypto::ice_chars(r.as_mut(), n)),
        &[(MediaKind::Audio, dir), (MediaKind::Video, dir)],
    )
    .ok()
    .map(|(_, o)| o)
}

/// Arbitrary RTP and RTCP into a relay with one publisher and two viewers
/// (answered and taken as connected; nothing reaches a network, sends fail
/// for want of SRTP). `data` is chunks: a byte choosing publisher RTP,
/// publisher RTCP, viewer RTCP, a viewer leaving or time passing, a
/// big-endian u16 length, then the bytes. Returns the viewers that joined
/// and the publisher packets the relay took, for tests.
pub fn relay(now: Instant, data: &[u8], mut provider: Provider) -> (usize, u64) {
    let (Some(up), Some(down)) = (
        offer(&mut provider, Direction::SendOnly),
        offer(&mut provider, Direction::RecvOnly),
    ) else {
        return (0, 0);
    };
    let mut host = Host::new(
        HostConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 5000))),
        provider,
    );
    let mut relay = Relay::new(MediaLimits::default(), 7);
    let who = Principal::WebToken {
        name: "web".into(),
        credential: "fuzz".into(),
    };
    if relay.check_publish("s", &who).is_err() {
        return (0, 0);
    }
    let Ok((publisher, _)) = host.answer_media(now, &up, MediaAnswer::Receive) else {
        return (0, 0);
    };
    relay.add_publisher(
        publisher,
        "s",
        who.clone(),
        host.media(publisher).unwrap_or_default(),
    );
    relay.handle_connected(now, publisher);
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let Ok(plan) = relay.plan_viewer("s") else {
            continue;
        };
        if let Ok((v, _)) = host.answer_media(now, &down, MediaAnswer::Send(plan)) {
            relay.add_viewer(v, "s", &who, host.media(v).unwrap_or_default());
            relay.handle_connected(now, v);
            viewers.push(v);
        }
    }
    let (mut rest, mut now) = (data, now);
    for _ in 0..64 {
        let [kind, a, b, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (chunk, next) = tail.split_at(len);
        rest = next;
        let viewer = viewers.get(usize::from(*kind >> 4) % 2.max(viewers.len()));
        match kind % 5 {
            0 => relay.handle_rtp(now, publisher, chunk),
            1 => relay.handle_rtcp(now, publisher, chunk),
            2 => {
                if let Some(v) = viewer {
                    relay.handle_rtcp(now, *v, chunk);
                }
            }
            3 => {
                if let Some(v) = viewer {
                    relay.handle_closed(now, *v, &softbus_rtc::peer::CloseReason::Deleted);
                }
            }
            _ => {
                now += Duration::from_millis(u64::from(len as u16) * 10);
                relay.handle_timeout(now);
            }
        }
        let _ = relay.streams();
        let _ = relay.poll_timeout();
        while relay.poll_event().is_some() {}
        while let Some(t) = relay.poll_transmit() {
            match t {
                MediaTransmit::Rtp { peer, packet } => drop(host.send_rtp(peer, packet)),
                MediaTransmit::Rtcp { peer, packet } => drop(host.send_rtcp(peer, &packet)),
                MediaTransmit::Close { peer, reason } => drop(host.close(now, peer, reason)),
            }
        }
    }
    let taken = relay.streams().first().map_or(0, |s| s.packets_in);
    // The publisher leaves and the grace ends: the stream is gone.
    relay.handle_closed(now, publisher, &softbus_rtc::peer::CloseReason::Deleted);
    relay.handle_timeout(now + Duration::from_secs(6));
    assert!(
        relay.streams().is_empty(),
        "the stream ends after its grace"
    );
    (viewers.len(), taken)
}
