//! CoAP message codec (RFC 7252 §3): header, token, options with extended
//! deltas and lengths, payload marker.
//!
//! [`Packet`] is a checked view over bytes; [`Message`] is the owned form with
//! `parse` / `buffer_len` / `emit`. Option numbers and message types are open:
//! unknown values survive a round trip.

use std::fmt;

/// Largest datagram softbus_lite sends or accepts (`COAP_MAX_PDU_SIZE`).
pub const MAX_PDU: usize = 1024;
/// Most options softbus_lite decodes in one message (`COAP_MAX_OPTION`).
pub const MAX_OPTIONS: usize = 16;
/// Longest token RFC 7252 allows.
pub const MAX_TOKEN: usize = 8;

/// Uri-Host (RFC 7252 §5.10).
pub const OPT_URI_HOST: u16 = 3;
/// Location-Path.
pub const OPT_LOCATION_PATH: u16 = 8;
/// Uri-Port.
pub const OPT_URI_PORT: u16 = 7;
/// Uri-Path.
pub const OPT_URI_PATH: u16 = 11;
/// Content-Format.
pub const OPT_CONTENT_FORMAT: u16 = 12;

/// Code 0.00 (empty message).
pub const CODE_EMPTY: u8 = 0x00;
/// Code 0.01 GET.
pub const CODE_GET: u8 = 0x01;
/// Code 0.02 POST.
pub const CODE_POST: u8 = 0x02;

/// Everything that can be wrong with a CoAP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoapError {
    #[error("datagram shorter than its header, token or option says")]
    Truncated,
    #[error("datagram of {0} bytes exceeds the {MAX_PDU}-byte limit")]
    TooLarge(usize),
    #[error("unsupported CoAP version {0}")]
    BadVersion(u8),
    #[error("token length {0} is reserved")]
    BadTokenLength(u8),
    #[error("option nibble 15 is reserved")]
    ReservedNibble,
    #[error("option number overflows 16 bits")]
    OptionOverflow,
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
    #[error("payload marker with an empty payload")]
    EmptyPayload,
    #[error("empty message (code 0.00) carries data")]
    EmptyNotEmpty,
    #[error("options out of order while emitting")]
    Unsorted,
}

/// CoAP message type (2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u8);

impl MessageType {
    /// Confirmable.
    pub const CON: Self = Self(0);
    /// Non-confirmable.
    pub const NON: Self = Self(1);
    /// Acknowledgement.
    pub const ACK: Self = Self(2);
    /// Reset.
    pub const RST: Self = Self(3);
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("CON"),
            1 => f.write_str("NON"),
            2 => f.write_str("ACK"),
            _ => f.write_str("RST"),
        }
    }
}

/// A checked, borrowing view of a CoAP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
    options_start: usize,
    options_end: usize,
    payload_start: usize,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the whole datagram: header, token, every option, payload marker.
    pub fn new_checked(buf: T) -> Result<Self, CoapError> {
        let b = buf.as_ref();
        if b.len() > MAX_PDU {
            return Err(CoapError::TooLarge(b.len()));
        }
        if b.len() < 4 {
            return Err(CoapError::Truncated);
        }
        let version = b[0] >> 6;
        if version != 1 {
            return Err(CoapError::BadVersion(version));
        }
        let tkl = b[0] & 0x0f;
        if usize::from(tkl) > MAX_TOKEN {
            return Err(CoapError::BadTokenLength(tkl));
        }
        let options_start = 4 + usize::from(tkl);
        if b.len() < options_start {
            return Err(CoapError::Truncated);
        }
        if b[1] == CODE_EMPTY && b.len() > 4 {
            return Err(CoapError::EmptyNotEmpty);
        }
        let mut iter = OptionIter {
            buf: &b[options_start..],
            pos: 0,
            number: 0,
            count: 0,
        };
        for opt in iter.by_ref() {
            opt?;
        }
        let options_end = options_start + iter.pos;
        // The iterator stops on the marker (or the end); skip the marker.
        let payload_start = if options_end < b.len() {
            options_end + 1
        } else {
            options_end
        };
        if options_end < b.len() && payload_start == b.len() {
            return Err(CoapError::EmptyPayload);
        }
        Ok(Self {
            buf,
            options_start,
            options_end,
            payload_start,
        })
    }

    /// Message type.
    pub fn message_type(&self) -> MessageType {
        MessageType((self.buf.as_ref()[0] >> 4) & 0x03)
    }
    /// Code byte (class << 5 | detail).
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }
    /// Message ID (big-endian).
    pub fn message_id(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }
    /// Token bytes.
    pub fn token(&self) -> &[u8] {
        &self.buf.as_ref()[4..self.options_start]
    }
    /// Options in wire order (already validated by `new_checked`).
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter {
            buf: &self.buf.as_ref()[self.options_start..self.options_end],
            pos: 0,
            number: 0,
            count: 0,
        }
    }
    /// Payload after the `0xFF` marker (empty if none).
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.payload_start..]
    }
}

/// One option as it appears in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoapOption {
    /// Option number.
    pub number: u16,
    /// Raw value.
    pub value: Vec<u8>,
}

