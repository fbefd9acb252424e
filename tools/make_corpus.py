#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets (fuzz/corpus/<target>/) from real
packet shapes: the observed lite reply, full-stack requests, the fixture's auth and
session packets, hichain messages. Re-run after changing a wire format."""
import json, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
vec = json.load(open(os.path.join(root, "crates/bus/tests/vectors/softbus-vectors.json")))

def coap(mtype, code, mid, token, options, payload):
    out = bytes([0x40 | mtype << 4 | len(token), code]) + struct.pack(">H", mid) + token
    prev = 0
    for num, val in sorted(options):
        d, l = num - prev, len(val)
        def nib(v):
            if v < 13: return v, b""
            if v < 269: return 13, bytes([v - 13])
            return 14, struct.pack(">H", v - 269)
        dn, dx = nib(d); ln, lx = nib(l)
        out += bytes([dn << 4 | ln]) + dx + lx + val
        prev = num
    if payload:
        out += b"\xff" + payload
    return out

req = json.dumps({"deviceId": json.dumps({"UDID": "CD" * 32}, separators=(",", ":")), "devicename": "phone", "type": 14,
                  "mode": 1, "deviceHash": "0", "serviceData": "port:40001,", "wlanIp": "10.0.0.3",
                  "capabilityBitmap": [64], "bType": 0, "coapUri": "coap://10.0.0.3/device_discover"}, separators=(",", ":")).encode()
reply = json.dumps({"deviceId": json.dumps({"UDID": "AB" * 32}, separators=(",", ":")), "devicename": "DEV_L1", "type": 242,
                    "hicomversion": "", "mode": 0, "deviceHash": "0", "serviceData": "port:45429,ab,", "wlanIp": "10.77.0.2",
                    "capabilityBitmap": [64]}, separators=(",", ":")).encode()
opts = [(3, b"10.0.0.2"), (11, b"device_discover")]
coap_seeds = {
    "request_non": coap(1, 2, 1, b"", opts, req + b"\0"),
    "request_con_token": coap(0, 2, 0x1234, b"\x01\x02", opts + [(7, b"\x16\x34")], req),
    "lite_reply": coap(1, 2, 1, b"", opts, reply),
    "ext_options": coap(0, 1, 7, b"", [(20, b"x" * 20), (320, b"y" * 300)], b""),
    "empty_ack": coap(2, 0, 9, b"", [], b""),
}

def auth(module, seq, flags, body):
    return struct.pack("<IiqiI", 0xBABEFACE, module, seq, flags, len(body)) + body

get_auth = auth(1, 900, 0, json.dumps({"TECmd": "getAuthInfo", "TEData": "CD" * 32, "TEDeviceId": "CD" * 32}).encode())
pake_req = b'{"message":1,"payload":{"operationCode":6,"support256mod":true,"version":{"currentVersion":"1.0.0","minVersion":"1.0.0"}}}'
p0 = vec["pake"][0]
confirm = json.dumps({"message": 2, "payload": {"kcfData": p0["client_kcf"], "challenge": p0["client_challenge"], "epk": p0["client_epk"]}}).encode()
mod5 = bytes.fromhex(vec["auth_packet_module5"]["packet"])
sess = bytes.fromhex(vec["session_data_packet"]["packet"])

seeds = {
    "coap": coap_seeds,
    "discovery_engine": coap_seeds,
    "discovery_payload": {"request": req + b"\0", "reply": reply, "minimal": b'{"deviceId":"a","devicename":"b","type":1}'},
    "deframer": {"auth_plain": get_auth, "auth_sealed": mod5, "session": sess, "two": get_auth + auth(3, 900, 0, pake_req)},
    "auth_conn": {"get_auth_info": get_auth, "pake_request": get_auth + auth(3, 900, 0, pake_req),
                  "pake_confirm": auth(3, 900, 0, pake_req) + auth(3, 900, 0, confirm), "verify_ip": mod5},
    "hichain": {"request": pake_req, "confirm": confirm, "error": b'{"message":32896, "payload":{"errorCode":2}}'},
    "bus_tcp": {"auth_then_open": get_auth + auth(3, 900, 0, pake_req) + mod5 + mod5, "session": sess * 2},
}
for target, files in seeds.items():
    d = os.path.join(root, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        open(os.path.join(d, name), "wb").write(data)
print("wrote", sum(len(f) for f in seeds.values()), "seeds", file=sys.stderr)
