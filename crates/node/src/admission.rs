//! The one decision: may this peer, authenticated this way and seen at this
//! address, open this session (or publish, or play) over this transport?

use super::*;

/// Whether sessions of a peer authenticated by `method` count toward its address's limit: every device
/// (a PIN, a pairing or a signed offer proves a device, not that one address
/// is one device), but not the operator's web token.
pub(crate) fn counts_per_address(method: AuthMethod) -> bool {
    !matches!(method, AuthMethod::WebToken)
}

/// The per-peer limit's key of an identity: a device (over any transport) or
/// one WebRTC peer connection.
pub(crate) fn peer_key(who: &Authenticated) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match who {
        Authenticated::Device { device_id, .. }
        | Authenticated::Signaling {
            principal: Principal::Device { device_id },
            ..
        } => (0u8, device_id).hash(&mut h),
        Authenticated::Signaling { peer, .. } => (1u8, peer.0).hash(&mut h),
        Authenticated::Posting(p) => (2u8, p.name()).hash(&mut h),
    }
    h.finish()
}

impl Node {
    /// The one decision point: may a peer, authenticated as `who` and seen at
    /// `from` (when known), have what it asks for over `transport`? The access
    /// policy first (`--paired-only`), then what the ask needs: media only
    /// over WebRTC (its stream and viewer limits are the relay's); a session
    /// needs its server, room in the table, and room in its peer's and its
    /// address's shares.
    pub fn admit(
        &self,
        transport: Transport,
        who: &Authenticated,
        from: Option<IpAddr>,
        ask: Ask<'_>,
    ) -> Result<(), Refusal> {
        if self.policy.paired_only && matches!(who.method(), AuthMethod::Pin | AuthMethod::EmptyPin)
        {
            return Err(Refusal::NotPaired);
        }
        let server = match ask {
            Ask::Publish(_) | Ask::Play(_) if transport != Transport::WebRtc => {
                return Err(Refusal::WrongTransport(transport))
            }
            Ask::Publish(_) | Ask::Play(_) => return Ok(()),
            Ask::Session(server) => server,
        };
        if !self.servers.contains_key(server) {
            return Err(Refusal::UnknownServer(server.to_owned()));
        }
        self.has_room()?;
        if self.per_peer.get(&peer_key(who)).copied().unwrap_or(0)
            >= self.limits.max_sessions_per_peer
        {
            return Err(Refusal::TooManyForPeer(self.limits.max_sessions_per_peer));
        }
        if let Some(from) = from.filter(|_| counts_per_address(who.method())) {
            if self.per_address.get(&from).copied().unwrap_or(0)
                >= self.limits.max_sessions_per_address
            {
                return Err(Refusal::TooManyFromAddress {
                    address: from,
                    limit: self.limits.max_sessions_per_address,
                });
            }
        }
        Ok(())
    }

    /// Whether this node may ask for a session to `server` (name, limit). Over
    /// WebRTC `server` may also be a gateway label, `DEVICE/SESSION`.
    pub(crate) fn may_open_label(&self, label: &str) -> Result<(), NodeError> {
        match crate::gateway::split_label(label) {
            Some((device, server)) if device.len() <= 64 => self.may_open(server),
            Some(_) => Err(SessionError::BadName.into()),
            None => self.may_open(label),
        }
    }

    /// Whether this node may ask for a session to `server` (name, limit).
    pub(crate) fn may_open(&self, server: &str) -> Result<(), NodeError> {
        session::check_name(server)?;
        self.has_room().map_err(NodeError::Refused)
    }

    /// The session limit, counting sessions open and being opened by us.
    pub(crate) fn has_room(&self) -> Result<(), Refusal> {
        if self.sessions.len() + self.opening.len() >= self.limits.max_sessions {
            return Err(Refusal::TooManySessions(self.limits.max_sessions));
        }
        Ok(())
    }

    /// The data-channel peers' budget (the relay's peers are not counted).
    pub(crate) fn has_rtc_room(&self) -> Result<(), NodeError> {
        let data_peers = self
            .host
            .peer_count()
            .saturating_sub(self.relay.peer_count());
        if data_peers >= self.limits.max_rtc_peers {
            return Err(NodeError::Rtc(softbus_rtc::host::HostError::TooManyPeers(
                self.limits.max_rtc_peers,
            )));
        }
        Ok(())
    }
}
