#!/usr/bin/env bash
# Measures toolchain/build.sh: a cold build (empty Go module cache, empty Go build
# cache, empty toolchain directory, all in a scratch directory, so nothing of the
# user's caches is touched or reused), then a warm run, each component's wall and
# CPU time (user and sys of the go command and its compilers), and the load
# average, since the machine may be shared. Builds run under build.sh's `nice`.
#
# Usage: toolchain/measure.sh [SCRATCH_DIR]
#   SCRATCH_DIR   where the caches go (default: a new temporary directory); it is
#                 removed at the end unless KEEP=1. A cold build needs about 15 GB.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
scratch=${1:-$(mktemp -d -t mlops-infra-toolchain-measure.XXXXXX)}
mkdir -p "$scratch"
export GOMODCACHE=$scratch/gomodcache GOCACHE=$scratch/gocache MLOPS_INFRA_TOOLCHAIN_DIR=$scratch/toolchain
times=$scratch/times.txt
log=$scratch/build.log
: >"$times"

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    go clean -modcache 2>/dev/null || true  # module files are read-only: rm alone cannot remove them
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

run() {
  local label=$1
  shift
  echo "$label: load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$times"
  if ! /usr/bin/time -a -o "$times" -f "$label: wall %e s, user %U s, sys %S s, max RSS %M KB" "$@" >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "$label failed (log: $log)" >&2
    KEEP=1
    exit 1
  fi
}

echo "measuring in $scratch ($(nproc) cores, $(go env GOVERSION))" | tee -a "$times"
for component in pulumi pulumi-kubernetes etcd kubernetes crds; do
  run "cold $component" bash "$here/build.sh" "$component"
done
run "warm (all built)" bash "$here/build.sh"
echo "module cache $(du -sh "$GOMODCACHE" | cut -f1), build cache $(du -sh "$GOCACHE" | cut -f1)," \
  "binaries $(du -sh "$MLOPS_INFRA_TOOLCHAIN_DIR/bin" | cut -f1)" >>"$times"
cat "$times"
