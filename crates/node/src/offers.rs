//! WebRTC offers and answers through the node's signaling: the web token's,
//! a paired node's signed ones, WHIP and WHEP, and closing what they made.

use super::*;
use softbus_rtc::peer::MediaAnswer;

/// What a paired device signs with an offer: this text and the offer's
/// `a=fingerprint` value.
pub(crate) const RTC_OFFER_CONTEXT: &[u8] = b"softbus webrtc offer\0";
/// What a node signs with its answer: this, the answer's and the offer's fingerprints.
pub(crate) const RTC_ANSWER_CONTEXT: &[u8] = b"softbus webrtc answer\0";

/// The `a=fingerprint:` value of an SDP (`sha-256 ab:cd:…`). Every
/// fingerprint line must agree, so a signed one cannot sit beside another that
/// DTLS would check instead.
pub(crate) fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let mut all = sdp
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_ascii_lowercase());
    let first = all.next().filter(|v| !v.is_empty())?;
    all.all(|v| v == first).then_some(first)
}

/// How this node proves itself to another node's signaling when it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferAs {
    /// With the other node's web token (carried by the driver).
    Token,
    /// As a device paired with it: the offer's fingerprint is signed, and the
    /// answer must be signed by the node we are paired with.
    Paired,
}

/// How a session this node opened is ended; the driver does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Our offer went with the other node's web token: ask its signaling to
    /// `DELETE` our peer connection (it then ends SCTP and DTLS toward us).
    Delete(PeerId),
    /// Our offer went as a paired device, with no web credential to `DELETE`
    /// with: end our peer connection here (SCTP SHUTDOWN, DTLS close_notify).
    ClosePeer(PeerId),
    /// A TCP session, or one on a peer connection we answered: close it.
    Session,
}

/// An offer of ours for another node's signaling.
#[derive(Debug, Clone)]
pub struct OurOffer {
    pub peer: PeerId,
    pub sdp: String,
    /// Our signature over its fingerprint, for `OfferAs::Paired`.
    pub signature: Option<[u8; 64]>,
}

impl Node {
    /// Client role: an offer to post to another node's signaling, signed
    /// when we offer as a paired device.
    pub fn rtc_offer_as(&mut self, now: Instant, how: OfferAs) -> Result<OurOffer, NodeError> {
        let (peer, sdp) = self.rtc_offer(now)?;
        let signature = match how {
            OfferAs::Token => None,
            OfferAs::Paired => Some(self.rtc_sign_offer(&sdp)?),
        };
        Ok(OurOffer {
            peer,
            sdp,
            signature,
        })
    }

    /// How to end session `id` (see [`Ending`]).
    pub fn ending(&self, id: SessionId) -> Ending {
        match self.rtc_peer_of(id) {
            None => Ending::Session,
            Some(p) if self.principals.contains_key(&p) => Ending::Session,
            Some(p) if self.answered_by.contains_key(&p) => Ending::ClosePeer(p),
            Some(p) => Ending::Delete(p),
        }
    }

    /// Client role: the answer another node's signaling returned to our
    /// `offer`, with who signed it (its device id and signature) if anyone.
    /// With the token the answer is applied as it is; as a paired device it
    /// must be signed by the paired node, over both fingerprints.
    pub fn rtc_take_answer(
        &mut self,
        now: Instant,
        offer: &OurOffer,
        how: OfferAs,
        answer: &str,
        signed: Option<(&str, &[u8])>,
    ) -> Result<(), NodeError> {
        match (how, signed) {
            (OfferAs::Token, _) => self.rtc_apply_answer(now, offer.peer, answer),
            (OfferAs::Paired, None) => Err(NodeError::AnswerNotSigned),
            (OfferAs::Paired, Some((device, sig))) => {
                self.rtc_apply_answer_paired(now, offer.peer, &offer.sdp, answer, device, sig)
            }
        }
    }

    /// Offering role (node to node over WebRTC): an offer from this node's
    /// WebRTC port; send it to the other node's signaling, then
    /// [`Node::rtc_apply_answer`].
    pub fn rtc_offer(&mut self, now: Instant) -> Result<(PeerId, String), NodeError> {
        self.has_rtc_room()?;
        Ok(self.host.offer(now)?)
    }

