//! The gateway (issue 19, item 1) in virtual time: a browser's data channel
//! labelled `DEVICE/SESSION` on the gateway node G is bridged to session
//! SESSION on the device D, a second core reached over TCP, authenticated
//! with the pairing G holds with D or with a PIN the operator allowed.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::*;
use softbus_bus::discovery::publish::PublishInfo;
use softbus_node::{Event, GatewayRefusal, Limits, Node, Policy, Socket, Transmit};
use softbus_rtc::host::HostConfig;
use softbus_rtc::peer::PeerEvent;
use softbus_testkit::{Net, PeerAt, Step};
use std::time::Duration;

const DEVICE_IP: [u8; 4] = [10, 0, 0, 20];
const GATEWAY_IP: [u8; 4] = [10, 0, 0, 2];

/// The device: a node on 10.0.0.20 with an `echo` server, publishing so that
/// it answers discovery.
fn device() -> Node {
    let mut d = node_full_at(
        "CD",
        DEVICE_IP,
        Limits::default(),
        HostConfig::new("10.0.0.20:50000".parse().unwrap()),
    );
    d.bus_mut()
        .discovery_mut()
        .publish(Some("m"), &PublishInfo::coap(1, "ddmpCapability"))
        .unwrap();
    d
}

fn device_id(d: &Node) -> String {
    d.bus().local().device_id.clone()
}

/// G discovers D: G's request and D's answer, datagram by datagram.
fn discover(g: &mut Node, d: &mut Node, net: &Net) {
    let to = d.discovery_source();
    g.start_discovery(
        net.now(),
        vec![match to {
            std::net::SocketAddr::V4(a) => a,
            _ => unreachable!(),
        }],
    );
    let carry = |from: &mut Node, to: &mut Node| {
        let mut moved = false;
        while let Some(t) = from.poll_transmit() {
            if let Transmit::Datagram(x) = t {
                if x.source == from.discovery_source() && x.destination == to.discovery_source() {
                    to.handle_datagram(net.now(), Socket::Discovery, x.source, None, &x.payload)
                        .unwrap();
                    moved = true;
                }
            }
        }
        moved
    };
    while carry(g, d) | carry(d, g) {}
    while g.poll_event().is_some() {}
    while d.poll_event().is_some() {}
    assert!(
        g.bus()
            .discovery()
            .devices()
            .iter()
            .any(|x| x.device_id == device_id(d)),
        "G discovered D"
    );
}

/// The browser, G and D on one network, until `done` or 30 s of virtual time.
fn run(
    net: &mut Net,
    r: &mut RtcClient,
    (g, ge): (&mut Node, &mut Vec<Event>),
    (d, de): (&mut Node, &mut Vec<Event>),
    done: impl Fn(&[PeerEvent], &[Event], &[Event]) -> bool,
) {
    let deadline = net.deadline(Duration::from_secs(30));
    // The adapters live as long as the run: what they took from a core and
    // have not delivered yet stays with them between steps.
    let (mut gc, mut dc) = (
        CoreAt::new(g, GATEWAY_IP, ge),
        CoreAt::new(d, DEVICE_IP, de),
    );
    loop {
        if done(&r.events, gc.events, dc.events) {
            // What is under way at this instant still arrives.
            let now = net.now();
            let mut peer = PeerAt::new(r.addr, &mut r.peer, &r.hmac);
            net.run_until_idle(&mut [&mut gc, &mut dc, &mut peer], now);
            r.events.extend(std::iter::from_fn(|| r.peer.poll_event()));
            return;
        }
        let step = net.step(
            &mut [
                &mut gc,
                &mut dc,
                &mut PeerAt::new(r.addr, &mut r.peer, &r.hmac),
            ],
            deadline,
        );
        r.events.extend(std::iter::from_fn(|| r.peer.poll_event()));
        assert_ne!(
            step,
            Step::Idle,
            "not done: {:?}\nG: {:?}\nD: {:?}",
            r.events,
            gc.events,
            dc.events
        );
    }
}

