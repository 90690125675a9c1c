#!/usr/bin/env bash
# The cost of AWS's protocol (issue 10), everything on 127.0.0.1:
#   1. SigV4 verification per request: the pure verifier in a loop (the
#      cutover-aws example sigv4_cost; CPU time and wall clock), then end to
#      end on a running server by paired differences of requests sent in a
#      random order (signed, wrong signature, unknown key, unsigned; see
#      bench/aws-api/client.py);
#   2. DescribeServices against GET /v1/services/NAME with SERVICES services
#      (desiredCount 0: SERVICES processes are too many for a 2-core
#      machine), 1 name per call and 10 names per call (against 10 GETs);
#   3. the same with SMALL services of 1 running task each (process runtime).
# One Python client (the aws venv's, botocore pre-signs every request) on
# one keep-alive connection; tables side by side with the ratio.
#
# usage: bench/aws-api.sh
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), SERVICES
#        (1000), SMALL (100; 0 skips part 3), REQUESTS (2000 per kind),
#        BATCHES (300 calls of 10 names), SIGV4_LOOP (200000; 0 skips the
#        example), KEEP_WORK=1 keeps the work directory.
# Goals: verification at most 20 µs; DescribeServices p99 at most 20 ms and
# within 1.5x of /v1. Cleans up every process it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
esac
services=${SERVICES:-1000}
small=${SMALL:-100}
requests=${REQUESTS:-2000}
batches=${BATCHES:-300}
sigv4_loop=${SIGV4_LOOP:-200000}
if ((services < 10)) || ((small > 0 && small < 10)); then
  echo "error: SERVICES and SMALL need at least 10 services (DescribeServices of 10 names)" >&2
  exit 2
fi

if [[ -z ${CUTOVER_BIN:-} ]]; then
  cargo build --release --locked -p cutover >&2
  CUTOVER_BIN=${CARGO_TARGET_DIR:-$root/target}/release/cutover
fi
bin=$(cd "$(dirname "$CUTOVER_BIN")" && pwd)/$(basename "$CUTOVER_BIN")
py="$(bash scripts/setup-aws-clients.sh 2>/dev/null)/python3"

work=$(mktemp -d /tmp/cutover-bench-aws.XXXXXX)
server_pid=""
data=""
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
  [[ -n $data ]] || return 0
  # The data plane, the task shims and the tasks outlive the server by
  # design: their pid files (a number, or the runtime's JSON) name them.
  python3 - "$data" <<'PY' | xargs -r kill -9 2>/dev/null || true
import glob, json, sys
d = sys.argv[1]
for f in [f"{d}/proxy/proxy.pid"] + glob.glob(f"{d}/tasks/*/shim.pid") + glob.glob(f"{d}/tasks/*/task.pid"):
    try:
        text = open(f).read().strip()
        print(json.loads(text)["pid"] if text.startswith("{") else int(text))
    except (OSError, ValueError, KeyError):
        pass
PY
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  if ((rc != 0)) || [[ -n ${KEEP_WORK:-} ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_server NAME: a fresh server on a free port; sets data, endpoint, key, secret.
start_server() {
  data=$work/$1
  mkdir -p "$data"
  local port
  port=$(free_port)
  endpoint=http://127.0.0.1:$port
  export CUTOVER_SERVER=$endpoint
  CUTOVER_BIN=$bin CUTOVER_LOG=warn "$bin" server --data-dir "$data" --listen "127.0.0.1:$port" \
    </dev/null >>"$data/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do curl -fs "$endpoint/v1/status" >/dev/null && break; sleep 0.05; done
  curl -fs "$endpoint/v1/status" >/dev/null || { echo "server did not start" >&2; exit 1; }
  read -r key secret < <("$bin" access-keys create --name bench -o json |
    python3 -c 'import json,sys; k=json.load(sys.stdin)["AccessKey"]; print(k["AccessKeyId"], k["SecretAccessKey"])')
}

# apply_stack COUNT DESIRED: services svc0..svcCOUNT-1 of the sample app, one apply.
apply_stack() {
  python3 - "$data" "$1" "$2" <<'PY'
import sys
d, n, desired = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
open(f"{d}/taskdef.json", "w").write(
    '{"family": "app", "containerDefinitions": [{"name": "app", "essential": true, "image": "sample-app:v1",'
    ' "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "v1"}]}]}')
with open(f"{d}/stack.yaml", "w") as f:
    f.write("services:\n")
    for i in range(n):
        f.write(f"  svc{i}:\n    runtime: process\n    desiredCount: {desired}\n    taskDefinition: ./taskdef.json\n")
PY
  "$bin" apply -f "$data/stack.yaml" >/dev/null
}

# wait_running N: until N tasks are RUNNING (at most 180 s); prints the wait.
wait_running() {
  python3 - "$endpoint" "$1" <<'PY'
import json, sys, time, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
while time.monotonic() - t0 < 180:
    tasks = json.load(urllib.request.urlopen(f"{base}/v1/tasks?limit=100000"))["tasks"]
    if sum(t["lastStatus"] == "RUNNING" for t in tasks) >= n:
        print(f"   {n} tasks RUNNING after {time.monotonic() - t0:.1f} s"); sys.exit(0)
    time.sleep(0.5)
sys.exit(f"only {sum(t['lastStatus'] == 'RUNNING' for t in tasks)} of {n} tasks RUNNING after 180 s")
PY
}

client() { # COUNT PART [ARGS...]
  local count=$1 part=$2
  shift 2
  "$py" bench/aws-api/client.py --endpoint "$endpoint" --key "$key" --secret "$secret" \
    --services "$count" --part "$part" --requests "$requests" --batches "$batches" "$@"
}

load() { echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; }
echo "aws-api: $("$bin" --version 2>/dev/null || true) ($bin), tree $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes); $(nproc) cores, $(load)"

echo "== 1. SigV4 verification cost per request (goal: at most 20 µs)"
if ((sigv4_loop > 0)); then
  echo "-- the verifier alone, in a loop (cutover-aws example sigv4_cost, release)"
  cargo build --release --locked -q -p cutover-aws --example sigv4_cost
  TIMEFORMAT='%U %S'
  { time "${CARGO_TARGET_DIR:-$root/target}/release/examples/sigv4_cost" "$sigv4_loop" >"$work/sigv4.out"; } 2>"$work/sigv4.time"
  sed 's/^/   wall clock: /' "$work/sigv4.out"
  # The wall clock counts the time other processes hold the cores; the
  # process's CPU time is what a verification costs one core.
  read -r user sys <"$work/sigv4.time"
  python3 -c 'import sys; u, s, n = map(float, sys.argv[1:]); print(f"   CPU time (user {u:.2f} s + sys {s:.2f} s) / {n:.0f}: {(u + s) / n * 1e6:.2f} µs per request")' \
    "$user" "$sys" "$sigv4_loop"
fi
start_server large
apply_stack "$services" 0
echo "-- end to end, on a server with $services services; $(load)"
client "$services" sigv4

echo
echo "== 2. DescribeServices vs GET /v1/services/NAME, $services services of 0 tasks (goal: p99 <= 20 ms and <= 1.5x /v1); $(load)"
client "$services" describe
stop_server

if ((small > 0)); then
  echo
  echo "== 3. the same with $small services of 1 running task each (process runtime); $(load)"
  start_server small
  apply_stack "$small" 1
  wait_running "$small"
  client "$small" describe
  stop_server
fi
