//! Addresses and sockets: the default interface, its broadcast address, and the
//! discovery socket.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The first non-loopback IPv4 address of an interface that is up, else 127.0.0.1.
pub fn default_ipv4() -> Ipv4Addr {
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifs| {
            ifs.into_iter().find_map(|i| match i.addr {
                if_addrs::IfAddr::V4(v4) if !v4.ip.is_loopback() => Some(v4.ip),
                _ => None,
            })
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The broadcast address of the interface holding `ip`.
pub fn broadcast_of(ip: Ipv4Addr) -> Option<Ipv4Addr> {
    let ifs = if_addrs::get_if_addrs().ok()?;
    ifs.into_iter().find_map(|i| match i.addr {
        if_addrs::IfAddr::V4(v4) if v4.ip == ip => v4
            .broadcast
            .or_else(|| Some(Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask)))),
        _ => None,
    })
}

/// The discovery socket. On a loopback address it binds that address (so many
/// nodes can share a host on 127.0.0.0/8); otherwise it binds 0.0.0.0 so that
/// broadcasts arrive, like softbus_lite. Broadcast sending is enabled.
pub fn bind_discovery(ip: Ipv4Addr, port: u16) -> io::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    let bind = if ip.is_loopback() {
        ip
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    s.bind(&SocketAddr::V4(SocketAddrV4::new(bind, port)).into())?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// Connections the kernel queues before `accept` (bursts of session opens).
pub const LISTEN_BACKLOG: i32 = 1024;

/// A TCP listener on `ip:0` (kernel-chosen port), as softbus_lite binds its auth
/// and session listeners to the device address.
pub fn bind_listener(ip: Ipv4Addr, port: u16) -> io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(ip, port)).into())?;
    s.listen(LISTEN_BACKLOG)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// Socket buffer for WebRTC UDP: a data channel's SCTP bursts many datagrams at once.
pub const RTC_SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on `ip:port` for WebRTC, with large send and receive buffers.
pub fn bind_udp(ip: Ipv4Addr, port: u16) -> io::Result<tokio::net::UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // The kernel caps these at net.core.[rw]mem_max; smaller buffers still work.
    let _ = s.set_recv_buffer_size(RTC_SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(RTC_SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(ip, port)).into())?;
    tokio::net::UdpSocket::from_std(s.into())
}
