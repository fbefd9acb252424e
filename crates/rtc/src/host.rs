//! The WebRTC host of a node: many answered peer connections on one UDP port.
//!
//! A datagram is routed the way quinn-proto's `Endpoint` and str0m's `accepts()`
//! route: by source address once a peer is known there, else by the local ufrag
//! in a STUN check's USERNAME (RFC 8445 §7.2.2). A peer that nominates another
//! pair is followed: its remote address is always the selected pair's.
//!
//! Sans-IO like every engine here: `answer`, `handle_datagram(now, ..)`,
//! `handle_timeout(now)`, `poll_transmit`, `poll_event`, `poll_timeout`. Crypto
//! (HMAC, randomness, DTLS sessions) is the [`Provider`] given at construction.

use crate::crypto::{ice_chars, Provider};
use crate::demux::{classify, PacketKind};
use crate::gather::{GatherEvent, Gatherer, IceServer, ServerStatus};
use crate::ice::Via;
use crate::peer::{CloseReason, LocalParams, MediaAnswer, MediaTrack, Peer, PeerError, PeerEvent};
use crate::sdp::SdpOffer;
use crate::srtp::{Context as SrtpContext, SrtpError};
use crate::stun::Message;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Names one peer connection of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A data channel's SCTP stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

/// Limits of a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The host candidate: the node's address and its WebRTC UDP port.
    pub local: SocketAddr,
    /// Peer connections held at once.
    pub max_peers: usize,
    /// Source addresses remembered at once (all peers together).
    pub max_addrs: usize,
    /// An answered peer whose ICE has not connected by then is freed.
    pub connect_timeout: Duration,
    /// When the DTLS certificate is replaced for new peers; `None`: 3 days
    /// before it expires. Live connections keep the one they started with.
    pub renew_certificate_after: Option<Duration>,
    /// STUN and TURN servers. With none the host answers as ICE-lite with its
    /// host candidate only; with any it is a full ICE agent (ADR 14).
    pub ice_servers: Vec<IceServer>,
}

impl HostConfig {
    /// Defaults for a host on `local`: 64 peers, 1024 addresses, 30 s to connect.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            max_peers: 64,
            max_addrs: 1024,
            connect_timeout: Duration::from_secs(30),
            renew_certificate_after: None,
            ice_servers: Vec::new(),
        }
    }
}

/// Why an offer is not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("peer connection limit of {0} reached")]
    TooManyPeers(usize),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("DTLS identity: {0}")]
    Identity(crate::dtls::DtlsError),
    #[error("no such peer connection")]
    UnknownPeer,
    #[error("data channel: {0}")]
    Channel(#[from] crate::sctp::ChannelError),
    /// Media before DTLS-SRTP is up, or on a peer without media.
    #[error("no SRTP on this peer connection yet")]
    NoSrtp,
    #[error("SRTP: {0}")]
    Srtp(#[from] SrtpError),
    /// An ICE restart (new credentials) without `If-Match` (RFC 9725 §4.4.2).
    #[error("an ICE restart needs If-Match")]
    PreconditionRequired,
    /// `If-Match` names another entity tag: the session restarted since.
    #[error("If-Match does not match this session's ETag")]
    PreconditionFailed,
}

/// What a `PATCH` did to a peer connection's ICE session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Candidates were added; a full host answers with its own.
    Trickled {
        fragment: Option<String>,
        etag: String,
    },
    /// ICE restarted with the fragment's credentials: ours are new too.
    Restarted { fragment: String, etag: String },
}

/// The entity tag of an ICE session (RFC 9725 §4.3.1): its local ufrag,
/// which changes exactly when the session restarts.
fn etag_of(ufrag: &str) -> String {
    format!("\"{ufrag}\"")
}

/// The entity tag of the session an answer starts (its `a=ice-ufrag`).
pub fn answer_etag(answer: &str) -> Option<String> {
    answer
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(etag_of)
}

pub use softbus_proto::Datagram;

/// What the host reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// ICE, DTLS and SCTP are up.
    Connected {
        peer: PeerId,
    },
    /// The remote opened a channel; the application accepts it or closes it.
    ChannelOpen {
        peer: PeerId,
        channel: ChannelId,
        label: String,
    },
    Message {
        peer: PeerId,
        channel: ChannelId,
        binary: bool,
        data: Vec<u8>,
    },
    ChannelClosed {
        peer: PeerId,
        channel: ChannelId,
    },
    /// The peer connection is gone, and why.
    PeerClosed {
        peer: PeerId,
        reason: CloseReason,
    },
    /// The remote nominated another pair: this is its address now.
    Moved {
        peer: PeerId,
        remote: SocketAddr,
    },
    /// An RTP packet from a media peer, authenticated and decrypted.
    Rtp {
        peer: PeerId,
        packet: Vec<u8>,
    },
    /// An RTCP compound packet from a media peer, authenticated and decrypted.
    Rtcp {
        peer: PeerId,
        packet: Vec<u8>,
    },
}

