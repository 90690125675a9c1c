#!/usr/bin/env bash
# Benchmarks the image scanner (cutover-scan) offline:
#   1. generates a Debian-like image (4 gzip layers, IMAGE_MB=200 MB of tar content; the base holds
#      etc/os-release and a dpkg status of 500 packages, the rest is filler files, a tenth of them
#      executables that the Go build-info reader streams through) and 100k synthetic OSV records
#      (50k Debian:12 in debian.zip, 50k npm/PyPI in more.zip), imports them and saves the
#      advisory database, timing each step;
#   2. in a fresh process: loads the database (time, resident memory before and after), scans the
#      image and matches it (time; goal: at most 2 s for 200 MB), RUNS times.
#
# usage: bench/scan.sh            (env: IMAGE_MB=200 RUNS=3 CARGO_TARGET_DIR=...)
# Trivy and Grype, the usual peers, are not installable on these machines (no package in the
# registries reached here), so there is no side-by-side run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
work=$(mktemp -d /tmp/cutover-bench-scan.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

cd "$root"
cargo build --release -q -p cutover-scan --example scan_bench
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/scan_bench"

echo "== generate and import"
"$bin" gen "$work"
for i in $(seq 1 "$runs"); do
  echo "== run $i"
  "$bin" run "$work"
done
