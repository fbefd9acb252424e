//! The WebRTC signalling client: opens sessions on another node through its
//! signaling (`POST /rtc/offer` with this node's credential; the core checks
//! the answer), and ends them as the core decides ([`softbus_node::Ending`]):
//! `DELETE` on the other node's signaling, or a close here.

use super::*;

/// How this node proves itself to another node's signaling.
#[derive(Debug, Clone)]
pub enum WebAuth {
    /// The other node's web token.
    Token(String),
    /// This device's pairing with the other node: the offer's DTLS
    /// fingerprint signed with our long-term key.
    Paired,
}

/// Headers of node-to-node signaling: the signer's device id and its
/// signature (hex) over the SDP's DTLS fingerprint.
pub const DEVICE_HEADER: &str = "softbus-device";
pub const SIGNATURE_HEADER: &str = "softbus-signature";

/// Where a session opened through another node's signaling can be ended.
#[derive(Debug)]
pub(super) struct Signaling {
    pub(super) web: String,
    pub(super) location: String,
    pub(super) timeout: Duration,
    /// The credential the offer was posted with.
    pub(super) headers: Vec<(&'static str, String)>,
}

impl SessionHandle {
    /// CloseSession, the way the core says ([`softbus_node::Ending`]): over
    /// WebRTC offered with the other node's web token, the peer connection is
    /// ended with `DELETE` on its signaling (it then ends SCTP and DTLS toward
    /// us); offered as a paired device, there is no web credential to DELETE
    /// with, so our peer connection is closed here (SCTP SHUTDOWN, DTLS
    /// close_notify); anything else closes the session.
    pub async fn close(self) -> Result<(), Error> {
        let id = self.id;
        let ending = self.node.call(move |d, _| d.node.ending(id)).await?;
        match (ending, self.signaling) {
            (Ending::Delete(_), Some(s)) => {
                let r = crate::signaling::request(
                    &s.web,
                    "DELETE",
                    &s.location,
                    &s.headers,
                    "",
                    s.timeout,
                )
                .await?;
                if r.status == 204 {
                    Ok(())
                } else {
                    Err(Error::Signaling {
                        status: r.status,
                        reason: r.body.trim().to_owned(),
                    })
                }
            }
            (Ending::Delete(p) | Ending::ClosePeer(p), _) => {
                self.node.rtc_close(p.0).await?;
                Ok(())
            }
            (Ending::Session, _) => self.node.close_session(id).await,
        }
    }
}

/// PATCHes made at most while the other node still gathers.
const TRICKLE_ROUNDS: usize = 10;
/// Between them.
const TRICKLE_EVERY: Duration = Duration::from_millis(300);

impl NodeHandle {
    /// Asks the other node for the candidates its answer lacked: a trickle
    /// `PATCH` with our credentials and end-of-candidates (ours were all in
    /// the offer), its answer's candidates checked, until it says it has
    /// gathered or [`TRICKLE_ROUNDS`] pass. A failed round ends it quietly:
    /// the answer's candidates may well be enough.
    #[allow(clippy::too_many_arguments)]
    async fn trickle_in(
        &self,
        web: &str,
        location: &str,
        headers: &[(&'static str, String)],
        offer: &str,
        etag: Option<&str>,
        peer: PeerId,
        timeout: Duration,
    ) {
        let cred = |k: &str| {
            offer
                .lines()
                .find_map(|l| l.trim_end().strip_prefix(k))
                .unwrap_or_default()
                .to_owned()
        };
        let body = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=end-of-candidates\r\n",
            cred("a=ice-ufrag:"),
            cred("a=ice-pwd:")
        );
        let mut h: Vec<(&str, String)> = headers.to_vec();
        h.push(("Content-Type", "application/trickle-ice-sdpfrag".into()));
        h.push(("If-Match", etag.unwrap_or("*").to_owned()));
        for _ in 0..TRICKLE_ROUNDS {
            let r = match crate::signaling::request(web, "PATCH", location, &h, &body, timeout)
                .await
            {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    tracing::warn!(status = r.status, reason = %r.body.trim(), "trickle PATCH refused");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "trickle PATCH failed");
                    return;
                }
            };
            let frag = r.body.clone();
            tracing::info!(
                candidates = frag.matches("a=candidate:").count(),
                "trickle: the node's candidates taken"
            );
            let done = self
                .try_call(move |d, now| d.node.rtc_take_candidates(now, peer, &frag))
                .await
                .unwrap_or(true);
            if done {
                return;
            }
            tokio::time::sleep(TRICKLE_EVERY).await;
        }
    }

