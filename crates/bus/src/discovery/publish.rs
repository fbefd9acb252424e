//! PublishService / UnPublishService / SetCommonDeviceInfo with softbus_lite's
//! validation order and error codes (softbus-wire.md §1.5, §1.7).

/// Capability names by bit (bits 0-6 are softbus_lite's; 7-18 the full stack's).
pub const CAPABILITIES: [&str; 19] = [
    "hicall",
    "profile",
    "homevisionPic",
    "castPlus",
    "aaCapability",
    "dvKit",
    "ddmpCapability",
    "osdCapability",
    "share",
    "approach",
    "virtualLink",
    "touch",
    "oop",
    "oh_approach",
    "sd",
    "raiseHand",
    "pcCollaboration",
    "nfc_share",
    "2mInterconnect",
];
/// softbus_lite accepts only the first seven for publishing.
pub const LITE_CAPABILITY_COUNT: usize = 7;
/// At most this many services (`MAX_MODULE_COUNT`).
pub const MAX_SERVICES: usize = 3;
/// Capability data is at most two bytes (`MAX_CAPABILITY_DATA_LEN`).
pub const MAX_CAPABILITY_DATA: usize = 2;
/// Module names are shorter than this.
pub const MAX_MODULE_NAME: usize = 64;
/// The only medium softbus_lite publishes on.
pub const MEDIUM_COAP: i32 = 2;

/// Bit of a capability name softbus_lite publishes (the first seven).
pub fn capability_bit(name: &str) -> Option<u32> {
    CAPABILITIES[..LITE_CAPABILITY_COUNT]
        .iter()
        .position(|c| *c == name)
        .map(|b| b as u32)
}

/// Bit of any capability name of the full stack (nstackx's bitmap bits:
/// `osdCapability` is bit 7, the one a phone's DeviceManager searches for).
pub fn full_stack_capability_bit(name: &str) -> Option<u32> {
    CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .map(|b| b as u32)
}

/// Names of the bits set in a bitmap (all 19 known names; unknown bits are skipped).
pub fn capability_names(bitmap: &[u32]) -> Vec<String> {
    let word = bitmap.first().copied().unwrap_or(0);
    (0..CAPABILITIES.len())
        .filter(|b| word & (1 << b) != 0)
        .map(|b| CAPABILITIES[b].to_owned())
        .collect()
}

/// Device types accepted by SetCommonDeviceInfo.
pub const DEVICE_TYPES: [(&str, u8); 8] = [
    ("PHONE", 0x0E),
    ("PAD", 0x11),
    ("TV", 0x9C),
    ("PC", 0x0C),
    ("AUDIO", 0x0A),
    ("CAR", 0x83),
    ("L0", 0xF1),
    ("L1", 0xF2),
];

/// Type byte of a device type name.
pub fn device_type_from_name(name: &str) -> Option<u8> {
    DEVICE_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}

/// `PublishInfo` of the lite API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishInfo {
    pub publish_id: i32,
    /// Ignored, as on lite.
    pub mode: i32,
    pub medium: i32,
    /// Ignored, as on lite.
    pub freq: i32,
    pub capability: Option<String>,
    pub capability_data: Vec<u8>,
}

impl PublishInfo {
    /// A CoAP publication of `capability` with no capability data.
    pub fn coap(publish_id: i32, capability: &str) -> Self {
        Self {
            publish_id,
            mode: 0x55,
            medium: MEDIUM_COAP,
            freq: 0,
            capability: Some(capability.to_owned()),
            capability_data: Vec::new(),
        }
    }
}

/// `PublishFailReason`, passed to `onPublishFail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishFailReason {
    NotSupportMedium = 1,
    ParameterInvalid = 2,
    Unknown = 0xFF,
}

/// A refused publication: the reason given to the callback and the return code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("publish {publish_id} failed: {reason:?} (code {code})")]
pub struct PublishError {
    pub publish_id: i32,
    pub reason: PublishFailReason,
    pub code: i32,
}

