//! DTLS transport over OpenSSL: two transports in memory (role logic, fingerprint
//! check, SRTP keys, application data), and interop with the OpenSSL command line
//! (`s_server` / `s_client -dtls1_2 -use_srtp`) with the exported keys compared.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // tests: unwrap asserts; Instant::now is the clock here
use softbus_crypto::dtls::DtlsIdentity;
use softbus_rtc::dtls::{
    DtlsError, DtlsEvent, DtlsRole, DtlsState, DtlsTransport, SrtpKeys, SrtpProfile,
};
use std::time::{Duration, Instant};

fn pair(role_a: DtlsRole, role_b: DtlsRole, corrupt_fp: bool) -> (DtlsTransport, DtlsTransport) {
    let (ia, ib) = (
        DtlsIdentity::generate().unwrap(),
        DtlsIdentity::generate().unwrap(),
    );
    let mut a = DtlsTransport::new(Box::new(ia.factory().unwrap()), role_a);
    let mut b = DtlsTransport::new(Box::new(ib.factory().unwrap()), role_b);
    let mut fp_b = ib.fingerprint("sha-256").unwrap();
    if corrupt_fp {
        fp_b.digest[0] ^= 1;
    }
    a.set_remote_fingerprint(fp_b);
    b.set_remote_fingerprint(ia.fingerprint("sha-256").unwrap());
    (a, b)
}

fn run(a: &mut DtlsTransport, b: &mut DtlsTransport) -> (Vec<DtlsEvent>, Vec<DtlsEvent>) {
    let now = Instant::now();
    a.set_ice_connected(now, true);
    b.set_ice_connected(now, true);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let mut moved = false;
        while let Some(d) = a.poll_transmit() {
            b.handle_datagram(now, &d);
            moved = true;
        }
        while let Some(d) = b.poll_transmit() {
            a.handle_datagram(now, &d);
            moved = true;
        }
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        eb.extend(std::iter::from_fn(|| b.poll_event()));
        if !moved {
            break;
        }
    }
    (ea, eb)
}

fn keys(ev: &[DtlsEvent]) -> SrtpKeys {
    ev.iter()
        .find_map(|e| {
            if let DtlsEvent::SrtpKeys(k) = e {
                Some(k.clone())
            } else {
                None
            }
        })
        .expect("SRTP keys")
}

#[test]
fn handshake_in_memory_keys_agree_and_data_flows() {
    let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Auto, false);
    let (ea, eb) = run(&mut a, &mut b);
    assert_eq!(
        (a.state(), b.state()),
        (DtlsState::Connected, DtlsState::Connected)
    );
    assert_eq!(
        (a.is_client(), b.is_client()),
        (Some(true), Some(false)),
        "auto becomes server"
    );
    let (ka, kb) = (keys(&ea), keys(&eb));
    assert_eq!(
        ka.profile,
        SrtpProfile::AeadAes256Gcm,
        "most preferred profile"
    );
    assert_eq!((ka.local_key.len(), ka.local_salt.len()), (32, 12));
    assert_eq!(
        (&ka.local_key, &ka.local_salt),
        (&kb.remote_key, &kb.remote_salt)
    );
    assert_eq!(
        (&ka.remote_key, &ka.remote_salt),
        (&kb.local_key, &kb.local_salt)
    );
    assert_ne!(ka.local_key, ka.remote_key);
    let now = Instant::now();
    a.send(now, b"sctp packet").unwrap();
    while let Some(d) = a.poll_transmit() {
        b.handle_datagram(now, &d);
    }
    assert!(std::iter::from_fn(|| b.poll_event())
        .any(|e| e == DtlsEvent::Data(b"sctp packet".to_vec())));
}

#[test]
fn wrong_fingerprint_fails_the_handshake() {
    let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, true);
    let (ea, _) = run(&mut a, &mut b);
    assert_eq!(a.state(), DtlsState::Failed);
    assert!(ea.contains(&DtlsEvent::Failed(DtlsError::FingerprintMismatch)));
    assert!(
        !ea.iter().any(|e| matches!(e, DtlsEvent::SrtpKeys(_))),
        "no keys from an unverified peer"
    );
    assert_eq!(a.send(Instant::now(), b"x"), Err(DtlsError::NotConnected));
}

