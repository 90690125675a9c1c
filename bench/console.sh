#!/usr/bin/env bash
# The web console (issue 13), in three numbers:
#  1. the overview page (`GET /`) with 1,000 services: server time, p50 p99
#     max of 200 keep-alive requests (goal: at most 50 ms);
#  2. time until that page is usable in Chromium: navigation start to the
#     table's first row visible, Chromium headless from a fresh profile
#     (goal: at most 1 s);
#  3. the delay from a traffic change to the deployment page's chart showing
#     it, over a canary (0% -> 20% -> 100%): the moment a client polling
#     GET /v1/deployments/ID every ~5 ms sees the change, to the moment the
#     chart's drawn value equals it (goal: at most 500 ms).
#
#   bench/console.sh                 # release build
#   CUTOVER_BIN=path bench/console.sh
#
# Needs Debian's chromium and playwright-core: scripts/setup-browser.sh
# installs both. Everything runs on 127.0.0.1 with temporary data
# directories and is cleaned up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CUTOVER_BIN:-}" ]; then
  cargo build --release --locked -p cutover >/dev/null 2>&1 || cargo build --release --locked -p cutover
  CUTOVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/cutover"
fi
BIN="$CUTOVER_BIN"
NODE_PATH="$(./scripts/setup-browser.sh)"
export NODE_PATH
SCRIPT=crates/cutover/tests/browser/console.js
WORK="$(mktemp -d)"
SERVER_PID=""
DATA=""
stop_server() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  if [ -n "$DATA" ]; then
    [ -f "$DATA/proxy/proxy.pid" ] && kill "$(cat "$DATA/proxy/proxy.pid")" 2>/dev/null || true
    pkill -9 -f "task-dir $DATA/" 2>/dev/null || true
  fi
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

start_server() { # -> sets DATA, SERVER_PID, CUTOVER_SERVER
  DATA="$(mktemp -d -p "$WORK")"
  local port; port="$(free_port)"
  export CUTOVER_SERVER="http://127.0.0.1:$port"
  CUTOVER_LOG=warn "$BIN" server --data-dir "$DATA" --listen "127.0.0.1:$port" >>"$DATA/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do curl -fs "$CUTOVER_SERVER/v1/status" >/dev/null && return; sleep 0.05; done
  echo "server did not start" >&2; exit 1
}

echo "== overview with 1000 services"
start_server
mkdir -p "$DATA/stack"
python3 - "$DATA/stack" 1000 <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
with open(f"{d}/stack.yaml", "w") as f:
    f.write("services:\n")
    for i in range(n):
        f.write(f"  svc{i}:\n    runtime: process\n    desiredCount: 0\n    taskDefinition: ./taskdef.json\n")
open(f"{d}/taskdef.json", "w").write('{"family": "app", "containerDefinitions": [{"name": "app", "essential": true, "image": "x", "command": ["sleep", "100"]}]}')
PY
"$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
python3 - "$CUTOVER_SERVER" <<'PY'
import http.client, sys, time
host = sys.argv[1].split("//")[1]
c = http.client.HTTPConnection(host)
t, size = [], 0
for _ in range(200):
    s = time.perf_counter()
    c.request("GET", "/"); r = c.getresponse(); body = r.read()
    assert r.status == 200, r.status
    t.append((time.perf_counter() - s) * 1000); size = len(body)
t.sort()
print(f"-- server time of GET / (200 requests, {size // 1024} KiB): p50 {t[100]:.1f} ms, p99 {t[197]:.1f} ms, max {t[-1]:.1f} ms (goal <= 50 ms)")
PY
for i in 1 2 3; do
  echo "-- usable in Chromium, run $i: $(node "$SCRIPT" usable "$CUTOVER_SERVER") (goal <= 1000 ms)"
done
stop_server

echo "== traffic change to chart, over a canary"
start_server
mkdir -p "$DATA/stack"
python3 - "$DATA/stack" <<'PY'
import socket, sys
d = sys.argv[1]
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
open(f"{d}/taskdef.json", "w").write(
    '{"family": "web", "containerDefinitions": [{"name": "web", "image": "x", "command": ["cutover", "sample-app"],'
    ' "environment": [{"name": "APP_VERSION", "value": "v1"}], "portMappings": [{"containerPort": 8080}]}]}')
open(f"{d}/stack.yaml", "w").write(f"""services:
  web:
    runtime: process
    desiredCount: 1
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{ports[0]}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: Canary
      terminationWaitSeconds: 1
deploymentConfigs:
  Canary:
    trafficRouting: {{type: TimeBasedCanary, timeBasedCanary: {{canaryPercentage: 20, canaryIntervalSeconds: 5}}}}
""")
PY
PATH="$(dirname "$BIN"):$PATH" "$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
for _ in $(seq 1 300); do
  [ "$(curl -fs "$CUTOVER_SERVER/v1/services/web" | python3 -c 'import json,sys;print(json.load(sys.stdin)["service"]["healthyCount"])')" = 1 ] && break
  sleep 0.1
done
for run in 1 2 3; do
  id="$("$BIN" deploy web --env "web:APP_VERSION=v$((run + 1))" --output json | python3 -c 'import json,sys;print(json.load(sys.stdin)["deployment"]["id"])')"
  echo "-- run $run: $(node "$SCRIPT" chart "$CUTOVER_SERVER" "$id") (goal <= 500 ms each)"
done
stop_server
