#!/usr/bin/env bash
# Benchmarks Cutover's data plane against nginx and HAProxy, all in front of the same backend,
# on 127.0.0.1, in one run:
#   1. throughput and p99 with `wrk -t1 -c32`, `-c256`, and `-c32` with a new connection per
#      request (direct to the backend, nginx with 1 worker and upstream keepalive, HAProxy with 1
#      thread and `http-reuse always`, Cutover with 1 worker), then the ratios (MODES="c32 c256
#      close" picks which);
#   2. no loss: wrk for NOLOSS_SECONDS (60) through Cutover while weights flip between 100/0 and
#      0/100 every 2 s and a target is registered and deregistered (drained) in turn; the phase
#      passes with 0 non-2xx responses and 0 socket errors at >= 5k req/s;
#   3. resident memory of each proxy holding IDLE_CONNS (10,000) idle keep-alive client
#      connections (the descriptor limit is raised to the hard limit, 20,000 here);
#   4. --workers 2 against nginx with 2 workers (WORKERS2=0 skips it).
# The proxy process is pinned to CPU 0 with taskset, wrk and the backend to CPU 1 (LOAD_PIN=0:
# not pinned), when taskset exists; the load average is printed.
#
# usage: bench/proxy.sh  (env: BENCH_SECONDS=10 NOLOSS_SECONDS=60 IDLE_CONNS=10000
#        CUTOVER_BIN=... or CUTOVER_PROXY_BIN=... (a binary taking `cutover proxy`'s
#        arguments itself, such as the cutover-proxy `proxy` example))
# Installs wrk, nginx and haproxy with apt-get when missing; builds `cargo build --release -p
# cutover` unless CUTOVER_BIN names a binary. Cleans up every process it started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
seconds=${BENCH_SECONDS:-10}
noloss_seconds=${NOLOSS_SECONDS:-60}
work=$(mktemp -d /tmp/cutover-bench-proxy.XXXXXX)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || missing+=(nginx-light)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    apt-get install -y "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null
    }
  fi
}
need
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192
idle_conns=${IDLE_CONNS:-10000}
# The proxy under test gets CPU 0 to itself; the load generator and the backend share CPU 1, so
# the proxy is what limits throughput (wrk and the nginx backend need about 9 us per request
# together, the proxies 12-14). LOAD_PIN=0 leaves wrk and the backend unpinned.
pin=() load=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
  pin=(taskset -c 0)
  [[ "${LOAD_PIN:-1}" == 1 ]] && load=(taskset -c 1)
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -n "${CUTOVER_PROXY_BIN:-}" ]]; then
  cutover_proxy=("$CUTOVER_PROXY_BIN")
elif [[ -n "${CUTOVER_BIN:-}" ]]; then
  cutover_proxy=("$CUTOVER_BIN" proxy)
else
  (cd "$root" && cargo build --release -p cutover >&2)
  cutover_proxy=("${CARGO_TARGET_DIR:-$root/target}/release/cutover" proxy)
fi

BACKEND1=127.0.0.1:19101 BACKEND2=127.0.0.1:19102 BACKEND3=127.0.0.1:19103
NGINX=127.0.0.1:19201 HAPROXY=127.0.0.1:19202 CUTOVER=127.0.0.1:19203 ADMIN=127.0.0.1:19290

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  return 1
}

# --- backend: nginx answering a fixed 200 on three ports -------------------------------------
mkdir -p "$work/backend" "$work/nginx"
cat >"$work/backend/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen $BACKEND1; listen $BACKEND2; listen $BACKEND3;
    location / { return 200 "ok\n"; }
  }
}
EOF
"${load[@]}" nginx -p "$work/backend" -c "$work/backend/nginx.conf" &
pids+=($!)

