#!/usr/bin/env bash
# Install speechprobe and everything it needs on a fresh Debian machine (Python 3.11, root or sudo).
# Usage: bash scripts/setup.sh          # runtime (demo)
#        bash scripts/setup.sh test     # runtime + test tools (Chromium for the report test)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PKGS="espeak-ng libsndfile1 ffmpeg"
[ "${1:-}" = "test" ] && PKGS="$PKGS chromium"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PY="${PYTHON:-python3}"
export PIP_BREAK_SYSTEM_PACKAGES=1  # Debian's own python3 marks itself externally managed (PEP 668)
# The CPU build of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
"$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
EXTRAS="speaker"; [ "${1:-}" = "test" ] && EXTRAS="speaker,test,ray"
"$PY" -m pip install -q --disable-pip-version-check -e ".[${EXTRAS}]"
