//! Addresses and sockets: the default interface, its broadcast address, and the
//! discovery socket.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The host name as a device name: at most 63 bytes (on a character
/// boundary), `softbus` when there is none.
pub fn host_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim();
    let h = if h.is_empty() { "softbus" } else { h };
    h.chars()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= 63).then_some(c)
        })
        .collect()
}

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

/// This machine's IPv4 addresses (of interfaces that are up).
pub fn local_ipv4s() -> Vec<Ipv4Addr> {
    if_addrs::get_if_addrs()
        .map(|ifs| {
            ifs.into_iter()
                .filter_map(|i| match i.addr {
                    if_addrs::IfAddr::V4(v4) => Some(v4.ip),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
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

/// Where the discovery socket of a node on `ip` binds: that address on loopback
/// (so many nodes can share a host on 127.0.0.0/8), otherwise 0.0.0.0 so that
/// broadcasts arrive, like softbus_lite.
pub fn discovery_bind_addr(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    let bind = if ip.is_loopback() {
        ip
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    SocketAddrV4::new(bind, port)
}

/// The discovery socket on [`discovery_bind_addr`], broadcast sending enabled.
///
/// It binds the way mDNS responders do, with address and port reuse, so a node on
/// `0.0.0.0:5684` and nodes or tools on `127.x.y.z:5684` share one host: unicast
/// goes to the socket bound to the most specific address, broadcasts to all.
pub fn bind_discovery(ip: Ipv4Addr, port: u16) -> Result<tokio::net::UdpSocket, crate::Error> {
    let addr = discovery_bind_addr(ip, port);
    bind_reusable_udp(addr)
        .and_then(|s| tokio::net::UdpSocket::from_std(s.into()))
        .map_err(|source| crate::Error::Bind {
            what: crate::Bound::Discovery,
            addr: SocketAddr::V4(addr),
            source,
        })
}

/// The claim a node holds on its discovery address while it runs.
///
/// Discovery sockets bind with address reuse (above), so a second node on the
/// same address would bind too, and which of the two answers a request would be
/// up to the kernel. A node therefore first binds an abstract Unix socket named
/// after its address (`softbus/discovery/IP:PORT`): abstract names live in the
/// network namespace, need no file, vanish when the process ends however it
/// ends, and a second bind fails. The holder answers each connection with its
/// name and device id, so the refusal names the other device. Clients (`send`,
/// `discover`) take no claim and keep sharing the address.
#[derive(Debug)]
pub struct AddressClaim {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AddressClaim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a claimant waits for the holder to say who it is.
const CLAIM_ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The holder's name and device id, if it says them within the timeout.
fn ask_holder(unix: &std::os::unix::net::SocketAddr) -> Option<(String, String)> {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let s = UnixStream::connect_addr(unix).ok()?;
    s.set_read_timeout(Some(CLAIM_ASK_TIMEOUT)).ok()?;
    let mut text = String::new();
    s.take(256).read_to_string(&mut text).ok()?;
    let (name, id) = text.trim_end().split_once('\t')?;
    Some((name.to_owned(), id.to_owned()))
}

/// Whether a node holds the claim on `addr` (in this network namespace).
pub fn address_claimed(addr: SocketAddrV4) -> bool {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixStream};
    UnixAddr::from_abstract_name(claim_name(addr))
        .and_then(|a| UnixStream::connect_addr(&a))
        .is_ok()
}

fn claim_name(addr: SocketAddrV4) -> String {
    format!("softbus/discovery/{addr}")
}

/// Claims `addr` for a node called `name` with `device_id`; port 0 (a port the
/// kernel picks) needs no claim. Runs inside a tokio runtime.
pub fn claim_discovery_address(
    addr: SocketAddrV4,
    name: &str,
    device_id: &str,
) -> Result<Option<AddressClaim>, crate::Error> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener};
    if addr.port() == 0 {
        return Ok(None);
    }
    let unix = UnixAddr::from_abstract_name(claim_name(addr))?;
    let listener = match UnixListener::bind_addr(&unix) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(crate::Error::AddressTaken {
                addr,
                holder: ask_holder(&unix),
            })
        }
        Err(e) => return Err(e.into()),
    };
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    // One line, with no control characters to confuse the reader.
    let clean = |s: &str| s.chars().filter(|c| !c.is_control()).collect::<String>();
    let line = format!("{}\t{}\n", clean(name), clean(device_id));
    let task = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            // Answered in turn, each write bounded: a stuck reader costs one second.
            let _ = tokio::time::timeout(CLAIM_ASK_TIMEOUT, s.write_all(line.as_bytes())).await;
        }
    });
    Ok(Some(AddressClaim { task }))
}

