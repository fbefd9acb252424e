//! SDP (RFC 8866) as a lossless list of lines, with typed views.
//!
//! A description is its session-level lines followed by media sections, each a
//! list of `type=value` lines whose first is the `m=` line. Parsing keeps every
//! line verbatim, so serializing gives back the same bytes (CRLF line ends; a
//! description written with bare LF comes back with LF). Typed views read the
//! lines on demand and return typed errors for malformed values.

pub mod frag;
mod views;

use std::fmt;
pub use views::*;

/// Largest description accepted.
pub const MAX_SDP_LEN: usize = 256 * 1024;
/// Most lines accepted.
pub const MAX_LINES: usize = 8192;
/// Most media sections accepted.
pub const MAX_MEDIA: usize = 256;

/// Why a description or one of its values was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    #[error("description of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("too many lines or media sections")]
    TooMany,
    #[error("the first line must be v=0")]
    NotVersion0,
    #[error("line {line}: not of the form <letter>=<value>")]
    BadLine { line: usize },
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("missing {0}")]
    Missing(&'static str),
}

/// One `type=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

impl Line {
    /// A line `kind=value`.
    pub fn new(kind: char, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// An attribute line `a=name` or `a=name:value`.
    pub fn attribute(name: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => Self::new('a', format!("{name}:{v}")),
            None => Self::new('a', name),
        }
    }

    /// For `a=` lines, the attribute name and value.
    pub fn as_attribute(&self) -> Option<(&str, Option<&str>)> {
        if self.kind != 'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (self.value.as_str(), None),
        })
    }
}

/// One media section: its lines, the first being `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub lines: Vec<Line>,
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Session-level lines, `v=` first.
    pub session: Vec<Line>,
    /// Media sections in order.
    pub media: Vec<MediaSection>,
    /// Whether lines end with CRLF (else LF).
    crlf: bool,
}

impl SessionDescription {
    /// Parses `text`. Requires `v=0` first and `<letter>=` on every line; an empty
    /// final line is allowed.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge(text.len()));
        }
        let crlf = !text.contains('\n') || text.contains("\r\n");
        let mut session = Vec::new();
        let mut media: Vec<MediaSection> = Vec::new();
        let mut count = 0;
        for (i, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_LINES {
                return Err(SdpError::TooMany);
            }
            let mut chars = raw.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(SdpError::BadLine { line: i + 1 });
            };
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::BadLine { line: i + 1 });
            }
            let line = Line::new(kind, &raw[2..]);
            if count == 1 && (kind != 'v' || line.value != "0") {
                return Err(SdpError::NotVersion0);
            }
            if kind == 'm' {
                if media.len() >= MAX_MEDIA {
                    return Err(SdpError::TooMany);
                }
                media.push(MediaSection { lines: vec![line] });
            } else if let Some(m) = media.last_mut() {
                m.lines.push(line);
            } else {
                session.push(line);
            }
        }
        if session.is_empty() {
            return Err(SdpError::NotVersion0);
        }
        Ok(Self {
            session,
            media,
            crlf,
        })
    }

    /// All lines in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.session
            .iter()
            .chain(self.media.iter().flat_map(|m| m.lines.iter()))
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eol = if self.crlf { "\r\n" } else { "\n" };
        for l in self.lines() {
            write!(f, "{}={}{eol}", l.kind, l.value)?;
        }
        Ok(())
    }
}

/// A description received or sent as an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpOffer(pub SessionDescription);

/// A description received or sent as an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAnswer(pub SessionDescription);

impl SdpOffer {
    /// Parses an offer.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(text).map(Self)
    }
}

impl SdpAnswer {
    /// Parses an answer.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(text).map(Self)
    }
}

impl std::ops::Deref for SdpOffer {
    type Target = SessionDescription;
    fn deref(&self) -> &SessionDescription {
        &self.0
    }
}

impl std::ops::Deref for SdpAnswer {
    type Target = SessionDescription;
    fn deref(&self) -> &SessionDescription {
        &self.0
    }
}
