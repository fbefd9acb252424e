//! The node core's media relay in virtual time, with no sockets: WebRTC media
//! clients (the engines' own offering peers with SRTP keyed from DTLS) publish
//! with WHIP and play with WHEP through the core.
#![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
mod common;
use common::*;
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_node::{Event, Limits, MediaEvent, Node};
use softbus_rtc::host::{HostConfig, PeerId};
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{Peer, PeerEvent};
use softbus_rtc::rtp::{self, Rtcp, RtpBuilder, RtpPacket};
use softbus_rtc::sdp::Direction;
use softbus_rtc::srtp::Context;
use softbus_testkit::{Driven, LinkConfig, Net, PeerAt, Step};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const HOST: &str = "10.0.0.2:50000";
/// The video payload type and its RTX in the clients' offers.
const VP8: u8 = 96;
const RTX: u8 = 97;
const PUBLISHER_SSRC: u32 = 0xCAFE;

fn node(limits: Limits) -> Node {
    // As the runtime builds it: room in the host for every budget at once.
    let mut host = HostConfig::new(HOST.parse().unwrap());
    host.max_peers = limits.rtc_peers_needed();
    node_full("CD", limits, host)
}

/// A media client of the relay: an offering peer, its SRTP, what it received.
struct Client {
    id: PeerId,
    addr: SocketAddr,
    peer: Peer,
    hmac: OpenSslCrypto,
    tx: Option<Context>,
    rx: Option<Context>,
    connected: bool,
    closed: bool,
    /// Decrypted RTP and RTCP received, with the virtual time of arrival.
    rtp: Vec<(Instant, Vec<u8>)>,
    rtcp: Vec<Vec<u8>>,
    /// Stops reading: whatever arrives is dropped unread.
    deaf: bool,
    /// Events the network adapter kept, with the time each came.
    pending: Vec<(Instant, PeerEvent)>,
}

impl Client {
    /// A publisher (`whip`) or viewer of `stream` with one video section.
    fn new(n: &mut Node, net: &Net, addr: &str, stream: &str, whip: bool) -> Self {
        Self::with_offer(n, net, addr, stream, whip, |o| o)
    }

    /// The same, with its offer changed by `edit` before it is posted.
    fn with_offer(
        n: &mut Node,
        net: &Net,
        addr: &str,
        stream: &str,
        whip: bool,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        let addr: SocketAddr = addr.parse().unwrap();
        let id = DtlsIdentity::generate().unwrap();
        let mut rng = OpenSslCrypto::seeded(u64::from(addr.port()));
        let dir = if whip {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let (mut peer, offer) = Peer::offer_with_media(
            addr,
            &id.fingerprint("sha-256").unwrap(),
            Box::new(id.factory().unwrap()),
            u64::from(addr.port()),
            Box::new(move |len| softbus_rtc::crypto::ice_chars(&mut rng, len)),
            &[(MediaKind::Video, dir)],
        )
        .unwrap();
        let offer = edit(offer);
        let (pid, answer) = if whip {
            n.whip(net.now(), stream, &offer, web()).unwrap()
        } else {
            n.whep(net.now(), stream, &offer, web()).unwrap()
        };
        let hmac = OpenSslCrypto::new();
        let mut tid = addr.port() as u8;
        peer.apply_answer(
            net.now(),
            &answer,
            &hmac,
            Box::new(move || {
                tid = tid.wrapping_add(1);
                [tid; 12]
            }),
        )
        .unwrap();
        Self {
            id: pid,
            addr,
            peer,
            hmac,
            tx: None,
            rx: None,
            connected: false,
            closed: false,
            rtp: Vec::new(),
            rtcp: Vec::new(),
            deaf: false,
            pending: Vec::new(),
        }
    }

    /// The client on the network: the shared adapter, keeping events here.
    fn at(&mut self) -> PeerAt<'_> {
        PeerAt {
            addr: self.addr,
            peer: &mut self.peer,
            hmac: &self.hmac,
            events: Some(&mut self.pending),
            deaf: self.deaf,
        }
    }

