#!/usr/bin/env bash
# Fetch Debian's prometheus package into .cache/promtool: promtool (alert-rule checks and tests) and the
# prometheus server (the end-to-end test that scrapes a running pipeline). Nothing installed system-wide,
# no service started. Used by `make test`.
set -euo pipefail
target=".cache/promtool"
[ -x "$target/usr/bin/promtool" ] && [ -x "$target/usr/bin/prometheus" ] && exit 0
mkdir -p "$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get download prometheus >/dev/null 2>&1
fi
cd - >/dev/null
dpkg-deb -x "$work"/prometheus_*.deb "$target"
"$target/usr/bin/promtool" --version | head -1
"$target/usr/bin/prometheus" --version | head -1
