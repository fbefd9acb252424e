//! The Data Channel Establishment Protocol (RFC 8832), PPI 50.

/// DATA_CHANNEL_OPEN.
pub const OPEN: u8 = 0x03;
/// DATA_CHANNEL_ACK.
pub const ACK: u8 = 0x02;

/// Channel types (RFC 8832 §5.1): reliable or partially reliable, ordered or not.
pub const RELIABLE: u8 = 0x00;
pub const RELIABLE_UNORDERED: u8 = 0x80;
pub const PARTIAL_RELIABLE_REXMIT: u8 = 0x01;
pub const PARTIAL_RELIABLE_REXMIT_UNORDERED: u8 = 0x81;
pub const PARTIAL_RELIABLE_TIMED: u8 = 0x02;
pub const PARTIAL_RELIABLE_TIMED_UNORDERED: u8 = 0x82;

/// Longest label or protocol accepted.
pub const MAX_LABEL: usize = 1024;

/// Why a DCEP message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DcepError {
    #[error("DCEP message truncated")]
    Truncated,
    #[error("unknown DCEP message type {0:#04x}")]
    UnknownType(u8),
    #[error("unknown channel type {0:#04x}")]
    UnknownChannelType(u8),
    #[error("label or protocol too long or not UTF-8")]
    BadLabel,
}

/// Reliability of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    Reliable,
    /// At most this many retransmissions.
    MaxRetransmits(u32),
    /// Give up after this many milliseconds.
    MaxLifetimeMs(u32),
}

/// A DATA_CHANNEL_OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub ordered: bool,
    pub reliability: Reliability,
    pub priority: u16,
    pub label: String,
    pub protocol: String,
}

impl Open {
    /// Parses a DATA_CHANNEL_OPEN (message type byte included).
    pub fn parse(b: &[u8]) -> Result<Self, DcepError> {
        if b.len() < 12 {
            return Err(DcepError::Truncated);
        }
        if b[0] != OPEN {
            return Err(DcepError::UnknownType(b[0]));
        }
        let ctype = b[1];
        let priority = u16::from_be_bytes([b[2], b[3]]);
        let param = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let llen = usize::from(u16::from_be_bytes([b[8], b[9]]));
        let plen = usize::from(u16::from_be_bytes([b[10], b[11]]));
        if llen > MAX_LABEL || plen > MAX_LABEL {
            return Err(DcepError::BadLabel);
        }
        let label = b.get(12..12 + llen).ok_or(DcepError::Truncated)?;
        let protocol = b
            .get(12 + llen..12 + llen + plen)
            .ok_or(DcepError::Truncated)?;
        let (ordered, reliability) = match ctype {
            RELIABLE => (true, Reliability::Reliable),
            RELIABLE_UNORDERED => (false, Reliability::Reliable),
            PARTIAL_RELIABLE_REXMIT => (true, Reliability::MaxRetransmits(param)),
            PARTIAL_RELIABLE_REXMIT_UNORDERED => (false, Reliability::MaxRetransmits(param)),
            PARTIAL_RELIABLE_TIMED => (true, Reliability::MaxLifetimeMs(param)),
            PARTIAL_RELIABLE_TIMED_UNORDERED => (false, Reliability::MaxLifetimeMs(param)),
            t => return Err(DcepError::UnknownChannelType(t)),
        };
        Ok(Self {
            ordered,
            reliability,
            priority,
            label: String::from_utf8(label.to_vec()).map_err(|_| DcepError::BadLabel)?,
            protocol: String::from_utf8(protocol.to_vec()).map_err(|_| DcepError::BadLabel)?,
        })
    }

    /// Serializes the message.
    pub fn emit(&self) -> Vec<u8> {
        let (ctype, param) = match (self.ordered, self.reliability) {
            (true, Reliability::Reliable) => (RELIABLE, 0),
            (false, Reliability::Reliable) => (RELIABLE_UNORDERED, 0),
            (true, Reliability::MaxRetransmits(n)) => (PARTIAL_RELIABLE_REXMIT, n),
            (false, Reliability::MaxRetransmits(n)) => (PARTIAL_RELIABLE_REXMIT_UNORDERED, n),
            (true, Reliability::MaxLifetimeMs(n)) => (PARTIAL_RELIABLE_TIMED, n),
            (false, Reliability::MaxLifetimeMs(n)) => (PARTIAL_RELIABLE_TIMED_UNORDERED, n),
        };
        let mut v = vec![OPEN, ctype];
        v.extend_from_slice(&self.priority.to_be_bytes());
        v.extend_from_slice(&param.to_be_bytes());
        v.extend_from_slice(&(self.label.len() as u16).to_be_bytes());
        v.extend_from_slice(&(self.protocol.len() as u16).to_be_bytes());
        v.extend_from_slice(self.label.as_bytes());
        v.extend_from_slice(self.protocol.as_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8832 §5.1 layout, built by hand: ordered reliable, priority 256, label "chat", protocol "".
    #[test]
    fn open_bytes_and_fields() {
        let b = [
            0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 4, 0, 0, b'c', b'h', b'a', b't',
        ];
        let o = Open::parse(&b).unwrap();
        assert_eq!(
            o,
            Open {
                ordered: true,
                reliability: Reliability::Reliable,
                priority: 256,
                label: "chat".into(),
                protocol: String::new()
            }
        );
        assert_eq!(o.emit(), b);
        let p = Open {
            ordered: false,
            reliability: Reliability::MaxRetransmits(3),
            priority: 0,
            label: "x".into(),
            protocol: "p".into(),
        };
        assert_eq!(Open::parse(&p.emit()).unwrap(), p);
        let t = Open {
            ordered: true,
            reliability: Reliability::MaxLifetimeMs(500),
            priority: 0,
            label: String::new(),
            protocol: String::new(),
        };
        assert_eq!(Open::parse(&t.emit()).unwrap(), t);
    }

    #[test]
    fn rejections() {
        assert_eq!(Open::parse(&[0x03; 5]), Err(DcepError::Truncated));
        assert_eq!(
            Open::parse(&[0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DcepError::UnknownType(2))
        );
        assert_eq!(
            Open::parse(&[0x03, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DcepError::UnknownChannelType(0x7f))
        );
        assert_eq!(
            Open::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, b'a']),
            Err(DcepError::Truncated)
        );
        assert_eq!(
            Open::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff]),
            Err(DcepError::BadLabel)
        );
        assert_eq!(
            Open::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]),
            Err(DcepError::BadLabel)
        );
    }
}
