#!/usr/bin/env bash
# Foundation figures: reconcile latency, replacement time after kill -9,
# adoption after a server kill -9, and the resident memory of an idle
# `cutover server` managing 100 services of 1 task each.
#
#   bench/foundation.sh            # release build, 100 services
#   SERVICES=20 bench/foundation.sh
#   CUTOVER_BIN=path bench/foundation.sh
#
# Everything runs on 127.0.0.1 with a temporary data dir and is cleaned up.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES="${SERVICES:-100}"
if [ -z "${CUTOVER_BIN:-}" ]; then
  cargo build --release --locked -p cutover >/dev/null 2>&1 || cargo build --release --locked -p cutover
fi
BIN="${CUTOVER_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/cutover}"
DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
export CUTOVER_SERVER="http://127.0.0.1:$PORT"
SERVER_PID=""
cleanup() {
  for s in $(seq 1 "$SERVICES"); do "$BIN" services delete "svc$s" >/dev/null 2>&1 || true; done
  "$BIN" services delete web >/dev/null 2>&1 || true
  sleep 3
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -f "$DATA/proxy/proxy.pid" ] && kill "$(cat "$DATA/proxy/proxy.pid")" 2>/dev/null || true
  pkill -9 -f "task-dir $DATA/" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT

start_server() {
  "$BIN" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" >>"$DATA/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do curl -fs "$CUTOVER_SERVER/v1/status" >/dev/null && return; sleep 0.05; done
  echo "server did not start" >&2; exit 1
}

# ms-resolution poll of the API until a python predicate on the task list holds.
wait_tasks() { # service predicate-python-expr timeout-s -> prints elapsed ms
  python3 - "$CUTOVER_SERVER" "$1" "$2" "$3" <<'PY'
import json, sys, time, urllib.request
base, svc, pred, limit = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
t0 = time.monotonic()
while time.monotonic() - t0 < limit:
    tasks = json.load(urllib.request.urlopen(f"{base}/v1/tasks?service={svc}"))["tasks"]
    if eval(pred, {"tasks": tasks}):
        print(round((time.monotonic() - t0) * 1000)); sys.exit(0)
    time.sleep(0.005)
print("timeout"); sys.exit(1)
PY
}

start_server
mkdir -p "$DATA/stack"
cat >"$DATA/stack/taskdef.json" <<'JSON'
{"family": "web", "containerDefinitions": [{"name": "web", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "v1"}],
  "portMappings": [{"containerPort": 8080}]}]}
JSON
printf 'services:\n  web:\n    desiredCount: 1\n    taskDefinition: ./taskdef.json\n' >"$DATA/stack/stack.yaml"
"$BIN" apply -f "$DATA/stack/stack.yaml" >/dev/null
wait_tasks web 'len([t for t in tasks if t["lastStatus"]=="RUNNING"])==1' 20 >/dev/null

echo "== reconcile latency: scale 1 -> 2, until the new task is RUNNING (5 runs)"
lat=()
for i in 1 2 3 4 5; do
  curl -fs -X PUT -H 'content-type: application/json' -d '{"desiredCount":2}' "$CUTOVER_SERVER/v1/services/web/desired-count" >/dev/null
  lat+=("$(wait_tasks web 'len([t for t in tasks if t["lastStatus"]=="RUNNING"])==2' 20)")
  curl -fs -X PUT -H 'content-type: application/json' -d '{"desiredCount":1}' "$CUTOVER_SERVER/v1/services/web/desired-count" >/dev/null
  wait_tasks web 'len(tasks)==1' 20 >/dev/null
done
echo "   ms: ${lat[*]}"

echo "== replacement after kill -9 of a task that ran > 10 s, until a new task is RUNNING (3 runs)"
echo "   (tasks that die within 10 s of starting are restarted with exponential backoff, 1 s to 30 s)"
rep=()
for i in 1 2 3; do
  sleep 10.5
  pid="$(curl -fs "$CUTOVER_SERVER/v1/tasks?service=web" | python3 -c 'import json,sys;print(json.load(sys.stdin)["tasks"][0]["handle"]["pid"])')"
  old="$(curl -fs "$CUTOVER_SERVER/v1/tasks?service=web" | python3 -c 'import json,sys;print(json.load(sys.stdin)["tasks"][0]["id"])')"
  kill -9 "$pid"
  rep+=("$(wait_tasks web "len(tasks)==1 and tasks[0]['id']!='$old' and tasks[0]['lastStatus']=='RUNNING'" 20)")
done
echo "   ms: ${rep[*]}"

echo "== adoption: kill -9 of the server, restart, until the API answers with the same task"
before="$(curl -fs "$CUTOVER_SERVER/v1/tasks?service=web" | python3 -c 'import json,sys;print(json.load(sys.stdin)["tasks"][0]["handle"]["pid"])')"
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
t0=$(date +%s%N); start_server; t1=$(date +%s%N)
after="$(curl -fs "$CUTOVER_SERVER/v1/tasks?service=web" | python3 -c 'import json,sys;print(json.load(sys.stdin)["tasks"][0]["handle"]["pid"])')"
echo "   restart to API ready: $(( (t1 - t0) / 1000000 )) ms; task pid before $before, after $after ($([ "$before" = "$after" ] && echo adopted || echo NOT ADOPTED))"

echo "== idle memory with $SERVICES services of 1 task each"
{
  echo "services:"
  for s in $(seq 1 "$SERVICES"); do printf '  svc%s:\n    desiredCount: 1\n    taskDefinition: ./taskdef.json\n' "$s"; done
} >"$DATA/stack/many.yaml"
t0=$(date +%s%N)
"$BIN" apply -f "$DATA/stack/many.yaml" >/dev/null
python3 - "$CUTOVER_SERVER" "$SERVICES" <<'PY'
import json, sys, time, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
while time.monotonic() - t0 < 120:
    tasks = json.load(urllib.request.urlopen(f"{base}/v1/tasks?limit=10000"))["tasks"]
    if len([t for t in tasks if t["lastStatus"] == "RUNNING"]) >= n + 1:
        break
    time.sleep(0.1)
PY
t1=$(date +%s%N)
echo "   apply to $SERVICES tasks RUNNING: $(( (t1 - t0) / 1000000 )) ms"
sleep 10
rss=$(awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status")
cpu1=$(awk '{print $14+$15}' "/proc/$SERVER_PID/stat"); sleep 10; cpu2=$(awk '{print $14+$15}' "/proc/$SERVER_PID/stat")
shim=$(pgrep -f "__shim --task-dir $DATA/" | head -1)
shim_rss=$(awk '/VmRSS/{print $2}' "/proc/$shim/status" 2>/dev/null || echo 0)
shim_pss=$(awk '/^Pss:/{print $2}' "/proc/$shim/smaps_rollup" 2>/dev/null || echo 0)
proxy_rss=$(awk '/VmRSS/{print $2}' "/proc/$(cat "$DATA/proxy/proxy.pid")/status")
echo "   cutover server RSS: $((rss / 1024)) MiB; idle CPU over 10 s: $(( (cpu2 - cpu1) * 10 )) ms"
echo "   per-task shim: RSS $shim_rss KiB, PSS $shim_pss KiB (the binary's pages are shared); data plane RSS: $((proxy_rss / 1024)) MiB"
