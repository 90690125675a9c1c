#!/usr/bin/env bash
# Per-request cost of Cutover's HTTP/1 keep-alive forwarding path, in deterministic units
# (independent of other load on the machine):
#   - heap allocations (and bytes) per request: the proxy_alloc example (a counting global
#     allocator) around N requests, after a warm-up; and the live heap per idle keep-alive
#     connection (IDLE connections held after one request each);
#   - instructions per request: the proxy example under `valgrind --tool=callgrind`, counters
#     zeroed after the warm-up and dumped after N requests.
# Backend: nginx answering a fixed 200 "ok\n". Client: keepalive_client.py, C connections.
#
# usage: bench/proxy/perreq.sh   (env: N=20000 C=32 CALLGRIND=1 CARGO_TARGET_DIR; CLOSE=1: a new
#        connection per request, so the counts are per one-request connection)
# Needs the release examples: cargo build --release -p cutover-proxy --example proxy --example proxy_alloc
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/examples
n=${N:-20000}
c=${C:-32}
work=$(mktemp -d /tmp/cutover-perreq.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
BACKEND=127.0.0.1:19111 PROXY=127.0.0.1:19213
wait_port() {
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}
mkdir -p "$work/backend"
cat >"$work/backend/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen $BACKEND; location / { return 200 "ok\n"; } }
}
CONF
nginx -p "$work/backend" -c "$work/backend/nginx.conf" &
pids+=($!)
cat >"$work/lb.yaml" <<CONF
listeners:
  - name: prod
    address: $PROXY
    defaultAction:
      forward: [{targetGroup: blue, weight: 100}]
targetGroups:
  - name: blue
    targets: ["$BACKEND"]
CONF
wait_port "$BACKEND"
mode=()
[[ "${CLOSE:-0}" == 1 ]] && mode=(close)
client() { python3 "$here/keepalive_client.py" "${PROXY%:*}" "${PROXY#*:}" "$1" "$c" "${mode[@]}"; }

# --- allocations ---------------------------------------------------------------------------
coproc ALLOC { RUST_LOG=warn exec "$bin/proxy_alloc" --config "$work/lb.yaml"; }
pids+=($ALLOC_PID)
wait_port "$PROXY"
count() { echo >&"${ALLOC[1]}"; read -r -u "${ALLOC[0]}" _ a _ b _ l; echo "$a $b $l"; }
client 2000
read -r a0 b0 _ < <(count)
client "$n"
read -r a1 b1 l1 < <(count)
awk -v a="$((a1 - a0))" -v b="$((b1 - b0))" -v n="$n" 'BEGIN { printf "allocations per request: %.2f (%.0f bytes)\n", a / n, b / n }'
# Live heap per idle keep-alive connection: IDLE (1,000) connections held after one request.
idle=${IDLE:-1000}
python3 "$here/idle_conns.py" "${PROXY%:*}" "${PROXY#*:}" "$idle" 30 >"$work/idle.txt" &
holder=$!
for _ in $(seq 1 300); do grep -q ready "$work/idle.txt" && break; sleep 0.1; done
read -r _ _ l2 < <(count)
awk -v l="$((l2 - l1))" -v n="$idle" 'BEGIN { printf "live heap per idle connection: %.0f bytes\n", l / n }'
kill "$holder" 2>/dev/null || true
kill "$ALLOC_PID"; wait "$ALLOC_PID" 2>/dev/null || true

# --- instructions ----------------------------------------------------------------------------
if [[ "${CALLGRIND:-1}" == 1 ]]; then
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
    "$bin/proxy" --config "$work/lb.yaml" 2>"$work/valgrind.log" &
  vg=$!
  pids+=($vg)
  wait_port "$PROXY"
  client 2000
  callgrind_control -z "$vg" >/dev/null 2>&1
  client "$n"
  callgrind_control -d "$vg" >/dev/null 2>&1
  sleep 1
  f=$(ls -t "$work"/cg.* | head -1)
  ir=$(awk '/^summary:|^totals:/ { print $2; exit }' "$f")
  awk -v ir="$ir" -v n="$n" 'BEGIN { printf "instructions per request: %.0f\n", ir / n }'
  if [[ -n "${KEEP_PROFILE:-}" ]]; then cp "$f" "$KEEP_PROFILE"; fi
fi
