//! WebRTC data channels (RFC 8831) over SCTP (RFC 4960, via the `sctp-proto`
//! crate, see docs/adr/0005) with DCEP (RFC 8832): channels opened by either
//! side, ordered or unordered, reliable or partially reliable, text and binary
//! messages by PPI, and the max-message-size of both sides honoured.
//!
//! SCTP packets go in and out as bytes (they travel inside DTLS records); time
//! is an argument; nothing here does I/O.

pub mod dcep;

use bytes::Bytes;
use dcep::{Open, Reliability};
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier as Ppi, ReliabilityType, ServerConfig, StreamEvent,
    TransportConfig,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest message we accept by default (`a=max-message-size`).
pub const DEFAULT_MAX_MESSAGE: usize = 256 * 1024;
/// Most channels at once.
pub const MAX_CHANNELS: usize = 1024;
/// Bound of the output queues.
pub const MAX_QUEUE: usize = 4096;

/// SCTP over DTLS has no addresses; the crate wants one.
fn placeholder() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 5000))
}

/// Data channel errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    #[error("SCTP association not established")]
    NotConnected,
    #[error("no open channel {0}")]
    NoChannel(u16),
    #[error("message of {size} bytes exceeds the peer's max-message-size {max}")]
    TooLarge { size: usize, max: usize },
    #[error("too many channels")]
    TooManyChannels,
    #[error("SCTP: {0}")]
    Sctp(#[from] sctp_proto::Error),
    #[error("SCTP: {0}")]
    Connect(#[from] sctp_proto::ConnectError),
}

/// Why an SCTP association failed or was lost, as sctp-proto says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(transparent)]
pub struct Lost(#[from] pub sctp_proto::AssociationError);

// Equal reasons are equal: sctp-proto only leaves out the marker.
impl Eq for Lost {}

/// What the data channel layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The SCTP association is up.
    Connected,
    /// A channel opened (by the peer's DATA_CHANNEL_OPEN, or our open was acknowledged).
    Open {
        id: u16,
        label: String,
        protocol: String,
        ordered: bool,
        reliability: Reliability,
    },
    /// A message; `binary` tells PPI 53/57 from 51/56.
    Message {
        id: u16,
        binary: bool,
        data: Vec<u8>,
    },
    /// The peer reset the channel's stream.
    Closed { id: u16 },
    /// The association failed or was lost.
    Lost(Lost),
}

#[derive(Debug)]
struct Channel {
    label: String,
    /// Our open was acknowledged, or we acknowledged the peer's.
    acked: bool,
    /// The peer opened it (a DATA_CHANNEL_ACK from the peer applies only to
    /// channels we opened).
    incoming: bool,
}

/// The data channels of one peer connection.
pub struct DataChannels {
    endpoint: Endpoint,
    assoc: Option<(AssociationHandle, Association)>,
    dtls_client: bool,
    channels: HashMap<u16, Channel>,
    next_id: u16,
    peer_max_message: usize,
    out: VecDeque<Vec<u8>>,
    events: VecDeque<ChannelEvent>,
}

impl std::fmt::Debug for DataChannels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataChannels")
            .field("channels", &self.channels.len())
            .field("connected", &self.assoc.is_some())
            .finish()
    }
}

fn transport(max_message: usize) -> Arc<TransportConfig> {
    Arc::new(
        TransportConfig::default()
            .with_max_receive_message_size(max_message as u32)
            .with_max_send_message_size(max_message as u32),
    )
}

