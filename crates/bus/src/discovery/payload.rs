//! softbus_lite's discovery JSON (softbus-wire.md §1.2-§1.4).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// Why a discovery payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("payload is not a JSON object")]
    NotJson,
    #[error("required key {0} missing or of the wrong type")]
    Missing(&'static str),
    #[error("key {0} empty or longer than allowed")]
    BadLength(&'static str),
    #[error("key {0} out of range")]
    OutOfRange(&'static str),
}

/// Limits from json_payload.c.
pub const MAX_DEVICE_ID: usize = 95;
pub const MAX_DEVICE_NAME: usize = 63;
pub const MAX_HICOM_VERSION: usize = 15;
pub const MAX_DEVICE_HASH: usize = 20;
pub const MAX_SERVICE_DATA: usize = 63;
/// nstackx's `NSTACKX_MAX_BUSINESS_DATA_LEN` and `NSTACKX_MAX_EXTEND_SERVICE_DATA_LEN`
/// (longer values are not stored).
pub const MAX_BUSINESS_DATA: usize = 300;
pub const MAX_EXTEND_SERVICE_DATA: usize = 1024;

/// What one discovery datagram says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePayload {
    /// The `deviceId` value as sent (often `{"UDID":"…"}`).
    pub device_id: String,
    pub device_name: String,
    pub device_type: u8,
    pub hicom_version: Option<String>,
    pub wlan_ip: Option<Ipv4Addr>,
    pub capability_bitmap: Vec<u32>,
    pub mode: Option<u32>,
    pub device_hash: Option<String>,
    pub service_data: Option<String>,
    /// Present only in requests: a discoverer that wants an answer.
    pub coap_uri: Option<String>,
    /// The full stack's (nstackx) keys, read when present and valid, else
    /// absent: `typeEx` (the real type when `type` is 0), `bType`, `bData`,
    /// `extendServiceData`, `seqNo`.
    pub device_type_ex: Option<u32>,
    pub business_type: Option<u8>,
    pub business_data: Option<String>,
    pub extend_service_data: Option<String>,
    pub seq_no: Option<u16>,
}

/// The payload's keys, borrowed; each value is decoded only as the lite rules need.
#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "deviceId", borrow)]
    device_id: Option<&'a RawValue>,
    #[serde(rename = "devicename", borrow)]
    device_name: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    device_type: Option<&'a RawValue>,
    #[serde(rename = "hicomversion", borrow)]
    hicom_version: Option<&'a RawValue>,
    #[serde(rename = "wlanIp", borrow)]
    wlan_ip: Option<&'a RawValue>,
    #[serde(rename = "capabilityBitmap", borrow)]
    capability_bitmap: Option<&'a RawValue>,
    #[serde(borrow)]
    mode: Option<&'a RawValue>,
    #[serde(rename = "deviceHash", borrow)]
    device_hash: Option<&'a RawValue>,
    #[serde(rename = "serviceData", borrow)]
    service_data: Option<&'a RawValue>,
    #[serde(rename = "coapUri", borrow)]
    coap_uri: Option<&'a RawValue>,
    #[serde(rename = "typeEx", borrow)]
    device_type_ex: Option<&'a RawValue>,
    #[serde(rename = "bType", borrow)]
    business_type: Option<&'a RawValue>,
    #[serde(rename = "bData", borrow)]
    business_data: Option<&'a RawValue>,
    #[serde(rename = "extendServiceData", borrow)]
    extend_service_data: Option<&'a RawValue>,
    #[serde(rename = "seqNo", borrow)]
    seq_no: Option<&'a RawValue>,
}

fn as_str(v: Option<&RawValue>) -> Option<Cow<'_, str>> {
    v.and_then(|r| serde_json::from_str::<Cow<'_, str>>(r.get()).ok())
}

fn as_u64(v: Option<&RawValue>) -> Option<u64> {
    // Numbers such as 14.0 count too, as cJSON's valueint does.
    v.and_then(|r| serde_json::from_str::<serde_json::Number>(r.get()).ok())
        .and_then(|n| {
            n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
        })
}

