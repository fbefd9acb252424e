//! Trickle ICE and ICE restart at the host (RFC 9725 §4.3, §4.4), in virtual
//! time over a lossy link: a candidate trickled after the answer is what
//! connects two homes behind cone NATs; a client that moves to another
//! address keeps its data channel through an ICE restart; `If-Match` and the
//! session's entity tag are enforced.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::{addr, lossy, tids};
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::gather::IceServer;
use softbus_rtc::host::{Host, HostError, HostEvent, Patched};
use softbus_rtc::peer::{Peer, PeerEvent};
use softbus_rtc::sdp::frag::TrickleFragment;
use softbus_rtc::stun::{attr, Class, Message, MessageBuilder, BINDING};
use softbus_rtc::turn::server::IceServerUrl;
use softbus_testkit::nat::{Nat, NatKind};
use softbus_testkit::turn::TurnServer;
use softbus_testkit::{HostAt, Net, PeerAt, Step};
use std::net::IpAddr;
use std::time::Duration;

const STUN: &str = "198.18.0.1:3478";
const NODE: &str = "10.0.1.2:50000";
const CLIENT: &str = "10.0.2.2:40000";

fn host(servers: Vec<IceServer>) -> Host {
    common::host(addr(NODE), servers, 3)
}

fn client(seed: u64) -> (Peer, String) {
    common::offer(addr(CLIENT), seed)
}

fn cred(sdp: &str, key: &str) -> String {
    common::sdp_value(sdp, key)
}

/// Two cone homes, STUN only, and an offer whose candidates the client
/// trickles after the answer (`trickle`), or never: whether it connects.
fn cone_homes(trickle: bool) -> bool {
    let h = OpenSslCrypto::new();
    let stun = IceServer {
        url: IceServerUrl::parse(&format!("stun:{STUN}")).unwrap(),
        address: addr(STUN),
        credential: None,
    };
    let mut node = host(vec![stun]);
    let (mut peer, offer) = client(21);
    // A trickling browser's first offer: no candidates yet.
    let bare: String = offer
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=candidate:") && !l.starts_with("a=end-of-candidates"))
        .collect();
    let mut net = lossy(if trickle { 1 } else { 2 });
    let mut turn = TurnServer::new(
        addr(STUN),
        IpAddr::from([198, 18, 0, 2]),
        "u",
        "p",
        Box::new(OpenSslCrypto::new()),
    );
    let mut n = Nat::new(
        HostAt::new(&mut node),
        IpAddr::from([198, 18, 1, 1]),
        NatKind::PortRestrictedCone,
        20_000,
    );
    let mut c = Nat::new(
        PeerAt::new(addr(CLIENT), &mut peer, &h),
        IpAddr::from([198, 18, 2, 1]),
        NatKind::PortRestrictedCone,
        30_000,
    );
    n.inner.host.start_gathering(net.now());
    let deadline = net.deadline(Duration::from_secs(5));
    while !n.inner.host.gathering_done()
        && net.step(&mut [&mut turn, &mut n, &mut c], deadline) != Step::Idle
    {}
    let (id, answer) = n.inner.host.answer(net.now(), &bare).unwrap();
    c.inner
        .peer
        .apply_answer(net.now(), &answer, &h, tids(5))
        .unwrap();
    if trickle {
        // The client's reflexive address (its router's first port), as its
        // STUN server would have told it.
        let frag = TrickleFragment::parse(&format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=candidate:2 1 udp 1694498815 198.18.2.1 30000 typ srflx raddr 10.0.2.2 rport 40000\r\na=end-of-candidates\r\n",
            cred(&offer, "a=ice-ufrag:"),
            cred(&offer, "a=ice-pwd:")
        ))
        .unwrap();
        let etag = n.inner.host.etag(id).unwrap();
        match n
            .inner
            .host
            .patch(net.now(), id, Some(&etag), &frag)
            .unwrap()
        {
            Patched::Trickled {
                fragment: Some(f),
                etag: e,
            } => {
                assert_eq!(e, etag);
                assert!(f.contains(" typ srflx raddr 10.0.1.2 rport 50000"), "{f}");
            }
            other => panic!("{other:?}"),
        }
    }
    let deadline = net.deadline(Duration::from_secs(30));
    loop {
        if n.inner
            .events
            .iter()
            .any(|e| matches!(e, HostEvent::Connected { .. }))
        {
            return true;
        }
        if net.step(&mut [&mut turn, &mut n, &mut c], deadline) == Step::Idle {
            return false;
        }
    }
}

#[test]
fn a_candidate_trickled_after_the_answer_is_what_connects_two_cone_homes() {
    assert!(cone_homes(true), "with the trickled candidate");
    assert!(
        !cone_homes(false),
        "without it the node never opens its router"
    );
}

/// Runs the network until nothing moves, at most `limit` of virtual time.
fn settle(net: &mut Net, engines: &mut [&mut dyn softbus_testkit::Driven], limit: Duration) {
    let deadline = net.deadline(limit);
    while net.step(engines, deadline) != Step::Idle {}
}

