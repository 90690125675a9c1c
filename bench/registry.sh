#!/usr/bin/env bash
# Registry throughput (issue 11): push, then pull, of an image with one
# SIZE_MB layer with skopeo, against `cutover server`'s /v2/ and Debian's
# `docker-registry` (CNCF distribution 2.8) side by side on this machine,
# both on 127.0.0.1 over plain HTTP with filesystem storage in a temporary
# directory. Each round makes a fresh random layer (so nothing is
# deduplicated), pushes it to both registries in alternating order, then
# pulls it back from both; the median of RUNS rounds is printed with the
# ratio, and the peak RSS of each registry process (VmHWM) shows whether a
# layer was held in memory.
#
# usage: bench/registry.sh
#   env: CUTOVER_BIN (default: cargo build --release -p cutover), SIZE_MB
#        (200), RUNS (3), KEEP_WORK=1 keeps the work directory.
# Goal: cutover's push and pull throughput at least distribution's.
# Installs skopeo and docker-registry from Debian when missing. Cleans up
# every process it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
esac
size_mb=${SIZE_MB:-200}
runs=${RUNS:-3}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
if ((${#need[@]})); then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
# The packaged service (if it runs, on :5000) is left alone: this benchmark
# runs its own instance on a free port with its own storage.

if [[ -z ${CUTOVER_BIN:-} ]]; then
  cargo build --release --locked -p cutover >&2
  CUTOVER_BIN=${CARGO_TARGET_DIR:-$root/target}/release/cutover
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

# cutover server, a repository, a token (minted from the installation's key
# as `aws ecr get-login-password` would hand it out).
cport=$(free_port)
"$CUTOVER_BIN" server --listen 127.0.0.1:"$cport" --data-dir "$work/cutover" >"$work/cutover.log" 2>&1 &
cpid=$!
pids+=("$cpid")
wait_port "$cport"
curl -s -o /dev/null "http://127.0.0.1:$cport/v2/" || true
token=$(python3 - "$work/cutover/state.db" <<'PY'
import hashlib, hmac, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
db.execute("INSERT OR IGNORE INTO registry_repositories (name, created_at, tag_mutability, scan_on_push, anonymous_pull) VALUES ('bench', 0, 'MUTABLE', 0, 0)")
db.commit()
kid, secret = db.execute("SELECT value FROM settings WHERE key = 'registry.token_key'").fetchone()[0].split(":", 1)
exp = int(time.time() * 1000) + 3600_000
mac = hmac.new(secret.encode(), f"cutover-registry:{kid}.{exp}".encode(), hashlib.sha256).hexdigest()
print(f"{kid}.{exp}.{mac}")
PY
)

# distribution
dport=$(free_port)
mkdir -p "$work/distribution"
cat >"$work/distribution.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $work/distribution}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$dport}
YML
docker-registry serve "$work/distribution.yml" >"$work/distribution.log" 2>&1 &
dpid=$!
pids+=("$dpid")
wait_port "$dport"

# One OCI layout per round: a SIZE_MB layer of random bytes (incompressible).
make_layout() {
  local dir=$1 layer cfg man idx
  mkdir -p "$dir/blobs/sha256"
  head -c "${size_mb}M" /dev/urandom >"$work/layer.bin"
  tar -C "$work" -cf "$work/layer.tar" layer.bin
  python3 - "$dir" "$work/layer.tar" <<'PY'
import hashlib, json, os, shutil, sys
out, tar = sys.argv[1], sys.argv[2]
def put(b):
    d = hashlib.sha256(b).hexdigest()
    open(os.path.join(out, "blobs/sha256", d), "wb").write(b)
    return "sha256:" + d
h = hashlib.sha256()
with open(tar, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
ld = h.hexdigest(); size = os.path.getsize(tar)
shutil.move(tar, os.path.join(out, "blobs/sha256", ld))
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + ld]}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": size}]}).encode()
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": put(man), "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
    open(os.path.join(out, "index.json"), "w"))
PY
}

secs() { python3 -c 'import time; print(time.monotonic())'; }
timed() { local t0 t1; t0=$(secs); "$@" >/dev/null 2>>"$work/skopeo.log"; t1=$(secs); python3 -c "print(f'{$size_mb / ($t1 - $t0):.1f}')"; }
push() { # registry port creds round
  local args=(copy --preserve-digests --dest-tls-verify=false)
  [[ -n $3 ]] && args+=(--dest-creds "$3")
  timed skopeo "${args[@]}" "oci:$work/layout-$4:bench" "docker://127.0.0.1:$2/bench:r$4"
}
pull() {
  local args=(copy --preserve-digests --src-tls-verify=false)
  [[ -n $3 ]] && args+=(--src-creds "$3")
  rm -rf "$work/pulled"
  timed skopeo "${args[@]}" "docker://127.0.0.1:$2/bench:r$4" "oci:$work/pulled:bench"
}

declare -A res
for r in $(seq "$runs"); do
  make_layout "$work/layout-$r"
  if ((r % 2)); then order=(cutover distribution); else order=(distribution cutover); fi
  for reg in "${order[@]}"; do
    if [[ $reg == cutover ]]; then res[cutover_push]+="$(push cutover "$cport" "AWS:$token" "$r") "
    else res[distribution_push]+="$(push distribution "$dport" "" "$r") "; fi
  done
  for reg in "${order[@]}"; do
    if [[ $reg == cutover ]]; then res[cutover_pull]+="$(pull cutover "$cport" "AWS:$token" "$r") "
    else res[distribution_pull]+="$(pull distribution "$dport" "" "$r") "; fi
  done
  rm -rf "$work/layout-$r"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
hwm() { awk '/VmHWM/ {printf "%d MiB", $2/1024}' "/proc/$1/status"; }
echo "registry throughput, ${size_mb} MB layer, skopeo, median of $runs rounds (MB/s)"
printf '%-14s %10s %10s %14s\n' registry push pull "peak RSS"
for reg in cutover distribution; do
  p=$(echo "${res[${reg}_push]}" | median); q=$(echo "${res[${reg}_pull]}" | median)
  if [[ $reg == cutover ]]; then pid=$cpid; else pid=$dpid; fi
  printf '%-14s %10s %10s %14s\n' "$reg" "$p" "$q" "$(hwm "$pid")"
done
python3 - "$(echo "${res[cutover_push]}" | median)" "$(echo "${res[distribution_push]}" | median)" \
  "$(echo "${res[cutover_pull]}" | median)" "$(echo "${res[distribution_pull]}" | median)" <<'PY'
import sys
cp, dp, cq, dq = map(float, sys.argv[1:])
print(f"ratio cutover/distribution: push {cp / dp:.2f}, pull {cq / dq:.2f} (goal: at least 1.00)")
PY
echo "rounds: cutover push ${res[cutover_push]}| pull ${res[cutover_pull]}"
echo "rounds: distribution push ${res[distribution_push]}| pull ${res[distribution_pull]}"
