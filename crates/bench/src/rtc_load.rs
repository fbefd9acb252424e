//! The benchmark's WebRTC load generator: an offering peer driven straight over
//! a UDP socket of its own (no node in between), streaming into a node's data
//! channel with a bound on unacknowledged bytes.

use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::crypto::ice_chars;
use softbus_rtc::peer::{Peer, PeerEvent};
use softbus_runtime::net::BatchUdp;
use softbus_runtime::signaling::request;
use softbus_runtime::Error;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

fn random_bytes<const N: usize>(c: &mut OpenSslCrypto) -> [u8; N] {
    let mut b = [0u8; N];
    softbus_bus::crypto::Crypto::random(c, &mut b);
    b
}

/// A data channel to a node's session server.
pub struct RtcClientSession {
    sock: BatchUdp,
    out: Vec<(SocketAddr, Vec<u8>)>,
    gso: Vec<u8>,
    peer: Peer,
    crypto: OpenSslCrypto,
    channel: u16,
    inbox: VecDeque<Vec<u8>>,
    web: String,
    /// The `Authorization` header the offer was posted with.
    auth: Vec<(&'static str, String)>,
    location: String,
    timeout: Duration,
}

impl std::fmt::Debug for RtcClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcClientSession")
            .field("channel", &self.channel)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl RtcClientSession {
    /// Offers to the node at `web` (`http://HOST:PORT`) from `local_ip` and opens a
    /// channel labelled `session`.
    pub async fn open(
        local_ip: Ipv4Addr,
        web: &str,
        token: &str,
        session: &str,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let sock = BatchUdp::new(softbus_runtime::net::bind_udp(local_ip, 0)?)?;
        let mut crypto = OpenSslCrypto::new();
        let identity = DtlsIdentity::generate()?;
        let fingerprint = identity.fingerprint("sha-256")?;
        let factory = identity.factory()?;
        let mut jsep_rng = OpenSslCrypto::new();
        let (mut peer, offer) = Peer::offer(
            sock.local_addr()?,
            &fingerprint,
            Box::new(factory),
            u64::from_le_bytes(random_bytes::<8>(&mut crypto)),
            Box::new(move |n| ice_chars(&mut jsep_rng, n)),
        )?;
        let auth = vec![("Authorization", format!("Bearer {token}"))];
        let r = request(web, "POST", "/rtc/offer", &auth, &offer, timeout).await?;
        let (status, location, answer) =
            (r.status, r.header("location").map(str::to_owned), r.body);
        if status != 201 {
            return Err(Error::Signaling {
                status,
                reason: answer.trim().to_owned(),
            });
        }
        let location = location.ok_or(Error::Closed("answer without Location"))?;
        let mut tid_rng = OpenSslCrypto::new();
        peer.apply_answer(
            Instant::now(),
            &answer,
            &crypto,
            Box::new(move || random_bytes::<12>(&mut tid_rng)),
        )?;
        let mut s = Self {
            sock,
            out: Vec::new(),
            gso: Vec::new(),
            peer,
            crypto,
            channel: u16::MAX,
            inbox: VecDeque::new(),
            web: web.to_owned(),
            auth,
            location,
            timeout,
        };
        let deadline = Instant::now() + timeout;
        s.drive_until(deadline, |_, e| matches!(e, PeerEvent::Connected))
            .await?;
        s.channel = s.peer.open_channel(Instant::now(), session)?;
        let want = s.channel;
        s.drive_until(
            deadline,
            |_, e| matches!(e, PeerEvent::ChannelOpen { id, .. } if *id == want),
        )
        .await?;
        Ok(s)
    }

    /// Pumps I/O until `done` accepts an event, the channel closes, or `deadline`.
    async fn drive_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&mut Self, &PeerEvent) -> bool,
    ) -> Result<(), Error> {
        loop {
            self.flush();
            while let Some(e) = self.peer.poll_event() {
                match &e {
                    PeerEvent::Message { id, data, .. } if *id == self.channel => {
                        self.inbox.push_back(data.clone())
                    }
                    PeerEvent::ChannelOpen { id, label } if *id != self.channel && *id % 2 == 1 => {
                        // The node never opens channels to us; ignore one if it does.
                        tracing::debug!(id, %label, "unexpected channel from the node");
                    }
                    PeerEvent::Closed(reason) => return Err(Error::PeerClosed(reason.clone())),
                    PeerEvent::ChannelClosed { id } if *id == self.channel => {
                        return Err(Error::Closed("the node closed the channel"))
                    }
                    _ => {}
                }
                if done(self, &e) {
                    return Ok(());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout("WebRTC"));
            }
            let wake = self.peer.poll_timeout().unwrap_or(deadline).min(deadline);
            tokio::select! {
                r = self.sock.recv_batch() => {
                    r?;
                    self.take_in();
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => self.peer.handle_timeout(Instant::now(), &self.crypto),
            }
        }
    }

    /// Sends one message (binary).
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        self.peer.send(Instant::now(), self.channel, true, data)?;
        // Send what that produced; acknowledgements and retransmissions are driven by recv.
        self.flush();
        Ok(())
    }

    /// Writes what the peer queued, in GSO trains.
    fn flush(&mut self) {
        while let Some(t) = self.peer.poll_transmit() {
            self.out.push(t);
        }
        self.sock.send_batch(&mut self.out, &mut self.gso);
    }

    /// Hands the last received batch to the peer.
    fn take_in(&mut self) {
        let now = Instant::now();
        for d in self.sock.received() {
            self.peer.handle_datagram(now, d.from, d.data, &self.crypto);
        }
    }

    /// Streams `msg` repeatedly for `duration`, keeping at most `max_buffered` bytes
    /// unacknowledged; returns the bytes handed to SCTP.
    pub async fn stream(
        &mut self,
        msg: &[u8],
        duration: Duration,
        max_buffered: usize,
    ) -> Result<u64, Error> {
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < duration {
            if self.peer.buffered_amount(self.channel) < max_buffered {
                self.peer.send(Instant::now(), self.channel, true, msg)?;
                sent += msg.len() as u64;
            } else {
                // Wait for acknowledgements (or a timer) before queueing more.
                let wake = self
                    .peer
                    .poll_timeout()
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_millis(5));
                tokio::select! {
                    r = self.sock.recv_batch() => {
                        r?;
                        self.take_in();
                    }
                    () = tokio::time::sleep_until(wake) => self.peer.handle_timeout(Instant::now(), &self.crypto),
                }
            }
            self.flush();
            // Take in whatever else arrived without waiting.
            while self.sock.try_recv_batch().is_ok_and(|n| n > 0) {
                self.take_in();
            }
            while let Some(e) = self.peer.poll_event() {
                if let PeerEvent::Closed(r) = e {
                    return Err(Error::PeerClosed(r));
                }
            }
        }
        Ok(sent)
    }

    /// The next message from the session server.
    pub async fn recv(&mut self) -> Result<Vec<u8>, Error> {
        if let Some(m) = self.inbox.pop_front() {
            return Ok(m);
        }
        let deadline = Instant::now() + self.timeout;
        let channel = self.channel;
        self.drive_until(
            deadline,
            |_, e| matches!(e, PeerEvent::Message { id, .. } if *id == channel),
        )
        .await?;
        self.inbox.pop_front().ok_or(Error::Closed("no message"))
    }

    /// Closes the peer connection with `DELETE` on its Location; the node then
    /// ends SCTP and DTLS toward us, and our side is dropped.
    pub async fn close(mut self) -> Result<(), Error> {
        let r = request(
            &self.web,
            "DELETE",
            &self.location,
            &self.auth,
            "",
            self.timeout,
        )
        .await?;
        let status = r.status;
        self.peer.close(Instant::now());
        if status == 204 {
            Ok(())
        } else {
            Err(Error::Signaling {
                status,
                reason: String::new(),
            })
        }
    }
}
