#!/usr/bin/env bash
# Benchmarks Cutover's deployments under live traffic, everything on 127.0.0.1:
#   1. zero failed requests at >= 2k req/s of keep-alive GETs, with 2 s slow requests always in
#      flight, through: all-at-once (3 deployments), canary, linear, a rolling update, a manual
#      rollback during the termination wait, a manual rollback after it (a redeploy), `stop
#      --rollback` during a canary, and a control-plane `kill -9` in the middle of a canary;
#   2. alarm rollbacks (ALARM_RUNS, 20; 5 with --quick): a version failing every request goes to a
#      20% canary, the 1-second 5xx alarm fires and the deployment rolls back; measured from the
#      alarm entering ALARM to the data plane acknowledging 100% blue, and from the first 5xx a
#      client saw to that acknowledgement;
#   3. control-plane overhead of an all-at-once deployment, and the schedule accuracy of every
#      canary and linear step.
# It prints one line per scenario and the figures beside their goals and CodeDeploy's reference
# points; `bench/deploy/report.py` explains each formula.
#
# usage: bench/deploy.sh [--quick] [--markdown FILE]
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), RATE (2500 req/s), CONNS (32),
#        SLOW (8 connections with a 2 s request in flight), ALARM_RUNS (20, or 5 with --quick),
#        KEEP_WORK=1 keeps the work directory (logs, raw JSON) afterwards.
# Exits 1 when a scenario fails a request, a deployment ends otherwise than planned, or a goal is
# missed. Cleans up every process it started, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
quick=0
markdown=""
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --markdown) markdown=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
rate=${RATE:-2500}
conns=${CONNS:-32}
slow=${SLOW:-8}
if ((quick)); then alarm_runs=${ALARM_RUNS:-5}; else alarm_runs=${ALARM_RUNS:-20}; fi

for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true

if [[ -n "${CUTOVER_BIN:-}" ]]; then
  cutover=$CUTOVER_BIN
else
  (cd "$root" && cargo build --release -p cutover >&2)
  cutover=${CARGO_TARGET_DIR:-$root/target}/release/cutover
fi
cutover=$(cd "$(dirname "$cutover")" && pwd)/$(basename "$cutover")