    /// Takes in what its peer reported, in order.
    fn events(&mut self) {
        for (now, e) in std::mem::take(&mut self.pending) {
            match e {
                PeerEvent::SrtpKeys(k) => {
                    let c = || Box::new(softbus_crypto::SrtpBackend::default());
                    self.tx = Some(Context::from_dtls(&k, true, c()).unwrap());
                    self.rx = Some(Context::from_dtls(&k, false, c()).unwrap());
                }
                PeerEvent::Connected => self.connected = true,
                PeerEvent::Closed(_) => self.closed = true,
                PeerEvent::Media(d) => {
                    let rx = self.rx.as_mut().unwrap();
                    if (192..=223).contains(&d[1]) {
                        self.rtcp.push(rx.unprotect_rtcp(&d).unwrap());
                    } else {
                        self.rtp.push((now, rx.unprotect_rtp(&d).unwrap()));
                    }
                }
                _ => {}
            }
        }
    }

    fn send_rtp(&mut self, packet: &[u8]) {
        let d = self.tx.as_mut().unwrap().protect_rtp(packet).unwrap();
        assert!(self.peer.send_media(d));
    }

    fn send_rtcp(&mut self, packet: &[u8]) {
        let d = self.tx.as_mut().unwrap().protect_rtcp(packet).unwrap();
        assert!(self.peer.send_media(d));
    }

    /// Video sequence numbers received, originals and retransmissions.
    fn received_video(&self) -> BTreeSet<u16> {
        self.rtp
            .iter()
            .filter_map(|(_, p)| {
                let r = RtpPacket::parse(p).unwrap();
                match r.payload_type() {
                    VP8 => Some(r.sequence()),
                    RTX => Some(softbus_rtc::rewrite::rtx_original(p).unwrap().0),
                    _ => None,
                }
            })
            .collect()
    }

    fn video_ssrc(&self) -> Option<u32> {
        self.rtp.iter().find_map(|(_, p)| {
            let r = RtpPacket::parse(p).unwrap();
            (r.payload_type() == VP8).then(|| r.ssrc())
        })
    }
}

/// The node and its clients on one virtual network.
struct World {
    net: Net,
    n: Node,
    seen: Seen,
    clients: Vec<Client>,
}

impl World {
    fn new() -> Self {
        Self::with(Limits::default())
    }

    fn with(limits: Limits) -> Self {
        Self {
            net: Net::perfect(),
            n: node(limits),
            seen: Seen::default(),
            clients: Vec::new(),
        }
    }

    fn join(&mut self, addr: &str, stream: &str, whip: bool) -> usize {
        let c = Client::new(&mut self.n, &self.net, addr, stream, whip);
        self.add(c)
    }

    fn add(&mut self, c: Client) -> usize {
        self.clients.push(c);
        self.run_until(Duration::from_secs(30), |w| {
            w.clients.last().unwrap().connected
        });
        self.clients.len() - 1
    }

    /// Steps until `done` or `limit` of virtual time passed; false if not done.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
        let deadline = self.net.deadline(limit);
        loop {
            if done(self) {
                return true;
            }
            if self.step(deadline) == Step::Idle {
                return done(self);
            }
        }
    }

    fn step(&mut self, deadline: Instant) -> Step {
        let mut side = NodeSide {
            n: &mut self.n,
            seen: &mut self.seen,
        };
        let mut peers: Vec<PeerAt> = self.clients.iter_mut().map(Client::at).collect();
        let mut engines: Vec<&mut dyn Driven> = vec![&mut side];
        engines.extend(peers.iter_mut().map(|c| c as &mut dyn Driven));
        let s = self.net.step(&mut engines, deadline);
        drop(peers);
        self.clients.iter_mut().for_each(Client::events);
        drain(&mut self.n, &mut self.seen);
        s
    }

    /// Runs the network until `t`: what is due before, then the clock moves to `t`.
    fn run_to(&mut self, t: Instant) {
        while self.step(t) != Step::Idle {}
        let now = self.net.now();
        if t > now {
            let mut side = NodeSide {
                n: &mut self.n,
                seen: &mut self.seen,
            };
            let mut peers: Vec<PeerAt> = self.clients.iter_mut().map(Client::at).collect();
            let mut engines: Vec<&mut dyn Driven> = vec![&mut side];
            engines.extend(peers.iter_mut().map(|c| c as &mut dyn Driven));
            self.net.advance(&mut engines, t - now);
            drop(peers);
            self.clients.iter_mut().for_each(Client::events);
            while self.step(t) != Step::Idle {}
        }
    }

    fn media_events(&self) -> Vec<&MediaEvent> {
        self.seen
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Media(m) => Some(m),
                _ => None,
            })
            .collect()
    }
}

