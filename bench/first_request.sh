#!/usr/bin/env bash
# Time to first request (not a test): starts an import of ROWS customers against a sandbox
# with --task-latency-ms 0 and reports when the sandbox logged the import's first bulk POST,
# measured from the client's start; then, unless STOP_AFTER_FIRST=0, stops the import (a
# whole 1,000,000-row import takes minutes). Peak RSS is read from /proc (VmHWM) as the import
# runs: the figure for the whole run when it runs to the end.
# Usage: bench/first_request.sh [ROWS]   (default 1000000); STOP_AFTER_FIRST=0 to run it all.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
cargo build --release --quiet
bin=$PWD/target/release/csmport
work=$(mktemp -d)
sb_pid=
trap '[ -n "$sb_pid" ] && kill "$sb_pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 bench/gen_customers.py "$rows" "$work/c.csv" > /dev/null
"$bin" sandbox --addr 127.0.0.1:0 --sample-data --task-latency-ms 0 --max-tasks 5 \
  > "$work/sandbox.out" 2>/dev/null &
sb_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sandbox.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/sandbox.out")
python3 - "$bin" "$url" "$work" "${STOP_AFTER_FIRST:-1}" <<'PY'
import json, subprocess, sys, time, urllib.request
bin_, url, work, stop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
def posts():
    with urllib.request.urlopen(url + "/_sandbox/requests") as r:
        return sum(1 for q in json.load(r)["requests"] if q["method"] == "POST")
before = posts()
start = time.monotonic()
p = subprocess.Popen([bin_, "--base-url", url, "--cloud-id", "bench", "--access-token",
                      "sandbox-token", "import", "customers", f"{work}/c.csv", "--out",
                      f"{work}/run", "--rate", "100000"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
first, hwm = None, 0
deadline = start + 1800
while p.poll() is None and time.monotonic() < deadline:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = max(hwm, int(line.split()[1]))
    except OSError:
        pass
    if first is None and posts() > before:
        first = time.monotonic() - start
        if stop:
            time.sleep(2)
            p.terminate()
    time.sleep(0.01)
if p.poll() is None:
    p.kill()
p.wait()
wall = time.monotonic() - start
print(f"first bulk request {first * 1000:.0f} ms after start" if first is not None
      else "no bulk request seen")
print(f"peak RSS {hwm / 1024:.1f} MiB over {wall:.1f} s ({'stopped 2 s after the first request' if stop else 'whole run'})")
PY
