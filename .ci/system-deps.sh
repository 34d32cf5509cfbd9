#!/usr/bin/env bash
# Debian packages the test suite needs beyond the venv: GStreamer's RTSP server, which
# tests/servers/rtsp_server.py drives with Debian's /usr/bin/python3 (python3-gi does not
# import inside a venv), and Chromium, which Playwright drives in the console tests (no
# browser is ever downloaded). Idempotent: installs only what is missing, updates apt lists only
# when it has to install something.
set -euo pipefail

packages=(
    python3-gi
    python3-gst-1.0
    gir1.2-gst-rtsp-server-1.0
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly
    chromium
    fonts-dejavu-core
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi

echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Install straight away when the lists are fresh enough; refresh them only on failure.
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