/// A server that packs its last flight and an application record into one
/// datagram does not get the record delivered to a client whose fingerprint check
/// fails (mediasoup drops data until the handshake is verified).
#[test]
fn data_before_the_fingerprint_check_is_not_delivered() {
    for corrupt in [true, false] {
        let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, corrupt);
        let now = Instant::now();
        a.set_ice_connected(now, true);
        b.set_ice_connected(now, true);
        let mut ea = Vec::new();
        let mut packed = Vec::new();
        for _ in 0..20 {
            while let Some(d) = a.poll_transmit() {
                b.handle_datagram(now, &d);
            }
            if b.state() == DtlsState::Connected {
                break;
            }
            while let Some(d) = b.poll_transmit() {
                a.handle_datagram(now, &d);
            }
            ea.extend(std::iter::from_fn(|| a.poll_event()));
        }
        assert_eq!(b.state(), DtlsState::Connected);
        b.send(now, b"secret").unwrap();
        while let Some(d) = b.poll_transmit() {
            packed.extend_from_slice(&d);
        }
        a.handle_datagram(now, &packed);
        ea.extend(std::iter::from_fn(|| a.poll_event()));
        let data: Vec<&DtlsEvent> = ea
            .iter()
            .filter(|e| matches!(e, DtlsEvent::Data(_)))
            .collect();
        if corrupt {
            assert!(data.is_empty(), "{ea:?}");
            assert!(ea.contains(&DtlsEvent::Failed(DtlsError::FingerprintMismatch)));
        } else {
            // Verified: the same record is delivered, after the keys.
            assert_eq!(data, vec![&DtlsEvent::Data(b"secret".to_vec())], "{ea:?}");
            let keys_at = ea.iter().position(|e| matches!(e, DtlsEvent::SrtpKeys(_)));
            let data_at = ea.iter().position(|e| matches!(e, DtlsEvent::Data(_)));
            assert!(keys_at < data_at);
        }
    }
}

/// close() sends close_notify; the peer ends in `Closed`, not `Failed`.
#[test]
fn close_sends_close_notify_and_the_peer_sees_closed() {
    for closer_is_client in [true, false] {
        let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, false);
        run(&mut a, &mut b);
        let (closer, other) = if closer_is_client {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        closer.close();
        assert_eq!(closer.state(), DtlsState::Closed);
        let alert: Vec<Vec<u8>> = std::iter::from_fn(|| closer.poll_transmit()).collect();
        assert_eq!(alert.len(), 1, "one close_notify record");
        assert_eq!(alert[0][0], 21, "an alert record");
        other.handle_datagram(Instant::now(), &alert[0]);
        let ev: Vec<DtlsEvent> = std::iter::from_fn(|| other.poll_event()).collect();
        assert_eq!(other.state(), DtlsState::Closed);
        assert!(ev.contains(&DtlsEvent::Closed), "{ev:?}");
        assert!(
            !ev.iter().any(|e| matches!(e, DtlsEvent::Failed(_))),
            "{ev:?}"
        );
    }
    // A transport that never connected sends nothing when closed.
    let (mut a, _) = pair(DtlsRole::Client, DtlsRole::Server, false);
    a.close();
    assert_eq!(a.poll_transmit(), None);
}

#[test]
fn nothing_before_ice_and_role_change_resets() {
    let (mut a, _) = pair(DtlsRole::Client, DtlsRole::Server, false);
    assert!(
        a.poll_transmit().is_none(),
        "no handshake before ICE is connected"
    );
    let now = Instant::now();
    a.set_ice_connected(now, true);
    assert_eq!(a.state(), DtlsState::Connecting);
    assert!(a.poll_transmit().is_some(), "ClientHello");
    a.set_role(now, DtlsRole::Server);
    assert_eq!(a.is_client(), Some(false), "restarted as server");
    assert!(
        a.poll_transmit().is_none(),
        "a server waits for the ClientHello"
    );
    a.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(a.state(), DtlsState::Failed, "handshake deadline");
}

