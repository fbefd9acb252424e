#![allow(clippy::disallowed_methods)] // tests pick a clock origin; the engine never reads the clock
use super::*;

fn local(ip: [u8; 4]) -> LocalDevice {
    LocalDevice {
        device_id: "AB".repeat(32),
        name: "DEV_L1".into(),
        device_type: 0xF2,
        ip: ip.into(),
        auth_port: Some(45429),
    }
}

fn publisher() -> Discovery {
    let mut d = Discovery::new(DiscoveryConfig::default(), local([10, 77, 0, 2]));
    let mut info = PublishInfo::coap(1, "ddmpCapability");
    info.capability_data = b"ab".to_vec();
    d.publish(Some("softbus-server"), &info).unwrap();
    d
}

fn request_from(ip: [u8; 4], coap_uri: bool) -> Vec<u8> {
    let mut d = Discovery::new(
        DiscoveryConfig::default(),
        LocalDevice {
            device_id: "CD".repeat(32),
            name: "phone".into(),
            device_type: 0x0E,
            ip: ip.into(),
            auth_port: None,
        },
    );
    let now = Instant::now();
    d.start_discovery(now, vec![SocketAddrV4::new([10, 77, 0, 255].into(), 5684)]);
    let mut p = d.poll_transmit().unwrap().payload;
    if !coap_uri {
        let m = Message::parse(&p).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_slice(&m.payload[..m.payload.len() - 1]).unwrap();
        v.as_object_mut().unwrap().remove("coapUri");
        p = Message {
            payload: serde_json::to_vec(&v).unwrap(),
            ..m
        }
        .emit()
        .unwrap();
    }
    p
}

#[test]
fn responder_replies_like_lite() {
    let mut d = publisher();
    let now = Instant::now();
    d.handle_datagram(
        now,
        "10.77.0.3:5684".parse().unwrap(),
        &request_from([10, 77, 0, 3], true),
    )
    .unwrap();
    let out = d.poll_transmit().unwrap();
    assert_eq!(out.destination, "10.77.0.3:5684".parse().unwrap());
    let mut expect = vec![0x50, 0x02, 0x00, 0x01, 0x39];
    expect.extend_from_slice(b"10.77.0.3");
    expect.extend_from_slice(&[0x8d, 0x02]);
    expect.extend_from_slice(b"device_discover");
    expect.push(0xff);
    let json = format!(
        r#"{{"deviceId":"{{\"UDID\":\"{}\"}}","devicename":"DEV_L1","type":242,"hicomversion":"","mode":0,"deviceHash":"0","serviceData":"port:45429,ab,","wlanIp":"10.77.0.2","capabilityBitmap":[64]}}"#,
        "AB".repeat(32)
    );
    expect.extend_from_slice(json.as_bytes());
    assert_eq!(out.payload, expect);
    assert!(d.poll_transmit().is_none());
    // the requester is in the table now
    match d.poll_event().unwrap() {
        DiscoveryEvent::DeviceFound(f) => assert_eq!(
            (f.name.as_str(), f.ip),
            ("phone", Ipv4Addr::new(10, 77, 0, 3))
        ),
        e => panic!("{e:?}"),
    }
}

#[test]
fn no_reply_without_coap_uri_or_publication() {
    let mut d = publisher();
    let now = Instant::now();
    d.handle_datagram(
        now,
        "10.77.0.3:5684".parse().unwrap(),
        &request_from([10, 77, 0, 3], false),
    )
    .unwrap();
    assert!(d.poll_transmit().is_none());
    let mut silent = Discovery::new(DiscoveryConfig::default(), local([10, 77, 0, 2]));
    silent
        .handle_datagram(
            now,
            "10.77.0.3:5684".parse().unwrap(),
            &request_from([10, 77, 0, 3], true),
        )
        .unwrap();
    assert!(silent.poll_transmit().is_none());
}