# --- nginx as the proxy: 1 worker, upstream keepalive -----------------------------------------
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 19000; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server $BACKEND1; keepalive 64; }
  server {
    listen $NGINX;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
"${pin[@]}" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

# --- HAProxy: 1 thread, http-reuse always -------------------------------------------------------
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 9990 # HAProxy needs 2 descriptors per connection: 2 x 9990 + 14 <= 20,000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind $HAPROXY
  default_backend be
backend be
  server s1 $BACKEND1
EOF
"${pin[@]}" haproxy -f "$work/haproxy.cfg" -db &
pids+=($!)

# --- Cutover: 1 worker --------------------------------------------------------------------------
cat >"$work/lb.yaml" <<EOF
admin: $ADMIN
listeners:
  - name: prod
    address: $CUTOVER
    defaultAction:
      forward: [{targetGroup: blue, weight: 100}, {targetGroup: green, weight: 0}]
targetGroups:
  - name: blue
    targets: ["$BACKEND1"]
    healthCheck: {path: /, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2, matcher: "200-299"}
    deregistrationDelaySeconds: 5
  - name: green
    targets: ["$BACKEND2"]
    healthCheck: {path: /, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2, matcher: "200-299"}
    deregistrationDelaySeconds: 5
EOF
CUTOVER_LOG=warn RUST_LOG=warn "${pin[@]}" "${cutover_proxy[@]}" --config "$work/lb.yaml" --state-dir "$work/state" --workers 1 &
cutover_pid=$!
pids+=($cutover_pid)

for a in $BACKEND1 $BACKEND2 $BACKEND3 $NGINX $HAPROXY $CUTOVER $ADMIN; do wait_port "$a"; done
for _ in $(seq 1 100); do
  curl -fsS "http://$ADMIN/v1/health" | grep -q '"healthyHostCount":1,"unhealthyHostCount":0,"targets":\[{"address":"'"$BACKEND2" && break
  sleep 0.1
done

# --- 1. throughput ------------------------------------------------------------------------------
# Three loads, as the issue names them: 32 and 256 keep-alive connections, and a new connection
# per request (`Connection: close`, 32 at a time).
declare -A rps p99
to_ms() { # wrk latency such as 812.00us, 1.62ms, 1.01s -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
# CPU time (user, system; clock ticks) of the processes named, from /proc/PID/stat.
cpu_ticks() {
  local u=0 s=0 p a b
  for p in "$@"; do
    read -r a b < <(awk '{ print $14, $15 }' "/proc/$p/stat" 2>/dev/null || echo "0 0")
    u=$((u + a)) s=$((s + b))
  done
  echo "$u $s"
}
hz=$(getconf CLK_TCK)
declare -A procs cpu_us
procs[nginx]="$(pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' ')"
procs[haproxy]="$(pgrep -f "haproxy -f $work/haproxy.cfg" | head -1)"
procs[cutover]=$cutover_pid
run_wrk() { # name address [wrk args...]
  local name=$1 addr=$2
  shift 2
  local args=(-t1 -c32 "$@")
  "${load[@]}" wrk "${args[@]}" -d2s "http://$addr/" >/dev/null 2>&1 || true # warm-up (pools, caches)
  local out before after
  local pl=${procs[${name%%-*}]:-}
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pl)
  out=$("${load[@]}" wrk "${args[@]}" -d"${seconds}s" --latency "http://$addr/")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pl)
  echo "$out" >"$work/wrk-$name.txt"
  rps[$name]=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p99[$name]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  # The proxy's CPU per request (user + system), in microseconds.
  local total
  total=$(awk '/requests in/ { print $1 }' <<<"$out")
  cpu_us[$name]=$(awk -v b="$before" -v a="$after" -v n="$total" -v hz="$hz" 'BEGIN {
    split(b, x, " "); split(a, y, " ")
    if (n == 0 || (y[1] + y[2]) == 0) { print "-"; exit }
    printf "%.1f (%.1f+%.1f)", ((y[1] - x[1]) + (y[2] - x[2])) * 1e6 / hz / n, (y[1] - x[1]) * 1e6 / hz / n, (y[2] - x[2]) * 1e6 / hz / n }')
  if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
    echo "warning: $name had errors:" >&2
    grep -e "Non-2xx" -e "Socket errors" <<<"$out" >&2
  fi
}
compare() { # suffix title
  local s=$1
  echo
  echo "## throughput: $2, ${seconds}s, one worker per proxy"
  printf "%-10s %12s %10s %26s\n" target "req/s" "p99 ms" "CPU us/req (user+sys)"
  for n in direct nginx haproxy cutover; do printf "%-10s %12.0f %10s %26s\n" "$n" "${rps[$n$s]}" "${p99[$n$s]}" "${cpu_us[$n$s]}"; done
  local best=nginx
  awk -v a="${rps[haproxy$s]}" -v b="${rps[nginx$s]}" 'BEGIN { exit !(a > b) }' && best=haproxy
  awk -v c="${rps[cutover$s]}" -v n="${rps[nginx$s]}" -v h="${rps[haproxy$s]}" -v d="${rps[direct$s]}" \
    -v cp="${p99[cutover$s]}" -v np="${p99[nginx$s]}" -v hp="${p99[haproxy$s]}" -v best="$best" 'BEGIN {
      b = (best == "nginx") ? n : h; bp = (best == "nginx") ? np : hp
      printf "cutover/nginx %.2fx  cutover/haproxy %.2fx  cutover/direct %.2fx\n", c / n, c / h, c / d
      printf "goal: >= 1.10x the better peer (%s): %.2fx %s; p99 %s ms vs %s ms: %s\n", best, c / b, (c / b >= 1.1 ? "MET" : "NOT MET"), cp, bp, (cp <= bp ? "MET" : "NOT MET")
      if (c / d > 0.9) printf "note: cutover is at %.0f%% of direct, the load side'"'"'s ceiling: the req/s ratios are bounded by it\n", 100 * c / d
    }'
  # Requests per CPU-second: what each proxy could serve with its core to itself.
  awk -v c="${cpu_us[cutover$s]%% *}" -v n="${cpu_us[nginx$s]%% *}" -v h="${cpu_us[haproxy$s]%% *}" 'BEGIN {
    if (c + 0 == 0 || n + 0 == 0 || h + 0 == 0) exit
    b = (n < h) ? n : h
    printf "capacity (requests per CPU-second): cutover/nginx %.2fx  cutover/haproxy %.2fx  cutover/better %.2fx\n", n / c, h / c, b / c
  }'
}
modes=${MODES:-"c32 c256 close"}
for m in $modes; do
  case $m in
    c32) extra=() title="wrk -t1 -c32, keep-alive" ;;
    c256) extra=(-c256) title="wrk -t1 -c256, keep-alive" ;;
    close) extra=(-H "Connection: close") title="wrk -t1 -c32, a new connection per request" ;;
    *) echo "unknown mode $m (c32, c256, close)" >&2; exit 2 ;;
  esac
  for n in direct nginx haproxy cutover; do
    case $n in
      direct) a=$BACKEND1 ;; nginx) a=$NGINX ;; haproxy) a=$HAPROXY ;; cutover) a=$CUTOVER ;;
    esac
    run_wrk "$n-$m" "$a" "${extra[@]}"
  done
  compare "-$m" "$title"