// ---- interop with the OpenSSL command line -------------------------------------

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Command, Stdio};

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Drives `t` over `sock` (connected to the peer) until connected or 10 s pass.
fn drive_udp(t: &mut DtlsTransport, sock: &UdpSocket) -> Vec<DtlsEvent> {
    drive_udp_dropping(t, sock, |_| false)
}

/// [`drive_udp`], with the received datagrams for which `drop` says so lost.
fn drive_udp_dropping(
    t: &mut DtlsTransport,
    sock: &UdpSocket,
    mut drop: impl FnMut(&[u8]) -> bool,
) -> Vec<DtlsEvent> {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let mut ev = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end
        && t.state() != DtlsState::Connected
        && t.state() != DtlsState::Failed
    {
        while let Some(d) = t.poll_transmit() {
            let _ = sock.send(&d);
        }
        match sock.recv(&mut buf) {
            Ok(n) if drop(&buf[..n]) => {}
            Ok(n) => t.handle_datagram(Instant::now(), &buf[..n]),
            Err(_) => t.handle_timeout(Instant::now()),
        }
        ev.extend(std::iter::from_fn(|| t.poll_event()));
    }
    while let Some(d) = t.poll_transmit() {
        let _ = sock.send(&d);
    }
    ev.extend(std::iter::from_fn(|| t.poll_event()));
    ev
}

fn keying_material(output: &str) -> Option<Vec<u8>> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Keying material: "))
        .and_then(|h| hex::decode(h.trim()).ok())
}

