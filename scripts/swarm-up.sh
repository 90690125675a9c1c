#!/usr/bin/env bash
# Sets up a two-node Docker Swarm on this one machine, for `runtime: swarm`
# (issue 15) and its end-to-end test:
#
#   root namespace ── bridge cutover-sw0 10.77.0.1/24
#        ├── veth ── netns cutover-sw1  10.77.0.11  dockerd (swarm manager)
#        └── veth ── netns cutover-sw2  10.77.0.12  dockerd (swarm worker)
#
# The nodes' traffic stays on the bridge: no route out of the namespaces, no
# forwarding, no NAT (`--iptables=false --bridge=none`). Each dockerd runs
# in its namespace through `nsenter --net=` (not `ip netns exec`, which
# remounts /sys and hides the cgroup mounts from dockerd), with its own
# data-root, exec-root and pidfile under $SWARM_DIR, and listens on a unix
# socket in $SWARM_DIR (mode 0660, root's): the mount namespace is shared, so
# the root namespace reaches it. A Docker socket is root on that node: only
# root may open it, and the daemons listen on no TCP port.
#
# Loads the project's test image (built by scripts/build-test-images.sh with
# Podman) into every node (`podman save | docker load`), since no registry is
# reachable, and tags it `cutover-sample:test` there too.
#
# Prints shell lines for `eval "$(scripts/swarm-up.sh)"`:
#   export DOCKER_HOST=unix://.../node1/docker.sock   (the manager)
#   export CUTOVER_SWARM_NODE1=10.77.0.11 CUTOVER_SWARM_NODE2=10.77.0.12
# Everything else goes to stderr. Idempotent: a second run finds what is
# there and prints the same lines. scripts/swarm-down.sh removes it all.
#
# Environment:
#   SWARM_DIR    state folder (default /run/cutover-swarm; not /tmp: a local
#                user could plant a fake engine there)
#   SWARM_IMAGE  the image to load (default cutover-sample:test); empty: none
set -euo pipefail

dir="${SWARM_DIR:-/run/cutover-swarm}"
image="${SWARM_IMAGE-cutover-sample:test}"
bridge=cutover-sw0
prefix=10.77.0
nodes=(1 2)

log() { echo "swarm-up: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (network namespaces and dockerd need it)"

# 1. Packages: Debian's Docker Engine (the docker CLI alone is not enough).
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
# Debian's package enables a systemd unit; on a machine with systemd it must
# not grab /var/run/docker.sock behind our back. We never start it.

mkdir -p "$dir"
chmod 700 "$dir"

# 2. The bridge in the root namespace and one namespace per node.
if ! ip link show "$bridge" >/dev/null 2>&1; then
  ip link add "$bridge" type bridge
fi
ip addr replace "$prefix.1/24" dev "$bridge"
ip link set "$bridge" up
for n in "${nodes[@]}"; do
  ns="cutover-sw$n"
  [ -e "/var/run/netns/$ns" ] || ip netns add "$ns"
  if ! ip link show "cutover-sw${n}h" >/dev/null 2>&1; then
    ip link add "cutover-sw${n}h" type veth peer name eth0 netns "$ns"
  fi
  ip link set "cutover-sw${n}h" master "$bridge" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$prefix.1$n/24" dev eth0
  ip -n "$ns" link set eth0 up
done

# 3. One dockerd per namespace.
sock() { echo "$dir/node$1/docker.sock"; }
dk() { local n="$1"; shift; DOCKER_HOST="unix://$(sock "$n")" docker "$@"; }
for n in "${nodes[@]}"; do
  d="$dir/node$n"
  mkdir -p "$d/data" "$d/exec"
  if dk "$n" version >/dev/null 2>&1; then continue; fi
  log "starting dockerd of node $n ($prefix.1$n)"
  rm -f "$(sock "$n")" "$d/dockerd.pid"
  # setsid: the daemon outlives this script and its terminal.
  setsid nsenter --net="/var/run/netns/cutover-sw$n" \
    dockerd --host "unix://$(sock "$n")" --group root \
      --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
      --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" \
      --log-level warn \
      </dev/null >"$d/dockerd.log" 2>&1 &
done
for n in "${nodes[@]}"; do
  for _ in $(seq 1 300); do
    dk "$n" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  dk "$n" version >/dev/null 2>&1 || die "dockerd of node $n does not answer; see $dir/node$n/dockerd.log"
  chmod 660 "$(sock "$n")"
done

# 4. The swarm: node 1 manages, node 2 joins.
state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}'; }
if [ "$(state 1)" != active ]; then
  log "swarm init on node 1"
  dk 1 swarm init --advertise-addr "$prefix.11" --listen-addr "$prefix.11:2377" >/dev/null
fi
if [ "$(state 2)" != active ]; then
  log "node 2 joins"
  token="$(dk 1 swarm join-token -q worker)"
  dk 2 swarm join --token "$token" --advertise-addr "$prefix.12" --listen-addr "$prefix.12:2377" "$prefix.11:2377" >/dev/null
fi
for _ in $(seq 1 100); do
  ready="$(dk 1 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)"
  [ "$ready" -ge 2 ] && break
  sleep 0.1
done
[ "$ready" -ge 2 ] || die "the swarm has $ready ready nodes, not 2"
# Names the tests and placement constraints can use (node.labels.cutover-node).
for n in "${nodes[@]}"; do
  id="$(dk "$n" info --format '{{.Swarm.NodeID}}')"
  dk 1 node update --label-add "cutover-node=node$n" "$id" >/dev/null
done

# 5. The test image, in every node.
if [ -n "$image" ]; then
  want=""
  if command -v podman >/dev/null && podman image exists "$image" 2>/dev/null; then
    want="$(podman image inspect --format '{{.Id}}' "$image")"
  fi
  for n in "${nodes[@]}"; do
    have="$(dk "$n" image inspect --format '{{ index .Config.Labels "cutover.podman-id" }}' "$image" 2>/dev/null || true)"
    if [ -z "$want" ]; then
      [ -n "$(dk "$n" image ls -q "$image")" ] || log "warning: no image $image in podman nor in node $n (run scripts/build-test-images.sh)"
      continue
    fi
    [ "$have" = "$want" ] && continue
    log "loading $image into node $n"
    # docker load keeps podman's name (localhost/...); a small build on top
    # gives the short name and records which podman image it came from.
    podman save "$image" | dk "$n" load -q >&2
    loaded="$(podman image inspect --format '{{index .RepoTags 0}}' "$image")"
    printf 'FROM %s\nLABEL cutover.podman-id=%s\n' "$loaded" "$want" |
      DOCKER_BUILDKIT=0 dk "$n" build -q -t "$image" - >/dev/null 2>&1
  done
fi

echo "export DOCKER_HOST=unix://$(sock 1)"
echo "export CUTOVER_SWARM_NODE1=$prefix.11 CUTOVER_SWARM_NODE2=$prefix.12"
echo "export CUTOVER_SWARM_NODE2_HOST=unix://$(sock 2)"
log "two nodes ready: $prefix.11 (manager), $prefix.12"
