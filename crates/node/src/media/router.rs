//! The router: streams, who publishes, who watches. It admits publishers and
//! viewers (with the node's limits), fans each publisher packet out to the
//! stream's connected viewers, passes viewers' keyframe requests and NACKs to
//! the stream's source, and ends streams whose publisher did not come back.

use super::publisher::Publisher;
use super::viewer::{self, Out, Viewer};
use super::{check_stream_name, MediaEvent, MediaLimits, MediaRefusal, MediaTransmit, StreamInfo};
use crate::Principal;
use softbus_rtc::host::PeerId;
use softbus_rtc::peer::{CloseReason, MediaTrack, SendPlan};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

struct Stream {
    owner: Principal,
    publisher: Option<PeerId>,
    live: bool,
    source: Publisher,
    viewers: BTreeSet<PeerId>,
    /// The publisher left: the stream ends then unless one comes back.
    grace_until: Option<Instant>,
    packets_in: u64,
    bytes_in: u64,
}

/// SSRCs for viewers: SplitMix64 from the seed given at construction. An
/// SSRC must be unlikely to collide, not secret (SRTP protects the media).
struct Ssrcs(u64);

impl Ssrcs {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

/// The relay: streams, publishers and viewers.
pub struct Relay {
    limits: MediaLimits,
    streams: BTreeMap<String, Stream>,
    publishers: HashMap<PeerId, String>,
    viewers: HashMap<PeerId, Viewer>,
    events: VecDeque<MediaEvent>,
    /// Drained by the node after every call.
    transmits: VecDeque<MediaTransmit>,
    ssrcs: Ssrcs,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("streams", &self.streams.len())
            .field("viewers", &self.viewers.len())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay with no streams; `seed` is its randomness (viewers' SSRCs).
    pub fn new(limits: MediaLimits, seed: u64) -> Self {
        Self {
            limits,
            streams: BTreeMap::new(),
            publishers: HashMap::new(),
            viewers: HashMap::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            ssrcs: Ssrcs(seed),
        }
    }

    pub fn limits(&self) -> &MediaLimits {
        &self.limits
    }

    /// Peer connections of the relay: publishers and viewers.
    pub fn peer_count(&self) -> usize {
        self.publishers.len() + self.viewers.len()
    }

    /// Whether `peer` is a publisher or a viewer.
    pub fn has_peer(&self, peer: PeerId) -> bool {
        self.publishers.contains_key(&peer) || self.viewers.contains_key(&peer)
    }

    /// Next event, oldest first.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// Next packet to send or peer to close.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.transmits.pop_front()
    }

    /// Streams with their publisher and viewers.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.streams
            .iter()
            .map(|(name, s)| StreamInfo {
                stream: name.clone(),
                publisher: s.publisher.map(|p| p.0),
                live: s.live,
                tracks: s.source.kinds(),
                viewers: s
                    .viewers
                    .iter()
                    .filter_map(|p| self.viewers.get(p).map(|v| v.info(*p)))
                    .collect(),
                packets_in: s.packets_in,
                bytes_in: s.bytes_in,
            })
            .collect()
    }

    /// WHIP, before the offer is answered: whether `owner` may publish
    /// `stream`. A stream whose publisher left within the grace period takes
    /// one of the same credential only.
    pub fn check_publish(&self, stream: &str, owner: &Principal) -> Result<(), MediaRefusal> {
        check_stream_name(stream)?;
        match self.streams.get(stream) {
            Some(s) if s.publisher.is_some() || s.owner != *owner => {
                Err(MediaRefusal::Busy(stream.to_owned()))
            }
            None if self.streams.len() >= self.limits.max_streams => {
                Err(MediaRefusal::TooManyStreams(self.limits.max_streams))
            }
            _ => Ok(()),
        }
    }

    /// WHIP, once answered: `peer` publishes `stream` with the tracks it
    /// negotiated; the stream's viewers follow it.
    pub fn add_publisher(
        &mut self,
        peer: PeerId,
        stream: &str,
        owner: Principal,
        media: &[MediaTrack],
    ) {
        self.publishers.insert(peer, stream.to_owned());
        let s = self
            .streams
            .entry(stream.to_owned())
            .or_insert_with(|| Stream {
                owner,
                publisher: None,
                live: false,
                source: Publisher::empty(),
                viewers: BTreeSet::new(),
                grace_until: None,
                packets_in: 0,
                bytes_in: 0,
            });
        s.publisher = Some(peer);
        s.source.set_tracks(media, self.limits.cache_packets);
        for p in &s.viewers {
            if let Some(v) = self.viewers.get_mut(p) {
                v.follow(&s.source);
            }
        }
    }