    /// The answer to an offer of ours.
    pub fn rtc_apply_answer(
        &mut self,
        now: Instant,
        peer: PeerId,
        answer: &str,
    ) -> Result<(), NodeError> {
        self.host.apply_answer(now, peer, answer)?;
        self.process(now);
        Ok(())
    }

    /// Answers a WebRTC offer posted by `principal`: the peer and the answer
    /// SDP. Its sessions carry the principal's identity.
    pub fn rtc_answer(
        &mut self,
        now: Instant,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.has_rtc_room()?;
        let (peer, answer) = self.host.answer(now, offer)?;
        self.principals.insert(peer, principal);
        Ok((peer, answer))
    }

    /// Answers an offer from a paired device that signed its DTLS fingerprint
    /// (node-to-node WebRTC): the peer, the answer, and our signature binding
    /// the answer's fingerprint to the offer's. The DTLS handshake then proves
    /// each side holds the certificate it signed for.
    pub fn rtc_answer_paired(
        &mut self,
        now: Instant,
        offer: &str,
        device_id: &str,
        signature: &[u8],
    ) -> Result<(PeerId, String, [u8; 64]), NodeError> {
        let offer_fp = sdp_fingerprint(offer).ok_or(NodeError::BadSignature)?;
        if !self.bus.verify_paired(
            device_id,
            &[RTC_OFFER_CONTEXT, offer_fp.as_bytes()],
            signature,
        ) {
            return Err(NodeError::BadSignature);
        }
        let (peer, answer) = self.rtc_answer(
            now,
            offer,
            Principal::Device {
                device_id: device_id.to_owned(),
            },
        )?;
        let answer_fp = sdp_fingerprint(&answer).ok_or(NodeError::BadSignature)?;
        let sig = self.bus.sign(&[
            RTC_ANSWER_CONTEXT,
            answer_fp.as_bytes(),
            offer_fp.as_bytes(),
        ])?;
        Ok((peer, answer, sig))
    }

    /// Client role: our signature of an offer of ours, for a paired node.
    pub fn rtc_sign_offer(&self, offer: &str) -> Result<[u8; 64], NodeError> {
        let fp = sdp_fingerprint(offer).ok_or(NodeError::BadSignature)?;
        Ok(self.bus.sign(&[RTC_OFFER_CONTEXT, fp.as_bytes()])?)
    }

    /// Client role: applies the answer of the paired node `device_id` to our
    /// `offer`, after checking its signature over both fingerprints.
    pub fn rtc_apply_answer_paired(
        &mut self,
        now: Instant,
        peer: PeerId,
        offer: &str,
        answer: &str,
        device_id: &str,
        signature: &[u8],
    ) -> Result<(), NodeError> {
        let (Some(offer_fp), Some(answer_fp)) = (sdp_fingerprint(offer), sdp_fingerprint(answer))
        else {
            return Err(NodeError::BadSignature);
        };
        if !self.bus.verify_paired(
            device_id,
            &[
                RTC_ANSWER_CONTEXT,
                answer_fp.as_bytes(),
                offer_fp.as_bytes(),
            ],
            signature,
        ) {
            return Err(NodeError::BadSignature);
        }
        self.rtc_apply_answer(now, peer, answer)?;
        self.answered_by.insert(peer, device_id.to_owned());
        Ok(())
    }

    /// The one decision for a credential posting a media offer (it has no
    /// peer connection or address yet).
    fn admit_posting(&self, principal: &Principal, ask: Ask<'_>) -> Result<(), NodeError> {
        self.admit(
            Transport::WebRtc,
            &Authenticated::Posting(principal.clone()),
            None,
            ask,
        )
        .map_err(NodeError::Refused)
    }

