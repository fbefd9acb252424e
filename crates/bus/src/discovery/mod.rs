//! Discovery over CoAP/UDP with softbus_lite's JSON payload: the responder
//! (answers requests with a NON POST sent to the requester's `wlanIp`), the
//! discoverer (request schedule, device table with expiry) and the publish API.

pub mod payload;
pub mod publish;

use crate::coap::{self, CoapError, CoapOption, Message, MessageType};
use payload::{DevicePayload, FullRequest, LiteReply, PayloadError};
use publish::{CommandError, CommonInfo, Publications, PublishError, PublishInfo};
pub use softbus_proto::Datagram;
use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// The CoAP resource softbus uses.
pub const RESOURCE: &str = "device_discover";
/// Default discovery port (`COAP_DEFAULT_PORT`).
pub const DEFAULT_PORT: u16 = 5684;

/// Why a datagram was dropped. It costs only that datagram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    #[error("malformed CoAP: {0}")]
    Coap(#[from] CoapError),
    #[error("bad discovery payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("request carries no usable wlanIp to answer")]
    NoReplyAddress,
    #[error("reply rate limit reached")]
    RateLimited,
    #[error("datagram from ourselves")]
    Own,
    #[error("datagram addressed to {0}, neither our address nor a broadcast")]
    NotForUs(std::net::IpAddr),
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Port replies and requests are sent to (and the driver binds).
    pub port: u16,
    /// Replies per second the responder sends at most (token bucket; a reflection guard).
    pub reply_rate: u32,
    /// Devices kept in the table.
    pub table_limit: usize,
    /// A device not heard from for this long is dropped.
    pub device_ttl: Duration,
    /// Bound of the transmit and event queues.
    pub queue_limit: usize,
    /// Intervals between discovery requests; the first is sent at once.
    pub schedule: Vec<Duration>,
    /// The directed broadcast address of the node's subnet, if it has one: a
    /// datagram to it (or to 255.255.255.255, or to the node's own address) is
    /// for this node; one to any other address of the host is not answered.
    pub directed_broadcast: Option<std::net::Ipv4Addr>,
    /// Publish the full stack's capability names too (bits 7-18: `osdCapability`,
    /// `share`, …), not only softbus_lite's seven. Off for the C API, whose
    /// PublishService keeps lite's rules.
    pub full_stack_capabilities: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        // The full stack's schedule: 12 requests, 100 ms, then 200 ms twice, then 500 ms.
        let mut schedule = vec![
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(200),
        ];
        schedule.extend(std::iter::repeat_n(Duration::from_millis(500), 8));
        Self {
            port: DEFAULT_PORT,
            reply_rate: 200,
            table_limit: 256,
            device_ttl: Duration::from_secs(60),
            queue_limit: 1024,
            schedule,
            directed_broadcast: None,
            full_stack_capabilities: false,
        }
    }
}

/// This device as discovery presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDevice {
    /// 64 upper-case hex characters.
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: Ipv4Addr,
    pub auth_port: Option<u16>,
}

/// A device learned from a request or a reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FoundDevice {
    pub device_id: String,
    pub name: String,
    pub device_type: u8,
    pub ip: Ipv4Addr,
    pub auth_port: Option<u16>,
    pub capabilities: Vec<String>,
    pub capability_bitmap: Vec<u32>,
    pub service_data: Option<String>,
}

/// What the engine tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A device answered or asked for the first time, or its info changed.
    DeviceFound(FoundDevice),
    /// A device was not heard from within the TTL.
    DeviceLost(String),
    /// The request schedule has been sent out.
    ScheduleDone,
}