/// Iterates options, yielding `(number, value)`; stops at the payload marker or end.
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    buf: &'a [u8],
    pos: usize,
    number: u16,
    count: usize,
}

impl<'a> OptionIter<'a> {
    fn ext(&mut self, nibble: u8) -> Result<u32, CoapError> {
        match nibble {
            0..=12 => Ok(u32::from(nibble)),
            13 => {
                let v = *self.buf.get(self.pos).ok_or(CoapError::Truncated)?;
                self.pos += 1;
                Ok(u32::from(v) + 13)
            }
            14 => {
                let hi = *self.buf.get(self.pos).ok_or(CoapError::Truncated)?;
                let lo = *self.buf.get(self.pos + 1).ok_or(CoapError::Truncated)?;
                self.pos += 2;
                Ok(u32::from(u16::from_be_bytes([hi, lo])) + 269)
            }
            _ => Err(CoapError::ReservedNibble),
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<(u16, &'a [u8]), CoapError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = *self.buf.get(self.pos)?;
        if first == 0xff {
            return None;
        }
        self.pos += 1;
        let r = (|| {
            self.count += 1;
            if self.count > MAX_OPTIONS {
                return Err(CoapError::TooManyOptions);
            }
            let delta = self.ext(first >> 4)?;
            let len = self.ext(first & 0x0f)? as usize;
            let number = u32::from(self.number) + delta;
            self.number = u16::try_from(number).map_err(|_| CoapError::OptionOverflow)?;
            let value = self
                .buf
                .get(self.pos..self.pos + len)
                .ok_or(CoapError::Truncated)?;
            self.pos += len;
            Ok((self.number, value))
        })();
        if r.is_err() {
            // Poison: no further items after an error.
            self.pos = self.buf.len();
        }
        Some(r)
    }
}

/// An owned CoAP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// CON / NON / ACK / RST.
    pub message_type: MessageType,
    /// Code byte.
    pub code: u8,
    /// Message ID.
    pub message_id: u16,
    /// Token, at most 8 bytes.
    pub token: Vec<u8>,
    /// Options, in ascending number order (stable for repeats).
    pub options: Vec<CoapOption>,
    /// Payload (without marker).
    pub payload: Vec<u8>,
}

impl Message {
    /// Parses and copies a datagram.
    pub fn parse(buf: &[u8]) -> Result<Self, CoapError> {
        let p = Packet::new_checked(buf)?;
        let mut options = Vec::new();
        for o in p.options() {
            let (number, value) = o?;
            options.push(CoapOption {
                number,
                value: value.to_vec(),
            });
        }
        Ok(Self {
            message_type: p.message_type(),
            code: p.code(),
            message_id: p.message_id(),
            token: p.token().to_vec(),
            options,
            payload: p.payload().to_vec(),
        })
    }

    /// Values of every option with this number, in order.
    pub fn option_values(&self, number: u16) -> impl Iterator<Item = &[u8]> {
        self.options
            .iter()
            .filter(move |o| o.number == number)
            .map(|o| o.value.as_slice())
    }

    /// Uri-Path segments joined by `/`.
    pub fn uri_path(&self) -> String {
        self.option_values(OPT_URI_PATH)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn ext_len(v: usize) -> usize {
        match v {
            0..=12 => 0,
            13..=268 => 1,
            _ => 2,
        }
    }

    /// Bytes `emit` will write.
    pub fn buffer_len(&self) -> usize {
        let mut n = 4 + self.token.len();
        let mut prev = 0u16;
        for o in &self.options {
            let delta = usize::from(o.number.wrapping_sub(prev));
            n += 1 + Self::ext_len(delta) + Self::ext_len(o.value.len()) + o.value.len();
            prev = o.number;
        }
        if !self.payload.is_empty() {
            n += 1 + self.payload.len();
        }
        n
    }

    /// Serializes into a new buffer. Fails on an oversize token, unsorted
    /// options, an option value longer than 65804 bytes or a message over [`MAX_PDU`].
    pub fn emit(&self) -> Result<Vec<u8>, CoapError> {
        if self.token.len() > MAX_TOKEN {
            return Err(CoapError::BadTokenLength(self.token.len() as u8));
        }
        if self.options.len() > MAX_OPTIONS {
            return Err(CoapError::TooManyOptions);
        }
        let len = self.buffer_len();
        if len > MAX_PDU {
            return Err(CoapError::TooLarge(len));
        }
        let mut out = Vec::with_capacity(len);
        out.push(0x40 | (self.message_type.0 & 3) << 4 | self.token.len() as u8);
        out.push(self.code);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.token);
        let mut prev = 0u16;
        for o in &self.options {
            if o.number < prev {
                return Err(CoapError::Unsorted);
            }
            let delta = usize::from(o.number - prev);
            let (dn, dext) = nibble(delta);
            let (ln, lext) = nibble(o.value.len());
            out.push(dn << 4 | ln);
            out.extend_from_slice(&dext);
            out.extend_from_slice(&lext);
            out.extend_from_slice(&o.value);
            prev = o.number;
        }
        if !self.payload.is_empty() {
            out.push(0xff);
            out.extend_from_slice(&self.payload);
        }
        Ok(out)
    }
}

fn nibble(v: usize) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, Vec::new()),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests;
