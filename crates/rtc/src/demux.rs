//! RFC 7983 demultiplexing of what arrives on one UDP port by its first byte.

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// 0..=3
    Stun,
    /// 16..=19
    Zrtp,
    /// 20..=63
    Dtls,
    /// 64..=79 (TURN channel data)
    TurnChannel,
    /// 128..=191
    RtpOrRtcp,
    /// Anything else: dropped.
    Unknown,
}

/// Classifies a datagram (an empty one is `Unknown`).
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::TurnChannel,
        Some(128..=191) => PacketKind::RtpOrRtcp,
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let kinds: Vec<_> = [
            0u8, 3, 4, 16, 19, 20, 22, 63, 64, 79, 80, 127, 128, 191, 192, 255,
        ]
        .iter()
        .map(|b| classify(&[*b]))
        .collect();
        use PacketKind::*;
        assert_eq!(
            kinds,
            vec![
                Stun,
                Stun,
                Unknown,
                Zrtp,
                Zrtp,
                Dtls,
                Dtls,
                Dtls,
                TurnChannel,
                TurnChannel,
                Unknown,
                Unknown,
                RtpOrRtcp,
                RtpOrRtcp,
                Unknown,
                Unknown
            ]
        );
        assert_eq!(classify(&[]), Unknown);
    }
}
