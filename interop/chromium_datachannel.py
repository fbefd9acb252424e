#!/usr/bin/env python3
"""Runs datachannel.html (or the page $PAGE, with $PAGE_QUERY added to its query)
in headless Chromium against a softbus node.

usage: chromium_datachannel.py NODE_URL [LABEL]
Serves this folder on 127.0.0.1 (port $PAGE_PORT; the node must allow that origin
with --web-origin; $NODE_TOKEN is the node's web token, sent as Bearer), starts Debian's chromium with the flags that make it
gather loopback candidates, waits (at most 60 s) for the page to POST its result, stops
the browser (its own process group only) and prints the result as JSON.
Exit 0 when the page reports ok."""
import http.server, json, os, shutil, signal, subprocess, sys, tempfile, threading

HERE = os.path.dirname(os.path.abspath(__file__))
node = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else "echo"
result, done = {}, threading.Event()


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=HERE, **kw)

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        result.update(json.loads(body or b"{}"))
        self.send_response(204)
        self.end_headers()
        done.set()


# The node lets only known origins call it (CORS): PAGE_PORT fixes this page's.
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PAGE_PORT", "0"))), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
token = os.environ.get("NODE_TOKEN", "")
sizes = os.environ.get("PAGE_SIZES", "1,16384,65536")
page = os.environ.get("PAGE", "datachannel.html")
extra = os.environ.get("PAGE_QUERY", "")
url = f"http://127.0.0.1:{srv.server_port}/{page}?node={node}&label={label}&token={token}&sizes={sizes}&{extra}"
profile = tempfile.mkdtemp(prefix="softbus-chromium-")
cmd = [os.environ.get("CHROMIUM", "/usr/bin/chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
       "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
       f"--user-data-dir={profile}", url]
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
reported = done.wait(int(os.environ.get("PAGE_TIMEOUT", "60")))
try:
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(10)
except Exception:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except Exception:
        pass
srv.shutdown()
shutil.rmtree(profile, ignore_errors=True)
result["reported"] = reported
print(json.dumps(result))
sys.exit(0 if reported and result.get("ok") else 1)
