//! A full agent's own candidates: priorities (RFC 8445 §5.1.2) and the
//! `a=candidate` lines of host, server-reflexive and relayed addresses.

use super::Via;
use crate::sdp::Candidate;
use std::net::SocketAddr;

/// What a full ICE agent answers with beyond its host candidate.
#[derive(Debug, Clone, Default)]
pub struct FullIce {
    pub tie_breaker: u64,
    /// Server-reflexive addresses of the host socket.
    pub reflexive: Vec<SocketAddr>,
    /// Relayed addresses, each with the relay it belongs to and the address the
    /// relay saw this side at (the candidate's related address).
    pub relays: Vec<(Via, SocketAddr, SocketAddr)>,
    /// Whether gathering is over (`a=end-of-candidates`).
    pub complete: bool,
}

/// RFC 8445 §5.1.2.1 with local preference 65535, component 1.
pub fn candidate_priority(type_preference: u32) -> u32 {
    (type_preference << 24) | (65_535 << 8) | 255
}

/// Type preferences (RFC 8445 §5.1.2.2).
pub const HOST_PREFERENCE: u32 = 126;
pub const SRFLX_PREFERENCE: u32 = 100;
pub const PRFLX_PREFERENCE: u32 = 110;
pub const RELAY_PREFERENCE: u32 = 0;

/// The `a=candidate` lines of a full agent: host, server-reflexive, relayed.
pub fn local_candidates(host: SocketAddr, full: &FullIce) -> Vec<Candidate> {
    let mut v = vec![Candidate::host(
        "1",
        host,
        candidate_priority(HOST_PREFERENCE),
    )];
    for r in &full.reflexive {
        let mut c = Candidate::host("2", *r, candidate_priority(SRFLX_PREFERENCE));
        c.typ = "srflx".into();
        c.related_address = Some(host.ip().to_string());
        c.related_port = Some(host.port());
        v.push(c);
    }
    for (i, (_, relayed, mapped)) in full.relays.iter().enumerate() {
        let mut c = Candidate::host(
            &format!("{}", 3 + i),
            *relayed,
            candidate_priority(RELAY_PREFERENCE) - i as u32,
        );
        c.typ = "relay".into();
        c.related_address = Some(mapped.ip().to_string());
        c.related_port = Some(mapped.port());
        v.push(c);
    }
    v
}
