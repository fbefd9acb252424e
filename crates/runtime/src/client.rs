//! `softbus discover`'s driver: the discovery engine on a socket of its own,
//! printing devices as they answer. Authenticating and opening sessions as a
//! client go through a node ([`crate::NodeHandle::connect`],
//! [`crate::NodeHandle::open_session`]).

use crate::{net, Error};
use softbus_bus::discovery::{
    Discovery, DiscoveryConfig, DiscoveryEvent, FoundDevice, LocalDevice,
};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Who the client says it is.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: Ipv4Addr,
}

/// Sends discovery requests from `ip:port` to `targets` on the full stack's
/// schedule and collects every device that answers within `timeout`.
/// `on_found` is called as each device appears; returning `false` stops early.
pub async fn discover(
    me: &ClientIdentity,
    port: u16,
    targets: Vec<SocketAddrV4>,
    timeout: Duration,
    mut on_found: impl FnMut(&FoundDevice) -> bool,
) -> Result<Vec<FoundDevice>, Error> {
    let sock = net::bind_discovery(me.ip, port)?;
    let cfg = DiscoveryConfig {
        port,
        ..Default::default()
    };
    let mut d = Discovery::new(
        cfg,
        LocalDevice {
            device_id: me.device_id.clone(),
            name: me.name.clone(),
            device_type: me.device_type,
            ip: me.ip,
            auth_port: None,
        },
    );
    let start = Instant::now();
    let end = tokio::time::Instant::from_std(start + timeout);
    d.start_discovery(start, targets);
    let mut found = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(t) = d.poll_transmit() {
            if let Err(e) = sock.send_to(&t.payload, t.destination).await {
                tracing::warn!(dst = %t.destination, error = %e, "discovery request not sent");
            }
        }
        while let Some(e) = d.poll_event() {
            if let DiscoveryEvent::DeviceFound(f) = e {
                if !found
                    .iter()
                    .any(|x: &FoundDevice| x.device_id == f.device_id)
                {
                    let more = on_found(&f);
                    found.push(f);
                    if !more {
                        return Ok(found);
                    }
                }
            }
        }
        let wake = d
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(end)
            .min(end);
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, from) = r?;
                if let Err(e) = d.handle_datagram(Instant::now(), from, &buf[..n]) {
                    tracing::debug!(%from, error = %e, "discovery datagram dropped");
                }
            }
            () = tokio::time::sleep_until(wake) => {
                if wake >= end {
                    return Ok(found);
                }
                d.handle_timeout(Instant::now());
            }
        }
    }
}