done

# --- 2. no loss under weight flips and target churn -------------------------------------------
echo
echo "## no loss: ${noloss_seconds}s through cutover, weights flip every 2 s, a target is added and drained in turn"
"$here/proxy/flip.sh" "http://$ADMIN" "$BACKEND3" "$BACKEND1" "$BACKEND2" 2>"$work/flip.err" &
flip_pid=$!
pids+=($flip_pid)
out=$(wrk -t1 -c32 -d"${noloss_seconds}s" --latency "http://$CUTOVER/")
kill "$flip_pid" 2>/dev/null || true
echo "$out" >"$work/wrk-noloss.txt"
noloss_rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
total=$(awk '/requests in/ { print $1 }' <<<"$out")
non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$out")
sockerr=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
flips=$(curl -fsS "http://$ADMIN/v1/status" | sed -E 's/.*"version":([0-9]+).*/\1/')
printf "requests %s  req/s %.0f  non-2xx %s  socket errors %s  config versions applied %s  admin failures %s\n" \
  "$total" "$noloss_rps" "${non2xx:-0}" "${sockerr:-0}" "$flips" "$(wc -l <"$work/flip.err")"
if [[ "${non2xx:-0}" == 0 && "${sockerr:-0}" == 0 ]] && awk -v r="$noloss_rps" 'BEGIN { exit !(r >= 5000) }'; then
  echo "no-loss goal: MET"
