//! Typed views of the lines JSEP negotiates.

use super::{Line, MediaSection, SdpError, SessionDescription};
use std::net::IpAddr;

fn attrs<'a>(lines: &'a [Line], name: &'a str) -> impl Iterator<Item = Option<&'a str>> + 'a {
    lines
        .iter()
        .filter_map(move |l| l.as_attribute().filter(|(n, _)| *n == name).map(|(_, v)| v))
}

fn attr<'a>(lines: &'a [Line], name: &str) -> Option<&'a str> {
    for l in lines {
        if let Some((n, v)) = l.as_attribute() {
            if n == name {
                return v;
            }
        }
    }
    None
}

fn flag(lines: &[Line], name: &str) -> bool {
    lines
        .iter()
        .any(|l| l.as_attribute().is_some_and(|(n, _)| n == name))
}

fn num<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, SdpError> {
    s.parse().map_err(|_| SdpError::Malformed(what))
}

/// `o=` (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `a=group:` (RFC 5888), e.g. BUNDLE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub semantics: String,
    pub mids: Vec<String>,
}

impl SessionDescription {
    /// The origin line.
    pub fn origin(&self) -> Result<Origin, SdpError> {
        let o = self
            .session
            .iter()
            .find(|l| l.kind == 'o')
            .ok_or(SdpError::Missing("o="))?;
        let f: Vec<&str> = o.value.split(' ').collect();
        let [username, id, version, net, addr_type, address] = f.as_slice() else {
            return Err(SdpError::Malformed("o="));
        };
        Ok(Origin {
            username: (*username).to_owned(),
            session_id: num(id, "o= session id")?,
            session_version: num(version, "o= session version")?,
            net_type: (*net).to_owned(),
            addr_type: (*addr_type).to_owned(),
            address: (*address).to_owned(),
        })
    }

    /// Session-level `a=group:` lines.
    pub fn groups(&self) -> Vec<Group> {
        attrs(&self.session, "group")
            .flatten()
            .map(|v| {
                let mut it = v.split(' ').filter(|s| !s.is_empty());
                Group {
                    semantics: it.next().unwrap_or_default().to_owned(),
                    mids: it.map(str::to_owned).collect(),
                }
            })
            .collect()
    }

    /// The mids of the BUNDLE group, if any.
    pub fn bundle(&self) -> Option<Vec<String>> {
        self.groups()
            .into_iter()
            .find(|g| g.semantics == "BUNDLE")
            .map(|g| g.mids)
    }

    /// Whether `m` is rejected: port 0, unless it is `a=bundle-only` in the
    /// BUNDLE group (RFC 8843 §7.3.3: an offerer may send bundled sections
    /// with port 0, to be answered on the bundle's transport).
    pub fn is_rejected(&self, m: &MediaSection) -> bool {
        let Ok(line) = m.media_line() else {
            return true;
        };
        if line.port != 0 {
            return false;
        }
        let bundled = m
            .mid()
            .is_some_and(|mid| self.bundle().unwrap_or_default().iter().any(|b| b == mid));
        !(bundled && flag(&m.lines, "bundle-only"))
    }

    /// A session-level attribute value.
    pub fn session_attribute(&self, name: &str) -> Option<&str> {
        attr(&self.session, name)
    }

    /// ICE ufrag of `m`, falling back to the session level.
    pub fn ice_ufrag<'a>(&'a self, m: &'a MediaSection) -> Option<&'a str> {
        attr(&m.lines, "ice-ufrag").or_else(|| attr(&self.session, "ice-ufrag"))
    }

    /// ICE password of `m`, falling back to the session level.
    pub fn ice_pwd<'a>(&'a self, m: &'a MediaSection) -> Option<&'a str> {
        attr(&m.lines, "ice-pwd").or_else(|| attr(&self.session, "ice-pwd"))
    }

    /// Fingerprints of `m`, falling back to the session level.
    pub fn fingerprints(&self, m: &MediaSection) -> Result<Vec<Fingerprint>, SdpError> {
        let media = m.fingerprints()?;
        if media.is_empty() {
            attrs(&self.session, "fingerprint")
                .flatten()
                .map(Fingerprint::parse)
                .collect()
        } else {
            Ok(media)
        }
    }

    /// The media section with this mid.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaSection> {
        self.media.iter().find(|m| m.mid() == Some(mid))
    }
}

