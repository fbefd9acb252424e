//! Sans-IO WebRTC for softbus:
//!
//! - [`sdp`]: a lossless SDP line model (RFC 8866: unknown lines and their order
//!   survive a round trip) with typed views of what JSEP negotiates.
//! - [`jsep`]: the offer/answer engine (RFC 8829) as libwebrtc builds it: signaling
//!   states, transceivers, mid generation and recycling, data section last, BUNDLE,
//!   ICE restart, session versions, rollback.
//! - [`stun`]: STUN (RFC 8489) with MESSAGE-INTEGRITY and FINGERPRINT.
//! - [`ice`]: the ICE-lite agent of the answering node and a full controlling agent
//!   ([`ice::agent`]) for the offering side, with consent freshness (RFC 7675).
//! - [`dtls`]: the DTLS transport state machine (mediasoup's role logic, fingerprint
//!   check, DTLS-SRTP key export) over a backend trait.
//! - [`sctp`]: data channels over SCTP (sctp-proto) with DCEP (RFC 8832).
//! - [`demux`] and [`peer`]: RFC 7983 demultiplexing and the [`peer::Peer`] facade.
//! - [`host`]: many answered peers on one port, routed by ufrag, then by address.
//! - [`rtp`]: RTP header views with RFC 8285 extensions, RTCP compound packets.
//! - [`srtp`]: SRTP and SRTCP (RFC 3711, RFC 7714), ciphers through a trait.
//! - [`rewrite`]: per-viewer rewriting, a packet cache, RTX (RFC 4588).
//!
//! Nothing here does I/O or reads a clock; HMAC comes through [`crypto::Hmac`],
//! the DTLS library through [`dtls::DtlsFactory`]. Every parser returns a typed
//! error and never panics; each has a fuzz target (`fuzz/`).
#![forbid(unsafe_code)]

pub mod crypto;
pub mod demux;
pub mod dtls;
pub mod fuzzing;
pub mod gather;
pub mod host;
pub mod ice;
pub mod jsep;
pub mod peer;
pub mod rewrite;
pub mod rtp;
pub mod sctp;
pub mod sdp;
pub mod srtp;
pub mod stun;
pub mod turn;

pub(crate) use softbus_proto::earliest;
