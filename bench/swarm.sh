#!/usr/bin/env bash
# Issue 15: a service of N tasks (default 20) on the two-node swarm of
# scripts/swarm-up.sh, side by side with the same service on one Podman
# engine (runtime: docker):
#   1. apply -> N healthy tasks;
#   2. a blue/green deployment (all at once) -> finished, N new healthy tasks;
#   3. swarm only: node 2 dies (its link goes down) -> N healthy tasks again,
#      all on node 1, and the listener answering.
#
# usage: bench/swarm.sh
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), N (20),
#        PODMAN_HOST (unix:///run/podman/podman.sock), KEEP_WORK=1.
# Health checks: every 3 s, 3 s timeout, 3 retries (interval 1 s / timeout
# 1 s fails exec probes of 20 Podman containers on 2 cores).
# Needs root, Podman with cutover-sample:test (scripts/setup-podman.sh,
# scripts/build-test-images.sh). Runs swarm-up.sh itself and swarm-down.sh at
# the end; cleans up every process it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
esac
n=${N:-20}
podman_host=${PODMAN_HOST:-unix:///run/podman/podman.sock}
if [[ -z ${CUTOVER_BIN:-} ]]; then
  cargo build --release --locked -p cutover >&2
  CUTOVER_BIN=${CARGO_TARGET_DIR:-$root/target}/release/cutover
fi
bin=$CUTOVER_BIN
work=$(mktemp -d)
server_pid=""
now_ms() { echo $(($(date +%s%N) / 1000000)); }
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

stop_server() {
  [[ -n $server_pid ]] || return 0
  "$bin" services delete web >/dev/null 2>&1 || true
  for _ in $(seq 1 300); do
    [[ $(tasks_json | python3 -c 'import json,sys;print(len(json.load(sys.stdin)["tasks"]))' 2>/dev/null || echo 0) == 0 ]] && break
    sleep 0.2
  done
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  local pidfile
  for pidfile in "$work"/*/proxy/proxy.pid; do
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}
cleanup() {
  stop_server
  ip link set cutover-sw2h up 2>/dev/null || true
  scripts/swarm-down.sh >/dev/null 2>&1 || true
  [[ ${KEEP_WORK:-0} == 1 ]] && echo "work directory: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

tasks_json() { "$bin" tasks ls --service web -o json; }
# Prints "healthy distinct-node-addresses" of the service's tasks.
healthy_nodes() {
  tasks_json | python3 -c '
import json, sys
t = json.load(sys.stdin)["tasks"]
ok = [x for x in t if x["lastStatus"] == "RUNNING" and x["healthStatus"] == "HEALTHY"]
print(len(ok), len(t), ",".join(sorted({(x.get("endpoint") or "").rsplit(":", 1)[0] for x in ok})))'
}
wait_healthy() { # N [NODES]: until exactly N tasks, all healthy (on NODES)
  local want=$1 nodes=${2:-} line
  for _ in $(seq 1 1500); do
    line=$(healthy_nodes)
    read -r ok all on <<<"$line"
    if [[ $ok == "$want" && $all == "$want" && ( -z $nodes || $on == "$nodes" ) ]]; then return 0; fi
    sleep 0.2
  done
  echo "never $want healthy tasks: $line" >&2
  return 1
}

write_stack() { # RUNTIME PROD
  cat >"$work/taskdef.json" <<'JSON'
{"family": "web", "containerDefinitions": [{"name": "web", "image": "cutover-sample:test",
  "entryPoint": ["/cutover"], "command": ["sample-app"], "memory": 64,
  "environment": [{"name": "APP_VERSION", "value": "v1"}], "portMappings": [{"containerPort": 8080}], "stopTimeout": 2,
  "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://127.0.0.1:$PORT/health || exit 1"], "interval": 3, "timeout": 3, "retries": 3}}]}
JSON
  cat >"$work/stack.yaml" <<EOF
services:
  web:
    runtime: $1
    desiredCount: $n
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 0.0.0.0:$2
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 0
EOF
}

run() { # RUNTIME DOCKER_HOST
  local runtime=$1 host=$2 port prod t0 t1 t2
  port=$(free_port)
  prod=$(free_port)
  export CUTOVER_SERVER="http://127.0.0.1:$port"
  mkdir -p "$work/$runtime"
  DOCKER_HOST=$host "$bin" server --data-dir "$work/$runtime" --listen "127.0.0.1:$port" >"$work/$runtime.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do curl -fs "$CUTOVER_SERVER/v1/status" >/dev/null && break; sleep 0.1; done
  write_stack "$runtime" "$prod"
  t0=$(now_ms)
  (cd "$work" && "$bin" apply -f stack.yaml >/dev/null)
  wait_healthy "$n"
  t1=$(now_ms)
  "$bin" deploy web --env web:APP_VERSION=v2 --wait >/dev/null
  wait_healthy "$n"
  t2=$(now_ms)
  printf '%-8s apply -> %d healthy: %6d ms   blue/green -> finished, %d healthy: %6d ms\n' \
    "$runtime" "$n" $((t1 - t0)) "$n" $((t2 - t1))
  if [[ $runtime == swarm ]]; then
    local node1 t3 t4
    node1=$CUTOVER_SWARM_NODE1
    t3=$(now_ms)
    ip link set cutover-sw2h down
    wait_healthy "$n" "$node1"
    curl -fs "http://127.0.0.1:$prod/" >/dev/null
    t4=$(now_ms)
    printf '%-8s node 2 dies -> %d healthy tasks on node 1: %6d ms\n' "$runtime" "$n" $((t4 - t3))
    ip link set cutover-sw2h up
  fi
  stop_server
}

eval "$(scripts/swarm-up.sh)"
echo "N=$n tasks, binary $bin"
run swarm "$DOCKER_HOST"
run docker "$podman_host"