#[test]
fn discoverer_learns_auth_port_from_reply() {
    let mut server = publisher();
    let mut client = Discovery::new(DiscoveryConfig::default(), local([10, 77, 0, 3]));
    client.local.device_id = "CD".repeat(32);
    let now = Instant::now();
    client.start_discovery(now, vec![SocketAddrV4::new([10, 77, 0, 2].into(), 5684)]);
    let req = client.poll_transmit().unwrap();
    server
        .handle_datagram(now, "10.77.0.3:5684".parse().unwrap(), &req.payload)
        .unwrap();
    let reply = server.poll_transmit().unwrap();
    client
        .handle_datagram(now, "10.77.0.2:40000".parse().unwrap(), &reply.payload)
        .unwrap();
    let DiscoveryEvent::DeviceFound(f) = client.poll_event().unwrap() else {
        panic!()
    };
    assert_eq!(f.device_id, "AB".repeat(32));
    assert_eq!(f.auth_port, Some(45429));
    assert_eq!(f.capabilities, vec!["ddmpCapability"]);
    // a repeat with the same info raises no new event
    client
        .handle_datagram(now, "10.77.0.2:40000".parse().unwrap(), &reply.payload)
        .unwrap();
    assert!(client.poll_event().is_none());
}

#[test]
fn schedule_is_twelve_requests() {
    let mut client = Discovery::new(DiscoveryConfig::default(), local([10, 77, 0, 3]));
    let t0 = Instant::now();
    client.start_discovery(t0, vec![SocketAddrV4::new([10, 77, 0, 255].into(), 5684)]);
    let mut sent = vec![Duration::ZERO];
    let _ = client.poll_transmit();
    for _ in 0..100 {
        let Some(t) = client.poll_timeout() else {
            break;
        };
        client.handle_timeout(t);
        while client.poll_transmit().is_some() {
            sent.push(t - t0);
        }
    }
    let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
    assert_eq!(
        ms,
        vec![0, 100, 300, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]
    );
    assert_eq!(client.poll_event(), Some(DiscoveryEvent::ScheduleDone));
}

#[test]
fn devices_expire_and_table_is_bounded() {
    let cfg = DiscoveryConfig {
        table_limit: 2,
        device_ttl: Duration::from_secs(5),
        ..Default::default()
    };
    let mut d = Discovery::new(cfg, local([10, 0, 0, 9]));
    let t0 = Instant::now();
    for (i, ip) in [[10, 0, 0, 1], [10, 0, 0, 2], [10, 0, 0, 3]]
        .iter()
        .enumerate()
    {
        let mut r = Discovery::new(
            DiscoveryConfig::default(),
            LocalDevice {
                device_id: format!("{i:064}"),
                name: "x".into(),
                device_type: 1,
                ip: (*ip).into(),
                auth_port: None,
            },
        );
        r.start_discovery(t0, vec![SocketAddrV4::new([10, 0, 0, 9].into(), 5684)]);
        let p = r.poll_transmit().unwrap().payload;
        d.handle_datagram(
            t0 + Duration::from_secs(i as u64),
            SocketAddr::from((*ip, 5684)),
            &p,
        )
        .unwrap();
    }
    assert_eq!(d.devices().len(), 2);
    assert!(d
        .devices()
        .iter()
        .all(|f| f.device_id != format!("{:064}", 0)));
    while d.poll_event().is_some() {}
    d.handle_timeout(t0 + Duration::from_secs(7));
    assert_eq!(d.devices().len(), 0);
    assert!(matches!(
        d.poll_event(),
        Some(DiscoveryEvent::DeviceLost(_))
    ));
}

#[test]
fn rejections_cost_only_the_datagram() {
    let mut d = publisher();
    let now = Instant::now();
    let from: SocketAddr = "10.77.0.3:5684".parse().unwrap();
    assert!(matches!(
        d.handle_datagram(now, from, &[0x50]),
        Err(DiscoveryError::Coap(CoapError::Truncated))
    ));
    assert!(matches!(
        d.handle_datagram(now, from, &vec![0x50; 2000]),
        Err(DiscoveryError::Coap(CoapError::TooLarge(2000)))
    ));
    let bad_json = Message {
        message_type: MessageType::NON,
        code: 2,
        message_id: 1,
        token: vec![],
        options: vec![],
        payload: b"{nope".to_vec(),
    }
    .emit()
    .unwrap();
    assert!(matches!(
        d.handle_datagram(now, from, &bad_json),
        Err(DiscoveryError::Payload(PayloadError::NotJson))
    ));
    let no_ip = Message {
        message_type: MessageType::NON,
        code: 2,
        message_id: 1,
        token: vec![],
        options: vec![],
        payload: br#"{"deviceId":"x","devicename":"y","type":1,"coapUri":"c"}"#.to_vec(),
    }
    .emit()
    .unwrap();
    assert_eq!(
        d.handle_datagram(now, from, &no_ip),
        Err(DiscoveryError::NoReplyAddress)
    );
    assert_eq!(d.dropped(), 4);
    // still serving
    d.handle_datagram(now, from, &request_from([10, 77, 0, 3], true))
        .unwrap();
    assert!(d.poll_transmit().is_some());
}