/// A UDP socket with `SO_REUSEADDR` and `SO_REUSEPORT` bound to `addr`, nonblocking.
pub fn bind_reusable_udp(addr: SocketAddrV4) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    Ok(s)
}

/// TCP keepalive on a connection: a peer that vanished (powered off, unplugged)
/// is noticed in about 90 s instead of never.
pub fn keepalive(s: &tokio::net::TcpStream) -> io::Result<()> {
    let ka = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(60))
        .with_interval(std::time::Duration::from_secs(10))
        .with_retries(3);
    socket2::SockRef::from(s).set_tcp_keepalive(&ka)
}

/// File descriptors this process may open: the soft limit raised toward the
/// hard one (at most `want`). Returns the limit now in force.
pub fn raise_descriptor_limit(want: u64) -> u64 {
    match rlimit::increase_nofile_limit(want) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Descriptors kept for the soft bus (listeners, auth and session connections,
/// UDP sockets) out of the budget: HTTP may use at most a quarter of the rest.
pub fn web_connection_budget(limit: u64) -> usize {
    let reserve = 512;
    usize::try_from(limit.saturating_sub(reserve) / 4)
        .unwrap_or(usize::MAX)
        .clamp(16, 1024)
}

/// Connections the kernel queues before `accept` (bursts of session opens).
pub const LISTEN_BACKLOG: i32 = 1024;

/// A TCP listener on `ip:0` (kernel-chosen port), as softbus_lite binds its auth
/// and session listeners to the device address.
pub fn bind_listener(
    ip: Ipv4Addr,
    port: u16,
    what: crate::Bound,
) -> Result<tokio::net::TcpListener, crate::Error> {
    let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
    let bind = || -> io::Result<tokio::net::TcpListener> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(LISTEN_BACKLOG)?;
        tokio::net::TcpListener::from_std(s.into())
    };
    bind().map_err(|source| crate::Error::Bind { what, addr, source })
}

/// Socket buffer for WebRTC UDP: a data channel's SCTP bursts many datagrams at once.
pub const RTC_SOCKET_BUFFER: usize = 4 << 20;

/// A UDP socket on `ip:port` for WebRTC, with large send and receive buffers.
pub fn bind_udp(ip: Ipv4Addr, port: u16) -> Result<tokio::net::UdpSocket, crate::Error> {
    let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
    let bind = || -> io::Result<tokio::net::UdpSocket> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        // The kernel caps these at net.core.[rw]mem_max; smaller buffers still work.
        let _ = s.set_recv_buffer_size(RTC_SOCKET_BUFFER);
        let _ = s.set_send_buffer_size(RTC_SOCKET_BUFFER);
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        tokio::net::UdpSocket::from_std(s.into())
    };
    bind().map_err(|source| crate::Error::Bind {
        what: crate::Bound::Rtc,
        addr,
        source,
    })
}

/// Bytes one GSO send carries at most (a UDP payload).
pub const GSO_BYTES: usize = 65_000;
/// Datagrams taken in by one receive call (`recvmmsg`).
pub const RECV_BATCH: usize = 32;
/// Room for one datagram, or one GRO-coalesced train of them.
pub const RECV_SLOT: usize = 64 * 1024;