/// `m=` (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// audio, video, application, …
    pub kind: String,
    pub port: u16,
    pub port_count: Option<u16>,
    pub proto: String,
    pub formats: Vec<String>,
}

/// Media direction (RFC 8866 §6.7), `sendrecv` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction the other side sees (RFC 3264 §6).
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// DTLS role attribute (RFC 4145 / RFC 8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    ActPass,
    Active,
    Passive,
    HoldConn,
}

impl Setup {
    fn parse(s: &str) -> Result<Self, SdpError> {
        Ok(match s {
            "actpass" => Setup::ActPass,
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "holdconn" => Setup::HoldConn,
            _ => return Err(SdpError::Malformed("a=setup")),
        })
    }
}

/// `a=fingerprint:` (RFC 8122): hash function and digest bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Lower-case hash name, e.g. `sha-256`.
    pub algorithm: String,
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses `sha-256 AB:CD:…`; the digest length must match the hash.
    pub fn parse(s: &str) -> Result<Self, SdpError> {
        let (alg, hexs) = s
            .split_once(' ')
            .ok_or(SdpError::Malformed("a=fingerprint"))?;
        let algorithm = alg.to_ascii_lowercase();
        let want = match algorithm.as_str() {
            "sha-1" => 20,
            "sha-224" => 28,
            "sha-256" => 32,
            "sha-384" => 48,
            "sha-512" => 64,
            _ => return Err(SdpError::Malformed("a=fingerprint hash")),
        };
        let digest = hexs
            .trim()
            .split(':')
            .map(|b| {
                if b.len() == 2 {
                    u8::from_str_radix(b, 16).ok()
                } else {
                    None
                }
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(SdpError::Malformed("a=fingerprint digest"))?;
        if digest.len() != want {
            return Err(SdpError::Malformed("a=fingerprint length"));
        }
        Ok(Self { algorithm, digest })
    }

    /// `sha-256 AB:CD:…` with upper-case colon hex.
    pub fn to_value(&self) -> String {
        let hexs: Vec<String> = self.digest.iter().map(|b| format!("{b:02X}")).collect();
        format!("{} {}", self.algorithm, hexs.join(":"))
    }
}

/// `a=candidate:` (RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub foundation: String,
    pub component: u16,
    pub transport: String,
    pub priority: u32,
    /// An IP address, or an mDNS name (`….local`) as browsers send.
    pub address: String,
    pub port: u16,
    /// host, srflx, prflx, relay.
    pub typ: String,
    pub related_address: Option<String>,
    pub related_port: Option<u16>,
    /// Remaining name/value pairs in order (generation, network-cost, tcptype…).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A UDP host candidate of component 1 at `addr` (RFC 8839 §5.1).
    pub fn host(foundation: &str, addr: std::net::SocketAddr, priority: u32) -> Self {
        Candidate {
            foundation: foundation.to_owned(),
            component: 1,
            transport: "udp".into(),
            priority,
            address: addr.ip().to_string(),
            port: addr.port(),
            typ: "host".into(),
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        }
    }

    /// Parses the value after `candidate:`.
    pub fn parse(s: &str) -> Result<Self, SdpError> {
        let bad = || SdpError::Malformed("a=candidate");
        let f: Vec<&str> = s.split(' ').filter(|x| !x.is_empty()).collect();
        if f.len() < 8 || f[6] != "typ" {
            return Err(bad());
        }
        let mut c = Candidate {
            foundation: f[0].to_owned(),
            component: f[1].parse().map_err(|_| bad())?,
            transport: f[2].to_owned(),
            priority: f[3].parse().map_err(|_| bad())?,
            address: f[4].to_owned(),
            port: f[5].parse().map_err(|_| bad())?,
            typ: f[7].to_owned(),
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        };
        let mut rest = f[8..].chunks(2);
        for pair in rest.by_ref() {
            let [k, v] = pair else { return Err(bad()) };
            match *k {
                "raddr" => c.related_address = Some((*v).to_owned()),
                "rport" => c.related_port = Some(v.parse().map_err(|_| bad())?),
                _ => c.extensions.push(((*k).to_owned(), (*v).to_owned())),
            }
        }
        Ok(c)
    }

    /// The address as an IP, unless it is an mDNS name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// The value after `candidate:`.
    pub fn to_value(&self) -> String {
        let mut s = format!(
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ
        );
        if let Some(a) = &self.related_address {
            s.push_str(&format!(" raddr {a}"));
        }
        if let Some(p) = self.related_port {
            s.push_str(&format!(" rport {p}"));
        }
        for (k, v) in &self.extensions {
            s.push_str(&format!(" {k} {v}"));
        }
        s
    }
}

