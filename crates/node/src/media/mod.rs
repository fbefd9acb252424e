//! The media relay of the node core: named streams, each with one WHIP
//! publisher and any number of WHEP viewers, forwarded the way mediasoup's
//! WebRtcTransport forwards (an SFU: no decoding). Three rooms:
//!
//! - the [router](Relay): streams, who publishes, who watches; it admits
//!   publishers and viewers, fans packets out and ends streams;
//! - the [publisher](publisher::Publisher): a stream's source tracks, their
//!   packet caches, uplink repair (NACKs to the publisher) and keyframe
//!   requests;
//! - the [viewer](viewer::Viewer): its sink tracks, the rewriting to its SSRC,
//!   payload types and header extension ids, sender reports, and
//!   retransmission from the publisher's cache within its own budget.
//!
//! Per viewer, sequence numbers and timestamps continue when the publisher
//! reconnects. Keyframe requests of viewers reach the publisher (at most one
//! per [`KEYFRAME_INTERVAL`]). A publisher that leaves has
//! [`MediaLimits::grace`] to come back; then its viewers get RTCP BYE and are
//! closed.
//!
//! Sans-IO like the other engines: the relay takes packets with
//! `handle_rtp`/`handle_rtcp`, timers with `handle_timeout`, and says what to
//! send with [`Relay::poll_transmit`] (the node core gives that to its WebRTC
//! host) and what happened with [`Relay::poll_event`].

mod publisher;
mod router;
mod viewer;

pub use router::Relay;

use softbus_rtc::host::PeerId;
use softbus_rtc::jsep::codecs::Codec;
use softbus_rtc::jsep::MediaKind;
use softbus_rtc::peer::{CloseReason, MediaTrack};
use std::time::Duration;

/// Keyframe requests forwarded to a publisher at most this often.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_millis(300);

/// The SSRC the relay signs its own RTCP with (PLI and NACK to publishers).
const RELAY_SSRC: u32 = 0x5F0B_0005;

/// Header extensions a viewer's answer keeps: those the relay rewrites.
/// Transport-wide CC and RID are the publisher's link's, not the viewer's.
pub const RELAYED_EXTENSIONS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "urn:3gpp:video-orientation",
];

/// Bounds of the relay (part of the node's one limits table).
#[derive(Debug, Clone)]
pub struct MediaLimits {
    /// Streams at once.
    pub max_streams: usize,
    /// Viewers of one stream.
    pub max_viewers: usize,
    /// Viewers of all streams together.
    pub max_viewers_total: usize,
    /// How long a stream waits for its publisher to come back.
    pub grace: Duration,
    /// Packets each track's cache keeps for retransmission.
    pub cache_packets: usize,
    /// Retransmissions one viewer may ask for per second; more NACKed
    /// packets are not resent (the viewer's loss, nobody else's).
    pub rtx_per_second: u32,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            max_streams: 16,
            max_viewers: 64,
            max_viewers_total: 256,
            grace: Duration::from_secs(5),
            cache_packets: 1024,
            rtx_per_second: 400,
        }
    }
}

/// Why a WHIP or WHEP request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaRefusal {
    #[error("stream names are 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")]
    BadName,
    #[error("stream {0:?} already has a publisher")]
    Busy(String),
    #[error("no stream named {0:?}")]
    NoSuchStream(String),
    #[error("stream limit of {0} reached")]
    TooManyStreams(usize),
    #[error("viewer limit of {0} reached for this stream")]
    TooManyViewers(usize),
    #[error("viewer limit of {0} reached for all streams together")]
    TooManyViewersInAll(usize),
}

/// What the relay reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A publisher connected (first, or back within the grace period).
    PublisherJoined {
        stream: String,
        peer: PeerId,
        who: String,
        auth: crate::AuthMethod,
        resumed: bool,
        tracks: Vec<String>,
    },
    /// The publisher left; the stream waits `grace` for it.
    PublisherLeft {
        stream: String,
        peer: PeerId,
        reason: CloseReason,
    },
    ViewerJoined {
        stream: String,
        peer: PeerId,
        who: String,
        auth: crate::AuthMethod,
    },
    ViewerLeft {
        stream: String,
        peer: PeerId,
        reason: CloseReason,
    },
    /// No publisher came back in time: viewers got BYE and were closed.
    StreamEnded { stream: String },
}

/// A stream's state for the dashboard and the API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StreamInfo {
    pub stream: String,
    pub publisher: Option<u64>,
    pub live: bool,
    pub tracks: Vec<String>,
    pub viewers: Vec<ViewerInfo>,
    pub packets_in: u64,
    pub bytes_in: u64,
}

/// One viewer's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ViewerInfo {
    pub peer: u64,
    pub packets: u64,
    pub bytes: u64,
    pub retransmitted: u64,
    /// NACKed packets not resent: gone from the cache, or over the budget.
    pub not_resent: u64,
}

/// What the relay asks the node to do with a media peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaTransmit {
    /// Protect and send an RTP packet.
    Rtp { peer: PeerId, packet: Vec<u8> },
    /// Protect and send an RTCP packet.
    Rtcp { peer: PeerId, packet: Vec<u8> },
    /// Close the peer connection.
    Close { peer: PeerId, reason: CloseReason },
}

/// A stream name as the URL carries it.
pub fn check_stream_name(name: &str) -> Result<(), MediaRefusal> {
    // It starts with a letter or digit: `.` and `..` in a Location would be
    // normalised by clients into another path.
    let ok = (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(MediaRefusal::BadName)
    }
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn is_rtx(c: &Codec) -> bool {
    c.encoding.eq_ignore_ascii_case("rtx")
}

fn ext_pairs(t: &MediaTrack) -> Vec<(u16, String)> {
    t.extensions.iter().map(|e| (e.id, e.uri.clone())).collect()
}