fn video(seq: u16, ssrc: u32) -> Vec<u8> {
    let payload = [seq as u8; 1000];
    RtpBuilder {
        payload_type: VP8,
        sequence: seq,
        timestamp: u32::from(seq) * 450,
        ssrc,
        payload: &payload,
        ..Default::default()
    }
    .build()
    .unwrap()
}

/// What a receiver still misses, and when it last asked for each (NACK at
/// most every 20 ms per packet, 10 times), as libwebrtc's NACK module does.
#[derive(Default)]
struct Nacker {
    highest: Option<u16>,
    missing: BTreeMap<u16, (Option<Instant>, u32)>,
}

impl Nacker {
    fn update(&mut self, got: &BTreeSet<u16>) {
        for &s in got {
            self.missing.remove(&s);
            match self.highest {
                Some(h) if s.wrapping_sub(h) < 0x8000 && s != h => {
                    for m in h.wrapping_add(1)..s {
                        if !got.contains(&m) {
                            self.missing.entry(m).or_insert((None, 0));
                        }
                    }
                    self.highest = Some(s);
                }
                None => self.highest = Some(s),
                _ => {}
            }
        }
    }

    fn due(&mut self, now: Instant) -> Vec<u16> {
        let mut out = Vec::new();
        for (s, (last, n)) in self.missing.iter_mut() {
            if *n < 10 && last.is_none_or(|t| now - t >= Duration::from_millis(20)) {
                *last = Some(now);
                *n += 1;
                out.push(*s);
            }
        }
        out
    }
}

/// The publisher's side of repair: every NACK it received is answered with
/// RTX retransmissions (RFC 4588) of what it sent.
fn answer_nacks(w: &mut World, p: usize, sent: &BTreeMap<u16, Vec<u8>>, rtx_seq: &mut u16) {
    let nacks: Vec<u16> = std::mem::take(&mut w.clients[p].rtcp)
        .iter()
        .flat_map(|c| rtp::parse_rtcp(c).unwrap())
        .flat_map(|r| match r {
            Rtcp::Nack { pairs, .. } => rtp::nack_lost(&pairs),
            _ => Vec::new(),
        })
        .collect();
    for seq in nacks {
        if let Some(orig) = sent.get(&seq) {
            *rtx_seq = rtx_seq.wrapping_add(1);
            let rtx = softbus_rtc::rewrite::rtx_packet(orig, 0xCAFF, RTX, *rtx_seq).unwrap();
            w.clients[p].send_rtp(&rtx);
        }
    }
}

