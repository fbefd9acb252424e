//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay
//! test, so both exercise exactly the same code. Each must never panic.

use crate::auth::{AuthConn, LocalAuthInfo, PinPolicy};
use crate::crypto::Crypto;
use crate::discovery::{
    payload::DevicePayload, publish::PublishInfo, Discovery, DiscoveryConfig, LocalDevice,
};
use crate::frame::{Deframer, HeaderKind};
use crate::node::{Bus, BusConfig, Listener, LocalConfig, Refusal};
use crate::{ConnId, SessionId};
use std::net::SocketAddr;
use std::time::Instant;

/// CoAP parse, and emit of whatever parsed.
pub fn coap(data: &[u8]) {
    if let Ok(m) = crate::coap::Message::parse(data) {
        let _ = m.emit();
    }
}

/// Discovery JSON payload.
pub fn discovery_payload(data: &[u8]) {
    if let Ok(p) = DevicePayload::parse(data) {
        let _ = (p.udid(), p.auth_port());
    }
}

/// A publishing discovery engine fed one datagram.
pub fn discovery_engine(now: Instant, data: &[u8]) {
    let local = LocalDevice {
        device_id: "AB".repeat(32),
        name: "fuzz".into(),
        device_type: 0xF2,
        ip: [10, 0, 0, 2].into(),
        auth_port: Some(1),
    };
    let mut d = Discovery::new(DiscoveryConfig::default(), local);
    let _ = d.publish(Some("m"), &PublishInfo::coap(1, "ddmpCapability"));
    let _ = d.handle_datagram(now, SocketAddr::from(([10, 0, 0, 3], 5684)), data);
    while d.poll_transmit().is_some() {}
}

/// Both deframers on arbitrary stream bytes.
pub fn deframer(data: &[u8]) {
    for kind in [HeaderKind::Auth, HeaderKind::Session] {
        let mut d = Deframer::new(kind, 4096);
        d.push(data);
        while let Ok(Some(_)) = d.next_frame() {}
    }
}

/// An auth server connection fed arbitrary bytes (crypto from the caller).
pub fn auth_conn(crypto: &mut dyn Crypto, data: &[u8]) {
    let local = LocalAuthInfo {
        device_id: "AB".repeat(32),
        device_name: "fuzz".into(),
        device_type: "DEV_L1".into(),
        auth_port: 1,
        session_port: 2,
    };
    // With an identity and one pairing, so BIND and STS are reached too.
    let identity = crate::auth::hichain::Identity::new(crypto, &local.device_id, [7; 32])
        .ok()
        .map(std::sync::Arc::new);
    let mut pairings = crate::auth::hichain::Pairings::new();
    pairings.insert("CD".repeat(32), [9; 32]);
    let mut a = AuthConn::new(local, &PinPolicy::pin("1234"), 1512, identity);
    let _ = a.handle_data(crypto, data, &pairings);
    while a.poll_transmit().is_some() {}
    while a.poll_event().is_some() {}
}

/// The client side of the auth channel fed a device's arbitrary replies: once
/// with a PIN (key agreement, and softbus's refusal of a locked-out address),
/// once as a paired device (STS).
pub fn auth_client(crypto: &mut dyn Crypto, data: &[u8]) {
    use crate::auth::{AuthClient, ClientAuth};
    let local = || LocalAuthInfo {
        device_id: "CD".repeat(32),
        device_name: "fuzz".into(),
        device_type: "DEV_L1".into(),
        auth_port: 1,
        session_port: 2,
    };
    let mut pairings = crate::auth::hichain::Pairings::new();
    pairings.insert("AB".repeat(32), [9; 32]);
    let paired = crate::auth::hichain::Identity::new(crypto, &"CD".repeat(32), [7; 32])
        .ok()
        .map(|identity| ClientAuth::Paired {
            identity: std::sync::Arc::new(identity),
            pairings: std::sync::Arc::new(pairings),
        });
    let pin = ClientAuth::Pin(zeroize::Zeroizing::new(b"1234".to_vec()));
    for auth in std::iter::once(pin).chain(paired) {
        let mut c = AuthClient::with_auth(local(), auth, 7);
        while c.poll_transmit().is_some() {}
        let _ = c.handle_data(crypto, data);
        c.abort(crate::auth::pake::errcode::ABORTED);
        while c.poll_transmit().is_some() {}
    }
}

/// A hichain server exchange (PAKE or BIND, and STS) fed one message.
pub fn hichain(crypto: &mut dyn Crypto, data: &[u8]) {
    use crate::auth::hichain::{Identity, Pairings, StsServer};
    let Ok(id) = Identity::new(crypto, &"AB".repeat(32), [7; 32]) else {
        return;
    };
    let mut s = crate::auth::pake::PakeServer::new(b"1234");
    let _ = s.handle(crypto, data, Some(&id));
    let mut sts = StsServer::new();
    let _ = sts.handle(crypto, data, &id, &"CD".repeat(32), &Pairings::new());
}

/// A whole node fed bytes on an auth and a session connection.
pub fn bus_tcp(now: Instant, crypto: Box<dyn Crypto>, data: &[u8]) {
    let mut bus = Bus::new(
        BusConfig {
            pin: PinPolicy::pin("1234"),
            ..Default::default()
        },
        LocalConfig {
            device_id: "AB".repeat(32),
            name: "fuzz".into(),
            device_type: 0xF2,
            ip: [10, 0, 0, 2].into(),
        },
        crypto,
    );
    let peer = SocketAddr::from(([10, 0, 0, 3], 4000));
    let _ = bus.handle_accept(now, ConnId(1), Listener::Auth, peer);
    let _ = bus.handle_accept(now, ConnId(2), Listener::Session, peer);
    let (a, b) = data.split_at(data.len() / 2);
    let _ = bus.handle_tcp_data(now, ConnId(1), a);
    let _ = bus.handle_tcp_data(now, ConnId(2), b);
    // Sessions to `echo` are accepted (and held packets then delivered), others refused.
    let mut next = 1;
    while let Some(r) = bus.poll_session_request() {
        if r.server == "echo" {
            let _ = bus.accept_session(now, r.conn, SessionId(next));
            next += 1;
        } else {
            bus.refuse_session(r.conn, Refusal::UnknownServer(r.server));
        }
    }
    while bus.poll_transmit().is_some() {}
    while bus.poll_event().is_some() {}
}
