//! What softbus_lite hard-codes, from the environment. A bad value stops
//! `PublishService` with an error that names the variable.
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `SOFTBUS_IP` | address to bind and advertise | the first non-loopback IPv4 |
//! | `SOFTBUS_DATA_DIR` | device id, keys, pairings, token | `~/.local/share/softbus` |
//! | `SOFTBUS_NAME` | device name (`SetCommonDeviceInfo` changes it) | the host name |
//! | `SOFTBUS_PIN` | pairing PIN | random, printed on stderr |
//! | `SOFTBUS_ALLOW_EMPTY_PIN` | `1`: accept the empty PIN (insecure) | off |
//! | `SOFTBUS_PAIRED_ONLY` | `1`: sessions for paired devices only | off |
//! | `SOFTBUS_MAX_SESSIONS` | open sessions at most | 24 |
//! | `SOFTBUS_DISCOVERY_PORT` | discovery port | 5684 |
//! | `SOFTBUS_AUTH_PORT`, `SOFTBUS_SESSION_PORT` | fixed TCP ports | chosen by the kernel |
//! | `SOFTBUS_WEB` | dashboard and WebRTC signaling address, or `off` | `off` |
//! | `SOFTBUS_WEB_TOKEN` | the web token | made in the data directory |
//! | `SOFTBUS_WEB_ORIGIN` | origins whose pages may call the web side (comma-separated) | none |

use softbus_runtime::{NodeConfig, NodeHandle};
use softbus_web::launch;
use std::net::{Ipv4Addr, SocketAddr};

/// The node's configuration and the web side's.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeConfig,
    pub web: Option<SocketAddr>,
    pub web_token: Option<String>,
    pub web_origins: Vec<String>,
}

fn flag(get: &impl Fn(&str) -> Option<String>, key: &str) -> Result<bool, String> {
    match get(key).as_deref() {
        None | Some("" | "0") => Ok(false),
        Some("1") => Ok(true),
        Some(v) => Err(format!("{key}={v:?}: expected 1 or 0")),
    }
}

fn parsed<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<T>, String> {
    match get(key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{key}={v:?} cannot be read")),
    }
}

/// The configuration from `get` (the environment).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let ip: Ipv4Addr =
        parsed(&get, "SOFTBUS_IP")?.unwrap_or_else(softbus_runtime::net::default_ipv4);
    let data_dir = get("SOFTBUS_DATA_DIR").map_or_else(
        softbus_runtime::store::default_data_dir,
        std::path::PathBuf::from,
    );
    let allow_empty = flag(&get, "SOFTBUS_ALLOW_EMPTY_PIN")?;
    let (pin, renewable) = launch::pin_policy(
        get("SOFTBUS_PIN"),
        allow_empty,
        "SOFTBUS_PIN",
        "SOFTBUS_ALLOW_EMPTY_PIN=1",
    )
    .map_err(|e| e.to_string())?;
    let name = get("SOFTBUS_NAME").unwrap_or_else(softbus_runtime::net::host_name);
    let mut node = NodeConfig::new(&name, ip, data_dir, pin);
    node.pin_renewable = renewable;
    // The program publishes its capabilities and creates its session servers.
    node.capabilities.clear();
    node.echo.clear();
    node.paired_only = flag(&get, "SOFTBUS_PAIRED_ONLY")?;
    if let Some(n) = parsed(&get, "SOFTBUS_MAX_SESSIONS")? {
        node.limits.max_sessions = n;
    }
    if let Some(p) = parsed(&get, "SOFTBUS_DISCOVERY_PORT")? {
        node.discovery_port = p;
    }
    if let Some(p) = parsed(&get, "SOFTBUS_AUTH_PORT")? {
        node.auth_port = p;
    }
    if let Some(p) = parsed(&get, "SOFTBUS_SESSION_PORT")? {
        node.session_port = p;
    }
    let web = match get("SOFTBUS_WEB") {
        None => None,
        Some(v) => launch::web_addr(&v, "SOFTBUS_WEB").map_err(|e| e.to_string())?,
    };
    Ok(Config {
        node,
        web,
        web_token: get("SOFTBUS_WEB_TOKEN"),
        web_origins: get("SOFTBUS_WEB_ORIGIN")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Serves the dashboard and WebRTC signaling on `addr` as `softbus node`
/// does (the same launch code: the token, the descriptor share, the dashboard
/// line on stderr with the login link only to a terminal).
pub fn start_web(
    rt: &tokio::runtime::Runtime,
    handle: &NodeHandle,
    addr: SocketAddr,
    cfg: &Config,
) -> Result<(), String> {
    let o = launch::WebOptions {
        token: cfg.web_token.clone(),
        hosts: Vec::new(),
        origins: cfg.web_origins.clone(),
    };
    rt.block_on(launch::serve_web(handle, addr, &cfg.node.data_dir, o))
        .map(|_| ())
        .map_err(|e| format!("SOFTBUS_WEB={addr}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn variables_configure_the_node_and_bad_ones_are_named() {
        let c = from_env(env(&[
            ("SOFTBUS_IP", "127.0.0.9"),
            ("SOFTBUS_PIN", "4711"),
            ("SOFTBUS_PAIRED_ONLY", "1"),
            ("SOFTBUS_DISCOVERY_PORT", "0"),
            ("SOFTBUS_WEB", "127.0.0.1:0"),
            ("SOFTBUS_WEB_ORIGIN", "http://a:1, http://b:2"),
        ]))
        .unwrap();
        assert_eq!(c.node.ip, Ipv4Addr::new(127, 0, 0, 9));
        assert!(c.node.paired_only);
        assert_eq!(c.node.discovery_port, 0);
        assert!(c.node.echo.is_empty() && c.node.capabilities.is_empty());
        assert_eq!(c.web_origins, vec!["http://a:1", "http://b:2"]);
        assert!(c.web.is_some());
        for (k, v) in [
            ("SOFTBUS_IP", "nowhere"),
            ("SOFTBUS_PAIRED_ONLY", "yes"),
            ("SOFTBUS_WEB", "8080"),
            ("SOFTBUS_PIN", ""),
        ] {
            let e = from_env(env(&[(k, v)])).unwrap_err();
            assert!(e.contains(k), "{e}");
        }
        let c = from_env(env(&[
            ("SOFTBUS_PIN", ""),
            ("SOFTBUS_ALLOW_EMPTY_PIN", "1"),
        ]))
        .unwrap();
        assert!(c.node.pin.allow_empty);
        assert!(c.web.is_none(), "the web side is off unless asked for");
    }
}
