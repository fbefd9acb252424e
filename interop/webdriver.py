#!/usr/bin/env python3
"""Drives headless Chromium through Selenium and Debian's chromedriver, one
command per line, so a test can interleave browser steps with its own.

usage: webdriver.py   (then JSON lines on stdin, one JSON reply per line on stdout)

Commands ({"op": ...}):
  get url                       open a page
  wait css [contains] [timeout] wait until the element exists (and its text has `contains`)
  text css                      the element's text
  click css                     click it
  type css text                 clear the input and type into it
  js script                     run a script; its return value
  accept                        accept the open alert or confirm
  size w h                      resize the window
  shot path                     full-page PNG to path
  quit
Replies: {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
Run it inside the test's network namespace: Chromium then gathers loopback
candidates only (with --allow-loopback-in-peer-connection)."""
import base64, json, os, shutil, sys, tempfile, time

os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By

profile = tempfile.mkdtemp(prefix="softbus-webdriver-")
opts = webdriver.ChromeOptions()
opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--allow-loopback-in-peer-connection", "--use-fake-ui-for-media-stream",
          "--use-fake-device-for-media-stream", "--window-size=1280,900", "--lang=en-US",
          f"--user-data-dir={profile}"]:
    opts.add_argument(a)
driver = webdriver.Chrome(options=opts, service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")))
driver.set_page_load_timeout(20)
driver.set_script_timeout(20)


def find(css):
    return driver.find_element(By.CSS_SELECTOR, css)


def wait(css, contains=None, timeout=20):
    end = time.monotonic() + min(float(timeout), 60)
    last = None
    while time.monotonic() < end:
        try:
            t = find(css).text
            if contains is None or contains in t:
                return t
            last = t
        except Exception as e:  # not there yet
            last = type(e).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{css} with {contains!r} not seen in {timeout} s (last: {last!r})")


def retried(act):
    """`act` again while the page swaps the element out (at most 5 s)."""
    end = time.monotonic() + 5
    while True:
        try:
            return act()
        except (StaleElementReferenceException, ElementClickInterceptedException):
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def shot(path):
    # The whole page: the viewport made as tall as the page (at most 6000 px)
    # for the capture, then put back (capturing beyond the viewport leaves
    # parts unpainted in headless Chromium).
    size = driver.get_window_size()
    inner = driver.execute_script("return window.innerHeight")
    tall = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(6000, size["height"] - inner + tall))
    time.sleep(0.3)
    png = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    driver.set_window_size(size["width"], size["height"])
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(png["data"]))
    return path


def run(c):
    op = c["op"]
    if op == "get":
        return driver.get(c["url"])
    if op == "wait":
        return wait(c["css"], c.get("contains"), c.get("timeout", 20))
    if op == "text":
        return retried(lambda: find(c["css"]).text)
    if op == "click":
        return retried(lambda: find(c["css"]).click())
    if op == "type":
        def typed():
            e = find(c["css"])
            e.clear()
            e.send_keys(c["text"])
        return retried(typed)
    if op == "js":
        return driver.execute_script(c["script"])
    if op == "accept":
        return driver.switch_to.alert.accept()
    if op == "size":
        return driver.set_window_size(c["w"], c["h"])
    if op == "shot":
        return shot(c["path"])
    raise ValueError(f"unknown op {op!r}")


try:
    print(json.dumps({"ok": True, "value": "ready"}), flush=True)
    for line in sys.stdin:
        c = json.loads(line)
        if c.get("op") == "quit":
            break
        try:
            print(json.dumps({"ok": True, "value": run(c)}), flush=True)
        except Exception as e:
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
finally:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
