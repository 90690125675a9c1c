#!/usr/bin/env bash
# Host agents (issue 12), on 127.0.0.1: an idle agent's memory and CPU.
# Starts a server and AGENTS agents (`--root` under a work directory),
# waits until they are registered, then samples each agent's RSS (total,
# anonymous, file-backed) and its CPU time over IDLE seconds of long polls.
# (The deployment overhead per host and the 100-agent AllAtOnce deployment
# need the host-deployment driver; they are added with it.)
#
# usage: bench/hosts.sh
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), AGENTS (1),
#        IDLE (30 s), KEEP_WORK=1 keeps the work directory.
# Goal: an idle agent at most 10 MiB RSS, and ~0 CPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
esac
agents=${AGENTS:-1}
idle=${IDLE:-30}
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
for i in $(seq "$agents"); do
  "$CUTOVER_BIN" --server "$url" agent --name "h$i" --tags env=bench --root "$work/h$i" \
    >"$work/agent-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 300); do
  n=$(CUTOVER_SERVER=$url "$CUTOVER_BIN" agents ls -o json | python3 -c 'import json,sys; print(sum(a["online"] for a in json.load(sys.stdin)["agents"]))')
  [[ "$n" == "$agents" ]] && break
  sleep 0.1
done
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
declare -A before
for p in "${pids[@]:1}"; do before[$p]=$(cpu "$p"); done
sleep "$idle"
printf '%-8s %10s %10s %10s %14s\n' agent "RSS KiB" "anon KiB" "file KiB" "CPU ms/${idle}s"
i=0
for p in "${pids[@]:1}"; do
  i=$((i + 1))
  read -r rss anon file < <(awk '/^VmRSS/{r=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print r, a, f}' "/proc/$p/status")
  ms=$(( ($(cpu "$p") - before[$p]) * 1000 / hz ))
  printf '%-8s %10s %10s %10s %14s\n' "h$i" "$rss" "$anon" "$file" "$ms"
done
