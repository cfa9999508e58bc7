#!/usr/bin/env bash
# What a developer waits for (not a test): in a fresh clone with an empty target directory,
# `cargo test` built from nothing and run, then built and run again after an edit of one
# sandbox file and after an edit of one engine file. Prints build and build+test seconds.
#
# Usage: bench/rebuild.sh              (the committed HEAD)
#        REF=<commit> bench/rebuild.sh (another commit, to compare)
#        KEEP=1                        (leave the clone for a look)
#
# An edit is a new private function appended to the file: a real change of its crate, so
# cargo rebuilds that crate and everything that depends on it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
tmp=$(mktemp -d)
if [ "${KEEP:-}" != 1 ]; then trap 'rm -rf "$tmp"' EXIT; fi
git clone -q "$repo" "$tmp/csmport"
cd "$tmp/csmport"
git checkout -q "$ref"
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
cargo fetch -q --locked

secs() { date +%s.%N; }
# One measurement: build the test harnesses, then run them; prints "build total".
measure() {
  local t0 t1 t2
  t0=$(secs)
  cargo test --locked --no-run -q >"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log" >&2; exit 1; }
  t1=$(secs)
  cargo test --locked -q >"$tmp/test.log" 2>&1 || { tail -30 "$tmp/test.log" >&2; exit 1; }
  t2=$(secs)
  awk "BEGIN{printf \"%6.1f s build, %6.1f s build and test\n\", $t1 - $t0, $t2 - $t0}"
}
# The first of the given paths that exists (files moved between commits).
first() { for p in "$@"; do [ -f "$p" ] && { echo "$p"; return; }; done; echo "rebuild: none of $*" >&2; exit 2; }
edit() { printf '\n#[allow(dead_code)]\nfn rebuild_probe_%s() {}\n' "$2" >>"$1"; }

sandbox_file=$(first crates/sandbox/src/store/mod.rs src/sandbox/store/mod.rs)
engine_file=$(first src/engine/plan.rs)
echo "rebuild times of $(git rev-parse --short HEAD) (nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  %-40s %s\n' "fresh" "$(measure)"
edit "$sandbox_file" 1
printf '  %-40s %s\n' "after editing $sandbox_file" "$(measure)"
edit "$engine_file" 2
printf '  %-40s %s\n' "after editing $engine_file" "$(measure)"
