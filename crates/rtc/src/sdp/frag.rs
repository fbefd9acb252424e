//! Trickle ICE fragments (`application/trickle-ice-sdpfrag`, RFC 8840) as
//! WHIP and WHEP `PATCH` bodies carry them (RFC 9725 §4.3): credentials,
//! candidates, end-of-candidates. Lines other than those are skipped.

use super::{Candidate, SdpError};
use std::net::SocketAddr;

/// Largest fragment accepted.
pub const MAX_FRAGMENT: usize = 16 * 1024;
/// Most candidates one fragment may carry.
pub const MAX_FRAGMENT_CANDIDATES: usize = 32;

/// A parsed fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrickleFragment {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    pub candidates: Vec<Candidate>,
    pub end_of_candidates: bool,
}

impl TrickleFragment {
    /// Parses a fragment; a malformed `a=candidate` line is an error, as is
    /// anything over the limits.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_FRAGMENT {
            return Err(SdpError::TooLarge(text.len()));
        }
        let mut f = Self::default();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(v) = line.strip_prefix("a=candidate:") {
                if f.candidates.len() >= MAX_FRAGMENT_CANDIDATES {
                    return Err(SdpError::TooMany);
                }
                f.candidates.push(Candidate::parse(v)?);
            } else if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                f.ice_ufrag = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                f.ice_pwd = Some(v.to_owned());
            } else if line == "a=end-of-candidates" {
                f.end_of_candidates = true;
            }
        }
        Ok(f)
    }

    /// The candidates a host can check: UDP, component 1, an IP address
    /// (an mDNS name cannot be resolved here).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.candidates
            .iter()
            .filter(|c| c.transport.eq_ignore_ascii_case("udp") && c.component == 1)
            .filter_map(|c| c.ip().map(|ip| SocketAddr::new(ip, c.port)))
            .collect()
    }
}

/// Writes a fragment with credentials and candidates.
pub fn write_fragment(ufrag: &str, pwd: &str, candidates: &[Candidate], end: bool) -> String {
    let mut s = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    for c in candidates {
        s.push_str(&format!("a=candidate:{}\r\n", c.to_value()));
    }
    if end {
        s.push_str("a=end-of-candidates\r\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_parses_and_bad_or_oversized_ones_are_refused() {
        let f = TrickleFragment::parse(
            "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef01234567\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host\r\na=candidate:2 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active\r\na=candidate:3 1 udp 1 x.local 5001 typ host\r\na=end-of-candidates\r\n",
        )
        .unwrap();
        assert_eq!(f.ice_ufrag.as_deref(), Some("abcd"));
        assert!(f.end_of_candidates);
        assert_eq!(f.candidates.len(), 3);
        // Only UDP with an IP address can be checked.
        assert_eq!(f.addresses(), vec!["10.0.0.2:5000".parse().unwrap()]);

        let line = "a=candidate:1 1 udp 1 10.0.0.2 5000 typ host\r\n";
        assert_eq!(
            TrickleFragment::parse(&line.repeat(MAX_FRAGMENT_CANDIDATES + 1)),
            Err(SdpError::TooMany)
        );
        assert!(TrickleFragment::parse(&line.repeat(MAX_FRAGMENT_CANDIDATES)).is_ok());
        let big = "x".repeat(MAX_FRAGMENT + 1);
        assert_eq!(
            TrickleFragment::parse(&big),
            Err(SdpError::TooLarge(MAX_FRAGMENT + 1))
        );
        assert!(TrickleFragment::parse("a=candidate:1 1 udp\r\n").is_err());
    }

    #[test]
    fn a_written_fragment_parses_back() {
        let c = Candidate::host("1", "10.0.0.9:7000".parse().unwrap(), 5);
        let text = write_fragment("u", "p", &[c], true);
        let f = TrickleFragment::parse(&text).unwrap();
        assert_eq!(
            (f.ice_ufrag.as_deref(), f.ice_pwd.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(f.addresses(), vec!["10.0.0.9:7000".parse().unwrap()]);
        assert!(f.end_of_candidates);
    }
}
