#!/usr/bin/env bash
# Measures Cutover's data plane under hostile clients (issue 14), on 127.0.0.1 only:
#   1. baseline: `wrk -t1 -c32` through the proxy (defaults, 1 worker) to an nginx backend;
#   2. attack: IDLE (10,000) connections that send nothing plus SLOW (500) slowloris
#      connections that send one header byte every SLOW_INTERVAL (5) seconds, each reopened as
#      soon as the proxy closes it, then the same wrk run while they are held;
#   3. prints req/s and p99 for both runs, their ratio, the proxy's RSS (from /proc) before the
#      attack, under it and after it, and the goal check: p99 under attack within 2x of the
#      baseline, and RSS bounded (under attack below RSS_LIMIT_MB, 512 by default).
#
# usage: bench/hostile.sh   (env: BENCH_SECONDS=10 IDLE=10000 SLOW=500 SLOW_INTERVAL=5
#                            RSS_LIMIT_MB=512 CUTOVER_BIN=...)
# Installs wrk and nginx-light with apt-get when missing; builds `cargo build --release -p
# cutover` (CARGO_TARGET_DIR or target/) unless CUTOVER_BIN names a binary. Raises `ulimit -n`
# to the hard limit. Every loop is bounded in time; every process it started is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
idle=${IDLE:-10000}
slow=${SLOW:-500}
slow_interval=${SLOW_INTERVAL:-5}
rss_limit_mb=${RSS_LIMIT_MB:-512}
work=$(mktemp -d /tmp/cutover-bench-hostile.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  echo "installing ${missing[*]}" >&2
  apt-get install -y "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null
  }
fi
ulimit -n "$(ulimit -Hn)"

if [[ -n "${CUTOVER_BIN:-}" ]]; then
  cutover=$CUTOVER_BIN
else
  (cd "$root" && cargo build --release -p cutover >&2)
  cutover=${CARGO_TARGET_DIR:-$root/target}/release/cutover
fi

BACKEND=127.0.0.1:19301 CUTOVER=127.0.0.1:19302 ADMIN=127.0.0.1:19390

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

# --- backend: nginx answering a fixed 200 ------------------------------------------------------
mkdir -p "$work/backend"
cat >"$work/backend/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server { listen $BACKEND; location / { return 200 "ok\n"; } }
}
EOF
nginx -p "$work/backend" -c "$work/backend/nginx.conf" &
pids+=($!)

# --- Cutover with its defaults, 1 worker --------------------------------------------------------
cat >"$work/lb.yaml" <<EOF
admin: $ADMIN
listeners:
  - name: prod
    address: $CUTOVER
    defaultAction:
      forward: [{targetGroup: blue}]
targetGroups:
  - name: blue
    targets: ["$BACKEND"]
    healthCheck: {path: /, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
EOF
CUTOVER_LOG=warn RUST_LOG=warn "$cutover" proxy --config "$work/lb.yaml" --state-dir "$work/state" \
  --workers 1 2>"$work/proxy.log" &
cutover_pid=$!
pids+=($cutover_pid)
for a in $BACKEND $CUTOVER $ADMIN; do wait_port "$a"; done
for _ in $(seq 1 100); do
  curl -fsS "http://$ADMIN/v1/health" | grep -q '"healthyHostCount":1' && break
  sleep 0.1
done

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$cutover_pid/status"; }
to_ms() { # wrk latency such as 812.00us, 1.62ms, 1.01s -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
declare -A rps p99 errors
run_wrk() { # name
  local out
  out=$(wrk -t1 -c32 -d"${seconds}s" --timeout 5s --latency "http://$CUTOVER/")
  echo "$out" >"$work/wrk-$1.txt"
  rps[$1]=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p99[$1]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors[$1]=$( (grep -e "Non-2xx" -e "Socket errors" <<<"$out" || echo none) | tr '\n' ' ')
}

# --- 1. baseline ------------------------------------------------------------------------------
wrk -t1 -c32 -d2s "http://$CUTOVER/" >/dev/null 2>&1 || true # warm-up (pools)
rss_before=$(rss_mb)
run_wrk unloaded

# --- 2. under attack ----------------------------------------------------------------------------
attack_seconds=$((seconds + 60))
python3 "$here/hostile/attack.py" 127.0.0.1 "${CUTOVER#*:}" "$idle" "$slow" "$slow_interval" \
  "$attack_seconds" >"$work/attack.out" 2>&1 &
attack_pid=$!
pids+=($attack_pid)
for _ in $(seq 1 600); do # 60 s at most to open every connection
  grep -q '^ready' "$work/attack.out" && break
  sleep 0.1
done
grep -q '^ready' "$work/attack.out" || { echo "the attack never got ready" >&2; cat "$work/attack.out" >&2; exit 1; }
sleep 2 # let the proxy accept the backlog
open_conns=$(curl -fsS "http://$ADMIN/v1/status" | sed -n 's/.*"activeConnections":\([0-9]*\).*/\1/p')
rss_attack_start=$(rss_mb)
run_wrk attacked
rss_attack=$(rss_mb)
open_after=$(curl -fsS "http://$ADMIN/v1/status" | sed -n 's/.*"activeConnections":\([0-9]*\).*/\1/p')
kill "$attack_pid" 2>/dev/null || true
wait "$attack_pid" 2>/dev/null || true
sleep 2
rss_after=$(rss_mb)

# --- 3. report ----------------------------------------------------------------------------------
echo
echo "## hostile clients: wrk -t1 -c32 -d${seconds}s through cutover (defaults, 1 worker)"
echo "attack: $(head -1 "$work/attack.out") (idle, slowloris every ${slow_interval}s); proxy held $open_conns connections at the start of the run, $open_after at its end"
printf "%-10s %12s %10s  %s\n" run "req/s" "p99 ms" errors
for n in unloaded attacked; do printf "%-10s %12.0f %10s  %s\n" "$n" "${rps[$n]}" "${p99[$n]}" "${errors[$n]}"; done
echo "RSS MB: before $rss_before, attack start $rss_attack_start, under attack $rss_attack, after $rss_after"
awk -v ur="${rps[unloaded]}" -v ar="${rps[attacked]}" -v up="${p99[unloaded]}" -v ap="${p99[attacked]}" \
  -v rss="$rss_attack" -v lim="$rss_limit_mb" 'BEGIN {
    printf "req/s attacked/unloaded %.2fx, p99 attacked/unloaded %.2fx\n", ar / ur, ap / up
    printf "goal: p99 under attack within 2x of unloaded: %s; RSS under attack %.1f MB < %d MB: %s\n", (ap <= 2 * up ? "MET" : "NOT MET"), rss, lim, (rss < lim ? "MET" : "NOT MET")
  }'
echo "proxy log lines during the run: $(wc -l <"$work/proxy.log")"