/// One received datagram: where from, which local address it was sent to (when the
/// kernel says), and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub from: SocketAddr,
    pub to: Option<std::net::IpAddr>,
    pub data: &'a [u8],
}

/// A UDP socket read and written in batches: `recvmmsg` (and UDP GRO where the
/// kernel has it) in, `sendmsg` with UDP GSO out, the destination address of
/// every datagram reported (`IP_PKTINFO`). quinn-udp does the system calls.
#[derive(Debug)]
pub struct BatchUdp {
    io: tokio::net::UdpSocket,
    state: quinn_udp::UdpSocketState,
    bufs: Vec<Vec<u8>>,
    meta: Vec<quinn_udp::RecvMeta>,
    filled: usize,
}

impl BatchUdp {
    /// Wraps a bound socket.
    pub fn new(io: tokio::net::UdpSocket) -> io::Result<Self> {
        let state = quinn_udp::UdpSocketState::new((&io).into())?;
        Ok(Self {
            io,
            state,
            bufs: Vec::new(),
            meta: vec![quinn_udp::RecvMeta::default(); RECV_BATCH],
            filled: 0,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Waits for datagrams and takes in up to [`RECV_BATCH`] of them; read them
    /// with [`BatchUdp::received`]. Returns how many receive slots were filled.
    pub async fn recv_batch(&mut self) -> io::Result<usize> {
        loop {
            self.io.readable().await?;
            match self.try_recv_batch() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    /// Takes in what is queued without waiting (`WouldBlock` if nothing is).
    pub fn try_recv_batch(&mut self) -> io::Result<usize> {
        self.filled = 0;
        if self.bufs.is_empty() {
            // Allocated on first use: an idle socket holds no buffers.
            self.bufs = vec![vec![0u8; RECV_SLOT]; RECV_BATCH];
        }
        let mut slices: Vec<io::IoSliceMut<'_>> = self
            .bufs
            .iter_mut()
            .map(|b| io::IoSliceMut::new(b))
            .collect();
        let (io, state, meta) = (&self.io, &self.state, &mut self.meta);
        let n = io.try_io(tokio::io::Interest::READABLE, || {
            state.recv(io.into(), &mut slices, meta)
        })?;
        self.filled = n;
        Ok(n)
    }

    /// The datagrams of the last [`BatchUdp::recv_batch`], GRO trains split.
    pub fn received(&self) -> impl Iterator<Item = Received<'_>> {
        self.meta
            .iter()
            .zip(&self.bufs)
            .take(self.filled)
            .flat_map(|(m, buf)| {
                buf[..m.len.min(buf.len())]
                    .chunks(m.stride.max(1))
                    .map(move |data| Received {
                        from: m.addr,
                        to: m.dst_ip,
                        data,
                    })
            })
    }

    /// Sends one datagram, or `contents` split into datagrams of `segment` bytes
    /// (the last may be shorter) with one system call where the kernel has GSO.
    /// A full socket buffer drops the datagrams (UDP: the protocols above retransmit).
    pub fn try_send(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: Option<usize>,
    ) -> io::Result<()> {
        let t = quinn_udp::Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: segment,
            src_ip: None,
        };
        // Straight to the nonblocking socket: the engines' output is written
        // when it is produced, not when tokio last saw the socket writable.
        self.state.try_send((&self.io).into(), &t)
    }

    /// Datagrams one GSO send may carry on this socket.
    pub fn max_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends `out` in order with as few system calls as the kernel allows: a run
    /// of same-size datagrams to one destination goes as one GSO send, and
    /// single datagrams to different destinations (a relay's fan-out) go
    /// together, up to [`MMSG_BATCH`] per `sendmmsg`. Returns the number of
    /// system calls made. What cannot be sent is dropped (UDP: the protocols
    /// above retransmit) and logged.
    pub fn send_batch(&self, out: &mut Vec<(SocketAddr, Vec<u8>)>, buf: &mut Vec<u8>) -> usize {
        let max = self.max_segments().max(1);
        let mut calls = 0;
        let mut singles: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < out.len() {
            let (dst, len) = (out[i].0, out[i].1.len());
            // A train: same destination, same size (the last may be shorter),
            // at most `max` segments and 64 KB in all.
            let limit = max.min(GSO_BYTES / len.max(1)).max(1);
            let mut j = i + 1;
            while j < out.len() && j - i < limit && out[j].0 == dst {
                let l = out[j].1.len();
                if l <= len {
                    j += 1;
                }
                if l != len {
                    break;
                }
            }
            if j - i == 1 || len == 0 {
                singles.push(i);
                if singles.len() == MMSG_BATCH {
                    calls += self.send_singles(out, &mut singles);
                }
                i += 1;
                continue;
            }
            calls += self.send_singles(out, &mut singles);
            calls += 1;
            buf.clear();
            for (_, d) in &out[i..j] {
                buf.extend_from_slice(d);
            }
            if let Err(e) = self.try_send(dst, buf, Some(len)) {
                // GSO refused (some kernels and devices): one by one instead.
                tracing::debug!(%dst, error = %e, "GSO send failed; sending singly");
                for (_, d) in &out[i..j] {
                    calls += 1;
                    if let Err(e) = self.try_send(dst, d, None) {
                        tracing::debug!(%dst, error = %e, "datagram not sent");
                    }
                }
            }
            i = j;
        }
        calls += self.send_singles(out, &mut singles);
        out.clear();
        calls
    }

    /// Sends the datagrams `which` of `out` with `sendmmsg` (what the kernel
    /// does not take is dropped); the system calls made.
    fn send_singles(&self, out: &[(SocketAddr, Vec<u8>)], which: &mut Vec<usize>) -> usize {
        use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
        if which.is_empty() {
            return 0;
        }
        if which.len() == 1 {
            let (dst, d) = &out[which[0]];
            which.clear();
            if let Err(e) = self.try_send(*dst, d, None) {
                tracing::debug!(%dst, error = %e, "datagram not sent");
            }
            return 1;
        }
        let addrs: Vec<SocketAddrAny> = which.iter().map(|&k| out[k].0.into()).collect();
        let iovs: Vec<[std::io::IoSlice<'_>; 1]> = which
            .iter()
            .map(|&k| [std::io::IoSlice::new(&out[k].1)])
            .collect();
        let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = which
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut msgs: Vec<MMsgHdr<'_>> = addrs
            .iter()
            .zip(iovs.iter())
            .zip(controls.iter_mut())
            .map(|((a, iov), c)| MMsgHdr::new_with_addr(a, iov, c))
            .collect();
        let mut calls = 0;
        let mut at = 0;
        while at < msgs.len() {
            calls += 1;
            match sendmmsg(&self.io, &mut msgs[at..], SendFlags::empty()) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) => {
                    // The first of the rest failed (a full buffer, an
                    // unreachable address): it is dropped, the others go on.
                    tracing::debug!(error = %e, "datagram not sent");
                    at += 1;
                }
            }
        }
        which.clear();
        calls
    }
}

/// Datagrams one `sendmmsg` carries at most.
pub const MMSG_BATCH: usize = 64;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: unwrap is the assertion
    use super::*;
    use std::time::Duration;

    /// A node on the wildcard address and a node or test on a loopback address
    /// share the discovery port; unicast reaches the specific one only.
    #[tokio::test]
    async fn wildcard_and_loopback_share_the_discovery_port() {
        let wild: std::net::UdpSocket =
            bind_reusable_udp(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
                .unwrap()
                .into();
        let port = wild.local_addr().unwrap().port();
        let ip = Ipv4Addr::new(127, 0, 0, 91);
        let specific = bind_discovery(ip, port).expect("binds beside the wildcard node");
        let tx = std::net::UdpSocket::bind("127.0.0.92:0").unwrap();
        tx.send_to(b"hello", (ip, port)).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), specific.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
        wild.set_nonblocking(true).unwrap();
        assert_eq!(
            wild.recv_from(&mut buf).map_err(|e| e.kind()).unwrap_err(),
            io::ErrorKind::WouldBlock,
            "unicast goes to the most specific socket"
        );
    }

    /// A bind error names the address really bound and the options that help.
    /// Runs of same-size datagrams to one destination leave in one system call
    /// (GSO) and arrive as separate datagrams, in order; other sizes and
    /// destinations split the runs.
    #[tokio::test]
    async fn send_batch_groups_trains_and_keeps_datagrams_apart() {
        let tx = BatchUdp::new(bind_udp(Ipv4Addr::new(127, 0, 0, 94), 0).unwrap()).unwrap();
        let mut rx = BatchUdp::new(bind_udp(Ipv4Addr::new(127, 0, 0, 95), 0).unwrap()).unwrap();
        let mut other = BatchUdp::new(bind_udp(Ipv4Addr::new(127, 0, 0, 96), 0).unwrap()).unwrap();
        let (to, elsewhere) = (rx.local_addr().unwrap(), other.local_addr().unwrap());
        let mut out: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for i in 0..10u8 {
            out.push((to, vec![i; 1200]));
        }
        out.push((to, vec![10; 300])); // shorter: ends the train
        out.push((elsewhere, vec![11; 1200]));
        out.push((to, vec![12; 1200]));
        let mut buf = Vec::new();
        let calls = tx.send_batch(&mut out, &mut buf);
        assert!(out.is_empty());
        if tx.max_segments() > 1 {
            assert_eq!(calls, 2, "one train of 11, one sendmmsg of two");
        }
        let mut got = Vec::new();
        while got.len() < 12 {
            tokio::time::timeout(Duration::from_secs(5), rx.recv_batch())
                .await
                .unwrap()
                .unwrap();
            got.extend(rx.received().map(|d| (d.data.len(), d.data[0])));
        }
        let mut want: Vec<(usize, u8)> = (0..10).map(|i| (1200, i)).collect();
        want.push((300, 10));
        want.push((1200, 12));
        assert_eq!(got, want);
        tokio::time::timeout(Duration::from_secs(5), other.recv_batch())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            other.received().map(|d| d.data[0]).collect::<Vec<_>>(),
            vec![11]
        );
    }

