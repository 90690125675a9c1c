#!/usr/bin/env bash
# Sets up Podman on a fresh Debian machine and serves its Docker-compatible
# API on unix:///run/podman/podman.sock (as root; else on
# $XDG_RUNTIME_DIR/podman/podman.sock), for cutover-docker's container tests.
# Both are default sockets of Cutover's engine discovery. Not /tmp: any local
# user could plant a fake engine there.
#
# Idempotent: installs podman only when missing, writes the engine settings
# only when they are not there yet, and starts the API service only when the
# socket does not answer. Run as root (or with sudo available).
#
# Environment:
#   PODMAN_SOCKET  socket path (default /run/podman/podman.sock as root,
#                  else $XDG_RUNTIME_DIR/podman/podman.sock); a path that is
#                  not a default one needs DOCKER_HOST=unix://PATH for Cutover
#   PODMAN_LOG     log file of the API service (default /tmp/podman-service.log)
set -euo pipefail

if [ "$(id -u)" = 0 ]; then
  default_socket=/run/podman/podman.sock
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
  default_socket="$XDG_RUNTIME_DIR/podman/podman.sock"
else
  echo "setup-podman: run as root, or set XDG_RUNTIME_DIR or PODMAN_SOCKET" >&2
  exit 1
fi
socket="${PODMAN_SOCKET:-$default_socket}"
log="${PODMAN_LOG:-/tmp/podman-service.log}"
conf=/etc/containers/containers.conf

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. Packages: podman with runc (the runtime the settings below select),
#    curl to talk to the socket, busybox-static for the test images.
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v curl >/dev/null || need+=(curl)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-podman: installing ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# 2. Engine settings that work on these machines (no setrlimit beyond the
#    container's limits, runc, cgroupfs, events to a file instead of journald).
if ! grep -q '^# cutover: engine settings' "$conf" 2>/dev/null; then
  if [ -s "$conf" ]; then
    as_root cp "$conf" "$conf.cutover-backup"
    echo "setup-podman: replacing $conf (previous copy kept as $conf.cutover-backup)"
  fi
  as_root mkdir -p "$(dirname "$conf")"
  as_root tee "$conf" >/dev/null <<'CONF'
# cutover: engine settings (written by scripts/setup-podman.sh)
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  echo "setup-podman: wrote $conf"
fi

ping() {
  curl -fsS --max-time 2 --unix-socket "$socket" http://d/_ping 2>/dev/null | grep -q OK
}

# 2b. The loopback registries of the project's tests (ports 17070-17079,
#     plain HTTP): the engine pulls from them by digest. Podman reads
#     registries.conf once per process, so a running service is restarted
#     when this file is new. Nothing else is marked insecure.
dropin=/etc/containers/registries.conf.d/cutover-tests.conf
restart_service=0
if [ ! -f "$dropin" ]; then
  as_root mkdir -p "$(dirname "$dropin")"
  {
    echo "# cutover: the loopback registries of Cutover's tests (scripts/setup-podman.sh)"
    for port in $(seq 17070 17079); do
      printf '[[registry]]\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$port"
    done
  } | as_root tee "$dropin" >/dev/null
  echo "setup-podman: wrote $dropin"
  restart_service=1
fi
if [ "$restart_service" = 1 ] && ping; then
  echo "setup-podman: restarting the API service to read $dropin"
  as_root pkill -f "podman system service --time=0 unix://$socket" || true
  for _ in $(seq 1 50); do ping || break; sleep 0.1; done
fi

# 3. The Docker-compatible API service.
if ! ping; then
  # The socket's directory belongs to the user serving it (root: a
  # root-owned 0755 directory), never to anyone else.
  sock_dir="$(dirname "$socket")"
  mkdir -p "$sock_dir"
  if [ "$(id -u)" = 0 ]; then
    chown root:root "$sock_dir"
    chmod 0755 "$sock_dir"
  else
    chmod 0700 "$sock_dir"
  fi
  rm -f "$socket"
  echo "setup-podman: starting podman system service on unix://$socket (log: $log)"
  # From /: conmon writes files (e.g. `oom`) into the service's working directory.
  # In its own session: it outlives the shell (and the process group) that started it.
  (cd / && setsid nohup podman system service --time=0 "unix://$socket" >"$log" 2>&1 </dev/null &)
  for _ in $(seq 1 100); do
    ping && break
    sleep 0.1
  done
  if ! ping; then
    echo "setup-podman: the podman API did not answer on $socket; its log:" >&2
    tail -n 50 "$log" >&2 || true
    exit 1
  fi
fi

version="$(curl -fsS --unix-socket "$socket" http://d/version)"
echo "setup-podman: engine answers on unix://$socket: $version" | cut -c1-400