#[test]
fn reply_rate_is_limited() {
    let cfg = DiscoveryConfig {
        reply_rate: 3,
        ..Default::default()
    };
    let mut d = Discovery::new(cfg, local([10, 77, 0, 2]));
    d.publish(Some("m"), &PublishInfo::coap(1, "dvKit"))
        .unwrap();
    let now = Instant::now();
    let req = request_from([10, 77, 0, 3], true);
    let from: SocketAddr = "10.77.0.3:5684".parse().unwrap();
    let results: Vec<_> = (0..5).map(|_| d.handle_datagram(now, from, &req)).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(results[4], Err(DiscoveryError::RateLimited));
    assert!(d
        .handle_datagram(now + Duration::from_millis(400), from, &req)
        .is_ok());
}

#[test]
fn con_request_is_acknowledged() {
    let mut d = publisher();
    let now = Instant::now();
    let m = Message::parse(&request_from([10, 77, 0, 3], true)).unwrap();
    let con = Message {
        message_type: MessageType::CON,
        message_id: 0x4242,
        ..m
    }
    .emit()
    .unwrap();
    d.handle_datagram(now, "127.0.0.1:40000".parse().unwrap(), &con)
        .unwrap();
    let ack = d.poll_transmit().unwrap();
    assert_eq!(ack.destination, "127.0.0.1:40000".parse().unwrap());
    assert_eq!(ack.payload, vec![0x60, 0x00, 0x42, 0x42]);
    assert_eq!(
        d.poll_transmit().unwrap().destination,
        "10.77.0.3:5684".parse().unwrap()
    );
}

#[test]
fn cached_reply_follows_changes() {
    let mut d = publisher();
    let now = Instant::now();
    let from: SocketAddr = "10.77.0.3:5684".parse().unwrap();
    let req = request_from([10, 77, 0, 3], true);
    let body = |d: &mut Discovery| {
        d.handle_datagram(now, from, &req).unwrap();
        let m = Message::parse(&d.poll_transmit().unwrap().payload).unwrap();
        serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()
    };
    assert_eq!(body(&mut d)["serviceData"], "port:45429,ab,");
    d.set_auth_port(Some(1000));
    assert_eq!(body(&mut d)["serviceData"], "port:1000,ab,");
    d.publish(Some("m2"), &PublishInfo::coap(2, "hicall"))
        .unwrap();
    assert_eq!(body(&mut d)["capabilityBitmap"], serde_json::json!([65]));
    d.unpublish(Some("softbus-server"), 1).unwrap();
    assert_eq!(body(&mut d)["capabilityBitmap"], serde_json::json!([1]));
    d.set_common_device_info(&[(publish::KEY_DEVNAME, "renamed")])
        .unwrap();
    let b = body(&mut d);
    assert_eq!(
        (b["devicename"].as_str(), b["hicomversion"].as_str()),
        (Some("renamed"), Some("1.0.0"))
    );
}

/// The JSON payload of a CoAP datagram, without the full stack's trailing NUL.
fn json_of(datagram: &[u8]) -> serde_json::Value {
    let m = Message::parse(datagram).unwrap();
    let p = m.payload.strip_suffix(&[0]).unwrap_or(&m.payload);
    serde_json::from_slice(p).unwrap()
}