else
  echo "no-loss goal: NOT MET"
fi

# --- 3. memory with 1,000 idle keep-alive connections ------------------------------------------
echo
echo "## resident memory with $idle_conns idle keep-alive client connections (descriptor limit $(ulimit -n))"
rss_of() { # pid... -> total VmRSS in KiB
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0))); done
  echo $t
}
nginx_pids() { pgrep -P "$(cat "$work/nginx/nginx.pid")" | tr '\n' ' '; cat "$work/nginx/nginx.pid"; }
haproxy_pid=$(pgrep -f "haproxy -f $work/haproxy.cfg" | head -1)
printf "%-10s %12s %14s %14s\n" proxy "idle KiB" "with conns KiB" "bytes per conn"
for n in nginx haproxy cutover; do
  case $n in
    nginx) addr=$NGINX; ps_list=$(nginx_pids) ;;
    haproxy) addr=$HAPROXY; ps_list=$haproxy_pid ;;
    cutover) addr=$CUTOVER; ps_list=$cutover_pid ;;
  esac
  conns=$idle_conns
  [[ $n == haproxy && $conns -gt 9900 ]] && conns=9900 # its maxconn above
  # shellcheck disable=SC2086
  before=$(rss_of $ps_list)
  : >"$work/idle-$n.txt"
  python3 "$here/proxy/idle_conns.py" "${addr%:*}" "${addr#*:}" "$conns" 5 >"$work/idle-$n.txt" &
  holder=$!
  for _ in $(seq 1 600); do grep -q ready "$work/idle-$n.txt" && break; sleep 0.1; done
  # shellcheck disable=SC2086
  after=$(rss_of $ps_list)
  wait "$holder" || true
  printf "%-10s %12s %14s %14s   (%s)\n" "$n" "$before" "$after" "$(((after - before) * 1024 / conns))" "$(cat "$work/idle-$n.txt")"
done

# --- 4. two workers: Cutover --workers 2 against nginx with 2 workers --------------------------
if [[ "${WORKERS2:-1}" == 1 ]]; then
  NGINX2=127.0.0.1:19204 CUTOVER2=127.0.0.1:19205
  mkdir -p "$work/nginx2"
  sed -e "s|worker_processes 1;|worker_processes 2;|" -e "s|$work/nginx/|$work/nginx2/|g" \
    -e "s|listen $NGINX;|listen $NGINX2;|" "$work/nginx/nginx.conf" >"$work/nginx2/nginx.conf"
  nginx -p "$work/nginx2" -c "$work/nginx2/nginx.conf" &
  pids+=($!)
  sed -e "s|address: $CUTOVER|address: $CUTOVER2|" -e "/^admin:/d" "$work/lb.yaml" >"$work/lb2.yaml"
  CUTOVER_LOG=warn RUST_LOG=warn "${cutover_proxy[@]}" --config "$work/lb2.yaml" --state-dir "$work/state2" --workers 2 &
  pids+=($!)
  wait_port "$NGINX2"
  wait_port "$CUTOVER2"
  sleep 3 # health checks
  run_wrk nginx2 "$NGINX2"
  run_wrk cutover2 "$CUTOVER2"
  echo
  echo "## two workers (not pinned): wrk -t1 -c32 -d${seconds}s"
  awk -v c="${rps[cutover2]}" -v n="${rps[nginx2]}" -v cp="${p99[cutover2]}" -v np="${p99[nginx2]}" 'BEGIN {
    printf "nginx 2 workers %.0f req/s (p99 %s ms), cutover --workers 2 %.0f req/s (p99 %s ms): %.2fx\n", n, np, c, cp, c / n }'
fi
