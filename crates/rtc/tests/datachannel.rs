//! Data channels between two SCTP endpoints exchanging packets in memory:
//! association, DCEP open/ack both ways, text and binary of 1 B, 16 KiB, 64 KiB,
//! empty messages, unordered and partially reliable channels, size limits.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap asserts; Instant::now is the origin
use softbus_rtc::sctp::dcep::Reliability;
use softbus_rtc::sctp::{ChannelError, ChannelEvent, DataChannels, DEFAULT_MAX_MESSAGE};
use std::time::{Duration, Instant};

fn pump(
    a: &mut DataChannels,
    b: &mut DataChannels,
    now: &mut Instant,
) -> (Vec<ChannelEvent>, Vec<ChannelEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let mut moved = false;
        while let Some(p) = a.poll_packet() {
            b.handle_packet(*now, &p);
            moved = true;
        }
        while let Some(p) = b.poll_packet() {
            a.handle_packet(*now, &p);
            moved = true;
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if !moved {
            // let delayed SACKs and retransmission timers fire
            let next = [a.poll_timeout(), b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= *now + Duration::from_millis(500) => {
                    *now = (*now).max(t);
                    a.handle_timeout(*now);
                    b.handle_timeout(*now);
                    if a.poll_timeout() == next && b.poll_timeout() == next {
                        break;
                    }
                }
                _ => break,
            }
        }
    }
    (ea, eb)
}

fn connected() -> (DataChannels, DataChannels, Instant) {
    let mut now = Instant::now();
    let mut a = DataChannels::new(true, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE);
    let mut b = DataChannels::new(false, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE);
    a.connect(now, DEFAULT_MAX_MESSAGE).unwrap();
    let (ea, eb) = pump(&mut a, &mut b, &mut now);
    assert!(ea.contains(&ChannelEvent::Connected), "{ea:?}");
    assert!(eb.contains(&ChannelEvent::Connected), "{eb:?}");
    (a, b, now)
}

