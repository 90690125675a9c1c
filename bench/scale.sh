#!/usr/bin/env bash
# Control-plane scale: apply time against the number of services, the
# latency of GET /v1/services with 1,000 services, and the API's latency
# while 100 blue/green deployments run at once.
#
#   bench/scale.sh                 # release build; all three parts
#   DEPLOYMENTS=0 bench/scale.sh   # skip the concurrent deployments
#   CUTOVER_BIN=path bench/scale.sh
#
# Goals (issue 9): apply of 1,000 services in at most 1 s and linear in the
# count; GET /v1/services p99 at most 20 ms with 1,000 services; API p99 at
# most 50 ms during 100 concurrent deployments. Everything runs on
# 127.0.0.1 with temporary data directories and is cleaned up.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOYMENTS="${DEPLOYMENTS:-100}"
if [ -z "${CUTOVER_BIN:-}" ]; then
  cargo build --release --locked -p cutover >/dev/null 2>&1 || cargo build --release --locked -p cutover
  CUTOVER_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/cutover"
fi
BIN="$CUTOVER_BIN"
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

write_stack() { # dir count
  python3 - "$1" "$2" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
with open(f"{d}/stack.yaml", "w") as f:
    f.write("services:\n")
    for i in range(n):
        f.write(f"  svc{i}:\n    runtime: process\n    desiredCount: 0\n    taskDefinition: ./taskdef.json\n")
open(f"{d}/taskdef.json", "w").write('{"family": "app", "containerDefinitions": [{"name": "app", "essential": true, "image": "x", "command": ["sleep", "100"]}]}')
PY
}

# Latency of N keep-alive GETs of PATH: prints "p50 p99 max" in ms.
latency() { # path count
  python3 - "$CUTOVER_SERVER" "$1" "$2" <<'PY'
import http.client, sys, time
base, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = base.split("//")[1]
c = http.client.HTTPConnection(host)
t = []
for _ in range(n):
    s = time.perf_counter()
    c.request("GET", path); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    t.append((time.perf_counter() - s) * 1000)
t.sort()
print(f"{t[len(t)//2]:.1f} {t[int(len(t)*0.99)-1]:.1f} {t[-1]:.1f}")
PY
}

echo "== apply: time against the number of services (fresh server each)"
printf '%-10s %-10s %-12s\n' services apply_s per_service_ms
for n in 100 300 1000 3000; do
  start_server
  mkdir -p "$DATA/stack"; write_stack "$DATA/stack" "$n"
  s=$(date +%s.%N)
  "$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
  e=$(date +%s.%N)
  python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'{int(sys.argv[3]):<10} {t:<10.3f} {t*1000/int(sys.argv[3]):<12.3f}')" "$s" "$e" "$n"
  if [ "$n" = 1000 ]; then
    echo "-- GET /v1/services with 1000 services (500 keep-alive requests): p50 p99 max ms"
    latency /v1/services 500
    echo "   goal: p99 <= 20 ms"
    echo "-- re-apply of the same 1000 services (no change)"
    s=$(date +%s.%N); "$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null; e=$(date +%s.%N)
    python3 -c "import sys; print(f'   {float(sys.argv[2])-float(sys.argv[1]):.3f} s')" "$s" "$e"
  fi
  stop_server
done
echo "   goal: 1000 services in <= 1 s, per-service cost flat"

if [ "$DEPLOYMENTS" -gt 0 ]; then
  echo "== $DEPLOYMENTS concurrent blue/green deployments: API latency meanwhile"
  start_server
  mkdir -p "$DATA/stack"
  python3 - "$DATA/stack" "$DEPLOYMENTS" <<'PY'
import socket, sys
d, n = sys.argv[1], int(sys.argv[2])
held = []  # every port stays bound until the stack is written, so no two services share one
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s); return s.getsockname()[1]
for v in ("v1", "v2"):
    open(f"{d}/taskdef-{v}.json", "w").write(
        '{"family": "web", "containerDefinitions": [{"name": "web", "essential": true, "image": "x",'
        ' "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "%s"}],'
        ' "portMappings": [{"containerPort": 8080}]}]}' % v)
with open(f"{d}/stack.yaml", "w") as f:
    f.write("services:\n")
    for i in range(n):
        f.write(f"""  web{i}:
    runtime: process
    desiredCount: 1
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:{port()}
      healthCheck: {{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSLinear10PercentEvery1Minutes
      terminationWaitSeconds: 0
""")
PY
  cp "$DATA/stack/taskdef-v1.json" "$DATA/stack/taskdef.json"
  "$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
  python3 - "$CUTOVER_SERVER" "$DEPLOYMENTS" <<'PY'
import json, sys, time, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
while time.monotonic() - t0 < 300:
    s = json.load(urllib.request.urlopen(f"{base}/v1/services"))["services"]
    if sum(x["healthyCount"] if x["healthyCount"] else x["runningCount"] for x in s) >= n: break
    time.sleep(0.5)
print(f"   {n} services running after {time.monotonic()-t0:.1f} s")
PY
  cp "$DATA/stack/taskdef-v2.json" "$DATA/stack/taskdef.json"
  "$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
  sleep 5
  echo "-- while they shift traffic: 300 GETs each of /v1/services and /v1/deployments: p50 p99 max ms"
  latency /v1/services 300
  latency "/v1/deployments?limit=100" 300
  echo "   goal: p99 <= 50 ms"
  stop_server
fi
