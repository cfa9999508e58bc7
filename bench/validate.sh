#!/usr/bin/env bash
# Reader benchmark (not a test): `csmport validate` on generated customer files against the raw
# csv-crate ByteRecord read and calamine's streaming cell read of the same files, measured in
# the same run, with peak RSS. Targets: validate >= 0.5x raw CSV read for 1M rows, RSS <= 32 MiB
# at 100k and 1M rows, XLSX 100k rows >= 0.9x calamine's streaming read.
# Usage: bench/validate.sh [ROWS...]   (default: 100000 1000000); RUNS=N runs of each (best kept)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cargo bench --no-run --quiet --bench read_baseline 2>/dev/null
baseline=$(ls -t target/release/deps/read_baseline-* | grep -v '\.d$' | head -1)
bin=target/release/csmport
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs a baseline command and a csmport command alternately, RUNS times each (default 3; the
# machine is shared and noisy, and alternating keeps a busy spell from favouring either); prints
# for each its best wall time and its peak RSS (MiB), then csmport's last exit code. The
# commands are separated by a lone `--`.
compare() {
  python3 - "${RUNS:-3}" "$@" <<'PY'
import os, subprocess, sys, time
runs, rest = int(sys.argv[1]), sys.argv[2:]
cut = rest.index("--")
cmds = [rest[:cut], rest[cut + 1:]]
best, rss, code = [float("inf")] * 2, [0.0] * 2, 0
for _ in range(runs):
    for i, cmd in enumerate(cmds):
        t = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        best[i] = min(best[i], time.time() - t)
        rss[i] = max(rss[i], usage.ru_maxrss / 1024)
        if i == 1:
            code = os.waitstatus_to_exitcode(status)
print(f"{best[0]:.3f} {rss[0]:.1f} {best[1]:.3f} {rss[1]:.1f} {code}")
PY
}

for rows in "${@:-100000 1000000}"; do
  for n in $rows; do
    python3 bench/gen_wide.py "$n" "$work/c$n.csv" "$work/schema.json"
    size=$(du -m "$work/c$n.csv" | cut -f1)
    read -r raw_s raw_rss val_s val_rss code < <(compare "$baseline" csv "$work/c$n.csv" -- \
      "$bin" validate customers "$work/c$n.csv" --schema "$work/schema.json" --out "$work/v$n")
    rm -rf "$work/v$n"
    python3 - "$n" "$size" "$raw_s" "$val_s" "$val_rss" "$code" <<'PY'
import sys
n, size, raw, val, rss, code = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
print(f"CSV {n:>9,} rows ({size} MB): raw csv read {n/raw:>10,.0f} rows/s; validate {n/val:>10,.0f} rows/s "
      f"= {raw/val:.2f}x raw; validate peak RSS {rss} MiB; exit {code}")
PY
  done
done

n=100000
python3 bench/gen_wide.py "$n" "$work/x.csv" "$work/schema.json"
python3 bench/csv_to_xlsx.py "$work/x.csv" "$work/x.xlsx"
read -r raw_s raw_rss val_s val_rss code < <(compare "$baseline" xlsx "$work/x.xlsx" -- \
  "$bin" validate customers "$work/x.xlsx" --schema "$work/schema.json" --out "$work/vx")
python3 - "$n" "$raw_s" "$val_s" "$raw_rss" "$val_rss" "$code" <<'PY'
import sys
n, raw, val, raw_rss, rss, code = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
print(f"XLSX {n:,} rows: calamine streaming read {n/raw:,.0f} rows/s ({raw_rss} MiB); validate {n/val:,.0f} rows/s "
      f"= {raw/val:.2f}x calamine; validate peak RSS {rss} MiB; exit {code}")
PY