impl DataChannels {
    /// Data channels for the side that is DTLS client (even stream ids) or server
    /// (odd ids, RFC 8832 §6). `local_max` is our `a=max-message-size`;
    /// `peer_max` the remote one (0 means unlimited, RFC 8841).
    pub fn new(dtls_client: bool, local_max: usize, peer_max: usize) -> Self {
        let mut server = ServerConfig::new();
        server.transport = transport(local_max);
        Self {
            endpoint: Endpoint::new(Arc::new(EndpointConfig::new()), Some(Arc::new(server))),
            assoc: None,
            dtls_client,
            channels: HashMap::new(),
            next_id: if dtls_client { 0 } else { 1 },
            peer_max_message: if peer_max == 0 { usize::MAX } else { peer_max },
            out: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts the association (sends INIT). One side does this; the other answers.
    pub fn connect(&mut self, now: Instant, local_max: usize) -> Result<(), ChannelError> {
        let mut cfg = ClientConfig::new();
        cfg.transport = transport(local_max);
        let (h, a) = self.endpoint.connect(cfg, placeholder())?;
        self.assoc = Some((h, a));
        self.process(now);
        Ok(())
    }

    /// Whether the association is established.
    pub fn is_connected(&self) -> bool {
        self.assoc
            .as_ref()
            .is_some_and(|(_, a)| !a.is_handshaking() && !a.is_closed())
    }

    /// An SCTP packet from the peer (decrypted DTLS application data).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        if let Some((h, ev)) = self.endpoint.handle(
            now,
            placeholder(),
            None,
            None,
            Bytes::copy_from_slice(packet),
        ) {
            match ev {
                DatagramEvent::NewAssociation(a) => {
                    if self.assoc.is_none() {
                        self.assoc = Some((h, a));
                    }
                }
                DatagramEvent::AssociationEvent(e) => {
                    if let Some((ah, a)) = self.assoc.as_mut() {
                        if *ah == h {
                            a.handle_event(e);
                        }
                    }
                }
            }
        }
        self.process(now);
    }

