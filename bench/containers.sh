#!/usr/bin/env bash
# Benchmarks the Docker runtime against the process runtime with the same
# sample app: start-to-healthy latency of one task (median), scale 0 -> N
# healthy tasks, and the runtime's resident memory with N tasks running.
#
# usage: bench/containers.sh   (env: TASKS=50 ROUNDS=5 CUTOVER_BIN=target/debug/cutover)
# Sets up Podman (scripts/setup-podman.sh) and the test image
# (scripts/build-test-images.sh) when missing; builds `cutover` unless
# CUTOVER_BIN names a binary. Numbers are comparable as ratios within a run.
set -euo pipefail
cd "$(dirname "$0")/.."

tasks="${TASKS:-50}"
rounds="${ROUNDS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

if [ -z "${CUTOVER_BIN:-}" ]; then
  cargo build -q -p cutover
  CUTOVER_BIN="$CARGO_TARGET_DIR/debug/cutover"
fi
./scripts/setup-podman.sh
./scripts/build-test-images.sh "$CUTOVER_BIN"
cargo build -q -p cutover-docker --example start_latency
"$CARGO_TARGET_DIR/debug/examples/start_latency" \
  --cutover-bin "$CUTOVER_BIN" --tasks "$tasks" --rounds "$rounds"
