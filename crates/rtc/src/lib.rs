//! Sans-IO WebRTC pieces for softbus (in progress; see the project's issue on the
//! WebRTC transport):
//!
//! - [`sdp`]: a lossless SDP line model (RFC 8866: unknown lines and their order
//!   survive a round trip) with typed views of what JSEP (RFC 8829) negotiates:
//!   origin, BUNDLE groups, media lines, mid, direction, ICE credentials and
//!   options, candidates (RFC 8839), fingerprints and setup (RFC 8122/8842),
//!   rtcp-mux, rtpmap/fmtp/rtcp-fb, extmap, msid, ssrc, sctp-port and
//!   max-message-size (RFC 8841).
//! - [`stun`]: STUN messages (RFC 8489) with the ICE attributes (RFC 8445):
//!   checked views, a builder, MESSAGE-INTEGRITY and FINGERPRINT.
//! - [`ice`]: the ICE-lite agent of the node's server role, with consent
//!   freshness (RFC 7675).
//! - [`demux`]: RFC 7983 classification of datagrams on one port.
//!
//! Nothing here does I/O or reads a clock; HMAC comes through [`crypto::Hmac`].
//! Every parser returns a typed error and never panics; each has a fuzz target.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod demux;
pub mod dtls;
pub mod fuzzing;
pub mod ice;
pub mod jsep;
pub mod peer;
pub mod sctp;
pub mod sdp;
pub mod stun;

/// The earlier of two optional deadlines.
pub(crate) fn earliest(
    a: Option<std::time::Instant>,
    b: Option<std::time::Instant>,
) -> Option<std::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