    /// SCTP timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, a)) = self.assoc.as_mut() {
            a.handle_timeout(now);
        }
        self.process(now);
    }

    /// Next SCTP timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.assoc.as_ref().and_then(|(_, a)| a.poll_timeout())
    }

    /// Next SCTP packet to send inside DTLS.
    pub fn poll_packet(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    fn push_out(&mut self, p: Vec<u8>) {
        if self.out.len() < MAX_QUEUE {
            self.out.push_back(p);
        }
    }

    fn process(&mut self, now: Instant) {
        let mut received: Vec<(u16, Ppi, Vec<u8>)> = Vec::new();
        let mut packets = Vec::new();
        if let Some((h, a)) = self.assoc.as_mut() {
            while let Some(e) = a.poll_endpoint_event() {
                self.endpoint.handle_event(*h, e);
            }
            while let Some(ev) = a.poll() {
                match ev {
                    Event::Connected => self.events.push_back(ChannelEvent::Connected),
                    Event::HandshakeFailed { reason } | Event::AssociationLost { reason } => {
                        self.events.push_back(ChannelEvent::Lost(Lost(reason)))
                    }
                    Event::Stream(StreamEvent::Opened { .. }) => {
                        while a.accept_stream().is_some() {}
                    }
                    Event::Stream(StreamEvent::Readable { id }) => {
                        if let Ok(mut s) = a.stream(id) {
                            while let Ok(Some(chunks)) = s.read_sctp() {
                                let mut buf = vec![0u8; chunks.len()];
                                if chunks.read(&mut buf).is_ok() {
                                    received.push((id, chunks.ppi, buf));
                                }
                            }
                        }
                    }
                    // The peer reset its side of the stream (closed the channel),
                    // or asked us to stop sending on ours.
                    Event::Stream(
                        StreamEvent::Stopped { id, .. } | StreamEvent::Finished { id },
                    ) if self.channels.remove(&id).is_some() => {
                        self.events.push_back(ChannelEvent::Closed { id })
                    }
                    _ => {}
                }
            }
            while let Some(t) = a.poll_transmit(now) {
                if let Payload::RawEncode(v) = t.payload {
                    packets.extend(v.into_iter().map(|b| b.to_vec()));
                }
            }
        }
        while let Some(t) = self.endpoint.poll_transmit() {
            if let Payload::RawEncode(v) = t.payload {
                packets.extend(v.into_iter().map(|b| b.to_vec()));
            }
        }
        for p in packets {
            self.push_out(p);
        }
        let had_input = !received.is_empty();
        for (id, ppi, data) in received {
            self.on_message(id, ppi, data);
        }
        if had_input {
            // Replies (ACKs) queued while handling messages go out now.
            self.flush(now);
        }
    }

    fn flush(&mut self, now: Instant) {
        let mut packets = Vec::new();
        if let Some((_, a)) = self.assoc.as_mut() {
            while let Some(t) = a.poll_transmit(now) {
                if let Payload::RawEncode(v) = t.payload {
                    packets.extend(v.into_iter().map(|b| b.to_vec()));
                }
            }
        }
        for p in packets {
            self.push_out(p);
        }
    }

    fn on_message(&mut self, id: u16, ppi: Ppi, data: Vec<u8>) {
        match ppi {
            Ppi::Dcep => match data.first() {
                Some(&dcep::OPEN) => {
                    let Ok(open) = Open::parse(&data) else { return };
                    // One OPEN per stream: a repeated one is ignored.
                    if self.channels.contains_key(&id) {
                        return;
                    }
                    if self.channels.len() >= MAX_CHANNELS {
                        return;
                    }
                    if let Some((_, a)) = self.assoc.as_mut() {
                        if let Ok(mut s) = a.stream(id) {
                            let (rt, rv) = match open.reliability {
                                Reliability::Reliable => (ReliabilityType::Reliable, 0),
                                Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
                                Reliability::MaxLifetimeMs(n) => (ReliabilityType::Timed, n),
                            };
                            let _ = s.set_reliability_params(!open.ordered, rt, rv);
                        }
                    }
                    // The ACK waits for the application's decision (accept_channel);
                    // a refused channel is reset instead, so the opener learns of it.
                    self.channels.insert(
                        id,
                        Channel {
                            label: open.label.clone(),
                            acked: false,
                            incoming: true,
                        },
                    );
                    self.events.push_back(ChannelEvent::Open {
                        id,
                        label: open.label,
                        protocol: open.protocol,
                        ordered: open.ordered,
                        reliability: open.reliability,
                    });
                }
                Some(&dcep::ACK) => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        if !c.acked && !c.incoming {
                            c.acked = true;
                            let label = c.label.clone();
                            self.events.push_back(ChannelEvent::Open {
                                id,
                                label,
                                protocol: String::new(),
                                ordered: true,
                                reliability: Reliability::Reliable,
                            });
                        }
                    }
                }
                _ => {}
            },
            Ppi::String | Ppi::Binary | Ppi::StringEmpty | Ppi::BinaryEmpty
                if self.channels.contains_key(&id) =>
            {
                let binary = matches!(ppi, Ppi::Binary | Ppi::BinaryEmpty);
                let data = if matches!(ppi, Ppi::StringEmpty | Ppi::BinaryEmpty) {
                    Vec::new()
                } else {
                    data
                };
                self.events
                    .push_back(ChannelEvent::Message { id, binary, data });
            }
            _ => {}
        }
    }

    /// Opens a channel (DATA_CHANNEL_OPEN); `Open` is reported when the peer acks.
    pub fn open_channel(
        &mut self,
        now: Instant,
        label: &str,
        ordered: bool,
        reliability: Reliability,
    ) -> Result<u16, ChannelError> {
        if self.channels.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooManyChannels);
        }
        let id = self.next_id;
        let (_, a) = self.assoc.as_mut().ok_or(ChannelError::NotConnected)?;
        let mut s = a.open_stream(id, Ppi::Dcep)?;
        let (rt, rv) = match reliability {
            Reliability::Reliable => (ReliabilityType::Reliable, 0),
            Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
            Reliability::MaxLifetimeMs(n) => (ReliabilityType::Timed, n),
        };
        s.set_reliability_params(!ordered, rt, rv)?;
        let open = Open {
            ordered,
            reliability,
            priority: 0,
            label: label.to_owned(),
            protocol: String::new(),
        };
        s.write_sctp(&Bytes::from(open.emit()), Ppi::Dcep)?;
        self.next_id = self.next_id.wrapping_add(2);
        self.channels.insert(
            id,
            Channel {
                label: label.to_owned(),
                acked: false,
                incoming: false,
            },
        );
        self.flush(now);
        Ok(id)
    }

    /// Sends a message on an open channel; text goes as PPI 51 (56 if empty),
    /// binary as 53 (57 if empty).
    pub fn send(
        &mut self,
        now: Instant,
        id: u16,
        binary: bool,
        data: &[u8],
    ) -> Result<(), ChannelError> {
        if !self.channels.contains_key(&id) {
            return Err(ChannelError::NoChannel(id));
        }
        if data.len() > self.peer_max_message {
            return Err(ChannelError::TooLarge {
                size: data.len(),
                max: self.peer_max_message,
            });
        }
        let (_, a) = self.assoc.as_mut().ok_or(ChannelError::NotConnected)?;
        let mut s = a.stream(id)?;
        let (ppi, payload) = match (binary, data.is_empty()) {
            (false, false) => (Ppi::String, Bytes::copy_from_slice(data)),
            (false, true) => (Ppi::StringEmpty, Bytes::from_static(&[0])),
            (true, false) => (Ppi::Binary, Bytes::copy_from_slice(data)),
            (true, true) => (Ppi::BinaryEmpty, Bytes::from_static(&[0])),
        };
        s.write_sctp(&payload, ppi)?;
        self.flush(now);
        Ok(())
    }

    /// Accepts a channel the peer opened: DATA_CHANNEL_ACK goes out (RFC 8832 §5.2).
    pub fn accept_channel(&mut self, now: Instant, id: u16) -> Result<(), ChannelError> {
        let c = self
            .channels
            .get_mut(&id)
            .ok_or(ChannelError::NoChannel(id))?;
        if c.acked {
            return Ok(());
        }
        c.acked = true;
        let (_, a) = self.assoc.as_mut().ok_or(ChannelError::NotConnected)?;
        let mut s = a.stream(id)?;
        s.write_sctp(&Bytes::from_static(&[dcep::ACK]), Ppi::Dcep)?;
        self.flush(now);
        Ok(())
    }

    /// Closes a channel (resets its stream).
    pub fn close_channel(&mut self, now: Instant, id: u16) -> Result<(), ChannelError> {
        self.channels
            .remove(&id)
            .ok_or(ChannelError::NoChannel(id))?;
        if let Some((_, a)) = self.assoc.as_mut() {
            if let Ok(mut s) = a.stream(id) {
                let _ = s.close();
            }
        }
        self.flush(now);
        Ok(())
    }

    /// Ends the association gracefully (SHUTDOWN): the peer closes every channel.
    /// Returns whether a SHUTDOWN was queued.
    pub fn shutdown(&mut self, now: Instant) -> bool {
        let sent = self
            .assoc
            .as_mut()
            .is_some_and(|(_, a)| a.shutdown().is_ok());
        self.channels.clear();
        self.flush(now);
        sent
    }

    /// Bytes queued on a channel and not yet acknowledged (for backpressure).
    pub fn buffered_amount(&mut self, id: u16) -> usize {
        self.assoc
            .as_mut()
            .and_then(|(_, a)| a.stream(id).ok())
            .and_then(|s| s.buffered_amount().ok())
            .unwrap_or(0)
    }

    /// The label of an open channel.
    pub fn label(&self, id: u16) -> Option<&str> {
        self.channels.get(&id).map(|c| c.label.as_str())
    }

    /// Whether we are the DTLS client (even stream ids).
    pub fn is_dtls_client(&self) -> bool {
        self.dtls_client
    }
}
