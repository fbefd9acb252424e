//! The gateway from WebRTC to devices on the soft bus: a data channel
//! labelled `DEVICE/SESSION` is bridged to session SESSION on DEVICE. DEVICE
//! is a device id (64 hex digits) or the name of a device this node
//! discovered, when the name is unique. The node authenticates to the device
//! as a client with the pairing it holds with it (STS), or, only for devices
//! the operator listed ([`Node::set_gateway_pins`]), with that PIN; then opens
//! the session and only then accepts the channel. Messages cross both ways
//! unchanged up to softbus_lite's 4,048 bytes; a larger one is answered on the
//! channel with a JSON text message `{"error": …}` and not sent. Either end
//! closing closes the other.
//!
//! Only holders of the web token and paired devices reach it: a channel is
//! decided only on peer connections whose offer carried one of them.

use super::*;
use softbus_bus::frame::MAX_SEND_BYTES;
use zeroize::Zeroizing;

/// The devices the gateway may reach with a PIN: device id → PIN.
pub type GatewayPins = Vec<(String, Zeroizing<Vec<u8>>)>;

/// Gateway channels waiting for their device at once; more are refused.
pub const MAX_GATEWAY_OPENING: usize = 64;

/// Bytes a browser may send on a gateway channel before the device's session
/// is open (a browser may send as soon as it announced the channel); they are
/// delivered in order once it is. More refuses the channel.
pub const MAX_GATEWAY_EARLY_BYTES: usize = 64 * 1024;

/// Why a gateway channel was not bridged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayRefusal {
    #[error("a gateway label is DEVICE/SESSION: a device id (64 hex digits) or a discovered device's name, then a session name")]
    BadLabel,
    #[error("no device this node discovered has the id or the name {0:?}")]
    UnknownDevice(String),
    #[error("more than one discovered device is named {0:?}; use its device id")]
    AmbiguousName(String),
    #[error("device {0:?} announced no auth port")]
    NoAuthPort(String),
    #[error("this node holds no pairing with device {0} and no PIN for it (pair with it, or list it with --gateway-pin)")]
    NoCredential(String),
    #[error("this node accepts paired devices only, so it uses no PIN toward devices either; pair with {0}")]
    PairedOnly(String),
    #[error("gateway limit of {0} channels waiting for their device reached")]
    Busy(usize),
    #[error("more than {0} bytes sent before the device's session opened")]
    TooEarly(usize),
    /// This node could not start authenticating to the device.
    #[error("cannot reach device {device}: {reason}")]
    Connect { device: String, reason: BusError },
    #[error("device {device} did not open {session}: {reason}")]
    Device {
        device: String,
        session: String,
        reason: SessionClosed,
    },
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A device the gateway can reach now: discovered, with a credential.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GatewayDevice {
    pub device_id: String,
    pub name: String,
    /// `paired` (STS) or `pin` (`--gateway-pin`).
    pub via: &'static str,
}

/// How the gateway authenticates to a device.
enum Credential {
    /// STS with the pairing this node holds.
    Paired,
    /// The PIN key agreement with the PIN the operator allowed.
    Pin(Zeroizing<Vec<u8>>),
}

/// A gateway channel waiting for its device.
#[derive(Debug)]
pub(crate) struct GatewayOpening {
    peer: PeerId,
    channel: ChannelId,
    label: String,
    device: String,
    session: String,
    /// The client auth connection to the device.
    auth: ConnId,
    /// The session asked for, once authenticated.
    dev: Option<SessionId>,
    /// What the browser sent meanwhile, in order (binary?, bytes).
    early: Vec<(bool, Vec<u8>)>,
    early_bytes: usize,
}

/// The gateway's state in the core.
#[derive(Debug, Default)]
pub(crate) struct Gateway {
    /// Device id (upper case) → the PIN the operator allowed for it.
    pins: BTreeMap<String, Zeroizing<Vec<u8>>>,
    opening: Vec<GatewayOpening>,
    /// Both ends of every bridge, each pointing at the other.
    bridges: HashMap<SessionId, SessionId>,
    /// Ends whose other end closed: closed by the next `process`.
    unbridged: Vec<SessionId>,
}

