//! Starting a node the way a person configures it, shared by the `softbus`
//! binary and the C API (issue 18): the PIN policy, the web address, the
//! web token and the web side with its dashboard line (the default data
//! directory is `store::default_data_dir`). Each front end reads
//! its own options (flags, environment) and calls these; none has a copy.

use crate::{WebAccess, WebAuth, WebLimits, WebToken};
use softbus_runtime::{net, NodeHandle, PinPolicy};
use std::net::SocketAddr;
use std::path::Path;
use zeroize::Zeroizing;

/// Why a node was not launched, in words for the person who configured it.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The configuration cannot be used (a usage error).
    #[error("{0}")]
    Config(String),
    /// The configuration is fine but the system refused (a failure).
    #[error(transparent)]
    Runtime(#[from] softbus_runtime::Error),
}

/// The PIN policy from the PIN given (if any), and whether it is renewable
/// (drawn here: replaced when its daily bound of failures is reached). The
/// empty PIN is refused unless `allow_empty`; with none given a random 6-digit
/// The gateway's PINs from `--gateway-pin DEVICE=PIN` values: DEVICE is a
/// device id (64 hex digits; a name could be claimed by anyone on the LAN);
/// an empty PIN only with `allow_empty`.
pub fn gateway_pins(
    given: &[String],
    allow_empty: bool,
) -> Result<softbus_runtime::GatewayPins, LaunchError> {
    given
        .iter()
        .map(|v| {
            let (id, pin) = v.split_once('=').ok_or_else(|| {
                LaunchError::Config(format!("--gateway-pin {v:?}: expected DEVICE=PIN"))
            })?;
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LaunchError::Config(format!(
                    "--gateway-pin: {id:?} is not a device id (64 hex digits)"
                )));
            }
            if pin.is_empty() && !allow_empty {
                return Err(LaunchError::Config(format!(
                    "--gateway-pin {id}=: an empty PIN authenticates nobody; add --allow-empty-pin to use it anyway"
                )));
            }
            Ok((id.to_ascii_uppercase(), Zeroizing::new(pin.as_bytes().to_vec())))
        })
        .collect()
}

/// PIN is drawn and printed on stderr, naming `set_with` (how to choose one).
pub fn pin_policy(
    given: Option<String>,
    allow_empty: bool,
    set_with: &str,
    allow_with: &str,
) -> Result<(PinPolicy, bool), LaunchError> {
    let (pin, renewable) = match given {
        Some(p) if p.is_empty() && !allow_empty => {
            return Err(LaunchError::Config(format!(
                "{set_with} '' authenticates nobody; add {allow_with} to accept it anyway"
            )))
        }
        Some(p) => (p, false),
        None => {
            let p = format!(
                "{:06}",
                rand::Rng::random_range(&mut rand::rng(), 0..1_000_000u32)
            );
            eprintln!("softbus: pairing PIN {p} (set one with {set_with})");
            (p, true)
        }
    };
    if allow_empty {
        eprintln!("softbus: warning: {allow_with}: any device that knows the protocol can open sessions (the empty PIN proves nothing)");
    }
    Ok((
        PinPolicy {
            pin: Some(Zeroizing::new(pin)),
            allow_empty,
        },
        renewable,
    ))
}

/// `ADDR:PORT`, or `off` for no web side; `name` is the option's name.
pub fn web_addr(value: &str, name: &str) -> Result<Option<SocketAddr>, LaunchError> {
    match value {
        "off" => Ok(None),
        s => s
            .parse()
            .map(Some)
            .map_err(|_| LaunchError::Config(format!("{name} {s:?}: expected ADDR:PORT or off"))),
    }
}

/// What the web side serves with.
#[derive(Debug, Clone, Default)]
pub struct WebOptions {
    /// The token given (else the one in the data directory, made on first use).
    pub token: Option<String>,
    /// `--web-host` names accepted in `Host`.
    pub hosts: Vec<String>,
    /// `--web-origin` origins accepted for cookies and CORS.
    pub origins: Vec<String>,
}

/// Serves the dashboard, the API and signaling for `node` on `addr` (on the
/// current tokio runtime), with a share of the descriptors, and says where on
/// stderr: the login link (it carries the token) only to a terminal, never
/// into a log. The URL it serves at.
pub async fn serve_web(
    node: &NodeHandle,
    addr: SocketAddr,
    data_dir: &Path,
    o: WebOptions,
) -> Result<String, LaunchError> {
    let given = o.token.is_some();
    let secret = match o.token {
        Some(t) => Zeroizing::new(t),
        None => softbus_runtime::store::load_or_create_web_token(data_dir, |b| {
            rand::Rng::fill(&mut rand::rng(), b)
        })
        .map_err(softbus_runtime::Error::from)?,
    };
    let token = WebToken::new("web", &secret)
        .map_err(|e| LaunchError::Config(format!("web token: {e}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| softbus_runtime::Error::Bind {
            what: softbus_runtime::Bound::Web,
            addr,
            source,
        })?;
    let local = listener
        .local_addr()
        .map(|a| format!("http://{a}"))
        .map_err(softbus_runtime::Error::from)?;
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "softbus: dashboard {local}/login?token={} (the token is the web side's password)",
            token.secret()
        );
    } else if given {
        eprintln!("softbus: dashboard {local} (log in with the web token it was given)");
    } else {
        eprintln!(
            "softbus: dashboard {local} (log in with the web token in {})",
            data_dir.join("web-token").display()
        );
    }
    // HTTP gets a share of the descriptors; the soft bus keeps a reserve.
    let limits = WebLimits {
        max_connections: net::web_connection_budget(net::raise_descriptor_limit(65_536)),
        ..Default::default()
    };
    let access = WebAccess {
        hosts: o.hosts,
        origins: o.origins,
        auth: WebAuth::Token(token),
    };
    let h = node.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::serve_with(listener, h, limits, access).await {
            tracing::error!(error = %e, "web side stopped");
        }
    });
    Ok(local)
}
