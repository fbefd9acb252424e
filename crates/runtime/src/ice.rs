//! ICE servers for a node: the URLs and credentials it was given, resolved
//! once at start, and the `Link: <…>; rel="ice-server"` values (RFC 9725
//! §4.6) its WebRTC answers carry, with credentials made fresh per answer
//! when a shared secret is configured.

use crate::Error;
use softbus_rtc::crypto::Hmac;
use softbus_rtc::gather::IceServer;
pub use softbus_rtc::gather::MAX_SERVERS as MAX_ICE_SERVERS;
use softbus_rtc::turn::server::link_header;
pub use softbus_rtc::turn::server::{IceServerUrl, Scheme, TurnCredential};
pub use softbus_rtc::turn::TurnTransport;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a credential handed to a browser in a `Link` header lasts.
pub const BROWSER_CREDENTIAL_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long the node's own time-limited credential lasts: it is made once at
/// start and never leaves the node.
pub const NODE_CREDENTIAL_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The name part of time-limited usernames when none is given.
pub const DEFAULT_TURN_NAME: &str = "softbus";

/// One entry of a page's `iceServers` (the RTCIceServer dictionary).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrowserIceServer {
    pub urls: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// How the node authenticates to its TURN servers.
#[derive(Clone, Default)]
pub enum TurnAuth {
    /// No TURN server, or none needs credentials.
    #[default]
    None,
    /// `--turn-username` and `--turn-credential`.
    Static(TurnCredential),
    /// `--turn-secret`: coturn's `static-auth-secret`; time-limited
    /// credentials are made from it, named `name`.
    Secret { secret: Vec<u8>, name: String },
}

impl std::fmt::Debug for TurnAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnAuth::None => f.write_str("None"),
            TurnAuth::Static(c) => write!(f, "Static({:?})", c.username),
            TurnAuth::Secret { name, .. } => write!(f, "Secret({name:?})"),
        }
    }
}

/// The ICE servers a node or client uses.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    pub servers: Vec<IceServerUrl>,
    pub auth: TurnAuth,
}

impl IceConfig {
    /// Whether any server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Checks that credentials and TURN servers go together.
    pub fn check(&self) -> Result<(), String> {
        let turn = self.servers.iter().any(|u| u.scheme.is_turn());
        match (&self.auth, turn) {
            (TurnAuth::None, true) => Err(
                "a turn: server needs --turn-username and --turn-credential, or --turn-secret"
                    .into(),
            ),
            (TurnAuth::Static(_) | TurnAuth::Secret { .. }, false) => {
                Err("TURN credentials were given but no turn: or turns: --ice-server".into())
            }
            _ => Ok(()),
        }
    }

    fn credential(&self, ttl: Duration, name: &str, h: &dyn Hmac) -> Option<TurnCredential> {
        match &self.auth {
            TurnAuth::None => None,
            TurnAuth::Static(c) => Some(c.clone()),
            TurnAuth::Secret { secret, name: n } => {
                let expires = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .saturating_add(ttl)
                    .as_secs();
                let who = if n.is_empty() { name } else { n };
                Some(TurnCredential::time_limited(secret, who, expires, h))
            }
        }
    }

    /// Resolves every server to an IPv4 address (the node's sockets are
    /// IPv4) and gives each TURN server the node's own credential. A name
    /// that does not resolve stops the start: a silent fallback to no relay
    /// would only show as failed connections much later.
    pub async fn resolve(&self, h: &dyn Hmac) -> Result<Vec<IceServer>, Error> {
        let mut v = Vec::new();
        for url in &self.servers {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host(url.authority())
                .await
                .map_err(|e| Error::IceServer {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?
                .collect();
            let address =
                addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .copied()
                    .ok_or_else(|| Error::IceServer {
                        url: url.to_string(),
                        reason: "no IPv4 address".into(),
                    })?;
            let credential = url
                .scheme
                .is_turn()
                .then(|| self.credential(NODE_CREDENTIAL_TTL, DEFAULT_TURN_NAME, h))
                .flatten();
            v.push(IceServer {
                url: url.clone(),
                address,
                credential,
            });
        }
        Ok(v)
    }

    /// The servers as a page's `RTCPeerConnection` takes them (`iceServers`),
    /// with the same credentials as [`IceConfig::link_headers`].
    pub fn browser_servers(&self, h: &dyn Hmac) -> Vec<BrowserIceServer> {
        self.servers
            .iter()
            .map(|u| {
                let c = u
                    .scheme
                    .is_turn()
                    .then(|| self.credential(BROWSER_CREDENTIAL_TTL, "browser", h))
                    .flatten();
                BrowserIceServer {
                    urls: u.to_string(),
                    username: c.as_ref().map(|c| c.username.clone()),
                    credential: c.map(|c| c.password),
                }
            })
            .collect()
    }

    /// The `Link` header values of an answer: every server, TURN ones with a
    /// credential (time-limited to [`BROWSER_CREDENTIAL_TTL`] under a secret),
    /// the same as [`IceConfig::browser_servers`].
    pub fn link_headers(&self, h: &dyn Hmac) -> Vec<String> {
        self.servers
            .iter()
            .zip(self.browser_servers(h))
            .map(|(u, b)| {
                let c = b
                    .username
                    .zip(b.credential)
                    .map(|(username, password)| TurnCredential { username, password });
                link_header(u, c.as_ref())
            })
            .collect()
    }
}