#[derive(Debug)]
struct Entry {
    device: FoundDevice,
    last_seen: Instant,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

#[derive(Debug)]
struct Schedule {
    targets: Vec<SocketAddrV4>,
    next: Instant,
    sent: usize,
}

/// The discovery engine.
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    local: LocalDevice,
    hicom_version: &'static str,
    publications: Publications,
    table: HashMap<String, Entry>,
    transmits: VecDeque<Datagram>,
    events: VecDeque<DiscoveryEvent>,
    schedule: Option<Schedule>,
    bucket: Bucket,
    /// The reply body; rebuilt after anything it shows changes.
    reply_cache: Option<String>,
    message_id: u16,
    /// `seqNo` of the next request (nstackx answers no broadcast request
    /// without one).
    seq_no: u16,
    dropped: u64,
}

impl Discovery {
    /// A new engine for `local`.
    pub fn new(config: DiscoveryConfig, local: LocalDevice) -> Self {
        let tokens = f64::from(config.reply_rate);
        let full_stack = config.full_stack_capabilities;
        Self {
            config,
            local,
            hicom_version: "",
            publications: Publications::with_full_stack(full_stack),
            table: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            schedule: None,
            bucket: Bucket { tokens, at: None },
            reply_cache: None,
            message_id: 0,
            seq_no: 0,
            dropped: 0,
        }
    }

    /// This device.
    pub fn local(&self) -> &LocalDevice {
        &self.local
    }

    /// Sets the auth port advertised in `serviceData` (`None` → `port:-1`).
    pub fn set_auth_port(&mut self, port: Option<u16>) {
        self.reply_cache = None;
        self.local.auth_port = port;
    }

    /// PublishService.
    pub fn publish(
        &mut self,
        module: Option<&str>,
        info: &PublishInfo,
    ) -> Result<(), PublishError> {
        self.reply_cache = None;
        self.publications.publish(module, info)
    }

    /// UnPublishService.
    pub fn unpublish(&mut self, module: Option<&str>, publish_id: i32) -> Result<(), CommandError> {
        self.reply_cache = None;
        self.publications.unpublish(module, publish_id)
    }

    /// SetCommonDeviceInfo. Unlike softbus_lite, the device id stays wrapped as
    /// `{"UDID":…}` afterwards, so full-stack peers can still parse it.
    pub fn set_common_device_info(&mut self, entries: &[(i32, &str)]) -> Result<(), CommandError> {
        self.reply_cache = None;
        let mut ci = CommonInfo {
            device_id: self.local.device_id.clone(),
            device_type: self.local.device_type,
            device_name: self.local.name.clone(),
        };
        self.publications.set_common_device_info(&mut ci, entries)?;
        self.local.device_id = ci.device_id;
        self.local.device_type = ci.device_type;
        self.local.name = ci.device_name;
        self.hicom_version = "1.0.0";
        Ok(())
    }

    /// The published services.
    pub fn publications(&self) -> &Publications {
        &self.publications
    }

    /// Devices currently in the table.
    pub fn devices(&self) -> Vec<FoundDevice> {
        let mut v: Vec<_> = self.table.values().map(|e| e.device.clone()).collect();
        v.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        v
    }

    /// Datagrams dropped so far (malformed, rate-limited, unanswerable).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Starts sending discovery requests to `targets` (broadcast or unicast
    /// addresses) on the configured schedule; restarts a running schedule.
    pub fn start_discovery(&mut self, now: Instant, targets: Vec<SocketAddrV4>) {
        self.schedule = Some(Schedule {
            targets,
            next: now,
            sent: 0,
        });
        self.handle_timeout(now);
    }

    /// Stops the request schedule.
    pub fn stop_discovery(&mut self) {
        self.schedule = None;
    }

    fn next_message_id(&mut self) -> u16 {
        self.message_id = self.message_id.wrapping_add(1);
        if self.message_id == 0 {
            self.message_id = 1;
        }
        self.message_id
    }

    /// Queues a datagram from the discovery socket (the local address and
    /// [`DiscoveryConfig::port`]).
    fn push_transmit(&mut self, dst: SocketAddrV4, payload: Vec<u8>) {
        if self.transmits.len() >= self.config.queue_limit {
            self.dropped += 1;
            return;
        }
        self.transmits.push_back(Datagram {
            source: SocketAddr::V4(self.source()),
            destination: SocketAddr::V4(dst),
            payload,
        });
    }