impl Gateway {
    /// The other end of a bridged session.
    pub(crate) fn other_end(&self, id: SessionId) -> Option<SessionId> {
        self.bridges.get(&id).copied()
    }

    /// `id` left the session table: its other end is to be closed.
    pub(crate) fn ended(&mut self, id: SessionId) {
        if let Some(other) = self.bridges.remove(&id) {
            self.bridges.remove(&other);
            self.unbridged.push(other);
        }
    }

    pub(crate) fn take_unbridged(&mut self) -> Vec<SessionId> {
        std::mem::take(&mut self.unbridged)
    }
}

/// `DEVICE/SESSION`, both parts non-empty.
pub(crate) fn split_label(label: &str) -> Option<(&str, &str)> {
    let (device, session) = label.split_once('/')?;
    (!device.is_empty() && !session.is_empty() && !session.contains('/'))
        .then_some((device, session))
}

fn is_device_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Node {
    /// The devices the gateway may reach with a PIN (softbus_lite devices
    /// that never pair): device id → PIN. Replaces the list.
    pub fn set_gateway_pins(&mut self, pins: GatewayPins) {
        self.gateway.pins = pins
            .into_iter()
            .map(|(id, pin)| (id.to_ascii_uppercase(), pin))
            .collect();
    }

    /// The discovered devices a gateway channel can reach: those paired with
    /// this node, and (unless paired-only) those with a PIN allowed.
    pub fn gateway_devices(&self) -> Vec<GatewayDevice> {
        self.bus
            .discovery()
            .devices()
            .into_iter()
            .filter(|d| d.auth_port.is_some())
            .filter_map(|d| {
                let via = match self.gateway_credential(&d.device_id).ok()? {
                    Credential::Paired => "paired",
                    Credential::Pin(_) => "pin",
                };
                Some(GatewayDevice {
                    device_id: d.device_id,
                    name: d.name,
                    via,
                })
            })
            .collect()
    }

    /// How the gateway authenticates to `device`: its pairing first; else,
    /// unless paired-only, the PIN the operator allowed; else not at all.
    fn gateway_credential(&self, device: &str) -> Result<Credential, GatewayRefusal> {
        if softbus_bus::auth::hichain::filed(self.bus.pairings(), device).is_some() {
            return Ok(Credential::Paired);
        }
        if self.policy.paired_only {
            return Err(GatewayRefusal::PairedOnly(device.to_owned()));
        }
        match self.gateway.pins.get(&device.to_ascii_uppercase()) {
            Some(pin) => Ok(Credential::Pin(pin.clone())),
            None => Err(GatewayRefusal::NoCredential(device.to_owned())),
        }
    }

    /// Bridged sessions: (channel side, device side).
    pub fn gateway_bridges(&self) -> Vec<(SessionId, SessionId)> {
        let mut v: Vec<_> = self
            .gateway
            .bridges
            .iter()
            .filter(|(a, _)| self.sessions.get(a).is_some_and(|e| !e.outgoing))
            .map(|(a, b)| (*a, *b))
            .collect();
        v.sort();
        v
    }

    /// Which device `name` is (an id or a unique discovered name) and where
    /// its auth server listens.
    fn gateway_device(&self, name: &str) -> Result<(String, SocketAddr), GatewayRefusal> {
        let devices = self.bus.discovery().devices();
        let found: Vec<_> = if is_device_id(name) {
            devices
                .iter()
                .filter(|d| d.device_id.eq_ignore_ascii_case(name))
                .collect()
        } else {
            devices.iter().filter(|d| d.name == name).collect()
        };
        let d = match found.as_slice() {
            [] => return Err(GatewayRefusal::UnknownDevice(name.to_owned())),
            [d] => d,
            _ => return Err(GatewayRefusal::AmbiguousName(name.to_owned())),
        };
        let port = d
            .auth_port
            .ok_or_else(|| GatewayRefusal::NoAuthPort(d.name.clone()))?;
        Ok((d.device_id.clone(), SocketAddr::from((d.ip, port))))
    }

    /// A channel labelled `DEVICE/SESSION` on a peer of `who`: authenticate
    /// to the device; the channel waits.
    pub(crate) fn gateway_channel(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: ChannelId,
        label: String,
    ) -> Result<(), GatewayRefusal> {
        let (name, session) = split_label(&label).ok_or(GatewayRefusal::BadLabel)?;
        session::check_name(session).map_err(|_| GatewayRefusal::BadLabel)?;
        self.has_room()?;
        if self.gateway.opening.len() >= MAX_GATEWAY_OPENING {
            return Err(GatewayRefusal::Busy(MAX_GATEWAY_OPENING));
        }
        let (device, addr) = self.gateway_device(name)?;
        let conn = match self.gateway_credential(&device)? {
            Credential::Paired => self.bus.connect_paired(now, addr),
            Credential::Pin(pin) => self.bus.connect_auth(now, addr, &pin),
        };
        let auth = conn.map_err(|reason| GatewayRefusal::Connect {
            device: device.clone(),
            reason,
        })?;
        self.gateway.opening.push(GatewayOpening {
            peer,
            channel,
            session: session.to_owned(),
            label,
            device,
            auth,
            dev: None,
            early: Vec::new(),
            early_bytes: 0,
        });
        Ok(())
    }

    /// The device answered the authentication: ask for the session.
    pub(crate) fn gateway_authenticated(&mut self, now: Instant, conn: ConnId) {
        let Some(i) = self
            .gateway
            .opening
            .iter()
            .position(|o| o.auth == conn && o.dev.is_none())
        else {
            return;
        };
        let session = self.gateway.opening[i].session.clone();
        match self.open_session(now, conn, &session) {
            Ok(id) => self.gateway.opening[i].dev = Some(id),
            Err(e) => {
                let o = self.gateway.opening.remove(i);
                let reason = match e {
                    NodeError::Refused(r) => GatewayRefusal::Refused(r),
                    _ => GatewayRefusal::Device {
                        device: o.device.clone(),
                        session: o.session.clone(),
                        reason: SessionClosed::Local,
                    },
                };
                self.gateway_refuse(now, o, reason);
            }
        }
    }

    /// The device's session opened: accept the channel and bridge the two.
    pub(crate) fn gateway_opened(&mut self, now: Instant, dev: SessionId) {
        let Some(i) = self.gateway.opening.iter().position(|o| o.dev == Some(dev)) else {
            return;
        };
        let o = self.gateway.opening.remove(i);
        if self.host.accept_channel(now, o.peer, o.channel).is_err() {
            // The channel went away meanwhile.
            self.close_with(now, dev, SessionClosed::ChannelClosed);
            return;
        }
        let id = self.allocate();
        self.add_rtc_session(id, o.peer, o.channel, o.label.clone(), false);
        self.gateway.bridges.insert(id, dev);
        self.gateway.bridges.insert(dev, id);
        let who = self
            .principals
            .get(&o.peer)
            .map(|p| p.name().to_owned())
            .unwrap_or_default();
        self.events.push_back(Event::GatewayOpened {
            channel_session: id,
            device_session: dev,
            who,
            device: o.device,
            session: o.session,
        });
        for (binary, data) in o.early {
            self.received(now, id, binary, data);
        }
    }

    /// A message on a gateway channel still waiting for its device: kept (up
    /// to [`MAX_GATEWAY_EARLY_BYTES`]) until the bridge is up. False when the
    /// channel is not a gateway's.
    pub(crate) fn gateway_early(
        &mut self,
        now: Instant,
        peer: PeerId,
        channel: ChannelId,
        binary: bool,
        data: Vec<u8>,
    ) -> bool {
        let Some(i) = self
            .gateway
            .opening
            .iter()
            .position(|o| o.peer == peer && o.channel == channel)
        else {
            return false;
        };
        let o = &mut self.gateway.opening[i];
        o.early_bytes += data.len();
        if o.early_bytes > MAX_GATEWAY_EARLY_BYTES {
            let o = self.gateway.opening.remove(i);
            self.gateway_refuse(now, o, GatewayRefusal::TooEarly(MAX_GATEWAY_EARLY_BYTES));
            return true;
        }
        o.early.push((binary, data));
        true
    }

    /// The connection to a device dropped: a gateway channel waiting for it
    /// (to authenticate, or for the session) is refused with the reason.
    pub(crate) fn gateway_conn_dropped(&mut self, now: Instant, conn: ConnId, reason: &ConnClosed) {
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.gateway.opening)
            .into_iter()
            .partition(|o| o.auth == conn);
        self.gateway.opening = keep;
        for o in gone {
            let r = GatewayRefusal::Device {
                device: o.device.clone(),
                session: o.session.clone(),
                reason: SessionClosed::Connection(reason.clone()),
            };
            self.gateway_refuse(now, o, r);
        }
    }

    /// A session asked of a device did not open.
    pub(crate) fn gateway_open_failed(
        &mut self,
        now: Instant,
        dev: SessionId,
        reason: SessionClosed,
    ) {
        let Some(i) = self.gateway.opening.iter().position(|o| o.dev == Some(dev)) else {
            return;
        };
        let o = self.gateway.opening.remove(i);
        let r = GatewayRefusal::Device {
            device: o.device.clone(),
            session: o.session.clone(),
            reason,
        };
        self.gateway_refuse(now, o, r);
    }

    /// The browser's channel (or its whole peer) went away while waiting.
    pub(crate) fn gateway_channel_gone(&mut self, peer: PeerId, channel: Option<ChannelId>) {
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.gateway.opening)
            .into_iter()
            .partition(|o| o.peer == peer && channel.is_none_or(|c| c == o.channel));
        self.gateway.opening = keep;
        for o in &gone {
            self.gateway_forget(o);
        }
    }

    /// Nothing waits for `o`'s device any more: its session open (if asked)
    /// and its auth connection go. An open that completes anyway is closed
    /// when it does.
    fn gateway_forget(&mut self, o: &GatewayOpening) {
        if let Some(dev) = o.dev {
            self.opening.remove(&dev);
        }
        self.bus.close_conn(o.auth);
    }

    fn gateway_refuse(&mut self, now: Instant, o: GatewayOpening, reason: GatewayRefusal) {
        self.host.close_channel(now, o.peer, o.channel);
        self.gateway_forget(&o);
        let peer = self.host.remote(o.peer).map(|a| a.ip());
        self.events.push_back(Event::GatewayRefused {
            label: o.label,
            peer,
            reason,
        });
    }

    /// A message on one end of a bridge goes to the other end as it is; one
    /// too large for a device is answered on the channel instead.
    pub(crate) fn gateway_forward(
        &mut self,
        now: Instant,
        from: SessionId,
        to: SessionId,
        binary: bool,
        data: Vec<u8>,
    ) {
        let to_device = self.sessions.get(&to).is_some_and(|e| e.outgoing);
        if to_device && data.len() > MAX_SEND_BYTES {
            let error = serde_json::json!({
                "error": format!(
                    "message of {} bytes not sent: a softbus_lite device takes at most {MAX_SEND_BYTES}",
                    data.len()
                )
            })
            .to_string();
            let _ = self.send_as(now, from, false, error.as_bytes());
            return;
        }
        // Toward the channel, in the kind the browser last spoke.
        let binary = if to_device {
            binary
        } else {
            self.sessions.get(&to).is_none_or(|e| e.last_binary)
        };
        if let Err(e) = self.send_as(now, to, binary, &data) {
            tracing::debug!(error = %e, "gateway message not forwarded");
        }
    }
}
