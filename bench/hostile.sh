#!/usr/bin/env bash
# Memory benchmark (not a test): peak RSS, time, exit code and first message of `csmport
# validate` (offline, --schema) and of an import into the in-process sandbox, on hostile files
# generated here at the sizes users have met: a 1.9 GB and a 3 GB cell (the second in a ZIP64
# archive), 3 GB of whitespace in a sheet, a 1.9 GB shared string, shared strings past the
# table budget, shared strings announcing 900 billion strings, an ODS of under 1 KB repeating a row of 1,000 cells a million times, a 600 MB
# CSV field and a CSV of 100,000 columns. Target: peak RSS <= 64 MiB for
# every one, every run ending with a report or a clear file error (never an abort).
# Then answers from a hostile site (bench/hostile_server.py on 127.0.0.1): a 2 GiB body with
# its length, a 2 GiB body ending with the connection, an endless chunked body, each to an
# export and to an import. Target: peak RSS <= 64 MiB, a clear error with exit 3, rows open.
# Usage: bench/hostile.sh [CASE...]   (default: all); SCALE=0.1 for a quick run at a tenth.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/csmport
schema=$PWD/sample-data/customer-detail-fields.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
scale=${SCALE:-1}

# name, generator case, size (bytes, before SCALE), file extension
cases=(
  "cell-1.9GB cell 1900000000 xlsx"
  "cell-3GB-zip64 cell 3000000000 xlsx"
  "whitespace-3GB whitespace 3000000000 xlsx"
  "shared-string-1.9GB strings 1900000000 xlsx"
  "shared-strings-many manystrings 200000000 xlsx"
  "shared-strings-announced-900G announced 900000000000 xlsx"
  "ods-row-repeated-1M odsrepeat 1000000 ods"
  "csv-field-600MB csvfield 600000000 csv"
  "csv-100k-columns csvcolumns 100000 csv"
)
want=("$@")

printf '%-36s %6s %8s %8s %5s  %s\n' "case" "file" "time" "peak RSS" "exit" "message"
for c in "${cases[@]}"; do
  read -r name gen size ext <<<"$c"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  if [ "$gen" != csvcolumns ] && [ "$gen" != odsrepeat ] && [ "$gen" != announced ]; then
    size=$(python3 -c "print(int($size * $scale))")
  fi
  f="$work/$name.$ext"
  python3 bench/gen_hostile.py "$gen" "$size" "$f"
  fsize=$(du -h "$f" | cut -f1)
  for mode in validate import; do
    if [ "$mode" = validate ]; then
      cmd=("$bin" validate customers "$f" --schema "$schema" --out "$work/run-$name-$mode")
    else
      cmd=("$bin" --sandbox import customers "$f" --out "$work/run-$name-$mode")
    fi
    python3 - "$name ($mode)" "$fsize" "${cmd[@]}" <<'PY'
import csv, glob, os, subprocess, sys, time
name, fsize, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
t = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
_, status, usage = os.wait4(p.pid, 0)
out, err = p.stdout.read().decode(errors="replace"), p.stderr.read().decode(errors="replace")
secs = time.time() - t
code = os.waitstatus_to_exitcode(status)
rss = usage.ru_maxrss / 1024
msg = ""
for line in err.splitlines():
    if "error:" in line:
        msg = line.split("error:", 1)[1].strip()
run = cmd[cmd.index("--out") + 1]
report = os.path.join(run, "failures.csv")
if not msg and os.path.exists(report):
    with open(report, newline="") as f:
        rows = list(csv.reader(f))
    msg = rows[1][rows[0].index("_error")] if len(rows) > 1 else "no failed rows"
    msg += f" [failures.csv {os.path.getsize(report)} bytes]"
verdict = "ok" if rss <= 64 and code in (0, 1, 2) else "OVER"
print(f"{name:<36} {fsize:>6} {secs:>7.1f}s {rss:>6.1f}Mi {code:>5}  {verdict}: {msg[:100]}")
PY
    rm -rf "$work/run-$name-$mode"
  done
  rm -f "$f"
done

# A site whose every answer is huge or endless.
answers=(
  "answer-2GiB-length length"
  "answer-2GiB-close close"
  "answer-endless-chunked chunked"
)
printf 'email,displayName\na@x.example,A\nb@x.example,B\n' >"$work/two.csv"
for c in "${answers[@]}"; do
  read -r name mode <<<"$c"
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then continue; fi
  exec 3> >(python3 bench/hostile_server.py "$mode" >"$work/port" 2>/dev/null)
  for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
  url="http://127.0.0.1:$(cat "$work/port")"
  for job in export import; do
    if [ "$job" = export ]; then
      cmd=("$bin" --base-url "$url" --cloud-id c --access-token t export organizations --out "$work/o.csv")
    else
      cmd=("$bin" --base-url "$url" --cloud-id c --access-token t import customers "$work/two.csv" --out "$work/run-$name")
    fi
    python3 - "$name ($job)" "${cmd[@]}" <<'PY'
import os, subprocess, sys, time
name, cmd = sys.argv[1], sys.argv[2:]
t = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
_, status, usage = os.wait4(p.pid, 0)
err = p.stderr.read().decode(errors="replace")
code = os.waitstatus_to_exitcode(status)
rss = usage.ru_maxrss / 1024
msg = next((l.split("error:", 1)[1].strip() for l in err.splitlines() if "error:" in l), err.strip()[-100:])
verdict = "ok" if rss <= 64 and code == 3 else "OVER"
print(f"{name:<36} {'-':>6} {time.time() - t:>7.1f}s {rss:>6.1f}Mi {code:>5}  {verdict}: {msg[:100]}")
PY
    rm -rf "$work/run-$name" "$work/o.csv"
  done
  exec 3>&-
  rm -f "$work/port"
done