fn refused(ge: &[Event]) -> Vec<GatewayRefusal> {
    ge.iter()
        .filter_map(|e| match e {
            Event::GatewayRefused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[PeerEvent], id: u16) -> bool {
    events
        .iter()
        .any(|e| matches!(e, PeerEvent::ChannelClosed { id: c } if *c == id))
}

#[test]
fn a_channel_is_bridged_to_a_device_session_with_the_allowed_pin() {
    let mut net = Net::perfect();
    let (mut g, mut seen) = (node(24), Seen::default());
    let mut d = device();
    let dev = device_id(&d);
    discover(&mut g, &mut d, &net);
    let mut r = RtcClient::connect(&mut g, &mut seen, &mut net);
    let (mut ge, mut de) = (Vec::new(), Vec::new());

    // No pairing and no PIN for the device: refused, and the channel closed.
    let label = format!("{dev}/echo");
    let ch = r.peer.open_channel(net.now(), &label).unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| closed(p, ch),
    );
    assert_eq!(
        refused(&ge),
        vec![GatewayRefusal::NoCredential(dev.clone())]
    );

    // An unknown device, and a label that is not DEVICE/SESSION.
    for (label, want) in [
        ("lamp/echo", GatewayRefusal::UnknownDevice("lamp".into())),
        ("/echo", GatewayRefusal::BadLabel),
    ] {
        ge.clear();
        let ch = r.peer.open_channel(net.now(), label).unwrap();
        run(
            &mut net,
            &mut r,
            (&mut g, &mut ge),
            (&mut d, &mut de),
            |p, _, _| closed(p, ch),
        );
        assert_eq!(refused(&ge), vec![want], "{label}");
    }

    // The operator allows the device's PIN: the channel opens once D's echo
    // session does, by the device's name too.
    g.set_gateway_pins(vec![(dev.to_ascii_lowercase(), b"246810".to_vec().into())]);
    ge.clear();
    let ch = r.peer.open_channel(net.now(), "node/echo").unwrap();
    // A browser may send as soon as it announced the channel: that message
    // waits for the device's session and is not lost.
    r.peer.send(net.now(), ch, false, b"early").unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| {
            p.iter()
                .any(|e| matches!(e, PeerEvent::ChannelOpen { id, .. } if *id == ch))
                && p.iter().any(|e| matches!(e, PeerEvent::Message { .. }))
        },
    );
    assert!(
        r.events.contains(&PeerEvent::Message {
            id: ch,
            binary: false,
            data: b"early".to_vec()
        }),
        "{:?}",
        r.events
    );
    let (chan_session, dev_session) = g.gateway_bridges()[0];
    assert!(ge.iter().any(|e| matches!(e,
        Event::GatewayOpened { channel_session, device_session, who, device, session }
            if *channel_session == chan_session && *device_session == dev_session
                && who == "web" && *device == dev && session == "echo")));
    let on_d = d.sessions();
    assert_eq!(on_d.len(), 1);
    assert_eq!(
        (on_d[0].session.as_str(), on_d[0].peer_device_id.as_str()),
        ("echo", "AB".repeat(32).as_str())
    );

    // Text and binary cross both ways unchanged; the echo comes back in the
    // kind the browser spoke.
    for (binary, data) in [(false, b"hello".to_vec()), (true, vec![0, 159, 255, 7])] {
        r.events.clear();
        r.peer.send(net.now(), ch, binary, &data).unwrap();
        run(
            &mut net,
            &mut r,
            (&mut g, &mut ge),
            (&mut d, &mut de),
            |p, _, _| p.iter().any(|e| matches!(e, PeerEvent::Message { .. })),
        );
        assert!(
            r.events.contains(&PeerEvent::Message {
                id: ch,
                binary,
                data: data.clone()
            }),
            "{:?}",
            r.events
        );
    }

    // Larger than softbus_lite takes: answered on the channel, not sent.
    r.events.clear();
    let big = vec![7u8; 4049];
    r.peer.send(net.now(), ch, true, &big).unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| p.iter().any(|e| matches!(e, PeerEvent::Message { .. })),
    );
    let PeerEvent::Message {
        binary: false,
        data,
        ..
    } = &r.events[0]
    else {
        panic!("{:?}", r.events)
    };
    let v: serde_json::Value = serde_json::from_slice(data).unwrap();
    assert!(v["error"].as_str().unwrap().contains("4049 bytes"), "{v}");
    assert_eq!(g.traffic(dev_session).unwrap().bytes_out, 5 + 5 + 4);

    // The browser closes the channel: the device's session closes too.
    r.peer.close_channel(net.now(), ch);
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |_, _, de| de.iter().any(|e| matches!(e, Event::SessionClosed { .. })),
    );
    assert!(d.sessions().is_empty());
    assert!(g.gateway_bridges().is_empty());
    assert!(g.session(dev_session).is_none() && g.session(chan_session).is_none());
}

#[test]
fn a_paired_device_needs_no_pin_and_its_close_closes_the_channel() {
    let mut net = Net::perfect();
    let (mut g, mut seen) = (node(24), Seen::default());
    let mut d = device();
    let dev = device_id(&d);
    discover(&mut g, &mut d, &net);
    let mut r = RtcClient::connect(&mut g, &mut seen, &mut net);
    let (mut ge, mut de) = (Vec::new(), Vec::new());

    // A paired-only gateway uses no PIN toward devices either.
    g.set_policy(Policy { paired_only: true });
    g.set_gateway_pins(vec![(dev.clone(), b"246810".to_vec().into())]);
    let ch = r
        .peer
        .open_channel(net.now(), &format!("{dev}/echo"))
        .unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| closed(p, ch),
    );
    assert_eq!(refused(&ge), vec![GatewayRefusal::PairedOnly(dev.clone())]);

    // Paired: STS, no PIN; the device sees the gateway as a paired device.
    pair_cores(&mut g, &mut d);
    let ch = r
        .peer
        .open_channel(net.now(), &format!("{dev}/echo"))
        .unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| {
            p.iter()
                .any(|e| matches!(e, PeerEvent::ChannelOpen { id, .. } if *id == ch))
        },
    );
    assert_eq!(d.sessions()[0].auth, softbus_node::AuthMethod::Paired);

    // A session the device does not serve: refused with the device's reason.
    ge.clear();
    let nope = r
        .peer
        .open_channel(net.now(), &format!("{dev}/nope"))
        .unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| closed(p, nope),
    );
    assert!(
        matches!(&refused(&ge)[..], [GatewayRefusal::Device { session, .. }] if session == "nope"),
        "{ge:?}"
    );

    // The device closes its session: the browser's channel closes.
    let dev_session = g.gateway_bridges()[0].1;
    let on_d = d.sessions()[0].session_id;
    d.close_session(net.now(), on_d).unwrap();
    run(
        &mut net,
        &mut r,
        (&mut g, &mut ge),
        (&mut d, &mut de),
        |p, _, _| closed(p, ch),
    );
    assert!(g.gateway_bridges().is_empty());
    assert!(g.session(dev_session).is_none());
}
