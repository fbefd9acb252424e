//! `--ice-server` and the TURN credential options, shared by `node` and `send`.

use softbus_runtime::ice::{IceConfig, IceServerUrl, TurnAuth, TurnCredential};

#[derive(clap::Args, Clone, Default)]
pub struct IceArgs {
    /// A STUN or TURN server for WebRTC: `stun:HOST:PORT`,
    /// `turn:HOST:PORT?transport=udp|tcp`, `turns:HOST:PORT` (TLS, checked
    /// against the system's trust store; repeatable). With any, WebRTC is
    /// full ICE and gathers server-reflexive and relayed candidates, so peers
    /// behind NAT connect; without, it answers as ICE-lite with its host
    /// address only (a LAN).
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// The TURN username (with --turn-credential).
    #[arg(long, value_name = "NAME")]
    pub turn_username: Option<String>,
    /// The TURN password. From the environment it stays out of the process list.
    #[arg(
        long,
        env = "SOFTBUS_TURN_CREDENTIAL",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub turn_credential: Option<String>,
    /// coturn's static-auth-secret ("TURN REST API"): time-limited
    /// credentials are made from it, for this node (named --turn-username,
    /// default softbus) and for each browser's answer (valid 24 h).
    #[arg(
        long,
        env = "SOFTBUS_TURN_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub turn_secret: Option<String>,
}

impl IceArgs {
    /// The ICE configuration these options describe, or why they do not fit.
    pub fn config(&self) -> Result<IceConfig, String> {
        let most = softbus_runtime::ice::MAX_ICE_SERVERS;
        if self.ice_servers.len() > most {
            return Err(format!("at most {most} --ice-server (a node uses no more)"));
        }
        let mut servers = Vec::new();
        for u in &self.ice_servers {
            let url = IceServerUrl::parse(u).map_err(|e| format!("--ice-server {u:?}: {e}"))?;
            if url.scheme == softbus_runtime::ice::Scheme::Stuns {
                return Err(format!(
                    "--ice-server {u:?}: stuns: is not supported; use stun:HOST:PORT (a TURN server over TLS is turns:HOST:PORT)"
                ));
            }
            servers.push(url);
        }
        let auth = match (
            &self.turn_username,
            &self.turn_credential,
            &self.turn_secret,
        ) {
            (_, Some(_), Some(_)) => {
                return Err("--turn-credential and --turn-secret exclude each other".into())
            }
            (Some(u), Some(c), None) => TurnAuth::Static(TurnCredential {
                username: u.clone(),
                password: c.clone(),
            }),
            (None, Some(_), None) => return Err("--turn-credential needs --turn-username".into()),
            (name, None, Some(s)) => {
                if s.len() < 16 {
                    return Err("--turn-secret must be at least 16 characters".into());
                }
                TurnAuth::Secret {
                    secret: s.as_bytes().to_vec(),
                    name: name.clone().unwrap_or_default(),
                }
            }
            (Some(_), None, None) => {
                return Err("--turn-username needs --turn-credential or --turn-secret".into())
            }
            (None, None, None) => TurnAuth::None,
        };
        let cfg = IceConfig { servers, auth };
        cfg.check()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        servers: &[&str],
        user: Option<&str>,
        cred: Option<&str>,
        secret: Option<&str>,
    ) -> IceArgs {
        IceArgs {
            ice_servers: servers.iter().map(|s| s.to_string()).collect(),
            turn_username: user.map(str::to_owned),
            turn_credential: cred.map(str::to_owned),
            turn_secret: secret.map(str::to_owned),
        }
    }

    #[test]
    fn turn_servers_and_credentials_go_together() {
        const T: &str = "turn:198.18.0.1?transport=udp";
        const SECRET: &str = "0123456789abcdef";
        assert!(args(&[], None, None, None).config().unwrap().is_empty());
        assert!(matches!(
            args(&[T], Some("u"), Some("p"), None).config().unwrap().auth,
            TurnAuth::Static(ref c) if c.username == "u" && c.password == "p"
        ));
        assert!(matches!(
            args(&[T, "turns:turn.example.org"], None, None, Some(SECRET)).config().unwrap().auth,
            TurnAuth::Secret { ref name, .. } if name.is_empty()
        ));
        for (a, why) in [
            (args(&[T], None, None, None), "needs --turn-username"),
            (
                args(&["stun:198.18.0.1"], Some("u"), Some("p"), None),
                "no turn: or turns:",
            ),
            (
                args(&[T], None, Some("p"), None),
                "--turn-credential needs --turn-username",
            ),
            (args(&[T], Some("u"), None, None), "--turn-username needs"),
            (
                args(&[T], Some("u"), Some("p"), Some(SECRET)),
                "exclude each other",
            ),
            (args(&[T], None, None, Some("short")), "at least 16"),
            (
                args(&["stuns:x"], None, None, None),
                "stuns: is not supported",
            ),
            (
                args(&["http://x"], None, None, None),
                "--ice-server \"http://x\"",
            ),
            (
                args(
                    &["stun:a", "stun:b", "stun:c", "stun:d", "stun:e"],
                    None,
                    None,
                    None,
                ),
                "at most 4 --ice-server",
            ),
        ] {
            let e = a.config().err().unwrap_or_default();
            assert!(e.contains(why), "{e:?} lacks {why:?}");
        }
    }
}
