//! What the ICE tests share: a host with ICE servers, an offering client,
//! transaction ids and a lossy network, all seeded.
#![allow(dead_code, clippy::unwrap_used)]
use softbus_crypto::dtls::DtlsIdentity;
use softbus_crypto::OpenSslCrypto;
use softbus_rtc::crypto::{ice_chars, Provider};
use softbus_rtc::gather::IceServer;
use softbus_rtc::host::{ChannelId, Host, HostConfig, HostEvent};
use softbus_rtc::peer::Peer;
use softbus_testkit::{LinkConfig, Net};
use std::net::SocketAddr;
use std::time::Duration;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A host on `local` with `servers` (none: ICE-lite), its randomness from `seed`.
pub fn host(local: SocketAddr, servers: Vec<IceServer>, seed: u64) -> Host {
    let mut cfg = HostConfig::new(local);
    cfg.ice_servers = servers;
    let id = DtlsIdentity::generate().unwrap();
    Host::new(
        cfg,
        Provider {
            hmac: Box::new(OpenSslCrypto::new()),
            random: Box::new(OpenSslCrypto::seeded(seed)),
            dtls: Box::new(id.factory().unwrap()),
            srtp: softbus_crypto::srtp_backends(),
        },
    )
}

/// An offering client (full ICE, controlling) at `at`, and its offer.
pub fn offer(at: SocketAddr, seed: u64) -> (Peer, String) {
    let id = DtlsIdentity::generate().unwrap();
    let mut r = OpenSslCrypto::seeded(seed);
    Peer::offer(
        at,
        &id.fingerprint("sha-256").unwrap(),
        Box::new(id.factory().unwrap()),
        seed,
        Box::new(move |n| ice_chars(&mut r, n)),
    )
    .unwrap()
}

/// Transaction ids from `seed`.
pub fn tids(seed: u64) -> Box<dyn FnMut() -> [u8; 12] + Send> {
    let mut r = OpenSslCrypto::seeded(seed);
    Box::new(move || {
        let mut t = [0u8; 12];
        softbus_rtc::crypto::Random::fill(&mut r, &mut t);
        t
    })
}

/// 10% loss each way, 15 ms delay with up to 10 ms jitter.
pub fn lossy(seed: u64) -> Net {
    Net::new(
        LinkConfig {
            loss: 0.1,
            delay: Duration::from_millis(15),
            jitter: Duration::from_millis(10),
        },
        seed,
    )
}

/// The value of the first SDP line starting with `key` (e.g. `a=ice-ufrag:`).
pub fn sdp_value(sdp: &str, key: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(key))
        .unwrap()
        .to_owned()
}

/// The channel of the first `ChannelOpen` among a host's events.
pub fn opened_channel(events: &[HostEvent]) -> ChannelId {
    events
        .iter()
        .find_map(|e| match e {
            HostEvent::ChannelOpen { channel, .. } => Some(*channel),
            _ => None,
        })
        .expect("a channel opened")
}
