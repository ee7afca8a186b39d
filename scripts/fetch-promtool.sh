#!/usr/bin/env bash
# Fetch promtool from Debian's prometheus package into .cache/promtool (nothing installed system-wide,
# no service started). Used by `make test` for the alert-rule tests.
set -euo pipefail
target=".cache/promtool"
[ -x "$target/usr/bin/promtool" ] && exit 0
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
