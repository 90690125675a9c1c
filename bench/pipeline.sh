#!/usr/bin/env bash
# Benchmarks Cutover's pipelines, everything on 127.0.0.1: a trivial pipeline (a git source, a
# one-command build on the host, an all-at-once blue/green ECS deploy of a ready service) started
# by a GitHub-signed push webhook, RUNS times (default 5) with a new commit each time, while a
# client keeps requesting the service. For each run it measures
#   1. webhook received -> the first build command running (goal <= 200 ms): the POST is sent at
#      t0 and the buildspec's first command writes its own clock;
#   2. webhook received -> the service answering the new version (goal <= 3 s plus the
#      health-check thresholds: 2 checks 1 s apart here, so <= 5 s);
# and counts the client's failed requests over all runs (goal 0).
#
# usage: bench/pipeline.sh [--markdown FILE]
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), RUNS (5),
#        KEEP_WORK=1 keeps the work directory (server log, repository) afterwards.
# Exits 1 when a run fails, a request fails or a goal is missed. Cleans up every process it
# started, also on failure or Ctrl-C.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
markdown=""
while (($#)); do
  case "$1" in
    --markdown) markdown=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
runs=${RUNS:-5}
for tool in git curl openssl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 2; }
done

if [[ -z "${CUTOVER_BIN:-}" ]]; then
  (cd "$root" && cargo build --release -q -p cutover)
  CUTOVER_BIN="${CARGO_TARGET_DIR:-$root/target}/release/cutover"
fi
bin=$CUTOVER_BIN