/// 1000 video packets at 5 ms through links losing 5% of the datagrams each
/// way (publisher to relay, relay to viewer): the relay NACKs the publisher
/// for what the uplink lost and takes its RTX; the viewer's NACKs are
/// answered as RTX from the relay's cache. More than 99% arrive; without
/// either repair about 90% would.
#[test]
fn nack_recovery_delivers_above_99_percent_at_5_percent_loss() {
    let mut w = World::new();
    let p = w.join("10.0.0.5:4000", "cam", true);
    let v = w.join("10.0.0.6:4000", "cam", false);
    w.net.set_link(LinkConfig {
        loss: 0.05,
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
    });
    let mut nacker = Nacker::default();
    let (mut sent, mut rtx_seq) = (BTreeMap::new(), 0u16);
    let start = w.net.now();
    let viewer_nacks = |w: &mut World, nacker: &mut Nacker, t: Instant| {
        nacker.update(&w.clients[v].received_video());
        let lost = nacker.due(t);
        if let (false, Some(ssrc)) = (lost.is_empty(), w.clients[v].video_ssrc()) {
            w.clients[v].send_rtcp(&rtp::build_nack(1, ssrc, &lost));
        }
    };
    for seq in 0..1000u16 {
        let t = start + Duration::from_millis(5 * u64::from(seq));
        w.run_to(t);
        let pkt = video(seq, PUBLISHER_SSRC);
        w.clients[p].send_rtp(&pkt);
        sent.insert(seq, pkt);
        answer_nacks(&mut w, p, &sent, &mut rtx_seq);
        if seq % 4 == 0 {
            viewer_nacks(&mut w, &mut nacker, t);
        }
    }
    // Repair time after the last packet: half a second, in 20 ms rounds.
    let end = w.net.now() + Duration::from_millis(500);
    while w.net.now() < end {
        let t = w.net.now() + Duration::from_millis(20);
        w.run_to(t);
        answer_nacks(&mut w, p, &sent, &mut rtx_seq);
        viewer_nacks(&mut w, &mut nacker, t);
    }
    let got = w.clients[v].received_video().len();
    let (sent_n, dropped) = w.net.link_stats();
    eprintln!(
        "delivered {got}/1000 through links that dropped {dropped} of {sent_n}; the publisher resent {rtx_seq}"
    );
    assert!(dropped > 50, "the links lost packets");
    assert!(rtx_seq > 20, "the relay asked the publisher: {rtx_seq}");
    assert!(got > 990, "delivered {got}/1000");
    let info = w.n.streams();
    assert!(info[0].viewers[0].retransmitted > 0);
}

/// Three viewers; one stops reading and floods NACKs naming every packet.
/// The others still get every packet the instant it is sent, and the flood
/// costs only the relay's per-viewer RTX budget.
#[test]
fn a_viewer_that_stops_reading_does_not_slow_the_others() {
    let mut w = World::new();
    let p = w.join("10.0.0.5:4000", "cam", true);
    let a = w.join("10.0.0.6:4000", "cam", false);
    let b = w.join("10.0.0.7:4000", "cam", false);
    let c = w.join("10.0.0.8:4000", "cam", false);
    let start = w.net.now();
    let mut c_ssrc = None;
    for seq in 0..600u16 {
        let t = start + Duration::from_millis(5 * u64::from(seq));
        w.run_to(t);
        if seq == 10 {
            c_ssrc = w.clients[c].video_ssrc();
            w.clients[c].deaf = true;
        }
        w.clients[p].send_rtp(&video(seq, PUBLISHER_SSRC));
        if let (true, Some(ssrc)) = (seq > 10, c_ssrc) {
            // Everything from the start, every 5 ms: 64 packets per NACK.
            let all: Vec<u16> = (0..64).map(|i| seq.wrapping_sub(i)).collect();
            w.clients[c].send_rtcp(&rtp::build_nack(9, ssrc, &all));
        }
    }
    w.run_to(w.net.now() + Duration::from_millis(50));
    for x in [a, b] {
        let got = w.clients[x].received_video();
        assert_eq!(got.len(), 600, "viewer {x} got every packet");
        // Each arrived in the instant it was sent (the link has no delay).
        for (at, pkt) in &w.clients[x].rtp {
            let seq = RtpPacket::parse(pkt).unwrap().sequence();
            let sent = start + Duration::from_millis(5 * u64::from(seq));
            assert!(
                *at >= sent && *at - sent < Duration::from_millis(1),
                "seq {seq} late"
            );
        }
    }
    let info = &w.n.streams()[0];
    let slow = info
        .viewers
        .iter()
        .find(|v| v.peer == w.clients[c].id.0)
        .unwrap();
    let budget = w.n.limits().media.rtx_per_second as u64;
    eprintln!("slow viewer: {slow:?}");
    // 3 s of flooding: at most three budget windows of resends, all used.
    assert!(slow.retransmitted <= 3 * budget, "{slow:?}");
    assert!(slow.retransmitted >= 2 * budget, "{slow:?}");
    assert!(slow.not_resent > 10_000, "{slow:?}");
    for x in [a, b] {
        let v = info
            .viewers
            .iter()
            .find(|v| v.peer == w.clients[x].id.0)
            .unwrap();
        assert_eq!(v.retransmitted, 0);
    }
}