/// `a=rtpmap:` (RFC 8866 §6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=fmtp:` parameters of one payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    pub payload_type: u8,
    pub params: String,
}

/// `a=rtcp-fb:` (RFC 4585): `*` or a payload type, and the feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    /// `None` for `*`.
    pub payload_type: Option<u8>,
    pub feedback: String,
}

/// `a=extmap:` (RFC 8285).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extmap {
    pub id: u16,
    pub direction: Option<String>,
    pub uri: String,
    pub attributes: Option<String>,
}

/// `a=ssrc:` (RFC 5576).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcAttr {
    pub ssrc: u32,
    pub attribute: String,
    pub value: Option<String>,
}

/// `a=msid:` (RFC 8830).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msid {
    pub stream: String,
    pub track: Option<String>,
}

impl MediaSection {
    /// The `m=` line.
    pub fn media_line(&self) -> Result<MediaLine, SdpError> {
        let m = self
            .lines
            .first()
            .filter(|l| l.kind == 'm')
            .ok_or(SdpError::Missing("m="))?;
        let f: Vec<&str> = m.value.split(' ').filter(|x| !x.is_empty()).collect();
        if f.len() < 3 {
            return Err(SdpError::Malformed("m="));
        }
        let (port, port_count) = match f[1].split_once('/') {
            Some((p, c)) => (num(p, "m= port")?, Some(num(c, "m= port count")?)),
            None => (num(f[1], "m= port")?, None),
        };
        Ok(MediaLine {
            kind: f[0].to_owned(),
            port,
            port_count,
            proto: f[2].to_owned(),
            formats: f[3..].iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// All values of attribute `name` in this section.
    pub fn attribute_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = Option<&'a str>> + 'a {
        attrs(&self.lines, name)
    }

    /// `a=mid:`.
    pub fn mid(&self) -> Option<&str> {
        attr(&self.lines, "mid")
    }

    /// The direction attribute, `sendrecv` if none.
    pub fn direction(&self) -> Direction {
        for l in &self.lines {
            match l.as_attribute() {
                Some(("sendrecv", None)) => return Direction::SendRecv,
                Some(("sendonly", None)) => return Direction::SendOnly,
                Some(("recvonly", None)) => return Direction::RecvOnly,
                Some(("inactive", None)) => return Direction::Inactive,
                _ => {}
            }
        }
        Direction::SendRecv
    }

    /// `a=ice-options:` tokens.
    pub fn ice_options(&self) -> Vec<&str> {
        attr(&self.lines, "ice-options")
            .map(|v| v.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// `a=candidate:` lines, each parsed.
    pub fn candidates(&self) -> Vec<Result<Candidate, SdpError>> {
        attrs(&self.lines, "candidate")
            .map(|v| Candidate::parse(v.unwrap_or_default()))
            .collect()
    }

    /// `a=end-of-candidates`.
    pub fn end_of_candidates(&self) -> bool {
        flag(&self.lines, "end-of-candidates")
    }

    /// `a=fingerprint:` lines of this section.
    pub fn fingerprints(&self) -> Result<Vec<Fingerprint>, SdpError> {
        attrs(&self.lines, "fingerprint")
            .map(|v| Fingerprint::parse(v.unwrap_or_default()))
            .collect()
    }

    /// `a=setup:`.
    pub fn setup(&self) -> Result<Option<Setup>, SdpError> {
        attr(&self.lines, "setup").map(Setup::parse).transpose()
    }

    /// `a=rtcp-mux`.
    pub fn rtcp_mux(&self) -> bool {
        flag(&self.lines, "rtcp-mux")
    }

    /// `a=rtcp-rsize` (RFC 5506): reduced-size RTCP may be sent.
    pub fn rtcp_rsize(&self) -> bool {
        flag(&self.lines, "rtcp-rsize")
    }

    /// `a=rtpmap:` lines.
    pub fn rtpmaps(&self) -> Result<Vec<RtpMap>, SdpError> {
        attrs(&self.lines, "rtpmap")
            .map(|v| {
                let bad = SdpError::Malformed("a=rtpmap");
                let (pt, enc) = v.unwrap_or_default().split_once(' ').ok_or(bad.clone())?;
                let mut p = enc.split('/');
                let encoding = p
                    .next()
                    .filter(|e| !e.is_empty())
                    .ok_or(bad.clone())?
                    .to_owned();
                let clock_rate = num(p.next().ok_or(bad.clone())?, "a=rtpmap clock")?;
                let channels = p.next().map(|c| num(c, "a=rtpmap channels")).transpose()?;
                Ok(RtpMap {
                    payload_type: num(pt, "a=rtpmap payload type")?,
                    encoding,
                    clock_rate,
                    channels,
                })
            })
            .collect()
    }

    /// `a=fmtp:` lines.
    pub fn fmtps(&self) -> Result<Vec<Fmtp>, SdpError> {
        attrs(&self.lines, "fmtp")
            .map(|v| {
                let (pt, params) = v
                    .unwrap_or_default()
                    .split_once(' ')
                    .ok_or(SdpError::Malformed("a=fmtp"))?;
                Ok(Fmtp {
                    payload_type: num(pt, "a=fmtp payload type")?,
                    params: params.to_owned(),
                })
            })
            .collect()
    }

    /// `a=rtcp-fb:` lines.
    pub fn rtcp_fbs(&self) -> Result<Vec<RtcpFb>, SdpError> {
        attrs(&self.lines, "rtcp-fb")
            .map(|v| {
                let (pt, fb) = v
                    .unwrap_or_default()
                    .split_once(' ')
                    .ok_or(SdpError::Malformed("a=rtcp-fb"))?;
                let payload_type = if pt == "*" {
                    None
                } else {
                    Some(num(pt, "a=rtcp-fb payload type")?)
                };
                Ok(RtcpFb {
                    payload_type,
                    feedback: fb.to_owned(),
                })
            })
            .collect()
    }

    /// `a=extmap:` lines.
    pub fn extmaps(&self) -> Result<Vec<Extmap>, SdpError> {
        attrs(&self.lines, "extmap")
            .map(|v| {
                let mut f = v.unwrap_or_default().splitn(3, ' ');
                let idd = f.next().ok_or(SdpError::Malformed("a=extmap"))?;
                let (id, direction) = match idd.split_once('/') {
                    Some((i, d)) => (i, Some(d.to_owned())),
                    None => (idd, None),
                };
                let uri = f
                    .next()
                    .filter(|u| !u.is_empty())
                    .ok_or(SdpError::Malformed("a=extmap uri"))?
                    .to_owned();
                Ok(Extmap {
                    id: num(id, "a=extmap id")?,
                    direction,
                    uri,
                    attributes: f.next().map(str::to_owned),
                })
            })
            .collect()
    }

    /// `a=msid:` lines.
    pub fn msids(&self) -> Vec<Msid> {
        attrs(&self.lines, "msid")
            .flatten()
            .map(|v| match v.split_once(' ') {
                Some((s, t)) => Msid {
                    stream: s.to_owned(),
                    track: Some(t.to_owned()),
                },
                None => Msid {
                    stream: v.to_owned(),
                    track: None,
                },
            })
            .collect()
    }

    /// `a=ssrc:` lines.
    pub fn ssrcs(&self) -> Result<Vec<SsrcAttr>, SdpError> {
        attrs(&self.lines, "ssrc")
            .map(|v| {
                let v = v.unwrap_or_default();
                let (ssrc, rest) = v.split_once(' ').unwrap_or((v, ""));
                let (attribute, value) = match rest.split_once(':') {
                    Some((a, b)) => (a.to_owned(), Some(b.to_owned())),
                    None => (rest.to_owned(), None),
                };
                Ok(SsrcAttr {
                    ssrc: num(ssrc, "a=ssrc id")?,
                    attribute,
                    value,
                })
            })
            .collect()
    }

    /// `a=sctp-port:` (RFC 8841).
    pub fn sctp_port(&self) -> Result<Option<u16>, SdpError> {
        attr(&self.lines, "sctp-port")
            .map(|v| num(v, "a=sctp-port"))
            .transpose()
    }

    /// `a=max-message-size:` (RFC 8841); 0 means no limit.
    pub fn max_message_size(&self) -> Result<Option<u64>, SdpError> {
        attr(&self.lines, "max-message-size")
            .map(|v| num(v, "a=max-message-size"))
            .transpose()
    }
}