fn bounded_str(
    v: Option<&RawValue>,
    key: &'static str,
    max: usize,
    required: bool,
) -> Result<Option<String>, PayloadError> {
    match (v, as_str(v)) {
        (None, _) if !required => Ok(None),
        (Some(_), Some(s)) => {
            if (required && s.is_empty()) || s.len() > max {
                Err(PayloadError::BadLength(key))
            } else {
                Ok(Some(s.into_owned()))
            }
        }
        _ => Err(PayloadError::Missing(key)),
    }
}

impl DevicePayload {
    /// Parses a discovery payload with the lite receiver's rules. A trailing NUL
    /// (sent by the full stack) is accepted; unknown keys are ignored.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        let mut p = payload;
        while let [rest @ .., 0] = p {
            p = rest;
        }
        let text = std::str::from_utf8(p).map_err(|_| PayloadError::NotJson)?;
        let v: Raw<'_> = serde_json::from_str(text).map_err(|_| PayloadError::NotJson)?;
        let device_id =
            bounded_str(v.device_id, "deviceId", MAX_DEVICE_ID, true)?.unwrap_or_default();
        let device_name =
            bounded_str(v.device_name, "devicename", MAX_DEVICE_NAME, true)?.unwrap_or_default();
        let device_type = match (v.device_type, as_u64(v.device_type)) {
            (_, Some(t)) if t <= 255 => t as u8,
            (_, Some(_)) => return Err(PayloadError::OutOfRange("type")),
            (Some(r), None) if serde_json::from_str::<i64>(r.get()).is_ok() => {
                return Err(PayloadError::OutOfRange("type"))
            }
            _ => return Err(PayloadError::Missing("type")),
        };
        let hicom_version = bounded_str(v.hicom_version, "hicomversion", MAX_HICOM_VERSION, false)?;
        // wlanIp: an unparsable address is treated as absent (no reply can be sent).
        let wlan_ip = as_str(v.wlan_ip).and_then(|s| s.parse().ok());
        let capability_bitmap = match v
            .capability_bitmap
            .and_then(|r| serde_json::from_str::<Vec<&RawValue>>(r.get()).ok())
        {
            Some(a) => {
                let mut out = Vec::new();
                for x in a.iter().take(2) {
                    match as_u64(Some(x)) {
                        Some(n) if n <= u64::from(u32::MAX) => out.push(n as u32),
                        _ => return Err(PayloadError::OutOfRange("capabilityBitmap")),
                    }
                }
                out
            }
            None => Vec::new(),
        };
        let mode = as_u64(v.mode).map(|m| m.min(u64::from(u32::MAX)) as u32);
        // Over-long deviceHash / serviceData are not stored, the rest still counts.
        let device_hash = as_str(v.device_hash)
            .filter(|s| s.len() <= MAX_DEVICE_HASH)
            .map(Cow::into_owned);
        let service_data = as_str(v.service_data)
            .filter(|s| s.len() <= MAX_SERVICE_DATA)
            .map(Cow::into_owned);
        let coap_uri = as_str(v.coap_uri).map(Cow::into_owned);
        // nstackx's rules: an invalid value is skipped, never fatal.
        let device_type_ex = as_u64(v.device_type_ex)
            .filter(|_| device_type == 0)
            .and_then(|t| u32::try_from(t).ok());
        let business_type = as_u64(v.business_type).and_then(|t| u8::try_from(t).ok());
        let business_data = as_str(v.business_data)
            .filter(|s| s.len() <= MAX_BUSINESS_DATA)
            .map(Cow::into_owned);
        let extend_service_data = as_str(v.extend_service_data)
            .filter(|s| s.len() <= MAX_EXTEND_SERVICE_DATA)
            .map(Cow::into_owned);
        let seq_no = as_u64(v.seq_no).and_then(|n| u16::try_from(n).ok());
        Ok(Self {
            device_id,
            device_name,
            device_type,
            hicom_version,
            wlan_ip,
            capability_bitmap,
            mode,
            device_hash,
            service_data,
            coap_uri,
            device_type_ex,
            business_type,
            business_data,
            extend_service_data,
            seq_no,
        })
    }

    /// The UDID inside `{"UDID":"…"}`, or the raw id if it is not in that form.
    pub fn udid(&self) -> String {
        unwrap_udid(&self.device_id)
    }

    /// The auth port from `serviceData` (`port:<n>,…`), if present and valid.
    pub fn auth_port(&self) -> Option<u16> {
        self.service_data.as_deref().and_then(service_data_port)
    }
}