fn messages(ev: &[ChannelEvent]) -> Vec<(u16, bool, Vec<u8>)> {
    ev.iter()
        .filter_map(|e| {
            if let ChannelEvent::Message { id, binary, data } = e {
                Some((*id, *binary, data.clone()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn open_ack_and_messages_both_ways() {
    let (mut a, mut b, mut now) = connected();
    let id = a
        .open_channel(now, "echo", true, Reliability::Reliable)
        .unwrap();
    assert_eq!(id % 2, 0, "DTLS client uses even ids");
    let (ea, eb) = pump(&mut a, &mut b, &mut now);
    assert!(eb.iter().any(|e| matches!(e, ChannelEvent::Open { id: i, label, ordered: true, reliability: Reliability::Reliable, .. } if *i == id && label == "echo")), "{eb:?}");
    assert!(
        !ea.iter().any(|e| matches!(e, ChannelEvent::Open { .. })),
        "no ACK before the application accepts: {ea:?}"
    );
    b.accept_channel(now, id).unwrap();
    let (ea, _) = pump(&mut a, &mut b, &mut now);
    assert!(
        ea.iter()
            .any(|e| matches!(e, ChannelEvent::Open { id: i, .. } if *i == id)),
        "ack reported: {ea:?}"
    );
    let sizes = [1usize, 16 * 1024, 64 * 1024];
    for (k, n) in sizes.iter().enumerate() {
        let text: Vec<u8> = (0..*n).map(|i| b'a' + (i % 26) as u8).collect();
        let bin: Vec<u8> = (0..*n).map(|i| (i * 7 + k) as u8).collect();
        a.send(now, id, false, &text).unwrap();
        a.send(now, id, true, &bin).unwrap();
        let (_, eb) = pump(&mut a, &mut b, &mut now);
        assert_eq!(
            messages(&eb),
            vec![(id, false, text.clone()), (id, true, bin.clone())],
            "size {n}"
        );
        // and back (an echo)
        b.send(now, id, true, &bin).unwrap();
        let (ea, _) = pump(&mut a, &mut b, &mut now);
        assert_eq!(messages(&ea), vec![(id, true, bin)]);
    }
    // empty text and binary use PPI 56 / 57
    a.send(now, id, false, b"").unwrap();
    a.send(now, id, true, b"").unwrap();
    let (_, eb) = pump(&mut a, &mut b, &mut now);
    assert_eq!(messages(&eb), vec![(id, false, vec![]), (id, true, vec![])]);
}

#[test]
fn server_side_opens_unordered_partial_channels() {
    let (mut a, mut b, mut now) = connected();
    let u = b
        .open_channel(now, "unordered", false, Reliability::MaxRetransmits(0))
        .unwrap();
    let t = b
        .open_channel(now, "timed", true, Reliability::MaxLifetimeMs(100))
        .unwrap();
    assert_eq!((u % 2, t % 2), (1, 1), "DTLS server uses odd ids");
    let (ea, _) = pump(&mut a, &mut b, &mut now);
    assert!(ea.iter().any(|e| matches!(e, ChannelEvent::Open { ordered: false, reliability: Reliability::MaxRetransmits(0), label, .. } if label == "unordered")), "{ea:?}");
    assert!(ea.iter().any(|e| matches!(e, ChannelEvent::Open { ordered: true, reliability: Reliability::MaxLifetimeMs(100), label, .. } if label == "timed")), "{ea:?}");
    for i in 0..20u8 {
        b.send(now, u, true, &[i; 100]).unwrap();
    }
    let (ea, _) = pump(&mut a, &mut b, &mut now);
    let mut got: Vec<u8> = messages(&ea).iter().map(|m| m.2[0]).collect();
    got.sort();
    assert_eq!(
        got,
        (0..20).collect::<Vec<u8>>(),
        "no loss here, so every unordered message arrives"
    );
}

#[test]
fn limits_and_unknown_channels() {
    let mut now = Instant::now();
    let mut a = DataChannels::new(true, DEFAULT_MAX_MESSAGE, 1000);
    let mut b = DataChannels::new(false, DEFAULT_MAX_MESSAGE, DEFAULT_MAX_MESSAGE);
    assert_eq!(
        a.open_channel(now, "x", true, Reliability::Reliable),
        Err(ChannelError::NotConnected)
    );
    a.connect(now, DEFAULT_MAX_MESSAGE).unwrap();
    pump(&mut a, &mut b, &mut now);
    let id = a
        .open_channel(now, "x", true, Reliability::Reliable)
        .unwrap();
    assert_eq!(
        a.send(now, id, true, &[0; 1001]),
        Err(ChannelError::TooLarge {
            size: 1001,
            max: 1000
        })
    );
    assert_eq!(
        a.send(now, 99, true, b"x"),
        Err(ChannelError::NoChannel(99))
    );
    // garbage packets are ignored
    b.handle_packet(now, &[0xff; 40]);
    b.handle_packet(now, &[]);
    a.send(now, id, false, b"still fine").unwrap();
    let (_, eb) = pump(&mut a, &mut b, &mut now);
    assert!(messages(&eb).iter().any(|m| m.2 == b"still fine"));
}

/// A channel the application refuses is reset without an ACK: the opener sees
/// it closed, never open.
#[test]
fn a_refused_channel_is_closed_for_the_opener() {
    let (mut a, mut b, mut now) = connected();
    let id = a
        .open_channel(now, "nope", true, Reliability::Reliable)
        .unwrap();
    let (_, eb) = pump(&mut a, &mut b, &mut now);
    assert!(eb.iter().any(|e| matches!(e, ChannelEvent::Open { .. })));
    b.close_channel(now, id).unwrap();
    let (ea, _) = pump(&mut a, &mut b, &mut now);
    assert!(ea.contains(&ChannelEvent::Closed { id }), "{ea:?}");
    assert!(
        !ea.iter().any(|e| matches!(e, ChannelEvent::Open { .. })),
        "{ea:?}"
    );
}
