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

/// The browser, the gateway G and the device D on one network.
struct World {
    net: Net,
    r: RtcClient,
    g: Node,
    d: Node,
    /// What G and D reported.
    ge: Vec<Event>,
    de: Vec<Event>,
    /// D's device id.
    dev: String,
}

impl World {
    /// G (with the browser connected) has discovered D.
    fn new() -> Self {
        let mut net = Net::perfect();
        let (mut g, mut seen) = (node(24), Seen::default());
        let mut d = device();
        let dev = device_id(&d);
        discover(&mut g, &mut d, &net);
        let r = RtcClient::connect(&mut g, &mut seen, &mut net);
        Self {
            net,
            r,
            g,
            d,
            ge: Vec::new(),
            de: Vec::new(),
            dev,
        }
    }

    /// The browser opens a channel labelled `label`.
    fn open(&mut self, label: &str) -> u16 {
        self.r.peer.open_channel(self.net.now(), label).unwrap()
    }

    /// Runs all three until `done` (the browser's events, G's, D's), at most
    /// 30 s of virtual time; what is under way at that instant still arrives.
    fn run(&mut self, done: impl Fn(&[PeerEvent], &[Event], &[Event]) -> bool) {
        let deadline = self.net.deadline(Duration::from_secs(30));
        let r = &mut self.r;
        // The adapters live as long as the run: what they took from a core
        // and have not delivered yet stays with them between steps.
        let mut gc = CoreAt::new(&mut self.g, GATEWAY_IP, &mut self.ge);
        let mut dc = CoreAt::new(&mut self.d, DEVICE_IP, &mut self.de);
        loop {
            if done(&r.events, gc.events, dc.events) {
                let now = self.net.now();
                let mut peer = PeerAt::new(r.addr, &mut r.peer, &r.hmac);
                self.net
                    .run_until_idle(&mut [&mut gc, &mut dc, &mut peer], now);
                r.events.extend(std::iter::from_fn(|| r.peer.poll_event()));
                return;
            }
            let mut peer = PeerAt::new(r.addr, &mut r.peer, &r.hmac);
            let step = self.net.step(&mut [&mut gc, &mut dc, &mut peer], deadline);
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

    /// Runs until the browser's channel `ch` closes.
    fn until_closed(&mut self, ch: u16) {
        self.run(|p, _, _| {
            p.iter()
                .any(|e| matches!(e, PeerEvent::ChannelClosed { id } if *id == ch))
        });
    }

    /// Runs until the browser receives a message.
    fn until_message(&mut self) {
        self.run(|p, _, _| p.iter().any(|e| matches!(e, PeerEvent::Message { .. })));
    }

    /// Runs until `ch` is open.
    fn until_open(&mut self, ch: u16) {
        self.run(|p, _, _| {
            p.iter()
                .any(|e| matches!(e, PeerEvent::ChannelOpen { id, .. } if *id == ch))
        });
    }

    /// The reasons of G's refusals so far.
    fn refused(&self) -> Vec<GatewayRefusal> {
        self.ge
            .iter()
            .filter_map(|e| match e {
                Event::GatewayRefused { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_channel_is_bridged_to_a_device_session_with_the_allowed_pin() {
    let mut w = World::new();
    let dev = w.dev.clone();

    // No pairing and no PIN for the device: refused, and the channel closed.
    let ch = w.open(&format!("{dev}/echo"));
    w.until_closed(ch);
    assert_eq!(w.refused(), vec![GatewayRefusal::NoCredential(dev.clone())]);

    // An unknown device, and a label that is not DEVICE/SESSION.
    for (label, want) in [
        ("lamp/echo", GatewayRefusal::UnknownDevice("lamp".into())),
        ("/echo", GatewayRefusal::BadLabel),
    ] {
        w.ge.clear();
        let ch = w.open(label);
        w.until_closed(ch);
        assert_eq!(w.refused(), vec![want], "{label}");
    }

    // The operator allows the device's PIN: the channel opens once D's echo
    // session does, by the device's name too.
    w.g.set_gateway_pins(vec![(dev.to_ascii_lowercase(), b"246810".to_vec().into())]);
    w.ge.clear();
    let ch = w.open("node/echo");
    // A browser may send as soon as it announced the channel: that message
    // waits for the device's session and is not lost.
    w.r.peer.send(w.net.now(), ch, false, b"early").unwrap();
    w.run(|p, _, _| {
        p.iter()
            .any(|e| matches!(e, PeerEvent::ChannelOpen { id, .. } if *id == ch))
            && p.iter().any(|e| matches!(e, PeerEvent::Message { .. }))
    });
    let early = PeerEvent::Message {
        id: ch,
        binary: false,
        data: b"early".to_vec(),
    };
    assert!(w.r.events.contains(&early), "{:?}", w.r.events);
    let (chan_session, dev_session) = w.g.gateway_bridges()[0];
    assert!(w.ge.iter().any(|e| matches!(e,
        Event::GatewayOpened { channel_session, device_session, who, device, session }
            if *channel_session == chan_session && *device_session == dev_session
                && who == "web" && *device == dev && session == "echo")));
    let on_d = w.d.sessions();
    assert_eq!(on_d.len(), 1);
    assert_eq!(
        (on_d[0].session.as_str(), on_d[0].peer_device_id.as_str()),
        ("echo", "AB".repeat(32).as_str())
    );

    // Text and binary cross both ways unchanged; the echo comes back in the
    // kind the browser spoke.
    for (binary, data) in [(false, b"hello".to_vec()), (true, vec![0, 159, 255, 7])] {
        w.r.events.clear();
        w.r.peer.send(w.net.now(), ch, binary, &data).unwrap();
        w.until_message();
        let echo = PeerEvent::Message {
            id: ch,
            binary,
            data,
        };
        assert!(w.r.events.contains(&echo), "{:?}", w.r.events);
    }

    // Larger than softbus_lite takes: answered on the channel, not sent.
    w.r.events.clear();
    w.r.peer.send(w.net.now(), ch, true, &[7u8; 4049]).unwrap();
    w.until_message();
    let PeerEvent::Message {
        binary: false,
        data,
        ..
    } = &w.r.events[0]
    else {
        panic!("{:?}", w.r.events)
    };
    let v: serde_json::Value = serde_json::from_slice(data).unwrap();
    assert!(v["error"].as_str().unwrap().contains("4049 bytes"), "{v}");
    assert_eq!(w.g.traffic(dev_session).unwrap().bytes_out, 5 + 5 + 4);

    // The browser closes the channel: the device's session closes too.
    w.r.peer.close_channel(w.net.now(), ch);
    w.run(|_, _, de| de.iter().any(|e| matches!(e, Event::SessionClosed { .. })));
    assert!(w.d.sessions().is_empty());
    assert!(w.g.gateway_bridges().is_empty());
    assert!(w.g.session(dev_session).is_none() && w.g.session(chan_session).is_none());
}

#[test]
fn a_paired_device_needs_no_pin_and_its_close_closes_the_channel() {
    let mut w = World::new();
    let dev = w.dev.clone();

    // A paired-only gateway uses no PIN toward devices either.
    w.g.set_policy(Policy { paired_only: true });
    w.g.set_gateway_pins(vec![(dev.clone(), b"246810".to_vec().into())]);
    let ch = w.open(&format!("{dev}/echo"));
    w.until_closed(ch);
    assert_eq!(w.refused(), vec![GatewayRefusal::PairedOnly(dev.clone())]);

    // Paired: STS, no PIN; the device sees the gateway as a paired device.
    pair_cores(&mut w.g, &mut w.d);
    let ch = w.open(&format!("{dev}/echo"));
    w.until_open(ch);
    assert_eq!(w.d.sessions()[0].auth, softbus_node::AuthMethod::Paired);

    // A session the device does not serve: refused with the device's reason.
    w.ge.clear();
    let nope = w.open(&format!("{dev}/nope"));
    w.until_closed(nope);
    assert!(
        matches!(&w.refused()[..], [GatewayRefusal::Device { session, .. }] if session == "nope"),
        "{:?}",
        w.ge
    );

    // The device closes its session: the browser's channel closes.
    let dev_session = w.g.gateway_bridges()[0].1;
    let on_d = w.d.sessions()[0].session_id;
    w.d.close_session(w.net.now(), on_d).unwrap();
    w.until_closed(ch);
    assert!(w.g.gateway_bridges().is_empty());
    assert!(w.g.session(dev_session).is_none());
}
