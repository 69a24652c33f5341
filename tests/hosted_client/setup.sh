#!/usr/bin/env bash
# Machine set-up for tests/serve/test_hosted_client.py, run by .ci/run on a fresh machine: HAProxy (the hosted
# front), node and the client's locked npm packages, and the hosts entry that gives the hosted model the name
# Runway's client insists on (tests/hosted_client/front.py says why). Safe to run again. apt-get and /etc/hosts
# need root: run as root, or as a user with sudo (SUDO, as .ci/run sets it; npm ci then runs as that user).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${SUDO+set}" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
fi
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
npm ci --no-audit --no-fund --loglevel=error
line="$(cd ../.. && python3 -m tests.hosted_client.front)"
grep -qxF "$line" /etc/hosts || echo "$line" | $SUDO tee -a /etc/hosts >/dev/null
