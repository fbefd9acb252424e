#!/usr/bin/env bash
# Runs the whole test suite. On a machine where we are root it first installs the
# third-party peers the interop tests talk to (Debian packages); elsewhere those
# tests say SKIPPED unless SOFTBUS_REQUIRE_INTEROP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v coap-client-notls >/dev/null 2>&1 || need+=(libcoap3-bin)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/bin/chromium ] || need+=(chromium)
# WebDriver for the dashboard's browser test (same version as chromium).
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# systemd-analyze checks contrib/softbus.service.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The C API's tests build C programs (one under AddressSanitizer).
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# A third-party WHIP publisher over GStreamer's webrtcbin (its test sources, VP8, Opus).
[ -x /usr/bin/whip-client ] || need+=(simple-whip-client)
# H264 for it (x264enc).
dpkg -s gstreamer1.0-plugins-ugly >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-ugly)
# TURN and home routers for the NAT tests: coturn's turnserver, nftables.
command -v turnserver >/dev/null 2>&1 || need+=(coturn)
command -v nft >/dev/null 2>&1 || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing test peers: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "not root: interop tests needing ${need[*]} will be skipped" >&2
  fi
fi

# aiortc (PyPI) for the WebRTC interop test and Selenium for the dashboard's,
# in a venv under target/.
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiortc, selenium' 2>/dev/null; then
  if python3 -m venv "$venv" >/dev/null 2>&1 && "$venv/bin/pip" install -q aiortc selenium >/dev/null 2>&1; then
    echo "installed aiortc and selenium into $venv" >&2
  else
    echo "could not install aiortc and selenium: their interop tests will be skipped" >&2
  fi
fi

cargo test --workspace --locked "$@"