work=$(mktemp -d)
pids=()
cleanup() {
  local rc=$? pid f
  trap - EXIT INT TERM
  touch "$work/stop-load"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -n "${server_pid:-}" ]] && kill -0 "$server_pid" 2>/dev/null; then
    # Delete the service first so the control plane stops its tasks.
    "$bin" services delete web >/dev/null 2>&1 || true
    for _ in $(seq 150); do
      curl -fs "http://$api/v1/tasks" 2>/dev/null | grep -Eq '"(PROVISIONING|PENDING|RUNNING|DEACTIVATING|STOPPING)"' || break
      sleep 0.1
    done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  # The data plane runs as its own process; so may leftover task shims after a failure.
  if [[ -f "$work/data/proxy/proxy.pid" ]]; then
    pid=$(head -c 20 "$work/data/proxy/proxy.pid" | tr -dc 0-9)
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
  fi
  for f in "$work"/data/tasks/*/shim.pid "$work"/data/tasks/*/task.pid; do
    [[ -f "$f" ]] || continue
    pid=$(grep -o '"pid": *[0-9]*' "$f" | head -1 | tr -dc 0-9)
    if [[ -n "$pid" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  if ((rc != 0)) || [[ -n "${KEEP_WORK:-}" ]]; then
    echo "server log and work files kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

api="127.0.0.1:$(free_port)"
export CUTOVER_SERVER="http://$api"
prod=$(free_port)
secret=bench-secret
mkdir -p "$work/repo" "$work/images" "$work/marks" "$work/app-v0" "$work/data"
echo v0 >"$work/app-v0/VERSION"

cat >"$work/repo/buildspec.yml" <<EOF
version: 0.2
phases:
  build:
    commands:
      - echo \$((\$(date +%s%N) / 1000000)) > "$work/marks/\$CODEBUILD_RESOLVED_SOURCE_VERSION"
      - mkdir -p "$work/images/\$CODEBUILD_RESOLVED_SOURCE_VERSION" && cp VERSION "$work/images/\$CODEBUILD_RESOLVED_SOURCE_VERSION/" && printf '[{"name":"web","imageUri":"file://%s"}]' "$work/images/\$CODEBUILD_RESOLVED_SOURCE_VERSION" > imagedefinitions.json
artifacts:
  files: [imagedefinitions.json]
EOF
echo v0 >"$work/repo/VERSION"
git -C "$work/repo" init -q -b main
git -C "$work/repo" config user.email bench@example.com
git -C "$work/repo" config user.name bench
git -C "$work/repo" add -A
git -C "$work/repo" commit -q -m v0

cat >"$work/pipeline.json" <<'EOF'
{"pipeline": {"name": "app", "pipelineType": "V2", "stages": [
 {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
   "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
   "configuration": {"RepositoryName": "app", "BranchName": "main"}, "outputArtifacts": [{"name": "SourceArtifact"}]}]},
 {"name": "Build", "actions": [{"name": "Build",
   "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
   "configuration": {"ProjectName": "app-build"}, "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
 {"name": "Deploy", "actions": [{"name": "Deploy",
   "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
   "configuration": {"ClusterName": "default", "ServiceName": "web", "FileName": "imagedefinitions.json"},
   "inputArtifacts": [{"name": "BuildArtifact"}]}]}]}}
EOF
cat >"$work/taskdef.json" <<EOF
{"family": "web", "containerDefinitions": [{"name": "web", "image": "file://$work/app-v0",
  "command": ["cutover", "sample-app"], "portMappings": [{"containerPort": 8080}],
  "healthCheck": {"command": ["CMD-SHELL", "curl -fs http://127.0.0.1:\$PORT/health"], "interval": 1, "timeout": 1, "retries": 2}}]}
EOF
cat >"$work/stack.yaml" <<EOF
services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:$prod
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
      deregistrationDelaySeconds: 1
    deployment:
      type: BLUE_GREEN
      config: CodeDeployDefault.ECSAllAtOnce
      terminationWaitSeconds: 0
repositories:
  app: {url: $work/repo, pollIntervalSeconds: 0, webhookSecret: $secret}
buildProjects:
  app-build: {environment: host}
pipelines:
  app: {file: ./pipeline.json}
EOF

CUTOVER_LOG=info "$bin" server --listen "$api" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do curl -fs "http://$api/v1/status" >/dev/null 2>&1 && break; sleep 0.1; done
(cd "$work" && "$bin" apply -f stack.yaml >/dev/null)
for _ in $(seq 300); do
  [[ "$(curl -fs "http://127.0.0.1:$prod/" 2>/dev/null)" == v0 ]] && break
  sleep 0.1
done
[[ "$(curl -fs "http://127.0.0.1:$prod/")" == v0 ]] || { echo "error: the service never served v0" >&2; exit 1; }

# One client for the whole benchmark, counting failures.
(
  ok=0 failed=0
  while [[ ! -e "$work/stop-load" ]]; do
    if curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$prod/"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
  done
  echo "$ok $failed" >"$work/load.result"
) &
load_pid=$!
pids+=("$load_pid")

first_cmd=() end_to_end=()
for i in $(seq 1 "$runs"); do
  echo "v$i" >"$work/repo/VERSION"
  git -C "$work/repo" commit -q -am "v$i"
  commit=$(git -C "$work/repo" rev-parse HEAD)
  body="{\"ref\":\"refs/heads/main\",\"before\":\"0000000000000000000000000000000000000000\",\"after\":\"$commit\",\"commits\":[]}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
  t0=$(now_ms)
  status=$(curl -s -o "$work/hook.json" -w '%{http_code}' -X POST "http://$api/v1/webhooks/app" \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body")
  [[ "$status" == 202 ]] || { echo "error: webhook answered $status: $(cat "$work/hook.json")" >&2; exit 1; }
  deadline=$(($(now_ms) + 60000))
  until [[ "$(curl -fs "http://127.0.0.1:$prod/" 2>/dev/null)" == "v$i" ]]; do
    (($(now_ms) < deadline)) || { echo "error: run $i never served v$i" >&2; exit 1; }
    sleep 0.02
  done
  t_end=$(now_ms)
  mark=$(cat "$work/marks/$commit")
  first_cmd+=($((mark - t0)))
  end_to_end+=($((t_end - t0)))
  printf 'run %d: webhook -> first build command %5d ms, webhook -> v%d served %5d ms\n' \
    "$i" "${first_cmd[-1]}" "$i" "${end_to_end[-1]}"
done
touch "$work/stop-load"
wait "$load_pid" 2>/dev/null || true
read -r ok failed <"$work/load.result"

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%d %d", a[int((NR+1)/2)], a[NR]}'; }
read -r fc_med fc_max <<<"$(stats "${first_cmd[@]}")"
read -r e2e_med e2e_max <<<"$(stats "${end_to_end[@]}")"
verdict() { if (($1 <= $2)); then echo met; else echo MISSED; fi; }
v1=$(verdict "$fc_max" 200)
v2=$(verdict "$e2e_max" 5000)
v3=$(verdict "$failed" 0)
echo
echo "webhook -> first build command: median ${fc_med} ms, max ${fc_max} ms (goal <= 200 ms: $v1)"
echo "webhook -> new version served:  median ${e2e_med} ms, max ${e2e_max} ms (goal <= 3 s + 2 s health checks: $v2)"
echo "requests during the runs:       $ok ok, $failed failed (goal 0: $v3)"

if [[ -n "$markdown" ]]; then
  cat >"$markdown" <<EOF
| measure ($runs runs) | median | max | goal | |
|---|---|---|---|---|
| webhook received -> first build command running | $fc_med ms | $fc_max ms | <= 200 ms | $v1 |
| webhook received -> service answers the new version | $e2e_med ms | $e2e_max ms | <= 3 s + 2 s of health checks | $v2 |
| failed requests during the runs ($((ok + failed)) requests) | | $failed | 0 | $v3 |
EOF
fi
[[ "$v1 $v2 $v3" == "met met met" ]]