work=$(mktemp -d /tmp/cutover-bench-deploy.XXXXXX)
data=$work/data
res=$work/results
mkdir -p "$data" "$res"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
web=$(free_port) web_test=$(free_port) keep=$(free_port) roll=$(free_port)
export CUTOVER_SERVER=http://127.0.0.1:$api_port
server_pid=""
load_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$load_pid" ]]; then kill "$load_pid" 2>/dev/null || true; fi
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    # Delete the services first so the control plane stops their tasks.
    for s in web keep roll; do "$cutover" services delete "$s" >/dev/null 2>&1 || true; done
    for s in web keep roll; do WAIT_LIMIT_S=15 python3 "$here/deploy/api.py" tasks "$s" 0 2>/dev/null || true; done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # The data plane runs as its own process; so may leftover task shims after a failure.
  local pid
  if [[ -f "$data/proxy/proxy.pid" ]]; then
    pid=$(head -c 20 "$data/proxy/proxy.pid" | tr -dc 0-9)
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  fi
  for f in "$data"/tasks/*/shim.pid "$data"/tasks/*/task.pid; do
    [[ -f "$f" ]] || continue
    # The runtime writes {"pid": N, ...} (older versions: "N START").
    pid=$(grep -o '"pid": *[0-9]*' "$f" | tr -dc 0-9)
    [[ -n "$pid" ]] || pid=$(awk '{print $1; exit}' "$f" | tr -dc 0-9)
    if [[ -n "$pid" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  if ((rc != 0)) || [[ -n "${KEEP_WORK:-}" ]]; then
    echo "logs and raw results kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }
api() { python3 "$here/deploy/api.py" "$@"; }
say() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

start_server() {
  CUTOVER_BIN=$cutover CUTOVER_LOG=${CUTOVER_LOG:-info} \
    "$cutover" server --listen "127.0.0.1:$api_port" --data-dir "$data" \
    </dev/null >>"$work/server.log" 2>&1 &
  server_pid=$!
  WAIT_LIMIT_S=20 api up
}

# load_start NAME PORT: keep-alive load through a listener until load_stop.
load_start() {
  python3 "$here/deploy/load.py" --target "127.0.0.1:$2" --rate "$rate" --conns "$conns" \
    --slow "$slow" --slow-ms 2000 --out "$res/$1.load.json" &
  load_pid=$!
  sleep 1
}
load_stop() {
  sleep 1
  kill -TERM "$load_pid"
  wait "$load_pid"
  load_pid=""
}

# deploy ARGS...: starts a deployment, prints its id.
deploy() {
  "$cutover" deploy "$@" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"]["id"])'
}
save_deployment() { api save "/v1/deployments/$2" "$res/$1.deployment.$2.json"; }
# meta NAME KEY=VALUE...: what the report needs besides the saved JSON (numbers or words).
meta() {
  local name=$1
  shift
  printf '%s\n' "$@" >>"$res/$name.meta"
}

# --- stack: web (blue/green, 5xx alarm), keep (blue/green, 60 s termination wait), roll -------
for svc in web keep roll; do
  cat >"$work/$svc.json" <<EOF
{"family": "$svc", "containerDefinitions": [{"name": "$svc", "image": "sample-app:v1",
  "command": ["cutover", "sample-app"], "environment": [{"name": "APP_VERSION", "value": "v1"}],
  "portMappings": [{"containerPort": 8080}]}]}
EOF
done
health='{path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}'
cat >"$work/stack.yaml" <<EOF
services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./web.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:$web
      testListener: 127.0.0.1:$web_test
      healthCheck: $health
      deregistrationDelaySeconds: 3
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 0
      alarms: [web-5xx]
      autoRollback: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
  keep:
    runtime: process
    desiredCount: 2
    taskDefinition: ./keep.json
    loadBalancer:
      containerName: keep
      containerPort: 8080
      listener: 127.0.0.1:$keep
      healthCheck: $health
      deregistrationDelaySeconds: 3
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 60
  roll:
    runtime: process
    desiredCount: 2
    taskDefinition: ./roll.json
    loadBalancer:
      containerName: roll
      containerPort: 8080
      listener: 127.0.0.1:$roll
      healthCheck: $health
      deregistrationDelaySeconds: 3
    deployment:
      type: ROLLING
      minimumHealthyPercent: 100
      maximumPercent: 200
deploymentConfigs:
  Canary20Percent3Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 3}}
  Canary20Percent10Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 10}}
  Canary20Percent30Seconds:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 20, canaryIntervalSeconds: 30}}
  Linear25PercentEvery2Seconds:
    trafficRouting: {type: TimeBasedLinear, timeBasedLinear: {linearPercentage: 25, linearIntervalSeconds: 2}}
alarms:
  web-5xx:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 1
    evaluationPeriods: 1
    threshold: 1
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
EOF