/// A publisher that reconnects within the grace period continues the
/// viewer's numbering; one that does not come back ends the stream: the
/// viewer gets RTCP BYE for its SSRC and its connection is closed.
#[test]
fn a_returning_publisher_continues_and_a_missing_one_ends_the_stream() {
    let mut w = World::new();
    let p = w.join("10.0.0.5:4000", "cam", true);
    let v = w.join("10.0.0.6:4000", "cam", false);
    for seq in 100..110u16 {
        w.clients[p].send_rtp(&video(seq, PUBLISHER_SSRC));
    }
    w.run_to(w.net.now() + Duration::from_millis(10));
    let id = w.clients[p].id;
    assert!(w.n.rtc_close_as(w.net.now(), id, &web()).unwrap());
    w.run_to(w.net.now() + Duration::from_secs(2));
    assert!(matches!(
        w.media_events().last(),
        Some(MediaEvent::PublisherLeft { .. })
    ));
    // Back within 5 s, with another SSRC and numbering.
    let p2 = w.join("10.0.0.9:4000", "cam", true);
    for seq in 7000..7010u16 {
        w.clients[p2].send_rtp(&video(seq, 0xBEEF));
    }
    w.run_to(w.net.now() + Duration::from_millis(10));
    let seqs: Vec<u16> = w.clients[v]
        .rtp
        .iter()
        .map(|(_, p)| RtpPacket::parse(p).unwrap().sequence())
        .collect();
    assert_eq!(seqs.len(), 20);
    assert!(
        seqs.windows(2).all(|s| s[1] == s[0].wrapping_add(1)),
        "continuous: {seqs:?}"
    );
    assert!(w
        .media_events()
        .iter()
        .any(|e| matches!(e, MediaEvent::PublisherJoined { resumed: true, .. })));
    // Gone for good: BYE after the grace period, then closed.
    let id = w.clients[p2].id;
    w.n.rtc_close_as(w.net.now(), id, &web()).unwrap();
    let left = w.net.now();
    assert!(w.run_until(Duration::from_secs(10), |w| w.clients[v].closed));
    assert!(w.net.now() - left >= Duration::from_secs(5));
    let ssrc = w.clients[v].video_ssrc().unwrap();
    let byes: Vec<Vec<u32>> = w.clients[v]
        .rtcp
        .iter()
        .flat_map(|c| rtp::parse_rtcp(c).unwrap())
        .filter_map(|r| match r {
            Rtcp::Bye { ssrcs, .. } => Some(ssrcs),
            _ => None,
        })
        .collect();
    assert!(byes.iter().any(|s| s.contains(&ssrc)), "{byes:?}");
    assert!(w
        .media_events()
        .iter()
        .any(|e| matches!(e, MediaEvent::StreamEnded { .. })));
    assert!(w.n.streams().is_empty());
}

