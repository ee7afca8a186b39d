#!/usr/bin/env bash
# Fetch Debian's chromium and chromium-driver into .cache/chromium for the browser tests of the status page,
# with the shared libraries they need that this machine lacks (found through the packages' Depends, the
# ones not installed here). Nothing installed system-wide, no service started. Used by `make test`.
# The tests run .cache/chromium/usr/lib/chromium/chromium and .../chromedriver with
# LD_LIBRARY_PATH=.cache/chromium/usr/lib/x86_64-linux-gnu:.../pulseaudio (tests/e2e/browser.py).
set -euo pipefail
target=".cache/chromium"
[ -f "$target/.complete" ] && exit 0
rm -rf "$target"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# chromium, its common files, the driver, and the library packages of their Depends (recursively) that are
# not installed. Desktop toolkits (GTK) are alternatives a headless browser does not load.
packages() {
  local queue="chromium chromium-common chromium-driver" seen="" p d
  while [ -n "$queue" ]; do
    set -- $queue; p=$1; shift; queue="$*"
    case " $seen " in *" $p "*) continue;; esac
    seen="$seen $p"
    for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
                 --no-enhances "$p" | awk '$1 ~ /^\|?Depends:$/ && $2 !~ /^</ {print $2}'); do
      case "$d" in libgtk-*) continue;; lib*) ;; *) continue;; esac
      installed "$d" || queue="$queue $d"
    done
  done
  echo $seen
}

command -v apt-get >/dev/null || { echo "apt-get not found: the browser tests need Debian's chromium (see README)" >&2; exit 1; }
if ! apt-cache show chromium >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
fi
wanted=$(packages)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download $wanted >/dev/null 2>&1) || {
  apt-get update -qq >/dev/null
  (cd "$work" && apt-get download $wanted >/dev/null)
}
mkdir -p "$target"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$target"; done
export LD_LIBRARY_PATH="$PWD/$target/usr/lib/x86_64-linux-gnu:$PWD/$target/usr/lib/x86_64-linux-gnu/pulseaudio"
missing=$(ldd "$target/usr/lib/chromium/chromium" "$target/usr/lib/chromium/chromedriver" | grep "not found" || true)
if [ -n "$missing" ]; then
  echo "chromium still misses libraries after fetching $wanted:" >&2
  echo "$missing" >&2
  exit 1
fi
"$target/usr/lib/chromium/chromedriver" --version | head -1
touch "$target/.complete"
echo "chromium with $(echo $wanted | wc -w) package(s) in $target"