/// nstackx (dsoftbus since late 2025) answers no broadcast request without a
/// `seqNo` (a u16): every request carries one, counting per request, with
/// nstackx's `bType`/`bData` before it and `coapUri` last.
#[test]
fn requests_carry_a_counting_seq_no() {
    let mut d = publisher();
    let now = Instant::now();
    d.start_discovery(
        now,
        vec![
            SocketAddrV4::new([10, 77, 0, 255].into(), 5684),
            SocketAddrV4::new([10, 77, 0, 9].into(), 5684),
        ],
    );
    d.handle_timeout(now + Duration::from_millis(100));
    let seqs: Vec<u64> = std::iter::from_fn(|| d.poll_transmit())
        .map(|t| json_of(&t.payload)["seqNo"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
    let req = request_from([10, 77, 0, 3], true);
    let v = json_of(&req);
    let text = String::from_utf8(Message::parse(&req).unwrap().payload).unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(
        at("bType") < at("bData") && at("bData") < at("seqNo") && at("seqNo") < at("coapUri"),
        "{text}"
    );
    assert_eq!(
        (v["bType"].as_u64(), v["bData"].as_str()),
        (Some(0), Some(""))
    );
}

/// A node may publish the full stack's capabilities: with `osdCapability`
/// (bit 7, which a phone's DeviceManager keeps devices by) its answer to an
/// nstackx request (with `typeEx`, `bType`, `bData`, `extendServiceData`,
/// `seqNo`, and a trailing NUL) has bit 7 set. softbus_lite's rules (the C API's
/// default) still refuse that name.
#[test]
fn a_node_publishing_osd_capability_answers_with_bit_7() {
    let mut lite = Discovery::new(DiscoveryConfig::default(), local([10, 77, 0, 2]));
    assert!(lite
        .publish(Some("m"), &PublishInfo::coap(1, "osdCapability"))
        .is_err());
    let mut d = Discovery::new(
        DiscoveryConfig {
            full_stack_capabilities: true,
            ..DiscoveryConfig::default()
        },
        local([10, 77, 0, 2]),
    );
    d.publish(Some("m"), &PublishInfo::coap(1, "osdCapability"))
        .unwrap();
    d.publish(Some("m"), &PublishInfo::coap(2, "ddmpCapability"))
        .unwrap();
    let body = format!(
        r#"{{"deviceId":"{{\"UDID\":\"{}\"}}","devicename":"phone","type":0,"typeEx":270,"mode":1,"deviceHash":"0","serviceData":"","extendServiceData":"x","wlanIp":"10.77.0.3","capabilityBitmap":[128],"bType":0,"bData":"","seqNo":7,"coapUri":"coap://10.77.0.3/device_discover"}}"#,
        "CD".repeat(32)
    );
    let mut payload = body.into_bytes();
    payload.push(0);
    let req = Message {
        payload,
        ..Message::parse(&request_from([10, 77, 0, 3], true)).unwrap()
    }
    .emit()
    .unwrap();
    d.handle_datagram(Instant::now(), "10.77.0.3:5684".parse().unwrap(), &req)
        .unwrap();
    let out = d.poll_transmit().unwrap();
    let v = json_of(&out.payload);
    assert_eq!(
        v["capabilityBitmap"],
        serde_json::json!([(1 << 7) | (1 << 6)])
    );
    match d.poll_event().unwrap() {
        DiscoveryEvent::DeviceFound(f) => assert_eq!(f.capability_bitmap, vec![128]),
        e => panic!("{e:?}"),
    }
}

/// The full stack's keys are read when valid and skipped when not, with or
/// without the trailing NUL; none of them makes a lite payload fail.
#[test]
fn the_full_stacks_keys_are_read() {
    let body = r#"{"deviceId":"{\"UDID\":\"AB\"}","devicename":"phone","type":0,"typeEx":270,"mode":0,"deviceHash":"0","serviceData":"port:5,","extendServiceData":"e","wlanIp":"10.77.0.3","capabilityBitmap":[128],"bType":1,"bData":"b","seqNo":65535}"#;
    for nul in [false, true] {
        let mut b = body.as_bytes().to_vec();
        if nul {
            b.push(0);
        }
        let p = payload::DevicePayload::parse(&b).unwrap();
        assert_eq!(
            (
                p.device_type,
                p.device_type_ex,
                p.business_type,
                p.business_data.as_deref(),
                p.extend_service_data.as_deref(),
                p.seq_no
            ),
            (0, Some(270), Some(1), Some("b"), Some("e"), Some(65535))
        );
    }
    let bad = body
        .replace("65535", "65536")
        .replace("\"bType\":1", "\"bType\":-1");
    let p = payload::DevicePayload::parse(bad.as_bytes()).unwrap();
    assert_eq!((p.seq_no, p.business_type), (None, None));
}
