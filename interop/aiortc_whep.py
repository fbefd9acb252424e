#!/usr/bin/env python3
"""aiortc (PyPI) as a WHEP viewer of a softbus node's stream: POST /whep/STREAM with
recvonly audio and video, decode 30 video frames and 25 audio frames, DELETE. Prints
a JSON result (frames, size, codec); exit 0 if ok.

usage: aiortc_whep.py NODE_URL STREAM   ($NODE_TOKEN: the node's web token)"""
import asyncio, json, os, sys, time, urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

# aioice never gathers 127.0.0.1; loopback-only harnesses must say so.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

node, stream = sys.argv[1], sys.argv[2]


def http(method, url, body=None, ctype=None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    req.add_header("Authorization", "Bearer " + os.environ.get("NODE_TOKEN", ""))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


async def frames(track, n, res, key):
    """Receives n decoded frames of track; records the count and the video size."""
    for _ in range(n):
        f = await track.recv()
        res[key] = res.get(key, 0) + 1
        if track.kind == "video":
            res["width"], res["height"] = f.width, f.height


async def main():
    res = {"ok": False}
    pc = RTCPeerConnection()
    tasks = []
    try:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        pc.on("track", lambda t: tasks.append(asyncio.ensure_future(
            frames(t, 30 if t.kind == "video" else 25, res, t.kind + "_frames"))))
        t0 = time.monotonic()
        await pc.setLocalDescription(await pc.createOffer())
        loop = asyncio.get_running_loop()
        status, headers, answer = await loop.run_in_executor(
            None, http, "POST", f"{node}/whep/{stream}", pc.localDescription.sdp.encode(), "application/sdp")
        res["status"], res["location"] = status, headers.get("Location")
        if status != 201:
            raise RuntimeError(f"WHEP refused: {status} {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for _ in range(100):
            if len(tasks) == 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
        res["decode_ms"] = round((time.monotonic() - t0) * 1000)
        status, _, _ = await loop.run_in_executor(None, http, "DELETE", node + res["location"])
        res["delete_status"] = status
        res["ok"] = res.get("video_frames") == 30 and res.get("audio_frames") == 25
    except Exception as e:
        res["error"] = repr(e)
    finally:
        for t in tasks:
            t.cancel()
        await pc.close()
    print(json.dumps(res))
    return res["ok"]


sys.exit(0 if asyncio.run(main()) else 1)
