#!/usr/bin/env bash
# Memory and time of linking customers to organizations by a CRM id (`by = "External ID"`)
# when the site holds many organizations: the map of every organization's External ID is
# read once per run (ARCHITECTURE.md: about 100 bytes an organization). Seeds a sandbox on
# 127.0.0.1 with ORGS organizations, imports CUSTOMERS customers that name them by id, and
# prints the wall time and peak RSS of the import (the run's bound is 64 MiB).
# Usage: bench/external_ids.sh [ORGS] [CUSTOMERS]   (defaults: 100000, 1000)
# Bounded: one sandbox, one import; everything stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
orgs=${1:-100000}
customers=${2:-1000}
cargo build --release --quiet
bin=target/release/csmport
work=$(mktemp -d)
trap 'kill "$sb_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$orgs" "$customers" "$work" <<'PY'
import json, sys
orgs, customers, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
seed = {
    "organizationDetailFields": {"results": [{"name": "External ID", "type": {"name": "TEXT"}}]},
    "organizations": [
        {"id": str(10001 + i), "name": f"Account {i:06d}", "details": [{"name": "External ID", "values": [f"0015g{i:013d}"]}]}
        for i in range(orgs)
    ],
}
json.dump(seed, open(f"{work}/seed.json", "w"))
with open(f"{work}/contacts.csv", "w") as f:
    f.write("Email,AccountId\n")
    for i in range(customers):
        f.write(f"c{i}@example.com,0015g{(i * 7919) % orgs:013d}\n")
open(f"{work}/map.toml", "w").write(
    'kind = "customers"\n[[column]]\nsource = "Email"\nfield = "email"\n'
    '[[column]]\nsource = "AccountId"\nfield = "organizations"\nby = "External ID"\n'
)
PY
"$bin" sandbox --addr 127.0.0.1:0 --seed "$work/seed.json" --task-latency-ms 0 > "$work/sandbox.out" &
sb_pid=$!
for _ in $(seq 600); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
echo "organizations=$orgs customers=$customers sandbox=$url"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" "$bin" --base-url "$url" --cloud-id bench \
  --access-token sandbox-token import customers "$work/contacts.csv" --mapping "$work/map.toml" \
  --out "$work/run" --rate 100000 > "$work/out.txt"
grep -E "rows|organizations found" "$work/out.txt" "$work/run/run.log" | sed 's/^[^:]*://' | head -3
