#!/usr/bin/env python3
"""aiortc (PyPI) as the offerer against a softbus node: POST /rtc/offer, open a data
channel to the session server LABEL, check the echo of text and binary messages of
1 B, 16 KiB and 64 KiB, DELETE the peer connection and time how soon the channel and
the connection close. Prints a JSON result; exit 0 if ok.

usage: aiortc_datachannel.py NODE_URL [LABEL]   ($NODE_TOKEN: the node's web token)"""
import asyncio, json, os, sys, time, urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

# aioice never gathers 127.0.0.1; loopback-only harnesses must say so.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

node = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else "echo"


def http(method, url, body=None, ctype=None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    if os.environ.get("NODE_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["NODE_TOKEN"])
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


async def main():
    res = {"ok": False, "steps": []}
    pc = RTCPeerConnection()
    try:
        ch = pc.createDataChannel(label)
        inbox = asyncio.Queue()
        opened = asyncio.Event()
        ch.on("open", opened.set)
        ch.on("message", lambda m: inbox.put_nowait(m))
        t0 = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        status, headers, answer = await asyncio.get_running_loop().run_in_executor(
            None, http, "POST", node + "/rtc/offer", pc.localDescription.sdp.encode(), "application/sdp")
        res["status"], res["location"] = status, headers.get("Location")
        if status != 201:
            raise RuntimeError(f"offer refused: {status} {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(opened.wait(), 15)
        res["open_ms"] = round((time.monotonic() - t0) * 1000)
        for n in (1, 16384, 65536):
            text = "".join(chr(97 + (i * 5 + n) % 26) for i in range(n))
            ch.send(text)
            back = await asyncio.wait_for(inbox.get(), 10)
            if not isinstance(back, str) or back != text:
                raise RuntimeError(f"text echo differs at {n}")
            data = bytes((i * 7 + n) & 255 for i in range(n))
            ch.send(data)
            back = await asyncio.wait_for(inbox.get(), 10)
            if not isinstance(back, bytes) or back != data:
                raise RuntimeError(f"binary echo differs at {n}")
            res["steps"].append(f"echo {n} text+binary")
        res["dtls_role"] = pc.sctp.transport._role if pc.sctp else None
        # DELETE: the node ends SCTP and DTLS; time how soon the channel and the
        # connection close here (not when ICE consent would expire).
        closed = asyncio.Event()
        ch.on("close", closed.set)
        left = asyncio.Event()
        pc.on("connectionstatechange", lambda: left.set() if pc.connectionState != "connected" else None)
        t_del = time.monotonic()
        res["delete_status"] = (await asyncio.get_running_loop().run_in_executor(None, http, "DELETE", node + res["location"]))[0]
        try:
            await asyncio.wait_for(closed.wait(), 5)
            res["channel_closed_ms"] = round((time.monotonic() - t_del) * 1000)
        except asyncio.TimeoutError:
            res["steps"].append("channel not closed 5 s after DELETE")
        try:
            await asyncio.wait_for(left.wait(), 5)
            res["connection_left_ms"] = round((time.monotonic() - t_del) * 1000)
        except asyncio.TimeoutError:
            res["steps"].append("connection still connected 5 s after DELETE")
        for _ in range(100):
            if pc.sctp.transport.state == "closed":
                res["dtls_closed_ms"] = round((time.monotonic() - t_del) * 1000)
                break
            await asyncio.sleep(0.01)
        res["connection_state"] = pc.connectionState
        res["ok"] = True
    except Exception as e:  # report, never hang
        res["error"] = repr(e)
    finally:
        await pc.close()
    print(json.dumps(res))
    return 0 if res["ok"] else 1


sys.exit(asyncio.run(main()))