/// Lite discovery error codes (discovery_error.h).
pub mod codes {
    pub const FAIL: i32 = -1;
    pub const INVALID: i32 = -2;
    pub const NONEXISTENT: i32 = -3;
}

/// A refused UnPublishService or SetCommonDeviceInfo; the C API returns its
/// [`code`](CommandError::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("discovery refused the request")]
    Fail,
    #[error("invalid argument, or nothing was ever published")]
    Invalid,
    #[error("no such publication")]
    Nonexistent,
}

impl CommandError {
    /// The code of discovery_error.h.
    pub fn code(self) -> i32 {
        match self {
            CommandError::Fail => codes::FAIL,
            CommandError::Invalid => codes::INVALID,
            CommandError::Nonexistent => codes::NONEXISTENT,
        }
    }
}

/// One published service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub module: String,
    pub publish_id: i32,
    pub bit: u32,
    pub data: Vec<u8>,
}

/// The publication table and the device info keys SetCommonDeviceInfo changes.
#[derive(Debug, Default, Clone)]
pub struct Publications {
    services: Vec<Service>,
    ever_published: bool,
    /// Takes the full stack's capability names too ([`full_stack_capability_bit`]).
    full_stack: bool,
}

/// `CommonDeviceKey`.
pub const KEY_DEVID: i32 = 0;
pub const KEY_DEVTYPE: i32 = 1;
pub const KEY_DEVNAME: i32 = 2;

/// The device fields SetCommonDeviceInfo may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonInfo {
    pub device_id: String,
    pub device_type: u8,
    pub device_name: String,
}

impl Publications {
    /// An empty table; `full_stack` takes the full stack's capability names too.
    pub fn with_full_stack(full_stack: bool) -> Self {
        Self {
            full_stack,
            ..Self::default()
        }
    }

    /// PublishService's checks of its arguments alone (no table needed), in
    /// discovery_service.c's order and codes: the capability's bit, or why not.
    /// `full_stack` takes the full stack's capability names.
    pub fn check_args(
        module: Option<&str>,
        info: &PublishInfo,
        full_stack: bool,
    ) -> Result<u32, PublishError> {
        let fail = |reason, code| PublishError {
            publish_id: info.publish_id,
            reason,
            code,
        };
        match module {
            Some(m)
                if m.len() < MAX_MODULE_NAME
                    && info.publish_id > 0
                    && info.capability_data.len() <= MAX_CAPABILITY_DATA => {}
            _ => return Err(fail(PublishFailReason::ParameterInvalid, codes::INVALID)),
        }
        if info.medium != MEDIUM_COAP {
            return Err(fail(PublishFailReason::NotSupportMedium, codes::INVALID));
        }
        info.capability
            .as_deref()
            .and_then(if full_stack {
                full_stack_capability_bit
            } else {
                capability_bit
            })
            .ok_or(fail(PublishFailReason::Unknown, codes::FAIL))
    }

    /// PublishService. Check order and codes as in discovery_service.c.
    pub fn publish(
        &mut self,
        module: Option<&str>,
        info: &PublishInfo,
    ) -> Result<(), PublishError> {
        let bit = Self::check_args(module, info, self.full_stack)?;
        let module = module.unwrap_or_default();
        let fail = |reason, code| PublishError {
            publish_id: info.publish_id,
            reason,
            code,
        };
        if self
            .services
            .iter()
            .any(|s| s.module == module && s.publish_id == info.publish_id)
            || self.services.len() >= MAX_SERVICES
        {
            return Err(fail(PublishFailReason::Unknown, codes::FAIL));
        }
        self.services.push(Service {
            module: module.to_owned(),
            publish_id: info.publish_id,
            bit,
            data: info.capability_data.clone(),
        });
        self.ever_published = true;
        Ok(())
    }