    /// Opens a session to the session server `server` of the node whose web
    /// side is `web` (`http://HOST:PORT`) over WebRTC: this node offers (full
    /// ICE, DTLS, SCTP from its WebRTC port) and opens a data channel so labelled.
    pub async fn open_webrtc_session(
        &self,
        web: &str,
        server: &str,
        timeout: Duration,
        auth: WebAuth,
    ) -> Result<SessionHandle, Error> {
        let how = match auth {
            WebAuth::Token(_) => softbus_node::OfferAs::Token,
            WebAuth::Paired => softbus_node::OfferAs::Paired,
        };
        // With ICE servers the offer carries what they gave: wait for them
        // (at most the timeout; a server that never answers is left out).
        let waited = tokio::time::timeout(timeout, async {
            while !self.call(|d, _| d.node.host().gathering_done()).await? {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<(), Error>(())
        })
        .await;
        if let Ok(Err(e)) = waited {
            return Err(e);
        }
        let offer = self
            .try_call(move |d, now| d.node.rtc_offer_as(now, how))
            .await?;
        let peer = offer.peer;
        let opened = tokio::time::timeout(timeout, async {
            // Our credential as HTTP headers: the token, or our signature.
            let headers = match (&auth, &offer.signature) {
                (WebAuth::Token(t), _) => vec![("Authorization", format!("Bearer {t}"))],
                (WebAuth::Paired, sig) => vec![
                    (DEVICE_HEADER, self.info.device_id.clone()),
                    (SIGNATURE_HEADER, sig.map(hex::encode).unwrap_or_default()),
                ],
            };
            let r =
                crate::signaling::request(web, "POST", "/rtc/offer", &headers, &offer.sdp, timeout)
                    .await?;
            if r.status != 201 {
                return Err(Error::Signaling {
                    status: r.status,
                    reason: r.body.trim().to_owned(),
                });
            }
            let location = r
                .header("location")
                .map(str::to_owned)
                .ok_or(Error::Closed("answer without Location"))?;
            // Who signed the answer, as the headers say; the core decides.
            let signed = match (
                r.header(DEVICE_HEADER).map(str::to_owned),
                r.header(SIGNATURE_HEADER).and_then(|h| hex::decode(h).ok()),
            ) {
                (Some(device), Some(sig)) => Some((device, sig)),
                _ => None,
            };
            let (o, answer) = (offer.clone(), r.body.clone());
            self.call(move |d, now| {
                let signed = signed
                    .as_ref()
                    .map(|(dev, sig)| (dev.as_str(), sig.as_slice()));
                d.node.rtc_take_answer(now, &o, how, &answer, signed)
            })
            .await?
            .map_err(|e| match e {
                NodeError::AnswerNotSigned => Error::Signaling {
                    status: r.status,
                    reason: e.to_string(),
                },
                e => e.into(),
            })?;
            if !r.body.contains("a=end-of-candidates") {
                // The node still gathers: its late candidates come in the
                // answers to our trickle PATCHes (RFC 9725 §4.3).
                self.trickle_in(
                    web,
                    &location,
                    &headers,
                    &offer.sdp,
                    r.header("etag"),
                    peer,
                    timeout,
                )
                .await;
            }
            let s_headers = match &auth {
                WebAuth::Token(t) => vec![("Authorization", format!("Bearer {t}"))],
                WebAuth::Paired => vec![],
            };
            let server = server.to_owned();
            let mut s = self
                .call_later(move |d, now, tx| {
                    let r = d.node.open_rtc_session(now, peer, &server);
                    d.await_open(r, tx);
                })
                .await?;
            s.signaling = Some(Signaling {
                web: web.to_owned(),
                location,
                timeout,
                headers: s_headers,
            });
            Ok(s)
        })
        .await
        .unwrap_or(Err(Error::Timeout("WebRTC session")));
        if opened.is_err() {
            // Nothing of it stays behind on this node.
            let _ = self.rtc_close(peer.0).await;
        }
        opened
    }
}