fn pem_identity(dir: &std::path::Path) -> DtlsIdentity {
    pem_identity_with(dir, &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
}

/// A self-signed identity made by `openssl req -newkey <key>` in `dir`.
fn pem_identity_with(dir: &std::path::Path, key: &[&str]) -> DtlsIdentity {
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey"])
        .args(key)
        .args(["-nodes", "-days", "2", "-subj", "/CN=interop"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    DtlsIdentity::from_pem(
        &std::fs::read(dir.join("cert.pem")).unwrap(),
        &std::fs::read(dir.join("key.pem")).unwrap(),
    )
    .unwrap()
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("softbus-dtls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `openssl` with `args`, the PEM identity in `dir` and the DTLS-SRTP key
/// export; returns the child, its stdin (s_server exits at EOF, so keep it open)
/// and a thread collecting its stdout.
fn openssl(
    dir: &std::path::Path,
    args: &[&str],
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::thread::JoinHandle<String>,
) {
    let mut child = Command::new("openssl")
        .args(args)
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .args(["-keymatexport", "EXTRACTOR-dtls_srtp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let out = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    (child, stdin, lines)
}

/// `openssl s_server -dtls1_2` (SRTP, key export, one connection, `extra`
/// arguments) on a free loopback port with the PEM identity made in `dir`, and
/// our client transport for it, ICE connected, with a socket connected to it.
struct S {
    srv: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::thread::JoinHandle<String>,
    t: DtlsTransport,
    sock: UdpSocket,
}

fn s_server(dir: &std::path::Path, extra: &[&str]) -> S {
    let server_id = pem_identity(dir);
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_server",
        "-dtls1_2",
        "-accept",
        &accept,
        "-use_srtp",
        "SRTP_AES128_CM_SHA1_80",
        "-keymatexportlen",
        "60",
        "-naccept",
        "1",
    ];
    args.extend_from_slice(extra);
    let (srv, stdin, lines) = openssl(dir, &args);
    std::thread::sleep(Duration::from_millis(300));
    let me = DtlsIdentity::generate().unwrap();
    let mut t = DtlsTransport::new(Box::new(me.factory().unwrap()), DtlsRole::Client);
    t.set_remote_fingerprint(server_id.fingerprint("sha-256").unwrap());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", port)).unwrap();
    t.set_ice_connected(Instant::now(), true);
    S {
        srv,
        stdin,
        lines,
        t,
        sock,
    }
}

#[test]
fn our_client_against_openssl_s_server() {
    if !have_openssl() {
        eprintln!("SKIPPED: openssl command not found");
        return;
    }
    let dir = tmp("srv");
    let S {
        mut srv,
        mut stdin,
        lines,
        mut t,
        sock,
    } = s_server(&dir, &["-Verify", "1"]);
    let ev = drive_udp(&mut t, &sock);
    assert_eq!(t.state(), DtlsState::Connected, "{ev:?}");
    let k = keys(&ev);
    assert_eq!(k.profile, SrtpProfile::Aes128CmSha1_80);
    t.send(Instant::now(), b"hello from softbus\n").unwrap();
    while let Some(d) = t.poll_transmit() {
        sock.send(&d).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = stdin.write_all(b"Q\n");
    drop(stdin);
    let _ = srv.kill();
    let _ = srv.wait();
    let text = lines.join().unwrap();
    let material = keying_material(&text)
        .unwrap_or_else(|| panic!("s_server printed no key material:\n{text}"));
    // 60 bytes: client key | server key | client salt | server salt; we were the client.
    assert_eq!(material.len(), 60);
    assert_eq!(
        (&material[0..16], &material[32..46]),
        (k.local_key.as_slice(), k.local_salt.as_slice())
    );
    assert_eq!(
        (&material[16..32], &material[46..60]),
        (k.remote_key.as_slice(), k.remote_salt.as_slice())
    );
    assert!(
        text.contains("hello from softbus"),
        "application data reached s_server:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a datagram holds a ChangeCipherSpec record (a final flight).
fn has_change_cipher_spec(d: &[u8]) -> bool {
    let mut rest = d;
    while rest.len() >= 13 {
        if rest[0] == 20 {
            return true;
        }
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        rest = rest.get(13 + len..).unwrap_or_default();
    }
    false
}

/// s_server's final flight (ChangeCipherSpec, Finished) is lost once. The
/// OpenSSL server has finished and answers only a retransmission it can tell
/// from a replay: our client's timer resends its flight re-encrypted with fresh
/// record sequence numbers, s_server sends its final flight again, and both
/// connect with the same keys. (With the first copy's bytes resent, s_server
/// drops them as replays and the handshake times out.)
#[test]
fn a_lost_final_flight_from_openssl_s_server_is_recovered() {
    if !have_openssl() {
        eprintln!("SKIPPED: openssl command not found");
        return;
    }
    let dir = tmp("lost-final");
    let S {
        mut srv,
        stdin,
        lines,
        mut t,
        sock,
    } = s_server(&dir, &[]);
    let mut dropped = 0;
    let ev = drive_udp_dropping(&mut t, &sock, |d| {
        let lose = dropped == 0 && has_change_cipher_spec(d);
        dropped += usize::from(lose);
        lose
    });
    drop(stdin);
    let _ = srv.kill();
    let _ = srv.wait();
    let text = lines.join().unwrap();
    assert_eq!(dropped, 1, "the final flight was never seen:\n{text}");
    assert_eq!(t.state(), DtlsState::Connected, "{ev:?}\n{text}");
    let stats = t.retransmit_stats();
    assert!(stats.renumbered >= 1 && stats.stored == 0, "{stats:?}");
    let material = keying_material(&text)
        .unwrap_or_else(|| panic!("s_server printed no key material:\n{text}"));
    assert_eq!(&material[0..16], keys(&ev).local_key.as_slice());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn openssl_s_client_against_our_server() {
    if !have_openssl() {
        eprintln!("SKIPPED: openssl command not found");
        return;
    }
    let dir = tmp("cli");
    let client_id = pem_identity(&dir);
    let me = DtlsIdentity::generate().unwrap();
    let mut t = DtlsTransport::new(Box::new(me.factory().unwrap()), DtlsRole::Auto);
    t.set_remote_fingerprint(client_id.fingerprint("sha-256").unwrap());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let (mut cli, stdin, lines) = openssl(
        &dir,
        &[
            "s_client",
            "-dtls1_2",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-use_srtp",
            "SRTP_AEAD_AES_128_GCM",
            "-keymatexportlen",
            "56",
        ],
    );
    // Learn the client's address from its first datagram, then connect to it.
    let mut buf = [0u8; 2048];
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    sock.connect(from).unwrap();
    t.set_ice_connected(Instant::now(), true);
    t.handle_datagram(Instant::now(), &buf[..n]);
    let ev = drive_udp(&mut t, &sock);
    assert_eq!(t.state(), DtlsState::Connected, "{ev:?}");
    assert_eq!(t.is_client(), Some(false));
    let k = keys(&ev);
    assert_eq!(k.profile, SrtpProfile::AeadAes128Gcm);
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let _ = cli.kill();
    let _ = cli.wait();
    let text = lines.join().unwrap();
    let material = keying_material(&text)
        .unwrap_or_else(|| panic!("s_client printed no key material:\n{text}"));
    // 56 bytes: client key(16) | server key(16) | client salt(12) | server salt(12); we were the server.
    assert_eq!(material.len(), 56);
    assert_eq!(
        (&material[16..32], &material[44..56]),
        (k.local_key.as_slice(), k.local_salt.as_slice())
    );
    assert_eq!(
        (&material[0..16], &material[32..44]),
        (k.remote_key.as_slice(), k.remote_salt.as_slice())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replays the DTLS fuzz corpus (real ClientHellos captured from openssl s_client, and
/// whatever the fuzzer kept) through the fuzz entry point.
#[test]
fn replay_dtls_fuzz_corpus() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dtls_server");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        softbus_crypto::dtls::fuzz_server(Instant::now(), &data);
        n += 1;
    }
    assert!(n >= 2);
    // A ClientHello really drives the server: it answers with a flight.
    let hello = std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/dtls_server/client_hello_1"),
    )
    .unwrap();
    let id = DtlsIdentity::generate().unwrap();
    let mut t = DtlsTransport::new(Box::new(id.factory().unwrap()), DtlsRole::Server);
    t.set_ice_connected(Instant::now(), true);
    t.handle_datagram(Instant::now(), &hello);
    assert!(t.poll_transmit().is_some(), "ServerHello flight");
}

/// The host's corpus (checks from two source addresses, junk) replays without
/// a panic.
#[test]
fn replay_host_fuzz_corpus() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/host");
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        softbus_crypto::dtls::fuzz_host(Instant::now(), &data);
    }
}

#[test]
fn replay_peer_fuzz_corpus() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/peer");
    let mut sent = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        let n = softbus_crypto::dtls::fuzz_peer(Instant::now(), &data);
        sent.insert(e.file_name().into_string().unwrap(), n);
    }
    // A valid nominating check is answered; a ClientHello after it gets the
    // ServerHello flight: the seeds reach past the demux into ICE and DTLS.
    assert_eq!(sent.get("check"), Some(&1));
    assert_eq!(sent.get("check_then_client_hello"), Some(&2));
}

/// A DTLS transport on the shared test network, at `me`, talking to `peer`.
struct Tr<'a> {
    t: &'a mut DtlsTransport,
    me: std::net::SocketAddr,
    peer: std::net::SocketAddr,
    sent: &'a mut u64,
}

impl softbus_testkit::Driven for Tr<'_> {
    fn owns(&self, a: std::net::SocketAddr) -> bool {
        a == self.me
    }
    fn poll_datagram(&mut self) -> Option<softbus_testkit::Datagram> {
        let payload = self.t.poll_transmit()?;
        *self.sent += 1;
        Some(softbus_testkit::Datagram {
            from: self.me,
            to: self.peer,
            payload,
        })
    }
    fn handle_datagram(&mut self, now: Instant, d: softbus_testkit::Datagram) {
        self.t.handle_datagram(now, &d.payload);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.t.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.t.handle_timeout(now);
    }
}

/// Drives two transports on `net` until both connect or `limit` of virtual time
/// passes; returns the virtual time it took and the datagrams each sent.
fn run_net(
    a: &mut DtlsTransport,
    b: &mut DtlsTransport,
    net: &mut softbus_testkit::Net,
    limit: Duration,
) -> (Option<Duration>, (u64, u64)) {
    let (x, y): (std::net::SocketAddr, std::net::SocketAddr) =
        ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    let start = net.now();
    let deadline = net.deadline(limit);
    a.set_ice_connected(start, true);
    b.set_ice_connected(start, true);
    let (mut sa, mut sb) = (0, 0);
    loop {
        if a.state() == DtlsState::Connected && b.state() == DtlsState::Connected {
            return (Some(net.now() - start), (sa, sb));
        }
        let step = net.step(
            &mut [
                &mut Tr {
                    t: a,
                    me: x,
                    peer: y,
                    sent: &mut sa,
                },
                &mut Tr {
                    t: b,
                    me: y,
                    peer: x,
                    sent: &mut sb,
                },
            ],
            deadline,
        );
        if step == softbus_testkit::Step::Idle {
            return (None, (sa, sb));
        }
    }
}

/// The handshake completes in virtual time over seeded links that drop 20% of
/// datagrams each way and reorder them (up to 30 ms jitter): the transport
/// retransmits flights on the caller's clock, not OpenSSL's.
#[test]
fn handshake_survives_loss_and_reordering() {
    use softbus_testkit::{LinkConfig, Net};
    let cfg = LinkConfig {
        loss: 0.2,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(30),
    };
    let mut lost_any = false;
    for seed in 1u64..=20 {
        let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, false);
        let mut net = Net::new(cfg, seed);
        let (took, _) = run_net(&mut a, &mut b, &mut net, Duration::from_secs(29));
        let (sent, dropped) = net.link_stats();
        assert!(
            took.is_some(),
            "seed {seed}: {:?} {:?}",
            a.state(),
            b.state()
        );
        lost_any |= dropped > 0;
        eprintln!("seed {seed}: connected in {took:?} virtual, dropped {dropped}/{sent}");
    }
    assert!(
        lost_any,
        "the links dropped nothing: the test proves nothing"
    );
}

/// Without loss nothing is retransmitted, and nothing is timed once connected.
#[test]
fn no_loss_no_retransmission() {
    use softbus_testkit::{LinkConfig, Net};
    let cfg = LinkConfig {
        loss: 0.0,
        delay: Duration::from_millis(5),
        jitter: Duration::ZERO,
    };
    let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, false);
    let mut net = Net::new(cfg, 1);
    let (took, (sent_a, sent_b)) = run_net(&mut a, &mut b, &mut net, Duration::from_secs(1));
    let took = took.unwrap();
    assert!(took < Duration::from_millis(100), "{took:?}");
    // ClientHello, the client's second flight; the server's two flights.
    assert!(sent_a <= 4 && sent_b <= 6, "{sent_a} {sent_b}");
    assert_eq!((a.poll_timeout(), b.poll_timeout()), (None, None));
}

/// Each of the four flights lost once in turn, in virtual time: the sender's timer
/// (or, for the server's final flight, the client's repeated flight) brings it
/// back, and both sides connect with the same keys.
#[test]
fn every_lost_flight_is_recovered() {
    for lose in 0..4 {
        let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, false);
        let mut clock = softbus_testkit::VirtualClock::new();
        a.set_ice_connected(clock.now(), true);
        b.set_ice_connected(clock.now(), true);
        let (mut flights, mut ea, mut eb) = (0, Vec::new(), Vec::new());
        for _ in 0..200 {
            let now = clock.now();
            a.handle_timeout(now);
            b.handle_timeout(now);
            // Flights alternate: client (even), server (odd).
            let from_a: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
            if !from_a.is_empty() {
                flights += 1;
                if flights - 1 != lose {
                    from_a.iter().for_each(|d| b.handle_datagram(now, d));
                }
            }
            let from_b: Vec<_> = std::iter::from_fn(|| b.poll_transmit()).collect();
            if !from_b.is_empty() {
                flights += 1;
                if flights - 1 != lose {
                    from_b.iter().for_each(|d| a.handle_datagram(now, d));
                }
            }
            ea.extend(std::iter::from_fn(|| a.poll_event()));
            eb.extend(std::iter::from_fn(|| b.poll_event()));
            if a.state() == DtlsState::Connected && b.state() == DtlsState::Connected {
                break;
            }
            clock.advance(Duration::from_millis(100));
        }
        assert_eq!(
            (a.state(), b.state()),
            (DtlsState::Connected, DtlsState::Connected),
            "flight {lose} lost"
        );
        assert_eq!(
            keys(&ea).local_key,
            keys(&eb).remote_key,
            "flight {lose} lost"
        );
    }
}

/// As server, our first flight is lost: when the client's timer sends its
/// ClientHello again, the server answers at once with its flight, not at its
/// own timer (which would fire later), in virtual time.
#[test]
fn a_repeated_client_flight_is_answered_at_once() {
    let (mut a, mut b) = pair(DtlsRole::Client, DtlsRole::Server, false);
    let mut clock = softbus_testkit::VirtualClock::new();
    let t0 = clock.now();
    a.set_ice_connected(t0, true);
    b.set_ice_connected(t0, true);
    let hello: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert!(!hello.is_empty());
    // The server gets the ClientHello 100 ms later; its answer is lost.
    clock.advance(Duration::from_millis(100));
    hello.iter().for_each(|d| b.handle_datagram(clock.now(), d));
    let lost: Vec<_> = std::iter::from_fn(|| b.poll_transmit()).collect();
    assert!(!lost.is_empty(), "the server answered the ClientHello");
    let server_timer = b.poll_timeout().unwrap();
    // The client's timer fires first and repeats its ClientHello.
    let client_timer = a.poll_timeout().unwrap();
    assert!(client_timer < server_timer);
    clock.advance(client_timer - clock.now());
    a.handle_timeout(clock.now());
    let again: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
    assert!(!again.is_empty(), "the client repeated its flight");
    again.iter().for_each(|d| b.handle_datagram(clock.now(), d));
    let answer: Vec<_> = std::iter::from_fn(|| b.poll_transmit()).collect();
    assert_eq!(
        answer.len(),
        lost.len(),
        "the server resent its flight at once, before its timer at {:?}",
        server_timer - t0
    );
    // The resent flight carries the handshake: both sides now connect.
    answer
        .iter()
        .for_each(|d| a.handle_datagram(clock.now(), d));
    let (_, _) = run(&mut a, &mut b);
    assert_eq!(
        (a.state(), b.state()),
        (DtlsState::Connected, DtlsState::Connected)
    );
    // A datagram of new fragments is not taken for a repeat: nothing was
    // resent when the client's second flight arrived.
    assert_eq!(
        b.retransmit_stats().renumbered + b.retransmit_stats().stored,
        1
    );
}

/// An RSA peer certificate (GStreamer's webrtcbin presents one) is accepted in
/// either role: the handshake completes, the fingerprint (of the RSA
/// certificate) is checked, and both sides export the same SRTP keys. A wrong
/// fingerprint of the RSA side still fails.
#[test]
fn an_rsa_peer_certificate_is_accepted_in_either_role() {
    if !have_openssl() {
        eprintln!("SKIPPED: openssl command not found (it makes the RSA certificate)");
        return;
    }
    let dir = tmp("rsa");
    let rsa = pem_identity_with(&dir, &["rsa:2048"]);
    for (ours_role, rsa_role) in [
        (DtlsRole::Auto, DtlsRole::Client),
        (DtlsRole::Client, DtlsRole::Auto),
    ] {
        for corrupt in [false, true] {
            let ours = DtlsIdentity::generate().unwrap();
            let mut a = DtlsTransport::new(Box::new(ours.factory().unwrap()), ours_role);
            let mut b = DtlsTransport::new(Box::new(rsa.factory().unwrap()), rsa_role);
            let mut fp = rsa.fingerprint("sha-256").unwrap();
            if corrupt {
                fp.digest[0] ^= 1;
            }
            a.set_remote_fingerprint(fp);
            b.set_remote_fingerprint(ours.fingerprint("sha-256").unwrap());
            let (ea, eb) = run(&mut a, &mut b);
            if corrupt {
                assert_ne!(a.state(), DtlsState::Connected, "{ours_role:?}");
                continue;
            }
            assert_eq!(
                (a.state(), b.state()),
                (DtlsState::Connected, DtlsState::Connected),
                "{ours_role:?}"
            );
            let (ka, kb) = (keys(&ea), keys(&eb));
            assert_eq!(
                (&ka.local_key, &ka.remote_key),
                (&kb.remote_key, &kb.local_key)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
