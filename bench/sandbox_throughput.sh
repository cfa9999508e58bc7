#!/usr/bin/env bash
# Sandbox throughput on loopback: small GETs/s and bulk submissions (100 items)/s, with client
# and server in one process on this machine. Targets: >= 5,000 GETs/s, >= 500 submissions/s.
# Usage: bench/sandbox_throughput.sh [SECONDS_PER_PHASE] [CONCURRENCY]   (defaults: 5, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench sandbox_load -- "${1:-5}" "${2:-16}"
