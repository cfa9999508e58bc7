#!/usr/bin/env bash
# A new user's first impression, timed (not a test): clones this repository into a temporary
# folder with an empty target directory and runs the README's two Quick start commands as they
# are written there, one after the other, printing how long each took and the total.
#
# Usage: bench/fresh_clone.sh            (the committed HEAD, as a user would clone it)
#        REF=HEAD~3 bench/fresh_clone.sh (another commit, to compare)
#        KEEP=1                          (leave the clone and its target/ for a look)
#
# Crates come from cargo's local registry cache when it has them: the figure is build time,
# not download time. The first command's exit code 1 is expected (sample rows fail on purpose).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=${REF:-HEAD}
tmp=$(mktemp -d)
if [ "${KEEP:-}" != 1 ]; then trap 'rm -rf "$tmp"' EXIT; fi
git clone -q "$repo" "$tmp/csmport"
cd "$tmp/csmport"
git checkout -q "$ref"
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

# The two commands are the first two lines of the Quick start's sh block.
mapfile -t cmds < <(awk '/^## Quick start/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{exit} b&&NF{print}' README.md)
if [ "${#cmds[@]}" -ne 2 ]; then
  echo "fresh_clone: expected two commands in README.md's Quick start, found ${#cmds[@]}" >&2
  exit 2
fi

# Fetch first, so a cold registry cache does not count as build time.
cargo fetch -q --locked

secs() { date +%s.%N; }
run() {
  local cmd=$1 log=$2 t0 t1 code
  t0=$(secs)
  set +e
  bash -c "$cmd" >"$log" 2>&1
  code=$?
  set -e
  t1=$(secs)
  printf '%s %s\n' "$(awk "BEGIN{print $t1 - $t0}")" "$code"
}

echo "fresh clone of $(git rev-parse --short HEAD) in $tmp (nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg))"
read -r t1 c1 < <(run "${cmds[0]}" "$tmp/first.log")
printf '  %-70s %7.1f s (exit %s)\n' "${cmds[0]}" "$t1" "$c1"
read -r t2 c2 < <(run "${cmds[1]}" "$tmp/second.log")
printf '  %-70s %7.1f s (exit %s)\n' "${cmds[1]}" "$t2" "$c2"
printf '  %-70s %7.1f s\n' "both" "$(awk "BEGIN{print $t1 + $t2}")"
if [ "$c1" -gt 1 ] || [ "$c2" -ne 0 ]; then
  echo "fresh_clone: a command failed; logs in $tmp (KEEP=1 keeps them)" >&2
  tail -20 "$tmp/first.log" "$tmp/second.log" >&2
  exit 1
fi
bin=$(ls target/*/csmport 2>/dev/null | head -1)
[ -n "$bin" ] && echo "  binary $bin: $(du -h "$bin" | cut -f1)"