    /// UnPublishService: −2 invalid / nothing ever published, −3 not found.
    pub fn unpublish(&mut self, module: Option<&str>, publish_id: i32) -> Result<(), CommandError> {
        let Some(module) = module else {
            return Err(CommandError::Invalid);
        };
        if publish_id <= 0 || !self.ever_published {
            return Err(CommandError::Invalid);
        }
        let pos = self
            .services
            .iter()
            .position(|s| s.module == module && s.publish_id == publish_id)
            .ok_or(CommandError::Nonexistent)?;
        self.services.remove(pos);
        Ok(())
    }

    /// SetCommonDeviceInfo: only after the first publish; 1..=3 entries; all or nothing.
    pub fn set_common_device_info(
        &self,
        info: &mut CommonInfo,
        entries: &[(i32, &str)],
    ) -> Result<(), CommandError> {
        if !self.ever_published || entries.is_empty() || entries.len() > 3 {
            return Err(CommandError::Fail);
        }
        let mut next = info.clone();
        for &(key, value) in entries {
            match key {
                KEY_DEVID if value.len() < 96 => next.device_id = value.to_owned(),
                KEY_DEVTYPE => {
                    next.device_type = device_type_from_name(value).ok_or(CommandError::Fail)?
                }
                KEY_DEVNAME if value.len() < 64 => next.device_name = value.to_owned(),
                _ => return Err(CommandError::Fail),
            }
        }
        *info = next;
        Ok(())
    }

    /// Whether the device answers discovery (something is published).
    pub fn is_publishing(&self) -> bool {
        !self.services.is_empty()
    }

    /// Whether PublishService ever succeeded.
    pub fn ever_published(&self) -> bool {
        self.ever_published
    }

    /// The published services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// OR of the published capability bits.
    pub fn bitmap(&self) -> u32 {
        self.services.iter().fold(0, |acc, s| acc | 1 << s.bit)
    }

    /// `port:<auth port>,` then each service's data and a comma, the last comma
    /// omitted only when all three slots are used; at most 63 characters.
    pub fn service_data(&self, auth_port: Option<u16>) -> String {
        let mut s = match auth_port {
            Some(p) => format!("port:{p},"),
            None => "port:-1,".to_owned(),
        };
        for (i, svc) in self.services.iter().enumerate() {
            let data: String = svc
                .data
                .iter()
                .take_while(|&&b| b != 0)
                .map(|&b| char::from(b))
                .collect();
            s.push_str(&data);
            if i != MAX_SERVICES - 1 {
                s.push(',');
            }
        }
        s.truncate(63);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: i32, cap: &str) -> PublishInfo {
        PublishInfo::coap(id, cap)
    }

    #[test]
    fn command_errors_carry_the_lite_codes() {
        assert_eq!(CommandError::Fail.code(), -1);
        assert_eq!(CommandError::Invalid.code(), -2);
        assert_eq!(CommandError::Nonexistent.code(), -3);
    }

