#!/usr/bin/env bash
# The CLI's delay from a change to printing it (issue 13 item 3), on
# 127.0.0.1: a server with a 2-task process-runtime service deploys it
# RUNS times, blue/green with a 20% canary of 2 s, each followed by
# `CLI deploy web --wait`. Every history line the CLI prints carries its
# event's time (`HH:MM:SS.mmm`); the delay is the line's arrival on the
# CLI's stdout minus that time, for events recorded after the CLI printed
# its first line (earlier ones were history when it connected).
#
# usage: bench/cli-feed.sh
#   env: CUTOVER_BIN (server; default: cargo build -p cutover), CLI (the
#        client binary measured; default CUTOVER_BIN), RUNS (3).
# Goal: at most the server's 100 ms feed period (a polling CLI: up to its
# poll period, 200 ms, plus the request).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
esac
runs=${RUNS:-3}
if [[ -z "${CUTOVER_BIN:-}" ]]; then
  cargo build -p cutover >&2
  CUTOVER_BIN="${CARGO_TARGET_DIR:-target}/debug/cutover"
fi
CUTOVER_BIN=$(realpath "$CUTOVER_BIN")
cli=$(realpath "${CLI:-$CUTOVER_BIN}")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The data plane and the task shims the server started outlive it by design.
  if [[ -f "$work/data/proxy/proxy.pid" ]]; then
    kill "$(head -c 20 "$work/data/proxy/proxy.pid" | tr -dc 0-9)" 2>/dev/null || true
  fi
  local f pid
  for f in "$work"/data/tasks/*/shim.pid "$work"/data/tasks/*/task.pid; do
    [[ -f "$f" ]] || continue
    pid=$(grep -o '"pid": *[0-9]*' "$f" | tr -dc 0-9)
    if [[ -n "$pid" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free_port)
export CUTOVER_SERVER="http://127.0.0.1:$port"
# The service's command is `cutover sample-app`.
mkdir -p "$work/bin" && ln -s "$CUTOVER_BIN" "$work/bin/cutover"
export PATH="$work/bin:$PATH"
"$CUTOVER_BIN" server --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pids+=($!)
until "$cli" services ls >/dev/null 2>&1; do sleep 0.1; done
cat >"$work/stack.yaml" <<EOF
services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:$(free_port)
      testListener: 127.0.0.1:$(free_port)
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
      deregistrationDelaySeconds: 0
    deployment:
      type: BLUE_GREEN
      config: Canary20Percent2Seconds
      terminationWaitSeconds: 0
deploymentConfigs:
  Canary20Percent2Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 2}}
EOF
cat >"$work/taskdef.json" <<'EOF'
{"family": "web", "containerDefinitions": [{"name": "web", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "v1"}],
  "portMappings": [{"containerPort": 8080}],
  "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}]}
EOF
(cd "$work" && "$cli" apply -f stack.yaml >/dev/null)
for i in $(seq 1 "$runs"); do
  "$cli" deploy web --env "web:APP_VERSION=v$((i + 1))" --wait | python3 -c '
import sys, time
first = None
for line in sys.stdin:
    now = time.time()
    if first is None:
        first = now
    parts = line.split()
    if not parts or parts[0].count(":") != 2:
        continue
    h, m, s = parts[0].split(":")
    day = now - now % 86400
    at = day + int(h) * 3600 + int(m) * 60 + float(s)
    if at > now + 43200:
        at -= 86400
    if at > first:
        print(round((now - at) * 1000))
' >>"$work/delays"
done
python3 - "$work/delays" "$cli" <<'PY'
import sys
d = sorted(int(x) for x in open(sys.argv[1]).read().split())
if not d:
    sys.exit("no event was printed after the CLI started")
q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
print(f"{sys.argv[2]}: {len(d)} events, delay from the event to the CLI's line: "
      f"median {q(0.5)} ms, p90 {q(0.9)} ms, max {d[-1]} ms")
PY