/// A media peer's SRTP: what it receives and what it sends.
struct Srtp {
    inbound: SrtpContext,
    outbound: SrtpContext,
}

struct Entry {
    peer: Peer,
    ufrag: String,
    pwd: String,
    /// The selected pair's address as last reported.
    remote: Option<SocketAddr>,
    /// Until ICE connects: when the peer is freed.
    connect_by: Option<Instant>,
    /// Keyed when DTLS-SRTP connects, for a peer with media sections.
    srtp: Option<Box<Srtp>>,
    /// Media datagrams that did not authenticate or decode.
    media_dropped: u64,
    /// Credentials of the ICE sessions before restarts (the last few): the
    /// remote may still check with them, and a closed peer's answer must
    /// reach those checks too.
    earlier: Vec<(String, String)>,
}

/// Earlier ICE credentials kept per peer.
const EARLIER_CREDENTIALS: usize = 2;

/// A peer connection this side closed: its checks are answered with an error
/// for a while, so the remote agent fails the pair at once.
struct Tombstone {
    ufrag: String,
    pwd: String,
    until: Instant,
}

/// How long checks of a closed peer connection are answered with an error.
pub const TOMBSTONE: Duration = Duration::from_secs(10);

/// All answered peer connections of a node, on one port.
pub struct Host {
    cfg: HostConfig,
    provider: Provider,
    peers: BTreeMap<PeerId, Entry>,
    by_addr: HashMap<(Via, SocketAddr), PeerId>,
    gather: Gatherer,
    tombstones: VecDeque<Tombstone>,
    /// When the current certificate started serving (the first answer).
    certificate_since: Option<Instant>,
    transmits: VecDeque<Datagram>,
    events: VecDeque<HostEvent>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("local", &self.cfg.local)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host with `cfg`; DTLS sessions, HMAC and randomness from `provider`.
    pub fn new(cfg: HostConfig, mut provider: Provider) -> Self {
        let gather = Gatherer::new(cfg.local, cfg.ice_servers.clone(), provider.random.fork());
        Self {
            cfg,
            provider,
            peers: BTreeMap::new(),
            by_addr: HashMap::new(),
            gather,
            tombstones: VecDeque::new(),
            certificate_since: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The host candidate's address.
    pub fn local(&self) -> SocketAddr {
        self.cfg.local
    }

    /// Peer connections held.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether `peer` is held.
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.peers.contains_key(&peer)
    }

    /// Answers an offer as ICE-lite with one host candidate: the new peer and
    /// the answer SDP. The peer is freed if ICE does not connect in time.
    pub fn answer(&mut self, now: Instant, offer: &str) -> Result<(PeerId, String), HostError> {
        self.answer_media(now, offer, MediaAnswer::Reject)
    }

    /// Answers an offer as [`Host::answer`], with its audio and video sections
    /// as `media` says; media comes and goes as SRTP once DTLS is up.
    pub fn answer_media(
        &mut self,
        now: Instant,
        offer: &str,
        media: MediaAnswer,
    ) -> Result<(PeerId, String), HostError> {
        if self.peers.len() >= self.cfg.max_peers {
            return Err(HostError::TooManyPeers(self.cfg.max_peers));
        }
        let offer = SdpOffer::parse(offer).map_err(PeerError::from)?;
        self.renew_certificate(now)?;
        let random = self.provider.random.as_mut();
        let ufrag = ice_chars(random, 8);
        let pwd = ice_chars(random, 24);
        let mut sid = [0u8; 8];
        random.fill(&mut sid);
        let local = LocalParams {
            candidate: self.cfg.local,
            ice_ufrag: ufrag.clone(),
            ice_pwd: pwd.clone(),
            fingerprint: self
                .provider
                .dtls
                .fingerprint("sha-256")
                .map_err(HostError::Identity)?,
            // o= session ids are below 2^62 (RFC 8829 §5.2.1).
            session_id: u64::from_le_bytes(sid) >> 2,
            full_ice: self.gather.is_enabled().then(|| {
                let mut tie = [0u8; 8];
                random.fill(&mut tie);
                self.gather.full_ice(u64::from_le_bytes(tie))
            }),
        };
        let mut r = self.provider.random.fork();
        let (peer, answer) = Peer::answer_media(
            &offer,
            &local,
            self.provider.dtls.clone_box(),
            Box::new(move |n| ice_chars(r.as_mut(), n)),
            media,
        )?;
        let id = self.insert(now, peer, ufrag, pwd);
        if self.gather.is_enabled() {
            // The offer's own candidates (IP literals over UDP; mDNS names cannot be checked).
            let remotes: Vec<SocketAddr> = offer
                .media
                .iter()
                .flat_map(|m| m.candidates())
                .flatten()
                .filter(|c| c.transport.eq_ignore_ascii_case("udp"))
                .filter_map(|c| c.ip().map(|ip| SocketAddr::new(ip, c.port)))
                .collect();
            let bases = self.gather.relay_bases();
            let mut r = self.provider.random.fork();
            if let Some(e) = self.peers.get_mut(&id) {
                e.peer.start_ice(
                    now,
                    &remotes,
                    &bases,
                    Box::new(move || {
                        let mut t = [0u8; 12];
                        r.fill(&mut t);
                        t
                    }),
                    self.provider.hmac.as_ref(),
                );
            }
            self.drain(now, id);
        }
        Ok((id, answer))
    }

    /// Starts gathering candidates from the ICE servers (once; a no-op without any).
    pub fn start_gathering(&mut self, now: Instant) {
        if self.gather.is_enabled() {
            self.gather.start(now, self.provider.hmac.as_ref());
            self.gathered(now);
        }
    }

    /// Whether every ICE server has answered or given up (true without any).
    pub fn gathering_done(&self) -> bool {
        self.gather.complete()
    }

    /// Whether the host is a full ICE agent (ICE servers are configured).
    pub fn is_full_ice(&self) -> bool {
        self.gather.is_enabled()
    }

    /// How each ICE server is doing.
    pub fn ice_servers(&self) -> Vec<ServerStatus> {
        self.gather.status()
    }

    /// A `PATCH` fragment from the remote (RFC 9725 §4.3, §4.4). With this
    /// session's ufrag (or none) it is trickle: its candidates are checked (a
    /// lite host needs none: the checks tell it every address) and a full host
    /// answers with its own. With new credentials it is an ICE restart, which
    /// needs `If-Match` (`*` or the current tag): new local credentials, the
    /// agent starts again, and the answer fragment carries them. A tag that
    /// is not the current one is refused either way.
    pub fn patch(
        &mut self,
        now: Instant,
        peer: PeerId,
        if_match: Option<&str>,
        frag: &crate::sdp::frag::TrickleFragment,
    ) -> Result<Patched, HostError> {
        let e = self.peers.get(&peer).ok_or(HostError::UnknownPeer)?;
        let etag = etag_of(&e.ufrag);
        if if_match.is_some_and(|m| m.trim() != "*" && m.trim() != etag) {
            return Err(HostError::PreconditionFailed);
        }
        let restart = frag
            .ice_ufrag
            .as_deref()
            .is_some_and(|u| Some(u) != e.peer.remote_ufrag());
        if !restart {
            for a in frag.addresses() {
                self.add_remote_candidate(now, peer, a)?;
            }
            return Ok(Patched::Trickled {
                fragment: self.local_fragment(peer, false),
                etag,
            });
        }
        if if_match.is_none() {
            return Err(HostError::PreconditionRequired);
        }
        let (Some(ufrag), Some(pwd)) = (frag.ice_ufrag.as_deref(), frag.ice_pwd.as_deref()) else {
            return Err(HostError::Peer(PeerError::Missing("a=ice-pwd")));
        };
        let random = self.provider.random.as_mut();
        let (lu, lp) = (ice_chars(random, 8), ice_chars(random, 24));
        let bases = self.gather.relay_bases();
        let mut r = self.provider.random.fork();
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        e.peer.restart_ice(
            now,
            (&lu, &lp),
            (ufrag, pwd),
            &frag.addresses(),
            &bases,
            Box::new(move || {
                let mut t = [0u8; 12];
                r.fill(&mut t);
                t
            }),
            self.provider.hmac.as_ref(),
        )?;
        if e.earlier.len() >= EARLIER_CREDENTIALS {
            e.earlier.remove(0);
        }
        let old = (
            std::mem::replace(&mut e.ufrag, lu),
            std::mem::replace(&mut e.pwd, lp),
        );
        e.earlier.push(old);
        let etag = etag_of(&e.ufrag);
        self.drain(now, peer);
        tracing::info!(peer = peer.0, "ICE restarted");
        let fragment = self.local_fragment(peer, true).unwrap_or_default();
        Ok(Patched::Restarted { fragment, etag })
    }

    /// The ICE session's entity tag.
    pub fn etag(&self, peer: PeerId) -> Option<String> {
        self.peers.get(&peer).map(|e| etag_of(&e.ufrag))
    }

    /// A peer's credentials and candidates as a fragment: a full host's
    /// gathered ones; a lite host's one host candidate only when `always`
    /// (after a restart the client needs the new credentials).
    fn local_fragment(&self, peer: PeerId, always: bool) -> Option<String> {
        let e = self.peers.get(&peer)?;
        let (candidates, complete) = if self.gather.is_enabled() {
            let full = self.gather.full_ice(0);
            (
                crate::peer::local_candidates(self.cfg.local, &full),
                full.complete,
            )
        } else if always {
            (
                vec![crate::sdp::Candidate::host(
                    "1",
                    self.cfg.local,
                    2_130_706_431,
                )],
                true,
            )
        } else {
            return None;
        };
        Some(crate::sdp::frag::write_fragment(
            &e.ufrag,
            &e.pwd,
            &candidates,
            complete,
        ))
    }

    /// TLS for `turns:` servers (without it they are not used).
    pub fn set_tls(&mut self, connector: Box<dyn crate::crypto::TlsConnector>) {
        self.gather.set_tls(connector);
    }

    /// The next TCP action (dial, write, close) of a relay reached over TCP.
    pub fn poll_tcp(&mut self) -> Option<softbus_proto::Transmit> {
        self.gather.poll_tcp()
    }

    /// Whether `conn` is the host's (a TURN-over-TCP connection).
    pub fn owns_conn(&self, conn: softbus_proto::ConnId) -> bool {
        self.gather.owns_conn(conn)
    }

    /// The driver connected (or did not) one of the host's TCP connections.
    pub fn handle_dialed(&mut self, now: Instant, conn: softbus_proto::ConnId, ok: bool) {
        self.gather
            .handle_dialed(now, conn, ok, self.provider.hmac.as_ref());
        self.gathered(now);
    }

    /// Bytes on one of the host's TCP connections: relayed datagrams go to
    /// their peers.
    pub fn handle_tcp_data(&mut self, now: Instant, conn: softbus_proto::ConnId, data: &[u8]) {
        let relayed = self
            .gather
            .handle_tcp_data(now, conn, data, self.provider.hmac.as_ref());
        for (via, peer, payload) in relayed {
            if !self.deliver(now, via, peer, &payload) {
                self.answer_closed(now, via, peer, &payload);
            }
        }
        self.gathered(now);
    }

    /// One of the host's TCP connections closed.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: softbus_proto::ConnId) {
        self.gather.handle_tcp_closed(now, conn);
        self.gathered(now);
    }

