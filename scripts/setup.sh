#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Linux machine with Python 3.11:
# system libraries (apt, when run as root), then a virtual environment in .venv with the
# project installed in editable mode. Idempotent: a second run reuses what the first installed.
set -euo pipefail
cd "$(dirname "$0")/.."

# the app's audio and the tests' speech, then the window tests' virtual display: Xvfb, xdotool (keys),
# xwd (screenshot, in x11-apps), and a window manager with wmctrl to close a window as a desktop does;
# then GStreamer for --gst (its Python bindings, PyGObject, build against libgirepository and cairo) and
# the RTSP server the loopback test serves from
APT_PACKAGES=(libportaudio2 pulseaudio libasound2-plugins espeak-ng sox
              xvfb xdotool x11-apps matchbox-window-manager wmctrl
              gstreamer1.0-plugins-base gstreamer1.0-plugins-good gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
              gir1.2-gst-rtsp-server-1.0 libgirepository1.0-dev libcairo2-dev pkg-config)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages (${missing[*]}); install them with: sudo apt-get install ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv

# Reinstall only when pyproject.toml changed since the last successful install.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  echo "setup: installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ready (.venv)"