/// A viewer's PLI reaches the publisher for its own SSRC (at most one per
/// 300 ms), and the publisher's sender report reaches the viewer under the
/// viewer's SSRC.
#[test]
fn keyframe_requests_go_up_and_sender_reports_come_down() {
    let mut w = World::new();
    let p = w.join("10.0.0.5:4000", "cam", true);
    w.clients[p].send_rtp(&video(1, PUBLISHER_SSRC));
    w.run_to(w.net.now() + Duration::from_millis(1));
    let v = w.join("10.0.0.6:4000", "cam", false);
    w.clients[p].send_rtp(&video(2, PUBLISHER_SSRC));
    w.run_to(w.net.now() + Duration::from_millis(1));
    let plis = |w: &World| {
        w.clients[p]
            .rtcp
            .iter()
            .flat_map(|c| rtp::parse_rtcp(c).unwrap())
            .filter(|r| {
                matches!(
                    r,
                    Rtcp::Pli {
                        media: PUBLISHER_SSRC,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(plis(&w), 1, "the viewer's join asked for a keyframe");
    let ssrc = w.clients[v].video_ssrc().unwrap();
    for _ in 0..3 {
        w.clients[v].send_rtcp(&rtp::build_pli(5, ssrc));
    }
    w.run_to(w.net.now() + Duration::from_millis(1));
    assert_eq!(plis(&w), 1, "held back within 300 ms");
    w.run_to(w.net.now() + Duration::from_millis(400));
    assert_eq!(plis(&w), 2, "sent when the interval ended");
    w.clients[p].send_rtcp(&rtp::build_sr(PUBLISHER_SSRC, 0x1_0000_0000, 900, 2, 2000));
    w.run_to(w.net.now() + Duration::from_millis(1));
    let srs: Vec<(u32, u64)> = w.clients[v]
        .rtcp
        .iter()
        .flat_map(|c| rtp::parse_rtcp(c).unwrap())
        .filter_map(|r| match r {
            Rtcp::SenderReport { ssrc, ntp, .. } => Some((ssrc, ntp)),
            _ => None,
        })
        .collect();
    assert_eq!(srs, vec![(ssrc, 0x1_0000_0000)]);
}

/// A second publisher for a live stream is refused (409 on the web side), a
/// viewer of a stream nobody publishes too (404), bad names, and the stream
/// and viewer limits (503).
#[test]
fn streams_refuse_a_second_publisher_unknown_names_and_past_their_limits() {
    use softbus_node::{MediaLimits, MediaRefusal, NodeError};
    let mut w = World::with(Limits {
        media: MediaLimits {
            max_streams: 1,
            max_viewers: 1,
            ..Default::default()
        },
        ..Default::default()
    });
    w.join("10.0.0.5:4000", "cam", true);
    w.join("10.0.0.6:4000", "cam", false);
    let offer = |w: &World, dir| {
        let id = DtlsIdentity::generate().unwrap();
        let mut rng = OpenSslCrypto::seeded(9);
        Peer::offer_with_media(
            "10.0.0.9:1".parse().unwrap(),
            &id.fingerprint("sha-256").unwrap(),
            Box::new(id.factory().unwrap()),
            1,
            Box::new(move |len| softbus_rtc::crypto::ice_chars(&mut rng, len)),
            &[(MediaKind::Video, dir)],
        )
        .map(|(_, o)| (o, w.net.now()))
        .unwrap()
    };
    let (o, now) = offer(&w, Direction::SendOnly);
    assert_eq!(
        w.n.whip(now, "cam", &o, web()),
        Err(NodeError::Media(MediaRefusal::Busy("cam".into())))
    );
    for bad in ["bad/name", ".", "..", ".hidden", "-x"] {
        assert_eq!(
            w.n.whip(now, bad, &o, web()),
            Err(NodeError::Media(MediaRefusal::BadName)),
            "{bad}"
        );
    }
    assert_eq!(
        w.n.whip(now, "cam2", &o, web()),
        Err(NodeError::Media(MediaRefusal::TooManyStreams(1)))
    );
    let (o, now) = offer(&w, Direction::RecvOnly);
    assert_eq!(
        w.n.whep(now, "nobody", &o, web()),
        Err(NodeError::Media(MediaRefusal::NoSuchStream(
            "nobody".into()
        )))
    );
    assert_eq!(
        w.n.whep(now, "cam", &o, web()),
        Err(NodeError::Media(MediaRefusal::TooManyViewers(1)))
    );
}

/// Publishers, viewers and data-channel peers have budgets of their own
/// (issue 17): with every stream published and every data-channel peer
/// connected, a stream still takes its full count of viewers; each budget
/// refuses past itself with its own reason.
#[test]
fn publishers_viewers_and_data_peers_each_reach_their_budget() {
    use softbus_node::{MediaLimits, MediaRefusal, NodeError};
    use softbus_rtc::host::HostError;
    let limits = Limits {
        max_rtc_peers: 2,
        media: MediaLimits {
            max_streams: 2,
            max_viewers: 3,
            max_viewers_total: 4,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut w = World::with(limits);
    w.join("10.0.0.5:4000", "a", true);
    w.join("10.0.0.6:4000", "b", true);
    let data_offer = |port: u16| {
        let id = DtlsIdentity::generate().unwrap();
        let mut rng = OpenSslCrypto::seeded(u64::from(port));
        Peer::offer(
            SocketAddr::from(([10, 0, 1, 1], port)),
            &id.fingerprint("sha-256").unwrap(),
            Box::new(id.factory().unwrap()),
            42,
            Box::new(move |len| softbus_rtc::crypto::ice_chars(&mut rng, len)),
        )
        .unwrap()
        .1
    };
    for port in 1..=2 {
        assert!(w
            .n
            .rtc_answer(w.net.now(), &data_offer(port), web())
            .is_ok());
    }
    assert_eq!(
        w.n.rtc_answer(w.net.now(), &data_offer(3), web()),
        Err(NodeError::Rtc(HostError::TooManyPeers(2)))
    );
    // All three viewers of "a" get in beside them, and one of "b".
    for k in 0..3 {
        let c = w.join(&format!("10.0.2.{}:4000", k + 1), "a", false);
        assert!(w.clients[c].connected);
    }
    let c = w.join("10.0.3.1:4000", "b", false);
    assert!(w.clients[c].connected);
    let viewer_offer = || {
        let id = DtlsIdentity::generate().unwrap();
        let mut rng = OpenSslCrypto::seeded(7);
        Peer::offer_with_media(
            "10.0.4.1:1".parse().unwrap(),
            &id.fingerprint("sha-256").unwrap(),
            Box::new(id.factory().unwrap()),
            1,
            Box::new(move |len| softbus_rtc::crypto::ice_chars(&mut rng, len)),
            &[(MediaKind::Video, Direction::RecvOnly)],
        )
        .unwrap()
        .1
    };
    let now = w.net.now();
    assert_eq!(
        w.n.whep(now, "a", &viewer_offer(), web()),
        Err(NodeError::Media(MediaRefusal::TooManyViewers(3)))
    );
    assert_eq!(
        w.n.whep(now, "b", &viewer_offer(), web()),
        Err(NodeError::Media(MediaRefusal::TooManyViewersInAll(4)))
    );
    assert_eq!(w.n.host().peer_count(), 8);
}

/// Reduced-size RTCP only to peers that negotiated it (RFC 5506 §5): the
/// keyframe request a viewer's join causes reaches a publisher that offered
/// `a=rtcp-rsize` as a bare PLI, and one that did not as a compound packet (an
/// empty receiver report and an SDES CNAME first).
#[test]
fn keyframe_requests_are_compound_unless_rtcp_rsize_was_negotiated() {
    for rsize in [true, false] {
        let mut w = World::new();
        let c = Client::with_offer(&mut w.n, &w.net, "10.0.0.5:4000", "cam", true, |o| {
            if rsize {
                o
            } else {
                o.replace("a=rtcp-rsize\r\n", "")
            }
        });
        let p = w.add(c);
        w.clients[p].send_rtp(&video(1, PUBLISHER_SSRC));
        w.run_to(w.net.now() + Duration::from_millis(1));
        w.join("10.0.0.6:4000", "cam", false);
        w.run_to(w.net.now() + Duration::from_millis(1));
        let with_pli: Vec<Vec<&'static str>> = w.clients[p]
            .rtcp
            .iter()
            .map(|c| {
                rtp::parse_rtcp(c)
                    .unwrap()
                    .iter()
                    .map(|r| match r {
                        Rtcp::ReceiverReport { reports, .. } if reports.is_empty() => "RR",
                        Rtcp::Sdes(_) => "SDES",
                        Rtcp::Pli {
                            media: PUBLISHER_SSRC,
                            ..
                        } => "PLI",
                        _ => "other",
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|kinds| kinds.contains(&"PLI"))
            .collect();
        let expect: Vec<&str> = if rsize {
            vec!["PLI"]
        } else {
            vec!["RR", "SDES", "PLI"]
        };
        assert_eq!(with_pli, vec![expect], "rsize {rsize}");
    }
}
