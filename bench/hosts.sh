#!/usr/bin/env bash
# Host agents and deployments (issue 12), on 127.0.0.1.
# 1. Idle agents: starts a server and FLEET agents (`--root` under a work
#    directory), waits until they are registered, then samples the first
#    AGENTS agents' RSS (total, anonymous, file-backed) and CPU time over
#    IDLE seconds of long polls.
# 2. Per-host overhead: a OneAtATime deployment of a revision whose five
#    hooks are `exit 0` to ONE hosts; the deployment's time per host less
#    the hooks' own time (their events' durations are printed too).
# 3. The fleet: an AllAtOnce deployment of the same revision to all FLEET
#    agents; its time and the server's CPU time meanwhile.
#
# usage: bench/hosts.sh
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), AGENTS (1),
#        IDLE (30 s), ONE (5), FLEET (100), KEEP_WORK=1 keeps the work directory.
# Goals: an idle agent at most 10 MiB RSS and ~0 CPU; at most 100 ms per
# host beyond the scripts' own time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
esac
agents=${AGENTS:-1}
idle=${IDLE:-30}
one=${ONE:-5}
fleet=${FLEET:-100}
(( fleet >= agents && fleet >= one )) || { echo "FLEET must be at least AGENTS and ONE" >&2; exit 2; }
if [[ -z "${CUTOVER_BIN:-}" ]]; then
  cargo build --release -p cutover >&2
  CUTOVER_BIN="${CARGO_TARGET_DIR:-target}/release/cutover"
fi
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The data plane the server started outlives it by design.
  if [[ -f "$work/data/proxy/proxy.pid" ]]; then
    kill "$(head -c 20 "$work/data/proxy/proxy.pid" | tr -dc 0-9)" 2>/dev/null || true
  fi
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$CUTOVER_BIN" server --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -fs "$url/v1/status" >/dev/null && break; sleep 0.1; done
for i in $(seq "$fleet"); do
  tags=env=bench
  (( i <= one )) && tags=$tags,first=yes
  "$CUTOVER_BIN" --server "$url" agent --name "h$i" --tags "$tags" --root "$work/h$i" \
    >"$work/agent-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 600); do
  n=$(CUTOVER_SERVER=$url "$CUTOVER_BIN" agents ls -o json | python3 -c 'import json,sys; print(sum(a["online"] for a in json.load(sys.stdin)["agents"]))')
  [[ "$n" == "$fleet" ]] && break
  sleep 0.1
done
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
declare -A before
sampled=("${pids[@]:1:$agents}")
for p in "${sampled[@]}"; do before[$p]=$(cpu "$p"); done
sleep "$idle"
printf '%-8s %10s %10s %10s %14s\n' agent "RSS KiB" "anon KiB" "file KiB" "CPU ms/${idle}s"
i=0
for p in "${sampled[@]}"; do
  i=$((i + 1))
  read -r rss anon file < <(awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, a, f}' "/proc/$p/status")
  ms=$(( ($(cpu "$p") - before[$p]) * 1000 / hz ))
  printf '%-8s %10s %10s %10s %14s\n' "h$i" "$rss" "$anon" "$file" "$ms"
done

# Deployments: a revision with trivial hooks, one group per part.
cat >"$work/stack.yaml" <<'YAML'
applications:
  bench:
    computePlatform: Server
    deploymentGroups:
      one:
        onPremisesTagFilters: [{Key: first, Value: "yes", Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.OneAtATime
      all:
        onPremisesTagFilters: [{Key: env, Value: bench, Type: KEY_AND_VALUE}]
        deploymentConfig: CodeDeployDefault.AllAtOnce
YAML
(cd "$work" && CUTOVER_SERVER=$url "$CUTOVER_BIN" apply -f stack.yaml >/dev/null)
rev=$work/rev
mkdir -p "$rev/hooks"
echo v1 >"$rev/VERSION"
printf '#!/bin/sh\nexit 0\n' >"$rev/hooks/noop.sh"
chmod +x "$rev/hooks/noop.sh"
{
  printf 'version: 0.0\nos: linux\nfiles:\n  - source: VERSION\n    destination: /srv/bench\nfile_exists_behavior: OVERWRITE\nhooks:\n'
  for e in ApplicationStop BeforeInstall AfterInstall ApplicationStart ValidateService; do
    printf '  %s:\n    - location: hooks/noop.sh\n' "$e"
  done
} >"$rev/appspec.yml"
# deploy GROUP: deploys $rev (v1 then v2: ApplicationStop runs the second
# time), prints "wall_ms id" of the second deployment.
deploy() {
  local out t0 t1
  for v in v1 v2; do
    echo "$v" >"$rev/VERSION"
    t0=$(date +%s%N)
    out=$(CUTOVER_SERVER=$url "$CUTOVER_BIN" deploy --application bench --deployment-group "$1" --revision "$rev" --wait) \
      || { echo "$out" >&2; exit 1; }
    t1=$(date +%s%N)
  done
  echo "$(( (t1 - t0) / 1000000 )) $(head -1 <<<"$out" | sed -E 's/^deployment ([^:]+):.*/\1/')"
}
# The deployment's own time and its events' total time per host.
summary() {
  CUTOVER_SERVER=$url "$CUTOVER_BIN" deployments get "$1" -o json | python3 -c '
import json, sys
d = json.load(sys.stdin)
hosts = d["targets"]
total = d["finishedAtMs"] - d["createdAtMs"]
scripts = ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
ev = [sum(e["endedAtMs"] - e["startedAtMs"] for e in t["events"] if e["event"] in scripts) for t in hosts]
print(total, len(hosts), sum(ev) / len(hosts), d["status"])'
}
read -r wall id < <(deploy one)
read -r total n hooks status < <(summary "$id")
echo
echo "OneAtATime to $n hosts, trivial hooks ($status): ${total} ms in the server (${wall} ms for the CLI)"
own=$( { TIMEFORMAT=%R; time (for _ in 1 2 3 4 5; do "$rev/hooks/noop.sh"; done); } 2>&1 )
python3 -c "t,n,h,o=$total,$n,$hooks,$own*1000; print(f'per host: {t/n:.0f} ms; the five hook events {h:.0f} ms of it (round trips included); the scripts alone {o:.0f} ms; overhead beyond them {t/n-o:.0f} ms')"
spid=${pids[0]}
c0=$(cpu "$spid")
read -r wall id < <(deploy all)
c1=$(cpu "$spid")
read -r total n hooks status < <(summary "$id")
echo "AllAtOnce to $n hosts ($status): ${total} ms in the server (${wall} ms for the CLI)"
echo "server CPU over both deployments (v1, v2): $(( (c1 - c0) * 1000 / hz )) ms"
