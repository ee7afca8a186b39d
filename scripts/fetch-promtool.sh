#!/usr/bin/env bash
# Fetch Debian's prometheus and prometheus-alertmanager packages into .cache/promtool: promtool (alert-rule
# checks and tests), the prometheus server (the end-to-end tests that scrape a running pipeline) and
# alertmanager with amtool (the alert path from a rule to a receiver). Nothing installed system-wide, no
# service started. Used by `make test`.
set -euo pipefail
target=".cache/promtool"
[ -x "$target/usr/bin/promtool" ] && [ -x "$target/usr/bin/prometheus" ] \
  && [ -x "$target/usr/bin/prometheus-alertmanager-here" ] && exit 0
mkdir -p "$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus prometheus-alertmanager >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get download prometheus prometheus-alertmanager >/dev/null 2>&1
fi
cd - >/dev/null
dpkg-deb -x "$work"/prometheus_*.deb "$target"
dpkg-deb -x "$work"/prometheus-alertmanager_*.deb "$target"
"$target/usr/bin/promtool" --version | head -1
"$target/usr/bin/prometheus" --version | head -1
# Debian's alertmanager reads its default notification templates from /usr/share/prometheus/alertmanager,
# a path built in; the copy below reads them from usr/share/prometheus/alertmanager/ under its working
# directory instead (the same 34 bytes), so the tests run it from .cache/promtool without installing anything.
python3 - "$target/usr/bin" <<'PY'
import sys
from pathlib import Path
folder = Path(sys.argv[1])
binary = (folder / "prometheus-alertmanager").read_bytes()
old, new = b"/usr/share/prometheus/alertmanager", b"usr/share/prometheus/alertmanager/"
assert len(old) == len(new) and binary.count(old) > 0, "unexpected alertmanager binary"
(folder / "prometheus-alertmanager-here").write_bytes(binary.replace(old, new))
(folder / "prometheus-alertmanager-here").chmod(0o755)
PY
"$target/usr/bin/prometheus-alertmanager-here" --version 2>&1 | head -1