say "control plane on $CUTOVER_SERVER, work directory $work"
start_server
(cd "$work" && "$cutover" apply -f stack.yaml >/dev/null)
for s in web keep roll; do api tasks "$s" 2; done
for port in "$web" "$keep" "$roll"; do
  for _ in $(seq 1 200); do
    [[ "$(curl -s --noproxy '*' "http://127.0.0.1:$port/" || true)" == v1 ]] && break
    sleep 0.05
  done
done
printf '%s\n' "rate=$rate" "conns=$conns" "slow=$slow" "alarm_runs=$alarm_runs" "quick=$quick" \
  "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" "cpus=$(nproc)" >"$res/run.meta"

# --- 1. all-at-once, three times: zero failures and the control-plane overhead ----------------
say "all-at-once x3"
load_start 01-all-at-once "$web"
for v in 2 3 4; do
  t0=$(now_ms)
  id=$("$cutover" deploy web --env "web:APP_VERSION=v$v" --wait --output json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["deployment"]["id"])')
  t1=$(now_ms)
  save_deployment 01-all-at-once "$id"
  meta 01-all-at-once "wall.$id=$((t1 - t0))"
  api tasks web 2
done
load_stop

# --- 2. canary 20% for 3 s -------------------------------------------------------------------
say "canary"
load_start 02-canary "$web"
id=$(deploy web --deployment-config Canary20Percent3Seconds --env web:APP_VERSION=v5)
api finished "$id" >/dev/null
save_deployment 02-canary "$id"
api tasks web 2
load_stop

# --- 3. linear 25% every 2 s -----------------------------------------------------------------
say "linear"
load_start 03-linear "$web"
id=$(deploy web --deployment-config Linear25PercentEvery2Seconds --env web:APP_VERSION=v6)
api finished "$id" >/dev/null
save_deployment 03-linear "$id"
api tasks web 2
load_stop

# --- 4. rolling update -----------------------------------------------------------------------
say "rolling update"
load_start 04-rolling "$roll"
id=$(deploy roll --env roll:APP_VERSION=v2)
api finished "$id" >/dev/null
save_deployment 04-rolling "$id"
api tasks roll 2
load_stop

# --- 5. manual rollback during the termination wait (instant: blue still runs) ---------------
say "manual rollback during the termination wait"
load_start 05-rollback-instant "$keep"
id=$(deploy keep --env keep:APP_VERSION=v2)
api in-termination-wait "$id"
t0=$(now_ms)
"$cutover" deployments rollback keep >/dev/null
t1=$(now_ms)
api finished "$id" >/dev/null
save_deployment 05-rollback-instant "$id"
meta 05-rollback-instant "requested=$t0" "answered=$t1"
api tasks keep 2
load_stop

# --- 6. manual rollback after the termination wait (a redeploy of the previous revision) -----
say "manual rollback after the termination wait"
load_start 06-rollback-redeploy "$web"
t0=$(now_ms)
"$cutover" deployments rollback web --wait >/dev/null
t1=$(now_ms)
id=$(python3 -c 'import json,sys,urllib.request as u
o=u.build_opener(u.ProxyHandler({}))
print(json.load(o.open(sys.argv[1]+"/v1/deployments?service=web"))["deployments"][0]["id"])' "$CUTOVER_SERVER")
save_deployment 06-rollback-redeploy "$id"
meta 06-rollback-redeploy "requested=$t0" "done=$t1"
api tasks web 2
load_stop

# --- 7. stop --rollback in the middle of a canary --------------------------------------------
say "stop --rollback mid-canary"
load_start 07-stop-rollback "$web"
id=$(deploy web --deployment-config Canary20Percent30Seconds --env web:APP_VERSION=v7)
api traffic "$id" 20
t0=$(now_ms)
"$cutover" deployments stop "$id" --rollback >/dev/null
api finished "$id" >/dev/null
save_deployment 07-stop-rollback "$id"
meta 07-stop-rollback "requested=$t0"
api tasks web 2
load_stop

# --- 8. kill -9 of the control plane in the middle of a canary --------------------------------
say "control-plane kill -9 mid-canary"
load_start 08-kill9 "$web"
id=$(deploy web --deployment-config Canary20Percent10Seconds --env web:APP_VERSION=v8)
api traffic "$id" 20
t0=$(now_ms)
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
sleep 2
t1=$(now_ms)
start_server
t2=$(now_ms)
api finished "$id" >/dev/null
save_deployment 08-kill9 "$id"
meta 08-kill9 "killed=$t0" "restarted=$t1" "api_up=$t2"
api tasks web 2
load_stop

# --- 9. alarm rollbacks ----------------------------------------------------------------------
say "alarm rollbacks x$alarm_runs"
load_start 09-alarm "$web"
for i in $(seq 1 "$alarm_runs"); do
  api alarm-ok web-5xx
  id=$(deploy web --deployment-config Canary20Percent30Seconds \
    --env "web:APP_VERSION=bad$i" --env web:FAIL_RATE=1.0)
  api finished "$id" >/dev/null
  save_deployment 09-alarm "$id"
  api save /v1/alarms/web-5xx "$res/09-alarm.alarm.$id.json"
  api tasks web 2
done
load_stop

say "done; figures:"
report_args=("$res")
[[ -n "$markdown" ]] && report_args+=(--markdown "$markdown")
python3 "$here/deploy/report.py" "${report_args[@]}"
