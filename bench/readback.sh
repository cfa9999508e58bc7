#!/usr/bin/env bash
# Read-back benchmark (not a test): a service project that already has EXISTING customers, and
# an import of NEW customers known only by email with --verify --service-desk 1 at the default
# --rate 10, so every new row is read back after its task. Prints the wall time, the service
# project's listing pages read and the lookups by email (issue 39 item 3: the listing is read
# once per run, not once per chunk).
# Usage: bench/readback.sh [EXISTING] [NEW]   (default 5000 1500); BIN=path to compare a build;
# RATE=N for another --rate (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
existing=${1:-5000}
new=${2:-1500}
cargo build --release --quiet
bin=${BIN:-$PWD/target/release/csmport}
work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 bench/gen_customers.py "$existing" "$work/old.csv" old > /dev/null
python3 bench/gen_customers.py "$new" "$work/new.csv" new > /dev/null
"$bin" sandbox --addr 127.0.0.1:0 --sample-data --task-latency-ms 200 > "$work/sandbox.out" 2>/dev/null &
sb_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
site=(--base-url "$url" --cloud-id bench --access-token sandbox-token)
"$bin" "${site[@]}" --rate 1000 import customers "$work/old.csv" --out "$work/seed" > /dev/null 2>&1
before=$(curl -s "$url/_sandbox/requests?last=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
start=$(date +%s.%N)
"$bin" "${site[@]}" --rate "${RATE:-10}" import customers "$work/new.csv" --out "$work/run" \
  --verify --service-desk 1 \
  > /dev/null 2>&1 || true
end=$(date +%s.%N)
curl -s "$url/_sandbox/requests" > "$work/requests.json"
python3 - "$before" "$start" "$end" "$work/requests.json" "$work/run/summary.json" <<'PY'
import json, sys
before, wall = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2])
log = json.load(open(sys.argv[4]))
reqs = log["requests"][before - (log["total"] - len(log["requests"])):]
desk = [r for r in reqs if "/servicedesk/1/customer" in r["path"]]
lookups = sum(1 for r in desk if "query=" in (r.get("query") or ""))
s = json.load(open(sys.argv[5]))
print(f"{wall:.1f} s; {len(reqs)} requests; listing pages {len(desk) - lookups}, lookups {lookups}; "
      f"verified {s.get('verified')}; exit {s['exit_code']}")
PY