    /// WHIP: answers a publisher's offer for `stream` (receive only). A stream
    /// whose publisher left less than the grace period ago continues with it.
    pub fn whip(
        &mut self,
        now: Instant,
        stream: &str,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.admit_posting(&principal, Ask::Publish(stream))?;
        self.relay.check_publish(stream, &principal)?;
        let (peer, answer) = self.host.answer_media(now, offer, MediaAnswer::Receive)?;
        let media = self.host.media(peer).unwrap_or_default();
        self.relay
            .add_publisher(peer, stream, principal.clone(), media);
        self.principals.insert(peer, principal);
        self.process(now);
        Ok((peer, answer))
    }

    /// WHEP: answers a viewer's offer for `stream` with its publisher's tracks
    /// (send only).
    pub fn whep(
        &mut self,
        now: Instant,
        stream: &str,
        offer: &str,
        principal: Principal,
    ) -> Result<(PeerId, String), NodeError> {
        self.admit_posting(&principal, Ask::Play(stream))?;
        let plan = self.relay.plan_viewer(stream)?;
        let (peer, answer) = self
            .host
            .answer_media(now, offer, MediaAnswer::Send(plan))?;
        let media = self.host.media(peer).unwrap_or_default();
        self.relay.add_viewer(peer, stream, &principal, media);
        self.principals.insert(peer, principal);
        self.process(now);
        Ok((peer, answer))
    }

    /// Whether `by` created the peer connection `peer` and it is still there.
    pub fn rtc_owned_by(&self, peer: PeerId, by: &Principal) -> bool {
        self.host.has_peer(peer) && self.principals.get(&peer) == Some(by)
    }

    /// A `PATCH` with an `application/trickle-ice-sdpfrag` body for a peer
    /// connection `by` created: trickled candidates, or an ICE restart with
    /// new credentials (`If-Match` required), as [`Host::patch`] decides.
    /// Unknown, or another credential's: `HostError::UnknownPeer`.
    pub fn rtc_patch(
        &mut self,
        now: Instant,
        peer: PeerId,
        by: &Principal,
        if_match: Option<&str>,
        fragment: &str,
    ) -> Result<softbus_rtc::host::Patched, NodeError> {
        if !self.rtc_owned_by(peer, by) {
            return Err(HostError::UnknownPeer.into());
        }
        let frag = softbus_rtc::sdp::frag::TrickleFragment::parse(fragment)
            .map_err(|e| HostError::Peer(e.into()))?;
        let r = self.host.patch(now, peer, if_match, &frag);
        self.process(now);
        Ok(r?)
    }

    /// Candidates the other node trickled to this offering side (the
    /// fragment its `PATCH` answer carried): each is checked. Whether the
    /// fragment says gathering is over.
    pub fn rtc_take_candidates(
        &mut self,
        now: Instant,
        peer: PeerId,
        fragment: &str,
    ) -> Result<bool, NodeError> {
        let frag = softbus_rtc::sdp::frag::TrickleFragment::parse(fragment)
            .map_err(|e| HostError::Peer(e.into()))?;
        for a in frag.addresses() {
            self.host.add_remote_candidate(now, peer, a)?;
        }
        self.process(now);
        Ok(frag.end_of_candidates)
    }

    /// The principal that created an answered peer connection.
    pub fn rtc_principal(&self, peer: PeerId) -> Option<&Principal> {
        self.principals.get(&peer)
    }

    /// Closes a WebRTC peer connection and its sessions (the signaling side's
    /// `DELETE`); false if unknown.
    pub fn rtc_close(&mut self, now: Instant, peer: PeerId) -> bool {
        let closed = self.host.close(now, peer, CloseReason::Deleted);
        self.process(now);
        closed
    }

    /// `DELETE` by `by`: only the credential that created the peer connection
    /// may end it. Ok(false) if unknown.
    pub fn rtc_close_as(
        &mut self,
        now: Instant,
        peer: PeerId,
        by: &Principal,
    ) -> Result<bool, NodeError> {
        match self.principals.get(&peer) {
            Some(owner) if owner != by => Err(NodeError::NotOwner),
            // A peer we offered (node to node) has no principal: not theirs.
            None if self.host.has_peer(peer) => Err(NodeError::NotOwner),
            _ => Ok(self.rtc_close(now, peer)),
        }
    }
}
