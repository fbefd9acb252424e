//! ICE server URLs (`stun:` RFC 7064, `turn:` RFC 7065), their credentials,
//! and coturn's time-limited "TURN REST API" credentials.

use super::TurnTransport;
use crate::crypto::Hmac;
use std::fmt;

/// Default port of `stun:` and `turn:`.
pub const DEFAULT_PORT: u16 = 3478;
/// Default port of `stuns:` and `turns:`.
pub const DEFAULT_TLS_PORT: u16 = 5349;
/// Longest URL accepted.
pub const MAX_URL: usize = 512;

/// The scheme of an ICE server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Stun,
    Stuns,
    Turn,
    Turns,
}

impl Scheme {
    /// Whether it names a TURN server.
    pub fn is_turn(self) -> bool {
        matches!(self, Scheme::Turn | Scheme::Turns)
    }

    /// Whether it runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Stuns | Scheme::Turns)
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }
}

/// Why a URL is not an ICE server URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    #[error("longer than {MAX_URL} bytes")]
    TooLong,
    #[error("the scheme must be stun:, stuns:, turn: or turns:")]
    Scheme,
    #[error("no host")]
    NoHost,
    #[error("bad host {0:?}")]
    Host(String),
    #[error("bad port {0:?}")]
    Port(String),
    #[error("transport must be udp or tcp, not {0:?}")]
    Transport(String),
    #[error("{0:?} takes no query (RFC 7064)")]
    Query(&'static str),
    #[error("a stuns:/turns: server runs over TLS, so its transport is tcp")]
    TlsOverUdp,
}

/// One ICE server: where it is and how it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServerUrl {
    pub scheme: Scheme,
    /// A host name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// How the server is reached (`?transport=`; TLS implies TCP).
    pub transport: TurnTransport,
}

impl IceServerUrl {
    /// Parses `stun:HOST[:PORT]`, `stuns:…`, `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:…`.
    pub fn parse(s: &str) -> Result<Self, UrlError> {
        if s.len() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UrlError::Scheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => Scheme::Stun,
            "stuns" => Scheme::Stuns,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(UrlError::Scheme),
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let mut transport = if scheme.is_tls() {
            TurnTransport::Tcp
        } else {
            TurnTransport::Udp
        };
        if let Some(q) = query {
            if !scheme.is_turn() {
                return Err(UrlError::Query(scheme.as_str()));
            }
            transport = match q.strip_prefix("transport=") {
                Some(t) if t.eq_ignore_ascii_case("udp") => TurnTransport::Udp,
                Some(t) if t.eq_ignore_ascii_case("tcp") => TurnTransport::Tcp,
                Some(t) => return Err(UrlError::Transport(t.into())),
                None => return Err(UrlError::Transport(q.into())),
            };
            if scheme.is_tls() && transport == TurnTransport::Udp {
                return Err(UrlError::TlsOverUdp);
            }
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Host(authority.into()))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| UrlError::Host(h.into()))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| UrlError::Port(p.into()))?,
                ),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let name_ok = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
        if !name_ok || host.len() > 253 {
            return Err(UrlError::Host(host.into()));
        }
        let port = match port {
            None => {
                if scheme.is_tls() {
                    DEFAULT_TLS_PORT
                } else {
                    DEFAULT_PORT
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && !p.starts_with('+') => n,
                _ => return Err(UrlError::Port(p.into())),
            },
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
            transport,
        })
    }

    /// `HOST:PORT` for a resolver (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for IceServerUrl {
    /// The canonical form: `turn:` URLs always say their transport.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.authority())?;
        if self.scheme == Scheme::Turn {
            let t = match self.transport {
                TurnTransport::Udp => "udp",
                TurnTransport::Tcp => "tcp",
            };
            write!(f, "?transport={t}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for IceServerUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Self::parse(s)
    }
}

/// A username and password for TURN's long-term credential mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredential {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for TurnCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnCredential")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl TurnCredential {
    /// coturn's `use-auth-secret` credential ("TURN REST API",
    /// draft-uberti-behave-turn-rest-00): username `EXPIRY:NAME` with EXPIRY in
    /// Unix seconds, password base64(HMAC-SHA1(secret, username)).
    pub fn time_limited(secret: &[u8], name: &str, expires_unix: u64, h: &dyn Hmac) -> Self {
        use base64::Engine as _;
        let username = if name.is_empty() {
            expires_unix.to_string()
        } else {
            format!("{expires_unix}:{name}")
        };
        let mac = h.hmac_sha1(secret, &[username.as_bytes()]);
        Self {
            password: base64::engine::general_purpose::STANDARD.encode(mac),
            username,
        }
    }
}

/// A `Link` header value announcing an ICE server (RFC 9725 §4.6), with its
/// credential for TURN servers. Quotes and backslashes cannot occur in the
/// values this node makes (digits, a colon, a device name's safe characters,
/// base64); any that do are dropped rather than escaped.
pub fn link_header(url: &IceServerUrl, credential: Option<&TurnCredential>) -> String {
    let clean = |s: &str| -> String { s.chars().filter(|c| *c != '"' && *c != '\\').collect() };
    let mut v = format!("<{url}>; rel=\"ice-server\"");
    if let (true, Some(c)) = (url.scheme.is_turn(), credential) {
        v.push_str(&format!(
            "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
            clean(&c.username),
            clean(&c.password)
        ));
    }
    v
}