    #[test]
    fn publish_validation_codes() {
        let mut p = Publications::default();
        let err = |r, c| PublishError {
            publish_id: 1,
            reason: r,
            code: c,
        };
        assert_eq!(
            p.publish(None, &info(1, "dvKit")),
            Err(err(PublishFailReason::ParameterInvalid, -2))
        );
        assert_eq!(
            p.publish(Some(&"m".repeat(64)), &info(1, "dvKit")),
            Err(err(PublishFailReason::ParameterInvalid, -2))
        );
        assert_eq!(
            p.publish(Some("m"), &info(0, "dvKit")).unwrap_err().reason,
            PublishFailReason::ParameterInvalid
        );
        let mut three = info(1, "dvKit");
        three.capability_data = vec![1, 2, 3];
        assert_eq!(
            p.publish(Some("m"), &three),
            Err(err(PublishFailReason::ParameterInvalid, -2))
        );
        let mut ble = info(1, "dvKit");
        ble.medium = 1;
        assert_eq!(
            p.publish(Some("m"), &ble),
            Err(err(PublishFailReason::NotSupportMedium, -2))
        );
        assert_eq!(
            p.publish(Some("m"), &info(1, "share")),
            Err(err(PublishFailReason::Unknown, -1))
        );
        let mut nocap = info(1, "dvKit");
        nocap.capability = None;
        assert_eq!(
            p.publish(Some("m"), &nocap),
            Err(err(PublishFailReason::Unknown, -1))
        );
        assert_eq!(p.unpublish(Some("m"), 1), Err(CommandError::Invalid)); // nothing ever published
        p.publish(Some("m"), &info(1, "dvKit")).unwrap();
        assert_eq!(
            p.publish(Some("m"), &info(1, "hicall")),
            Err(err(PublishFailReason::Unknown, -1))
        );
        p.publish(Some("m"), &info(2, "hicall")).unwrap();
        p.publish(Some("n"), &info(1, "ddmpCapability")).unwrap();
        assert_eq!(
            p.publish(Some("o"), &info(1, "profile")),
            Err(err(PublishFailReason::Unknown, -1))
        );
        assert_eq!(p.bitmap(), 1 << 5 | 1 << 0 | 1 << 6);
        assert_eq!(p.unpublish(Some("zz"), 1), Err(CommandError::Nonexistent));
        assert_eq!(p.unpublish(Some("m"), 0), Err(CommandError::Invalid));
        assert_eq!(p.unpublish(None, 1), Err(CommandError::Invalid));
        p.unpublish(Some("m"), 1).unwrap();
        assert_eq!(p.bitmap(), 1 << 0 | 1 << 6);
    }

    #[test]
    fn service_data_format() {
        let mut p = Publications::default();
        assert_eq!(p.service_data(None), "port:-1,");
        let mut i = info(1, "dvKit");
        i.capability_data = b"ab".to_vec();
        p.publish(Some("m"), &i).unwrap();
        assert_eq!(p.service_data(Some(45429)), "port:45429,ab,");
        let mut j = info(2, "hicall");
        j.capability_data = b"cd".to_vec();
        p.publish(Some("m"), &j).unwrap();
        p.publish(Some("m"), &info(3, "profile")).unwrap();
        assert_eq!(p.service_data(Some(1)), "port:1,ab,cd,");
    }

    #[test]
    fn common_device_info() {
        let mut p = Publications::default();
        let mut ci = CommonInfo {
            device_id: "A".into(),
            device_type: 0xF2,
            device_name: "DEV_L1".into(),
        };
        assert_eq!(
            p.set_common_device_info(&mut ci, &[(KEY_DEVNAME, "x")]),
            Err(CommandError::Fail)
        ); // before publish
        p.publish(Some("m"), &info(1, "dvKit")).unwrap();
        assert_eq!(
            p.set_common_device_info(&mut ci, &[]),
            Err(CommandError::Fail)
        );
        assert_eq!(
            p.set_common_device_info(&mut ci, &[(KEY_DEVNAME, "n"); 4]),
            Err(CommandError::Fail)
        );
        assert_eq!(
            p.set_common_device_info(&mut ci, &[(KEY_DEVNAME, "new"), (KEY_DEVTYPE, "FRIDGE")]),
            Err(CommandError::Fail)
        );
        assert_eq!(ci.device_name, "DEV_L1"); // restored
        p.set_common_device_info(&mut ci, &[(KEY_DEVNAME, "new"), (KEY_DEVTYPE, "TV")])
            .unwrap();
        assert_eq!((ci.device_name.as_str(), ci.device_type), ("new", 0x9C));
        assert_eq!(
            p.set_common_device_info(&mut ci, &[(7, "x")]),
            Err(CommandError::Fail)
        );
        assert_eq!(
            capability_names(&[0b100_0001]),
            vec!["hicall", "ddmpCapability"]
        );
    }
}