#[test]
fn a_client_that_moves_keeps_its_channel_through_an_ice_restart() {
    let h = OpenSslCrypto::new();
    let mut node = host(Vec::new());
    let (mut peer, offer) = client(31);
    let mut net = lossy(7);
    let (id, answer) = node.answer(net.now(), &offer).unwrap();
    peer.apply_answer(net.now(), &answer, &h, tids(8)).unwrap();
    let first_etag = node.etag(id).unwrap();
    assert_eq!(
        Some(first_etag.clone()),
        softbus_rtc::host::answer_etag(&answer)
    );
    let mut hn = HostAt::new(&mut node);
    let mut cl = PeerAt::new(addr(CLIENT), &mut peer, &h);
    let deadline = net.deadline(Duration::from_secs(10));
    let mut client_up = false;
    while !client_up {
        assert!(
            net.step(&mut [&mut hn, &mut cl], deadline) != Step::Idle,
            "not connected"
        );
        while let Some(e) = cl.peer.poll_event() {
            client_up |= matches!(e, PeerEvent::Connected);
        }
    }
    let ch = cl.peer.open_channel(net.now(), "echo").unwrap();
    settle(&mut net, &mut [&mut hn, &mut cl], Duration::from_secs(3));
    let channel = common::opened_channel(&hn.events);
    hn.host.accept_channel(net.now(), id, channel).unwrap();
    settle(&mut net, &mut [&mut hn, &mut cl], Duration::from_secs(3));

    // The phone changes network: a new address; the old one hears nothing.
    let moved = addr("10.0.9.9:41000");
    cl.addr = moved;
    let (lu, lp) = (
        "movedufrag".to_owned(),
        "moved-password-0000000000".to_owned(),
    );
    let frag = TrickleFragment::parse(&format!(
        "a=ice-ufrag:{lu}\r\na=ice-pwd:{lp}\r\na=candidate:1 1 udp 2130706431 10.0.9.9 41000 typ host\r\na=end-of-candidates\r\n"
    ))
    .unwrap();
    // A restart needs If-Match; a stale tag is refused.
    assert_eq!(
        hn.host.patch(net.now(), id, None, &frag),
        Err(HostError::PreconditionRequired)
    );
    assert_eq!(
        hn.host.patch(net.now(), id, Some("\"old\""), &frag),
        Err(HostError::PreconditionFailed)
    );
    let Patched::Restarted { fragment, etag } =
        hn.host.patch(net.now(), id, Some("*"), &frag).unwrap()
    else {
        panic!("not restarted")
    };
    assert_ne!(etag, first_etag, "a restart is a new ICE session");
    let theirs = TrickleFragment::parse(&fragment).unwrap();
    assert_eq!(theirs.addresses(), vec![addr(NODE)]);
    let remote = (
        theirs.ice_ufrag.clone().unwrap(),
        theirs.ice_pwd.clone().unwrap(),
    );
    cl.peer
        .restart_ice(
            net.now(),
            (&lu, &lp),
            (&remote.0, &remote.1),
            &theirs.addresses(),
            &[],
            tids(9),
            &h,
        )
        .unwrap();
    // The old tag no longer matches: a trickle with it is refused.
    let late = TrickleFragment::parse("a=end-of-candidates\r\n").unwrap();
    assert_eq!(
        hn.host.patch(net.now(), id, Some(&first_etag), &late),
        Err(HostError::PreconditionFailed)
    );

    // The same channel carries a message both ways from the new address.
    cl.peer
        .send(net.now(), ch, false, b"from the new network")
        .unwrap();
    settle(&mut net, &mut [&mut hn, &mut cl], Duration::from_secs(5));
    assert!(
        hn.events
            .iter()
            .any(|e| matches!(e, HostEvent::Moved { remote, .. } if *remote == moved)),
        "{:?}",
        hn.events
    );
    assert!(hn
        .events
        .iter()
        .any(|e| matches!(e, HostEvent::Message { data, .. } if data == b"from the new network")));
    hn.host
        .send(net.now(), id, channel, false, b"and back")
        .unwrap();
    settle(&mut net, &mut [&mut hn, &mut cl], Duration::from_secs(5));
    let mut back = false;
    while let Some(e) = cl.peer.poll_event() {
        back |= matches!(e, PeerEvent::Message { ref data, .. } if data == b"and back");
        assert!(!matches!(e, PeerEvent::Closed(_)), "{e:?}");
    }
    assert!(back, "the answer reached the new address");
    assert!(!hn
        .events
        .iter()
        .any(|e| matches!(e, HostEvent::PeerClosed { .. })));

    // Closed by DELETE: a check with the first session's credentials (a
    // browser keeps checking an earlier generation's pairs for a while) gets
    // the authenticated 403 too, not silence.
    hn.host
        .close(net.now(), id, softbus_rtc::peer::CloseReason::Deleted);
    while hn.host.poll_transmit().is_some() {}
    let (node_ufrag, node_pwd) = (cred(&answer, "a=ice-ufrag:"), cred(&answer, "a=ice-pwd:"));
    let check = MessageBuilder::new(Class::Request, BINDING, [9; 12])
        .attribute(
            attr::USERNAME,
            format!("{node_ufrag}:{}", cred(&offer, "a=ice-ufrag:")).as_bytes(),
        )
        .attribute(attr::ICE_CONTROLLING, &1u64.to_be_bytes())
        .message_integrity(&h, node_pwd.as_bytes())
        .fingerprint();
    hn.host.handle_datagram(net.now(), addr(CLIENT), &check);
    let d = hn
        .host
        .poll_transmit()
        .expect("an answer to the old session's check");
    let m = Message::parse(&d.payload).unwrap();
    assert_eq!((m.class(), m.error_code().unwrap().0), (Class::Error, 403));
    m.verify_integrity(&h, node_pwd.as_bytes()).unwrap();
}