    /// A remote candidate learnt late (trickle) for `peer`.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddr,
    ) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        e.peer
            .add_remote_candidate(now, addr, self.provider.hmac.as_ref());
        self.drain(now, peer);
        Ok(())
    }

    /// The gatherer's events and datagrams: a relay that became ready is
    /// offered to every live full-ICE peer as a new base.
    fn gathered(&mut self, now: Instant) {
        while let Some(ev) = self.gather.poll_event() {
            match ev {
                GatherEvent::RelayReady { via, .. } => {
                    let bases = self.gather.relay_bases();
                    let prio = bases.iter().find(|(v, _)| *v == via).map(|(_, p)| *p);
                    let ids: Vec<PeerId> = self.peers.keys().copied().collect();
                    for id in ids {
                        if let (Some(e), Some(p)) = (self.peers.get_mut(&id), prio) {
                            e.peer
                                .add_local_relay(now, via, p, self.provider.hmac.as_ref());
                        }
                        self.drain(now, id);
                    }
                }
                GatherEvent::RelayLost { via, reason } => {
                    tracing::warn!(?via, %reason, "TURN relay lost");
                }
                GatherEvent::Reflexive(a) => {
                    tracing::info!(address = %a, "server-reflexive address")
                }
            }
        }
        flush_gathered(&mut self.gather, &mut self.transmits, self.cfg.local);
    }

    /// A new peer with our ICE credentials `ufrag`/`pwd`, freed if ICE has not
    /// connected by the connect timeout.
    fn insert(&mut self, now: Instant, peer: Peer, ufrag: String, pwd: String) -> PeerId {
        // Random ids: a peer's `/rtc/<id>` cannot be guessed from another's.
        let id = loop {
            let mut b = [0u8; 8];
            self.provider.random.fill(&mut b);
            let id = PeerId(u64::from_le_bytes(b) >> 1);
            if id.0 != 0 && !self.peers.contains_key(&id) {
                break id;
            }
        };
        self.peers.insert(
            id,
            Entry {
                peer,
                ufrag,
                pwd,
                remote: None,
                connect_by: Some(now + self.cfg.connect_timeout),
                srtp: None,
                media_dropped: 0,
                earlier: Vec::new(),
            },
        );
        id
    }

    /// The offering role (node to node): a peer that offers from the host's
    /// candidate as a full controlling ICE agent; apply the remote answer with
    /// [`Host::apply_answer`]. The peer is freed if ICE does not connect in time.
    pub fn offer(&mut self, now: Instant) -> Result<(PeerId, String), HostError> {
        if self.peers.len() >= self.cfg.max_peers {
            return Err(HostError::TooManyPeers(self.cfg.max_peers));
        }
        self.renew_certificate(now)?;
        let fingerprint = self
            .provider
            .dtls
            .fingerprint("sha-256")
            .map_err(HostError::Identity)?;
        let mut tie = [0u8; 8];
        self.provider.random.fill(&mut tie);
        let mut r = self.provider.random.fork();
        let random = Box::new(move |n| ice_chars(r.as_mut(), n));
        let (peer, sdp) = if self.gather.is_enabled() {
            // Gathered candidates go in the offer; relays become bases with the answer.
            let full = self.gather.full_ice(u64::from_le_bytes(tie));
            Peer::offer_full(
                self.cfg.local,
                &full,
                &fingerprint,
                self.provider.dtls.clone_box(),
                random,
            )?
        } else {
            Peer::offer(
                self.cfg.local,
                &fingerprint,
                self.provider.dtls.clone_box(),
                u64::from_le_bytes(tie),
                random,
            )?
        };
        let parsed = SdpOffer::parse(&sdp).map_err(PeerError::from)?;
        let m = parsed.media.first().ok_or(PeerError::NoDataChannel)?;
        let (ufrag, pwd) = (
            parsed.ice_ufrag(m).unwrap_or_default().to_owned(),
            parsed.ice_pwd(m).unwrap_or_default().to_owned(),
        );
        Ok((self.insert(now, peer, ufrag, pwd), sdp))
    }

    /// Applies the remote answer to an offering peer: its candidates become
    /// addresses of this peer and connectivity checks start.
    pub fn apply_answer(
        &mut self,
        now: Instant,
        id: PeerId,
        answer: &str,
    ) -> Result<(), HostError> {
        let e = self.peers.get_mut(&id).ok_or(HostError::UnknownPeer)?;
        let mut r = self.provider.random.fork();
        e.peer.apply_answer(
            now,
            answer,
            self.provider.hmac.as_ref(),
            Box::new(move || {
                let mut t = [0u8; 12];
                r.fill(&mut t);
                t
            }),
        )?;
        // Responses to our checks carry no USERNAME: they are routed by address.
        let remotes: Vec<SocketAddr> = crate::sdp::SdpAnswer::parse(answer)
            .map(|a| {
                a.media
                    .iter()
                    .flat_map(|m| m.candidates())
                    .flatten()
                    .filter_map(|c| c.ip().map(|ip| SocketAddr::new(ip, c.port)))
                    .collect()
            })
            .unwrap_or_default();
        let bases = self.gather.relay_bases();
        for a in remotes.into_iter().take(crate::ice::agent::MAX_REMOTE) {
            for via in std::iter::once(Via::Host).chain(bases.iter().map(|(v, _)| *v)) {
                if self.by_addr.len() < self.cfg.max_addrs {
                    self.by_addr.insert((via, a), id);
                }
            }
        }
        if let Some(e) = self.peers.get_mut(&id) {
            for (via, prio) in bases {
                e.peer
                    .add_local_relay(now, via, prio, self.provider.hmac.as_ref());
            }
        }
        self.drain(now, id);
        Ok(())
    }

    /// Opens a data channel on a connected peer (DCEP); `ChannelOpen` follows
    /// when the other side acknowledges it.
    pub fn open_channel(
        &mut self,
        now: Instant,
        peer: PeerId,
        label: &str,
    ) -> Result<ChannelId, HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        let c = e.peer.open_channel(now, label)?;
        self.drain(now, peer);
        Ok(ChannelId(c))
    }

    /// Replaces the DTLS certificate for new peers when it is due; peers that
    /// are connected keep theirs (each holds its own factory).
    fn renew_certificate(&mut self, now: Instant) -> Result<(), HostError> {
        let since = *self.certificate_since.get_or_insert(now);
        let after = self.cfg.renew_certificate_after.unwrap_or_else(|| {
            self.provider
                .dtls
                .lifetime()
                .saturating_sub(Duration::from_secs(3 * 86_400))
        });
        if now.saturating_duration_since(since) >= after {
            self.provider.dtls = self.provider.dtls.renew().map_err(HostError::Identity)?;
            self.certificate_since = Some(now);
            tracing::info!("DTLS certificate renewed");
        }
        Ok(())
    }

    /// Which peer a datagram from `from` belongs to, if any: by address, or for
    /// a STUN check by the local ufrag of its USERNAME.
    pub fn accepts(&self, from: SocketAddr, data: &[u8]) -> Option<PeerId> {
        self.accepts_via(Via::Host, from, data)
    }

    fn accepts_via(&self, via: Via, from: SocketAddr, data: &[u8]) -> Option<PeerId> {
        if let Some(id) = self.by_addr.get(&(via, from)) {
            return Some(*id);
        }
        if classify(data) != PacketKind::Stun {
            return None;
        }
        let m = Message::parse(data).ok()?;
        let local_ufrag = m.username()?.split_once(':')?.0;
        self.peers
            .iter()
            .find(|(_, e)| e.ufrag == local_ufrag)
            .map(|(id, _)| *id)
    }

    /// A datagram arrived on the host's port; false if no peer took it.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> bool {
        if self.gather.owns(from) {
            let relayed = self
                .gather
                .handle_datagram(now, from, data, self.provider.hmac.as_ref());
            let taken = match relayed {
                Some((via, peer, payload)) => {
                    let payload = payload.to_vec();
                    let taken = self.deliver(now, via, peer, &payload);
                    if !taken {
                        self.answer_closed(now, via, peer, &payload);
                    }
                    taken
                }
                None => true,
            };
            self.gathered(now);
            return taken;
        }
        if !self.deliver(now, Via::Host, from, data) {
            self.answer_closed(now, Via::Host, from, data);
            return false;
        }
        true
    }

    /// A datagram from `from` through base `via`, to the peer it belongs to.
    fn deliver(&mut self, now: Instant, via: Via, from: SocketAddr, data: &[u8]) -> bool {
        let Some(id) = self.accepts_via(via, from, data) else {
            return false;
        };
        if !self.by_addr.contains_key(&(via, from)) && self.by_addr.len() < self.cfg.max_addrs {
            self.by_addr.insert((via, from), id);
        }
        if let Some(e) = self.peers.get_mut(&id) {
            e.peer
                .handle_datagram_via(now, via, from, data, self.provider.hmac.as_ref());
        }
        self.drain(now, id);
        true
    }

    /// Timers of every peer, and the connect deadline of answered peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.gather.poll_timeout().is_some_and(|t| t <= now) {
            self.gather.handle_timeout(now, self.provider.hmac.as_ref());
            self.gathered(now);
        }
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, e)| {
                e.peer.poll_timeout().is_some_and(|t| t <= now)
                    || e.connect_by.is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(e) = self.peers.get_mut(&id) else {
                continue;
            };
            if e.connect_by.is_some_and(|t| t <= now) {
                e.peer.close_because(now, CloseReason::ConnectTimeout);
                self.drain(now, id);
                continue;
            }
            e.peer.handle_timeout(now, self.provider.hmac.as_ref());
            self.drain(now, id);
        }
    }

    /// The earliest timer of all peers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .flat_map(|e| [e.peer.poll_timeout(), e.connect_by])
            .chain([self.gather.poll_timeout()])
            .flatten()
            .min()
    }

    /// Sends a message on a channel.
    pub fn send(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: ChannelId,
        binary: bool,
        data: &[u8],
    ) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        let r = e.peer.send(now, channel.0, binary, data);
        self.drain(now, peer);
        Ok(r?)
    }

    /// Accepts a channel the remote opened.
    pub fn accept_channel(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: ChannelId,
    ) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        let r = e.peer.accept_channel(now, channel.0);
        self.drain(now, peer);
        Ok(r?)
    }

    /// Closes one channel.
    pub fn close_channel(&mut self, now: Instant, peer: PeerId, channel: ChannelId) {
        if let Some(e) = self.peers.get_mut(&peer) {
            e.peer.close_channel(now, channel.0);
            self.drain(now, peer);
        }
    }

    /// Closes a peer connection for `reason`; false if there is none.
    /// `PeerClosed` follows.
    pub fn close(&mut self, now: Instant, peer: PeerId, reason: CloseReason) -> bool {
        let Some(e) = self.peers.get_mut(&peer) else {
            return false;
        };
        e.peer.close_because(now, reason);
        self.drain(now, peer);
        true
    }

    /// Closes every peer connection (node shutdown), telling each peer.
    pub fn close_all(&mut self, now: Instant) {
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            self.close(now, id, CloseReason::Shutdown);
        }
    }

    /// A peer's accepted audio and video sections.
    pub fn media(&self, peer: PeerId) -> Option<&[MediaTrack]> {
        self.peers.get(&peer).map(|e| e.peer.media())
    }

    /// Media datagrams of a peer that did not authenticate or decode.
    pub fn media_dropped(&self, peer: PeerId) -> u64 {
        self.peers.get(&peer).map_or(0, |e| e.media_dropped)
    }

    /// A random 32-bit value (an SSRC).
    pub fn random_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.provider.random.fill(&mut b);
        u32::from_be_bytes(b)
    }

    /// Protects an RTP packet (in place: it is given away) and sends it to a
    /// connected media peer.
    pub fn send_rtp(&mut self, peer: PeerId, packet: Vec<u8>) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        let s = e.srtp.as_mut().ok_or(HostError::NoSrtp)?;
        let d = s.outbound.protect_rtp_owned(packet)?;
        self.send_protected(peer, d)
    }

    /// Protects an RTCP packet and sends it to a connected media peer; a bare
    /// feedback packet goes out compound unless the peer negotiated
    /// `a=rtcp-rsize` (RFC 5506 §5).
    pub fn send_rtcp(&mut self, peer: PeerId, packet: &[u8]) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        // Reduced-size (a bare PLI or NACK) only to a peer that negotiated it.
        let rsize = e.peer.media().iter().all(|t| t.rtcp_rsize);
        let compound;
        let packet = if rsize {
            packet
        } else {
            compound = crate::rtp::compound(packet, "softbus");
            &compound
        };
        let s = e.srtp.as_mut().ok_or(HostError::NoSrtp)?;
        let d = s.outbound.protect_rtcp(packet)?;
        self.send_protected(peer, d)
    }

    fn send_protected(&mut self, peer: PeerId, d: Vec<u8>) -> Result<(), HostError> {
        let e = self.peers.get_mut(&peer).ok_or(HostError::UnknownPeer)?;
        if !e.peer.send_media(d) {
            return Err(HostError::NoSrtp);
        }
        // Straight out: nothing else of this peer is waiting behind it.
        while let Some((via, destination, payload)) = e.peer.poll_transmit_via() {
            if via == Via::Host {
                self.transmits.push_back(Datagram {
                    source: self.cfg.local,
                    destination,
                    payload,
                });
            } else {
                self.gather.send(
                    None,
                    via,
                    destination,
                    &payload,
                    self.provider.hmac.as_ref(),
                );
                flush_gathered(&mut self.gather, &mut self.transmits, self.cfg.local);
            }
        }
        Ok(())
    }

    /// The remote address of a peer's selected pair.
    pub fn remote(&self, peer: PeerId) -> Option<SocketAddr> {
        self.peers.get(&peer).and_then(|e| e.peer.selected())
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// A check for a peer connection this side closed gets an error response.
    fn answer_closed(&mut self, now: Instant, via: Via, from: SocketAddr, data: &[u8]) {
        while self.tombstones.front().is_some_and(|t| t.until <= now) {
            self.tombstones.pop_front();
        }
        if classify(data) != PacketKind::Stun {
            return;
        }
        let Ok(m) = Message::parse(data) else { return };
        let Some(local) = m.username().and_then(|u| u.split_once(':')).map(|u| u.0) else {
            return;
        };
        let Some(t) = self.tombstones.iter().find(|t| t.ufrag == local) else {
            return;
        };
        let Some(payload) =
            crate::ice::closed_response(&m, &t.ufrag, &t.pwd, self.provider.hmac.as_ref())
        else {
            return;
        };
        if via == Via::Host {
            self.transmits.push_back(Datagram {
                source: self.cfg.local,
                destination: from,
                payload,
            });
        } else {
            // Through the relay the check came by.
            self.gather
                .send(Some(now), via, from, &payload, self.provider.hmac.as_ref());
            flush_gathered(&mut self.gather, &mut self.transmits, self.cfg.local);
        }
    }

    fn remove(&mut self, now: Instant, id: PeerId, reason: CloseReason) {
        let Some(e) = self.peers.remove(&id) else {
            return;
        };
        self.by_addr.retain(|_, p| *p != id);
        if reason.told_peer() {
            // The ICE session in force, and those before restarts: a remote
            // may still check on an earlier one's pairs.
            for (ufrag, pwd) in e.earlier.into_iter().chain([(e.ufrag, e.pwd)]) {
                if self.tombstones.len() >= self.cfg.max_peers * (1 + EARLIER_CREDENTIALS) {
                    self.tombstones.pop_front();
                }
                self.tombstones.push_back(Tombstone {
                    ufrag,
                    pwd,
                    until: now + TOMBSTONE,
                });
            }
        }
        self.events
            .push_back(HostEvent::PeerClosed { peer: id, reason });
    }

    /// Moves a peer's output into the host's queues; a closed peer is removed.
    fn drain(&mut self, now: Instant, id: PeerId) {
        let Some(e) = self.peers.get_mut(&id) else {
            return;
        };
        if let Some(now_at) = e.peer.selected() {
            e.connect_by = None;
            if e.remote.is_some_and(|was| was != now_at) {
                self.events.push_back(HostEvent::Moved {
                    peer: id,
                    remote: now_at,
                });
            }
            e.remote = Some(now_at);
        }
        let source = self.cfg.local;
        while let Some((via, destination, payload)) = e.peer.poll_transmit_via() {
            if via == Via::Host {
                self.transmits.push_back(Datagram {
                    source,
                    destination,
                    payload,
                });
            } else {
                self.gather.send(
                    Some(now),
                    via,
                    destination,
                    &payload,
                    self.provider.hmac.as_ref(),
                );
                flush_gathered(&mut self.gather, &mut self.transmits, source);
            }
        }
        let mut closed = None;
        while let Some(ev) = e.peer.poll_event() {
            self.events.push_back(match ev {
                PeerEvent::Connected if !e.peer.media().is_empty() && e.srtp.is_none() => {
                    // Media without DTLS-SRTP keys cannot flow: loud, not silent.
                    e.peer.close_because(
                        now,
                        CloseReason::Dtls(crate::dtls::DtlsError::NoSrtpProfile),
                    );
                    continue;
                }
                PeerEvent::Connected => HostEvent::Connected { peer: id },
                PeerEvent::ChannelOpen { id: c, label } => HostEvent::ChannelOpen {
                    peer: id,
                    channel: ChannelId(c),
                    label,
                },
                PeerEvent::Message {
                    id: c,
                    binary,
                    data,
                } => HostEvent::Message {
                    peer: id,
                    channel: ChannelId(c),
                    binary,
                    data,
                },
                PeerEvent::ChannelClosed { id: c } => HostEvent::ChannelClosed {
                    peer: id,
                    channel: ChannelId(c),
                },
                PeerEvent::Closed(reason) => {
                    closed = Some(reason);
                    continue;
                }
                PeerEvent::SrtpKeys(k) if !e.peer.media().is_empty() => {
                    let srtp = &self.provider.srtp;
                    match (
                        SrtpContext::from_dtls(&k, false, srtp()),
                        SrtpContext::from_dtls(&k, true, srtp()),
                    ) {
                        (Ok(inbound), Ok(outbound)) => {
                            e.srtp = Some(Box::new(Srtp { inbound, outbound }))
                        }
                        (Err(err), _) | (_, Err(err)) => {
                            tracing::warn!(peer = id.0, error = %err, "SRTP keys refused");
                            e.peer.close_because(
                                now,
                                CloseReason::Dtls(crate::dtls::DtlsError::NoSrtpProfile),
                            );
                        }
                    }
                    continue;
                }
                PeerEvent::Media(d) => {
                    let Some(s) = e.srtp.as_mut() else { continue };
                    // RFC 5761 §4: RTCP packet types 192..=223 in the second byte.
                    let rtcp = d.get(1).is_some_and(|b| (192..=223).contains(b));
                    let r = if rtcp {
                        s.inbound.unprotect_rtcp(&d)
                    } else {
                        s.inbound.unprotect_rtp_owned(d)
                    };
                    match r {
                        Ok(packet) if rtcp => HostEvent::Rtcp { peer: id, packet },
                        Ok(packet) => HostEvent::Rtp { peer: id, packet },
                        Err(err) => {
                            // Costs only its sender: counted, dropped.
                            e.media_dropped += 1;
                            tracing::trace!(peer = id.0, error = %err, "media datagram dropped");
                            continue;
                        }
                    }
                }
                // A data-only peer has no use for SRTP keys.
                PeerEvent::SrtpKeys(_) => continue,
            });
        }
        if let Some(reason) = closed {
            self.remove(now, id, reason);
        }
    }
}

/// The gatherer's datagrams (for its servers), from the host socket.
fn flush_gathered(gather: &mut Gatherer, transmits: &mut VecDeque<Datagram>, source: SocketAddr) {
    while let Some((server, payload)) = gather.poll_transmit() {
        transmits.push_back(Datagram {
            source,
            destination: server,
            payload,
        });
    }
}