/// Extracts `UDID` from the wrapped form, else returns the input.
pub fn unwrap_udid(id: &str) -> String {
    // Fast path for the exact form peers send; anything else goes through the JSON parser.
    if let Some(inner) = id
        .strip_prefix("{\"UDID\":\"")
        .and_then(|r| r.strip_suffix("\"}"))
    {
        if !inner.contains(['"', '\\']) {
            return inner.to_owned();
        }
    }
    serde_json::from_str::<Value>(id)
        .ok()
        .and_then(|v| v.get("UDID").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| id.to_owned())
}

/// Wraps a UDID as the full stack expects: `{"UDID":"…"}`.
pub fn wrap_udid(udid: &str) -> String {
    serde_json::json!({ "UDID": udid }).to_string()
}

/// Reads key `port` from `port:<n>,a,b,` the way the full stack does (split on `,` then `:`).
pub fn service_data_port(s: &str) -> Option<u16> {
    s.split(',').find_map(|kv| {
        let (k, v) = kv.split_once(':')?;
        if k == "port" {
            v.parse().ok()
        } else {
            None
        }
    })
}

/// The reply a publisher sends (key order fixed by softbus_lite's `PrepareServiceDiscover`).
#[derive(Debug, Serialize)]
pub struct LiteReply<'a> {
    #[serde(rename = "deviceId")]
    pub device_id: String,
    #[serde(rename = "devicename")]
    pub device_name: &'a str,
    #[serde(rename = "type")]
    pub device_type: u8,
    #[serde(rename = "hicomversion")]
    pub hicom_version: &'a str,
    pub mode: u8,
    #[serde(rename = "deviceHash")]
    pub device_hash: &'a str,
    #[serde(rename = "serviceData")]
    pub service_data: &'a str,
    #[serde(rename = "wlanIp")]
    pub wlan_ip: String,
    #[serde(rename = "capabilityBitmap", skip_serializing_if = "Option::is_none")]
    pub capability_bitmap: Option<[u32; 1]>,
}