    /// WHEP, before the offer is answered: what a viewer of `stream` is sent
    /// (the publisher's tracks, fresh SSRCs), or why it may not watch.
    pub fn plan_viewer(&mut self, stream: &str) -> Result<SendPlan, MediaRefusal> {
        check_stream_name(stream)?;
        let Some(s) = self
            .streams
            .get(stream)
            .filter(|s| !s.source.tracks().is_empty())
        else {
            return Err(MediaRefusal::NoSuchStream(stream.to_owned()));
        };
        if s.viewers.len() >= self.limits.max_viewers {
            return Err(MediaRefusal::TooManyViewers(self.limits.max_viewers));
        }
        if self.viewers.len() >= self.limits.max_viewers_total {
            return Err(MediaRefusal::TooManyViewersInAll(
                self.limits.max_viewers_total,
            ));
        }
        let ssrcs = &mut self.ssrcs;
        Ok(viewer::plan(stream, &s.source, || ssrcs.next()))
    }

    /// WHEP, once answered: `peer` watches `stream` with the tracks it
    /// negotiated.
    pub fn add_viewer(
        &mut self,
        peer: PeerId,
        stream: &str,
        who: &Principal,
        media: &[MediaTrack],
    ) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        s.viewers.insert(peer);
        self.viewers
            .insert(peer, Viewer::new(stream, who, media, &s.source));
    }

    /// A media peer connected.
    pub fn handle_connected(&mut self, now: Instant, peer: PeerId) {
        if let Some(name) = self.publishers.get(&peer) {
            let Some(s) = self.streams.get_mut(name) else {
                return;
            };
            let resumed = s.grace_until.take().is_some();
            s.live = true;
            self.events.push_back(MediaEvent::PublisherJoined {
                stream: name.clone(),
                peer,
                who: s.owner.name().to_owned(),
                auth: s.owner.method(),
                resumed,
                tracks: s.source.kinds(),
            });
            if !s.viewers.is_empty() {
                let name = name.clone();
                self.request_keyframe(now, &name);
            }
            return;
        }
        let Some(v) = self.viewers.get_mut(&peer) else {
            return;
        };
        v.connected = true;
        let name = v.stream.clone();
        self.events.push_back(MediaEvent::ViewerJoined {
            stream: name.clone(),
            peer,
            who: v.who.clone(),
            auth: v.auth,
        });
        // A new viewer can decode nothing before a keyframe.
        self.request_keyframe(now, &name);
    }

    /// A PLI to the stream's connected publisher, at most one per interval.
    fn request_keyframe(&mut self, now: Instant, name: &str) {
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        let (Some(publisher), true) = (s.publisher, s.live) else {
            return;
        };
        s.source.request_keyframe(now);
        drain_publisher(&mut self.transmits, publisher, &mut s.source);
    }

    /// RTP from a media peer: a publisher's packets go to every connected
    /// viewer of its stream; viewers send no media.
    pub fn handle_rtp(&mut self, now: Instant, peer: PeerId, packet: &[u8]) {
        let Some(name) = self.publishers.get(&peer) else {
            return;
        };
        let Some(s) = self.streams.get_mut(name) else {
            return;
        };
        if s.publisher != Some(peer) {
            return;
        }
        let Some((kind, packet)) = s.source.handle_rtp(now, packet) else {
            return;
        };
        s.packets_in += 1;
        s.bytes_in += packet.len() as u64;
        for vp in &s.viewers {
            let Some(v) = self.viewers.get_mut(vp).filter(|v| v.connected) else {
                continue;
            };
            v.handle_rtp(kind, &packet);
            drain_viewer(&mut self.transmits, *vp, v);
        }
    }

    /// RTCP from a media peer: a publisher's sender reports are translated
    /// for each viewer; a viewer's keyframe requests and NACKs are served.
    pub fn handle_rtcp(&mut self, now: Instant, peer: PeerId, packet: &[u8]) {
        if let Some(name) = self.publishers.get(&peer) {
            let Some(s) = self.streams.get_mut(name) else {
                return;
            };
            for sr in s.source.handle_rtcp(packet) {
                for vp in &s.viewers {
                    let Some(v) = self.viewers.get_mut(vp).filter(|v| v.connected) else {
                        continue;
                    };
                    v.sender_report(&sr);
                    drain_viewer(&mut self.transmits, *vp, v);
                }
            }
            return;
        }
        let Some(v) = self.viewers.get_mut(&peer) else {
            return;
        };
        let Some(s) = self.streams.get(&v.stream) else {
            return;
        };
        let keyframe = v.handle_rtcp(now, packet, &s.source, self.limits.rtx_per_second);
        drain_viewer(&mut self.transmits, peer, v);
        if keyframe {
            let name = v.stream.clone();
            self.request_keyframe(now, &name);
        }
    }

    /// A media peer closed. A publisher leaves its stream waiting for the
    /// grace period; a viewer just leaves.
    pub fn handle_closed(&mut self, now: Instant, peer: PeerId, reason: &CloseReason) {
        if let Some(name) = self.publishers.remove(&peer) {
            if let Some(s) = self.streams.get_mut(&name) {
                if s.publisher == Some(peer) {
                    s.publisher = None;
                    s.live = false;
                    // A publisher that fails to connect while the stream waits
                    // does not extend its wait.
                    s.grace_until.get_or_insert(now + self.limits.grace);
                    self.events.push_back(MediaEvent::PublisherLeft {
                        stream: name,
                        peer,
                        reason: reason.clone(),
                    });
                }
            }
            return;
        }
        if let Some(v) = self.viewers.remove(&peer) {
            if let Some(s) = self.streams.get_mut(&v.stream) {
                s.viewers.remove(&peer);
            }
            if v.connected {
                self.events.push_back(MediaEvent::ViewerLeft {
                    stream: v.stream,
                    peer,
                    reason: reason.clone(),
                });
            }
        }
    }

    /// Ends streams whose grace ran out (BYE, then each viewer closed), sends
    /// keyframe requests held back by the interval, and NACKs publishers for
    /// what they lost on the way.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| !s.live && s.grace_until.is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            let Some(s) = self.streams.remove(&name) else {
                continue;
            };
            for vp in &s.viewers {
                if let Some(mut v) = self.viewers.remove(vp) {
                    v.bye();
                    drain_viewer(&mut self.transmits, *vp, &mut v);
                    if v.connected {
                        self.events.push_back(MediaEvent::ViewerLeft {
                            stream: name.clone(),
                            peer: *vp,
                            reason: CloseReason::StreamEnded,
                        });
                    }
                }
                self.transmits.push_back(MediaTransmit::Close {
                    peer: *vp,
                    reason: CloseReason::StreamEnded,
                });
            }
            // A publisher still connecting when the wait ran out goes too.
            if let Some(p) = s.publisher {
                self.publishers.remove(&p);
                self.transmits.push_back(MediaTransmit::Close {
                    peer: p,
                    reason: CloseReason::StreamEnded,
                });
            }
            self.events
                .push_back(MediaEvent::StreamEnded { stream: name });
        }
        let pending: Vec<String> = self
            .streams
            .iter()
            .filter(|(_, s)| s.source.keyframe_due(now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in pending {
            self.request_keyframe(now, &name);
        }
        for s in self.streams.values_mut() {
            let (Some(publisher), true) = (s.publisher, s.live) else {
                continue;
            };
            s.source.handle_timeout(now);
            drain_publisher(&mut self.transmits, publisher, &mut s.source);
        }
    }

    /// The relay's next timer: a stream's grace running out, or a connected
    /// publisher's keyframe request or NACK.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.streams
            .values()
            .flat_map(|s| {
                [
                    s.grace_until.filter(|_| !s.live),
                    s.live.then(|| s.source.poll_timeout()).flatten(),
                ]
            })
            .flatten()
            .min()
    }
}

/// Moves what a publisher queued into the relay's output.
fn drain_publisher(out: &mut VecDeque<MediaTransmit>, peer: PeerId, p: &mut Publisher) {
    while let Some(packet) = p.poll_transmit() {
        out.push_back(MediaTransmit::Rtcp { peer, packet });
    }
}

/// Moves what a viewer queued into the relay's output.
fn drain_viewer(out: &mut VecDeque<MediaTransmit>, peer: PeerId, v: &mut Viewer) {
    while let Some(o) = v.poll_transmit() {
        out.push_back(match o {
            Out::Rtp(packet) => MediaTransmit::Rtp { peer, packet },
            Out::Rtcp(packet) => MediaTransmit::Rtcp { peer, packet },
        });
    }
}
