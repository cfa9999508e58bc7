#!/usr/bin/env bash
# Renders the sample import's report.html to a PNG with headless Chromium, for a look (and for
# the README's screenshot). Not part of `cargo test`. Needs chromium, chromium-browser or
# google-chrome on PATH (CHROME=... to name another).
#
#   scripts/report_screenshot.sh [OUT.png]        # default: docs/report.png
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/report.png}
chrome=${CHROME:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [[ -z "$chrome" ]]; then
  echo "no headless Chromium found (set CHROME=/path/to/chrome)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet -- --sandbox import customers sample-data/customers.csv --out "$work/run" >/dev/null || true
mkdir -p "$(dirname "$out")"
# No network: the page needs none, and Chromium's own background calls are turned off.
"$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --hide-scrollbars --window-size=1024,${HEIGHT:-1800} \
  --screenshot="$(realpath -m "$out")" "file://$work/run/report.html" >/dev/null 2>&1
echo "$out"