    /// Accepted and dialed connections get TCP keepalive.
    #[tokio::test]
    async fn connections_get_keepalive() {
        let l = bind_listener(Ipv4Addr::new(127, 0, 0, 99), 0, crate::Bound::AuthListener).unwrap();
        let addr = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        for t in [&c, &s] {
            assert!(!socket2::SockRef::from(t).keepalive().unwrap());
            keepalive(t).unwrap();
            let r = socket2::SockRef::from(t);
            assert!(r.keepalive().unwrap());
            assert_eq!(r.keepalive_time().unwrap(), Duration::from_secs(60));
        }
        assert!(raise_descriptor_limit(4096) >= 1024);
        assert_eq!(web_connection_budget(1024), 128);
        assert_eq!(web_connection_budget(100), 16);
        assert_eq!(web_connection_budget(1 << 20), 1024);
    }

    #[tokio::test]
    async fn bind_error_names_the_address_and_the_way_out() {
        let ip = Ipv4Addr::new(127, 0, 0, 93);
        let taken = std::net::UdpSocket::bind((ip, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = bind_discovery(ip, port).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, crate::Error::Bind { what: crate::Bound::Discovery, addr, .. } if addr == SocketAddr::from((ip, port))),
            "{e:?}"
        );
        assert!(text.contains(&format!("127.0.0.93:{port}")), "{text}");
        assert!(
            text.contains("--ip") && text.contains("--discovery-port"),
            "{text}"
        );
        assert_eq!(
            discovery_bind_addr(Ipv4Addr::new(192, 0, 2, 7), 5684),
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5684)
        );
    }
}