/// The request a discoverer sends, in the full stack's key order.
#[derive(Debug, Serialize)]
pub struct FullRequest<'a> {
    #[serde(rename = "deviceId")]
    pub device_id: String,
    #[serde(rename = "devicename")]
    pub device_name: &'a str,
    #[serde(rename = "type")]
    pub device_type: u8,
    pub mode: u8,
    #[serde(rename = "deviceHash")]
    pub device_hash: &'a str,
    #[serde(rename = "serviceData")]
    pub service_data: &'a str,
    #[serde(rename = "wlanIp")]
    pub wlan_ip: String,
    #[serde(rename = "capabilityBitmap", skip_serializing_if = "Vec::is_empty")]
    pub capability_bitmap: Vec<u32>,
    #[serde(rename = "bType")]
    pub business_type: u8,
    #[serde(rename = "bData")]
    pub business_data: &'a str,
    /// Counts per request: nstackx (dsoftbus since late 2025) answers no
    /// broadcast request without it.
    #[serde(rename = "seqNo")]
    pub seq_no: u16,
    #[serde(rename = "coapUri")]
    pub coap_uri: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = r#"{"deviceId":"{\"UDID\":\"AB12\"}","devicename":"phone","type":14,"mode":1,"deviceHash":"0","serviceData":"port:40001,","wlanIp":"10.77.0.3","capabilityBitmap":[64],"bType":0,"coapUri":"coap://10.77.0.3/device_discover"}"#;

    #[test]
    fn parses_full_stack_request_with_nul() {
        let mut b = REQ.as_bytes().to_vec();
        b.push(0);
        let p = DevicePayload::parse(&b).unwrap();
        assert_eq!(p.udid(), "AB12");
        assert_eq!(p.device_name, "phone");
        assert_eq!(p.device_type, 14);
        assert_eq!(p.wlan_ip, Some(Ipv4Addr::new(10, 77, 0, 3)));
        assert_eq!(p.capability_bitmap, vec![64]);
        assert_eq!(p.auth_port(), Some(40001));
        assert!(p.coap_uri.is_some());
    }

    #[test]
    fn lite_rules() {
        let long_id = format!(
            r#"{{"deviceId":"{}","devicename":"x","type":1}}"#,
            "a".repeat(96)
        );
        assert_eq!(
            DevicePayload::parse(long_id.as_bytes()),
            Err(PayloadError::BadLength("deviceId"))
        );
        assert_eq!(
            DevicePayload::parse(br#"{"deviceId":"","devicename":"x","type":1}"#),
            Err(PayloadError::BadLength("deviceId"))
        );
        assert_eq!(
            DevicePayload::parse(br#"{"deviceId":"a","type":1}"#),
            Err(PayloadError::Missing("devicename"))
        );
        assert_eq!(
            DevicePayload::parse(br#"{"deviceId":"a","devicename":"x","type":256}"#),
            Err(PayloadError::OutOfRange("type"))
        );
        assert_eq!(
            DevicePayload::parse(br#"{"deviceId":"a","devicename":"x","type":"1"}"#),
            Err(PayloadError::Missing("type"))
        );
        assert_eq!(
            DevicePayload::parse(
                br#"{"deviceId":"a","devicename":"x","type":1,"hicomversion":"0123456789abcdef"}"#
            ),
            Err(PayloadError::BadLength("hicomversion"))
        );
        assert_eq!(DevicePayload::parse(b"[1]"), Err(PayloadError::NotJson));
        assert_eq!(DevicePayload::parse(b"{\"a\":"), Err(PayloadError::NotJson));
        // over-long deviceHash / serviceData are dropped, not fatal
        let p = DevicePayload::parse(format!(r#"{{"deviceId":"a","devicename":"x","type":1,"deviceHash":"{}","serviceData":"{}"}}"#, "1".repeat(21), "p".repeat(64)).as_bytes()).unwrap();
        assert_eq!(
            (p.device_hash.clone(), p.service_data.clone()),
            (None, None)
        );
        assert_eq!(p.udid(), "a");
    }

    #[test]
    fn udid_forms() {
        assert_eq!(unwrap_udid(r#"{"UDID":"AB12"}"#), "AB12");
        assert_eq!(unwrap_udid(r#"{ "UDID" : "AB12" }"#), "AB12");
        assert_eq!(unwrap_udid(r#"{"UDID":"A\"B"}"#), "A\"B");
        assert_eq!(unwrap_udid(r#"{"UDID":"A"}x"}"#), r#"{"UDID":"A"}x"}"#);
        assert_eq!(unwrap_udid("RAW"), "RAW");
        assert_eq!(unwrap_udid(&wrap_udid("CD")), "CD");
    }

    #[test]
    fn service_data_port_rules() {
        assert_eq!(service_data_port("port:45429,ab,"), Some(45429));
        assert_eq!(service_data_port("x:1,port:7"), Some(7));
        assert_eq!(service_data_port("port:-1,"), None);
        assert_eq!(service_data_port(""), None);
    }

    #[test]
    fn reply_key_order_is_lites() {
        let r = LiteReply {
            device_id: wrap_udid("AB"),
            device_name: "DEV_L1",
            device_type: 242,
            hicom_version: "",
            mode: 0,
            device_hash: "0",
            service_data: "port:45429,ab,",
            wlan_ip: "10.77.0.2".into(),
            capability_bitmap: Some([64]),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"deviceId":"{\"UDID\":\"AB\"}","devicename":"DEV_L1","type":242,"hicomversion":"","mode":0,"deviceHash":"0","serviceData":"port:45429,ab,","wlanIp":"10.77.0.2","capabilityBitmap":[64]}"#
        );
    }
}