    /// The address discovery datagrams leave from.
    pub fn source(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.local.ip, self.config.port)
    }

    fn push_event(&mut self, e: DiscoveryEvent) {
        if self.events.len() >= self.config.queue_limit {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn post(&mut self, host: &str, payload: Vec<u8>) -> Result<Vec<u8>, CoapError> {
        Message {
            message_type: MessageType::NON,
            code: coap::CODE_POST,
            message_id: self.next_message_id(),
            token: Vec::new(),
            options: vec![
                CoapOption {
                    number: coap::OPT_URI_HOST,
                    value: host.as_bytes().to_vec(),
                },
                CoapOption {
                    number: coap::OPT_URI_PATH,
                    value: RESOURCE.as_bytes().to_vec(),
                },
            ],
            payload,
        }
        .emit()
    }

    /// The reply body for a requester (fixed key order, no trailing NUL).
    pub fn reply_json(&self) -> String {
        let service_data = self.publications.service_data(self.local.auth_port);
        let bitmap = self
            .publications
            .ever_published()
            .then(|| [self.publications.bitmap()]);
        let r = LiteReply {
            device_id: payload::wrap_udid(&self.local.device_id),
            device_name: &self.local.name,
            device_type: self.local.device_type,
            hicom_version: self.hicom_version,
            mode: 0,
            device_hash: "0",
            service_data: &service_data,
            wlan_ip: self.local.ip.to_string(),
            capability_bitmap: bitmap,
        };
        serde_json::to_string(&r).expect("plain struct serializes")
    }

    /// The request body (full-stack key order) followed by a NUL.
    pub fn request_payload(&mut self) -> Vec<u8> {
        let seq_no = self.seq_no;
        self.seq_no = self.seq_no.wrapping_add(1);
        let bitmap = self.publications.bitmap();
        let service_data = self.publications.service_data(self.local.auth_port);
        let r = FullRequest {
            device_id: payload::wrap_udid(&self.local.device_id),
            device_name: &self.local.name,
            device_type: self.local.device_type,
            mode: 1,
            device_hash: "0",
            service_data: &service_data,
            wlan_ip: self.local.ip.to_string(),
            capability_bitmap: if bitmap == 0 {
                Vec::new()
            } else {
                vec![bitmap]
            },
            business_type: 0,
            business_data: "",
            seq_no,
            coap_uri: format!("coap://{}/{RESOURCE}", self.local.ip),
        };
        let mut v = serde_json::to_vec(&r).expect("plain struct serializes");
        v.push(0);
        v
    }

    fn take_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.config.reply_rate);
        if let Some(at) = self.bucket.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.bucket.tokens = (self.bucket.tokens + dt * rate).min(rate.max(1.0));
        }
        self.bucket.at = Some(now);
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts a datagram dropped before it reached the engine.
    pub fn count_dropped(&mut self) {
        self.dropped += 1;
    }

    /// Handles one datagram. An error means the datagram was dropped.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DiscoveryError> {
        let r = self.handle_inner(now, from, data);
        if r.is_err() {
            self.dropped += 1;
        }
        r
    }

    fn handle_inner(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DiscoveryError> {
        let msg = crate::coap::Packet::new_checked(data)?;
        if msg.message_type() == MessageType::CON {
            // RFC 7252 §4.2: acknowledge a confirmable message (softbus_lite ignores the type).
            if let SocketAddr::V4(v4) = from {
                let ack = Message {
                    message_type: MessageType::ACK,
                    code: coap::CODE_EMPTY,
                    message_id: msg.message_id(),
                    token: Vec::new(),
                    options: Vec::new(),
                    payload: Vec::new(),
                };
                self.push_transmit(v4, ack.emit()?);
            }
        }
        if msg.payload().is_empty() {
            return Ok(()); // an empty ACK/RST or a ping: nothing to do
        }
        let p = DevicePayload::parse(msg.payload())?;
        let udid = p.udid();
        if udid == self.local.device_id {
            return Err(DiscoveryError::Own);
        }
        let ip = p.wlan_ip.or(match from {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        });
        if let Some(ip) = ip {
            self.record(now, &p, udid, ip);
        }
        if p.coap_uri.is_some() && self.publications.is_publishing() {
            let dst_ip = p.wlan_ip.ok_or(DiscoveryError::NoReplyAddress)?;
            if dst_ip.is_unspecified() || dst_ip.is_broadcast() || dst_ip.is_multicast() {
                return Err(DiscoveryError::NoReplyAddress);
            }
            if !self.take_token(now) {
                return Err(DiscoveryError::RateLimited);
            }
            if self.reply_cache.is_none() {
                self.reply_cache = Some(self.reply_json());
            }
            let body = self
                .reply_cache
                .as_deref()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            let bytes = self.post(&dst_ip.to_string(), body)?;
            self.push_transmit(SocketAddrV4::new(dst_ip, self.config.port), bytes);
        }
        Ok(())
    }

    fn record(&mut self, now: Instant, p: &DevicePayload, udid: String, ip: Ipv4Addr) {
        if let Some(e) = self.table.get_mut(&udid) {
            let d = &e.device;
            let unchanged = d.name == p.device_name
                && d.device_type == p.device_type
                && d.ip == ip
                && d.auth_port == p.auth_port()
                && d.capability_bitmap == p.capability_bitmap
                && d.service_data == p.service_data;
            if unchanged {
                // The common case (a repeated request): refresh without rebuilding.
                e.last_seen = now;
                return;
            }
        }
        let device = FoundDevice {
            device_id: udid.clone(),
            name: p.device_name.clone(),
            device_type: p.device_type,
            ip,
            auth_port: p.auth_port(),
            capabilities: publish::capability_names(&p.capability_bitmap),
            capability_bitmap: p.capability_bitmap.clone(),
            service_data: p.service_data.clone(),
        };
        if let Some(e) = self.table.get_mut(&udid) {
            e.last_seen = now;
            if e.device != device {
                e.device = device.clone();
                self.push_event(DiscoveryEvent::DeviceFound(device));
            }
            return;
        }
        if self.table.len() >= self.config.table_limit {
            // Evict the device heard from longest ago.
            if let Some(old) = self
                .table
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
            {
                self.table.remove(&old);
            }
        }
        self.table.insert(
            udid,
            Entry {
                device: device.clone(),
                last_seen: now,
            },
        );
        self.push_event(DiscoveryEvent::DeviceFound(device));
    }

    /// Sends due requests and expires silent devices.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(s) = &self.schedule {
            if s.next > now {
                break;
            }
            let targets = s.targets.clone();
            for t in targets {
                let payload = self.request_payload();
                match self.post(&t.ip().to_string(), payload) {
                    Ok(bytes) => self.push_transmit(t, bytes),
                    Err(e) => {
                        tracing::warn!(error = %e, "discovery request does not fit a datagram")
                    }
                }
            }
            let Some(s) = self.schedule.as_mut() else {
                break;
            };
            match self.config.schedule.get(s.sent) {
                Some(d) => {
                    s.next += *d;
                    s.sent += 1;
                }
                None => {
                    self.schedule = None;
                    self.push_event(DiscoveryEvent::ScheduleDone);
                }
            }
        }
        let ttl = self.config.device_ttl;
        let expired: Vec<String> = self
            .table
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_seen) >= ttl)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.table.remove(&k);
            self.push_event(DiscoveryEvent::DeviceLost(k));
        }
    }

    /// When `handle_timeout` should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sched = self.schedule.as_ref().map(|s| s.next);
        let expiry = self
            .table
            .values()
            .map(|e| e.last_seen + self.config.device_ttl)
            .min();
        crate::earliest(sched, expiry)
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<DiscoveryEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests;
