//! WebRTC for a node: one UDP port shared by all answered peer connections. A
//! first ICE check is routed to its peer by the ufrag in USERNAME, later datagrams
//! by source address. Each data channel is bridged to the session server named by
//! its label.

use softbus_crypto::dtls::{DtlsIdentity, OpenSslDtlsFactory};
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::peer::{LocalParams, Peer, PeerEvent};
use softbus_rtc::sdp::SdpOffer;
use softbus_rtc::stun::Message;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Peer connections held at most.
pub const MAX_PEERS: usize = 64;
/// Source addresses remembered at most.
pub const MAX_ADDRS: usize = 1024;
/// WebRTC session ids start here (TCP session ids count from 1).
pub const FIRST_SESSION_ID: i32 = 1 << 30;

/// A data channel bridged to a session server.
#[derive(Debug, Clone)]
pub struct RtcSession {
    pub peer: u64,
    pub channel: u16,
    pub server: String,
    pub remote: Option<SocketAddr>,
}

/// What the host tells the node driver.
#[derive(Debug)]
pub enum RtcEvent {
    /// A channel opened; the driver decides whether `server` exists.
    ChannelOpen {
        peer: u64,
        channel: u16,
        label: String,
    },
    Message {
        peer: u64,
        channel: u16,
        binary: bool,
        data: Vec<u8>,
    },
    ChannelClosed {
        peer: u64,
        channel: u16,
    },
    PeerClosed {
        peer: u64,
        reason: String,
    },
}

struct Entry {
    peer: Peer,
    ufrag: String,
    remote: Option<SocketAddr>,
}

/// All WebRTC peers of a node.
pub struct RtcHost {
    identity: DtlsIdentity,
    /// Built once; each peer gets a clone (OpenSSL contexts are shared).
    factory: OpenSslDtlsFactory,
    local: SocketAddr,
    crypto: OpenSslCrypto,
    peers: HashMap<u64, Entry>,
    by_addr: HashMap<SocketAddr, u64>,
    next: u64,
}

impl std::fmt::Debug for RtcHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcHost")
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// `len` random ICE characters (RFC 8839 ice-char).
pub(crate) fn token(c: &mut OpenSslCrypto, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b = vec![0u8; len];
    softbus_bus::crypto::Crypto::random(c, &mut b);
    b.iter()
        .map(|x| char::from(ALPHABET[usize::from(*x) % 64]))
        .collect()
}

impl RtcHost {
    /// A host answering on `local` (the node's address and its WebRTC UDP port).
    pub fn new(local: SocketAddr) -> Result<Self, String> {
        let identity = DtlsIdentity::generate().map_err(|e| e.to_string())?;
        let factory = identity.factory().map_err(|e| e.to_string())?;
        Ok(Self {
            identity,
            factory,
            local,
            crypto: OpenSslCrypto::new(),
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            next: 1,
        })
    }

    /// Answers an offer; returns the peer id and the answer SDP.
    pub fn offer(&mut self, sdp: &str) -> Result<(u64, String), String> {
        if self.peers.len() >= MAX_PEERS {
            return Err("too many peer connections".into());
        }
        let offer = SdpOffer::parse(sdp).map_err(|e| e.to_string())?;
        let ufrag = token(&mut self.crypto, 8);
        let local = LocalParams {
            candidate: self.local,
            ice_ufrag: ufrag.clone(),
            ice_pwd: token(&mut self.crypto, 24),
            fingerprint: self
                .identity
                .fingerprint("sha-256")
                .map_err(|e| e.to_string())?,
            session_id: u64::from_le_bytes(
                token(&mut self.crypto, 8)
                    .as_bytes()
                    .try_into()
                    .unwrap_or([1; 8]),
            ) >> 2,
        };
        let (peer, answer) = Peer::answer(&offer, &local, Box::new(self.factory.clone()))
            .map_err(|e| e.to_string())?;
        let id = self.next;
        self.next += 1;
        self.peers.insert(
            id,
            Entry {
                peer,
                ufrag,
                remote: None,
            },
        );
        Ok((id, answer))
    }

    /// Closes a peer connection; false if there is none.
    pub fn close(&mut self, id: u64) -> bool {
        match self.peers.remove(&id) {
            Some(mut e) => {
                e.peer.close();
                self.by_addr.retain(|_, p| *p != id);
                true
            }
            None => false,
        }
    }

    fn route(&mut self, from: SocketAddr, data: &[u8]) -> Option<u64> {
        if let Some(id) = self.by_addr.get(&from) {
            return Some(*id);
        }
        let m = Message::parse(data).ok()?;
        let local_ufrag = m.username()?.split_once(':')?.0;
        let id = self
            .peers
            .iter()
            .find(|(_, e)| e.ufrag == local_ufrag)
            .map(|(id, _)| *id)?;
        if self.by_addr.len() < MAX_ADDRS {
            self.by_addr.insert(from, id);
        }
        Some(id)
    }

    /// A datagram arrived on the WebRTC port.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Some(id) = self.route(from, data) else {
            return;
        };
        if let Some(e) = self.peers.get_mut(&id) {
            e.peer.handle_datagram(now, from, data, &self.crypto);
            if e.remote.is_none() {
                e.remote = Some(from);
            }
        }
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for e in self.peers.values_mut() {
            if e.peer.poll_timeout().is_some_and(|t| t <= now) {
                e.peer.handle_timeout(now, &self.crypto);
            }
        }
    }

    /// The earliest timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|e| e.peer.poll_timeout())
            .min()
    }

    /// Sends on a channel.
    pub fn send(
        &mut self,
        now: Instant,
        peer: u64,
        channel: u16,
        binary: bool,
        data: &[u8],
    ) -> Result<(), String> {
        let e = self.peers.get_mut(&peer).ok_or("no such peer")?;
        e.peer
            .send(now, channel, binary, data)
            .map_err(|e| e.to_string())
    }

    /// Closes a channel.
    pub fn close_channel(&mut self, now: Instant, peer: u64, channel: u16) {
        if let Some(e) = self.peers.get_mut(&peer) {
            e.peer.close_channel(now, channel);
        }
    }

    /// The address a peer's checks come from.
    pub fn remote(&self, peer: u64) -> Option<SocketAddr> {
        self.peers.get(&peer).and_then(|e| e.remote)
    }

    /// Drains datagrams to send and events; closed peers are removed.
    pub fn drain(&mut self, out: &mut Vec<(SocketAddr, Vec<u8>)>, events: &mut Vec<RtcEvent>) {
        let mut dead = Vec::new();
        for (id, e) in self.peers.iter_mut() {
            while let Some(t) = e.peer.poll_transmit() {
                out.push(t);
            }
            while let Some(ev) = e.peer.poll_event() {
                events.push(match ev {
                    PeerEvent::ChannelOpen { id: channel, label } => RtcEvent::ChannelOpen {
                        peer: *id,
                        channel,
                        label,
                    },
                    PeerEvent::Message {
                        id: channel,
                        binary,
                        data,
                    } => RtcEvent::Message {
                        peer: *id,
                        channel,
                        binary,
                        data,
                    },
                    PeerEvent::ChannelClosed { id: channel } => {
                        RtcEvent::ChannelClosed { peer: *id, channel }
                    }
                    PeerEvent::Closed(reason) => {
                        dead.push(*id);
                        RtcEvent::PeerClosed { peer: *id, reason }
                    }
                    PeerEvent::Connected => continue,
                });
            }
        }
        for id in dead {
            self.peers.remove(&id);
            self.by_addr.retain(|_, p| *p != id);
        }
    }
}
