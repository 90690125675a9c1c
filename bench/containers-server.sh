#!/usr/bin/env bash
# `cutover server` with N containers (runtime: docker): time from apply to N
# healthy containers, then the server's resident memory and idle CPU.
#
#   bench/containers-server.sh          # N=50, release build
#
# Needs an engine and the cutover-sample:test image (scripts/setup-podman.sh,
# scripts/build-test-images.sh). Loopback only; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-50}"
if [ -z "${CUTOVER_BIN:-}" ]; then
  cargo build --release --locked -p cutover >/dev/null 2>&1 || cargo build --release --locked -p cutover
fi
BIN="${CUTOVER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/cutover}"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
export CUTOVER_SERVER="http://127.0.0.1:$PORT"
SP=""
cleanup() {
  "$BIN" services delete many >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do
    [ "$("$BIN" tasks ls -o json 2>/dev/null | python3 -c 'import json,sys;print(len(json.load(sys.stdin)["tasks"]))' 2>/dev/null || echo 0)" = 0 ] && break
    sleep 1
  done
  [ -n "$SP" ] && kill "$SP" 2>/dev/null || true
  [ -f "$WORK/data/proxy/proxy.pid" ] && kill "$(cat "$WORK/data/proxy/proxy.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/taskdef.json" <<'JSON'
{"family": "many", "containerDefinitions": [{"name": "app", "image": "cutover-sample:test", "memory": 64,
  "environment": [{"name": "APP_VERSION", "value": "v1"}], "portMappings": [{"containerPort": 8080}], "stopTimeout": 2,
  "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1:$PORT/health || exit 1"], "interval": 5, "timeout": 2, "retries": 2}}]}
JSON
printf 'services:\n  many:\n    runtime: docker\n    desiredCount: %s\n    taskDefinition: ./taskdef.json\n' "$N" >"$WORK/stack.yaml"
"$BIN" server --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SP=$!
for _ in $(seq 1 100); do curl -fs "$CUTOVER_SERVER/v1/status" >/dev/null && break; sleep 0.1; done
grep 'container engine connected' "$WORK/server.log" | sed 's/.*INFO[^ ]* *//' || { echo "no container engine (see $WORK/server.log)" >&2; exit 1; }
t0=$(date +%s%N)
"$BIN" apply -f "$WORK/stack.yaml" >/dev/null
healthy=0
for _ in $(seq 1 600); do
  healthy=$("$BIN" services ls -o json | python3 -c 'import json,sys;print(json.load(sys.stdin)["services"][0]["healthyCount"])')
  [ "$healthy" = "$N" ] && break
  sleep 0.2
done
t1=$(date +%s%N)
echo "apply -> $healthy/$N containers healthy: $(( (t1 - t0) / 1000000 )) ms"
sleep 10
c1=$(awk '{print $14+$15}' "/proc/$SP/stat"); sleep 10; c2=$(awk '{print $14+$15}' "/proc/$SP/stat")
echo "cutover server with $N containers: RSS $(( $(awk '/VmRSS/{print $2}' "/proc/$SP/status") / 1024 )) MiB, idle CPU $(( (c2 - c1) * 10 )) ms per 10 s"
