#!/usr/bin/env bash
# Removes everything scripts/swarm-up.sh made: the daemons (and their
# containers and containerd), the network namespaces, the bridge and the
# state folder. Idempotent; never touches anything it did not make.
#
# Environment: SWARM_DIR as for swarm-up.sh.
set -uo pipefail

dir="${SWARM_DIR:-/run/cutover-swarm}"
log() { echo "swarm-down: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root"; exit 1; }

for n in 1 2; do
  d="$dir/node$n"
  pid="$(cat "$d/dockerd.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd of node $n (pid $pid)"
    # Containers first, so that no shim outlives its daemon.
    ids="$(DOCKER_HOST="unix://$d/docker.sock" timeout 20 docker ps -aq 2>/dev/null || true)"
    [ -n "$ids" ] && DOCKER_HOST="unix://$d/docker.sock" timeout 30 docker rm -f $ids >/dev/null 2>&1
    kill "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  # Whatever still runs in the namespace (a containerd or shim of a daemon
  # that was killed) goes too.
  if [ -e "/var/run/netns/cutover-sw$n" ]; then
    for p in $(ip netns pids "cutover-sw$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del "cutover-sw$n"
  fi
  ip link del "cutover-sw${n}h" 2>/dev/null
  if [ -d "$d" ]; then
    # A daemon leaves mounts (overlay, shm) under its roots.
    grep -o " $d/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  fi
done
ip link del cutover-sw0 2>/dev/null
rm -rf "$dir"
log "done"
