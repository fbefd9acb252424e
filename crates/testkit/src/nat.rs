//! A home router for virtual-time tests: an engine behind [`Nat`] sends from
//! its private address; the router rewrites the source to its public address
//! and a mapped port, and lets answers in as its kind allows (RFC 4787):
//!
//! - [`NatKind::PortRestrictedCone`]: one public port per inside address
//!   (endpoint-independent mapping); a datagram gets in only from an address
//!   the inside already sent to (address- and port-dependent filtering).
//! - [`NatKind::Symmetric`]: a new public port per inside address *and*
//!   destination; the same filtering.

use crate::{Datagram, Driven};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// How the router maps and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    PortRestrictedCone,
    Symmetric,
}

#[derive(Debug)]
struct Mapping {
    inside: SocketAddr,
    /// Who the inside sent to through this mapping.
    contacted: HashSet<SocketAddr>,
}

/// An engine behind a NAT with public address `public`.
pub struct Nat<D> {
    pub inner: D,
    pub public: IpAddr,
    pub kind: NatKind,
    next_port: u16,
    /// Public port → mapping.
    by_port: HashMap<u16, Mapping>,
    /// (inside, destination or None for cone) → public port.
    ports: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    /// Datagrams the filter dropped.
    pub filtered: u64,
}

impl<D> std::fmt::Debug for Nat<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nat")
            .field("public", &self.public)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<D: Driven> Nat<D> {
    /// `inner` behind a router at `public` of `kind`; mapped ports start at `first_port`.
    pub fn new(inner: D, public: IpAddr, kind: NatKind, first_port: u16) -> Self {
        Self {
            inner,
            public,
            kind,
            next_port: first_port,
            by_port: HashMap::new(),
            ports: HashMap::new(),
            filtered: 0,
        }
    }

    /// The public address the inside address `inside` has towards `to`, if mapped.
    pub fn mapped(&self, inside: SocketAddr, to: SocketAddr) -> Option<SocketAddr> {
        let key = match self.kind {
            NatKind::PortRestrictedCone => (inside, None),
            NatKind::Symmetric => (inside, Some(to)),
        };
        self.ports
            .get(&key)
            .map(|p| SocketAddr::new(self.public, *p))
    }
}

impl<D: Driven> Driven for Nat<D> {
    fn owns(&self, a: SocketAddr) -> bool {
        a.ip() == self.public
    }
    fn poll_datagram(&mut self) -> Option<Datagram> {
        let mut d = self.inner.poll_datagram()?;
        let key = match self.kind {
            NatKind::PortRestrictedCone => (d.from, None),
            NatKind::Symmetric => (d.from, Some(d.to)),
        };
        let port = match self.ports.get(&key) {
            Some(p) => *p,
            None => {
                let p = self.next_port;
                self.next_port = self.next_port.wrapping_add(1).max(1024);
                self.ports.insert(key, p);
                self.by_port.insert(
                    p,
                    Mapping {
                        inside: d.from,
                        contacted: HashSet::new(),
                    },
                );
                p
            }
        };
        if let Some(m) = self.by_port.get_mut(&port) {
            m.contacted.insert(d.to);
        }
        d.from = SocketAddr::new(self.public, port);
        Some(d)
    }
    fn handle_datagram(&mut self, now: Instant, mut d: Datagram) {
        let Some(m) = self.by_port.get(&d.to.port()) else {
            self.filtered += 1;
            return;
        };
        if !m.contacted.contains(&d.from) {
            self.filtered += 1;
            return;
        }
        d.to = m.inside;
        self.inner.handle_datagram(now, d);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }
    // TCP goes out through the router (the far end sees its public address);
    // nothing is forwarded in.
    fn tcp_address(&self) -> IpAddr {
        self.public
    }
    fn poll_tcp(&mut self) -> Option<crate::Tcp> {
        self.inner.poll_tcp()
    }
    fn handle_dialed(&mut self, now: Instant, conn: crate::ConnId, connected: bool) {
        self.inner.handle_dialed(now, conn, connected);
    }
    fn handle_tcp_data(&mut self, now: Instant, conn: crate::ConnId, data: &[u8]) {
        self.inner.handle_tcp_data(now, conn, data);
    }
    fn handle_tcp_closed(&mut self, now: Instant, conn: crate::ConnId) {
        self.inner.handle_tcp_closed(now, conn);
    }
}
