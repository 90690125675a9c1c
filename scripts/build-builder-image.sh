#!/usr/bin/env bash
# Builds the image of container builds that build and push images, without
# any registry:
#
#   cutover-builder:test  sh and the usual tools (a static busybox), the
#                         podman CLI (used as a remote client: a privileged
#                         build gets CONTAINER_HOST and DOCKER_HOST naming the
#                         server's engine socket), and AWS's aws CLI (the
#                         pinned awscli of scripts/setup-aws-clients.sh) run by
#                         this machine's python3 with its standard library.
#
# Each binary is copied with the shared libraries `ldd` lists for it, at the
# paths the host has (so python finds its standard library the way it does on
# the host); the root file system is packed as a tar and imported
# (`podman import` / `docker import`): no base image, no pull, no apt.
# Idempotent: the image carries a sha256 over everything it is made of (this
# script, the podman and python binaries, the awscli version) in the label
# `cutover.builder-sha256` and is rebuilt only when that changed.
#
# Usage: scripts/build-builder-image.sh
# Environment:
#   ENGINE  the engine's command line client (default podman, else docker)
#   IMAGE   image name (default cutover-builder:test)
#   CUTOVER_AWS_VENV  the aws CLI's venv (default target/aws-venv, made by
#                     scripts/setup-aws-clients.sh when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-cutover-builder:test}"
engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; else engine=docker; fi
fi
busybox=/bin/busybox
client="$(command -v podman || true)"
[ -n "$client" ] || { echo "build-builder-image: no podman CLI (run scripts/setup-podman.sh)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "build-builder-image: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }

# The aws CLI's venv and the python that made it.
aws_bin="$(./scripts/setup-aws-clients.sh)"
venv="$(dirname "$aws_bin")"
python="$(readlink -f "$venv/bin/python3")"
stdlib="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
site="$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
awscli="$(cat "$venv/.cutover-installed")"

digest="$( { sha256sum "$0" "$client" "$python" "$busybox" | cut -d' ' -f1; echo "$awscli"; } | sha256sum | cut -d' ' -f1)"
current="$("$engine" image inspect --format '{{ index .Config.Labels "cutover.builder-sha256" }}' "$image" 2>/dev/null || true)"
if [ "$current" = "$digest" ]; then
  echo "build-builder-image: $image is up to date (sha256 $digest)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,tmp,etc,proc,sys,dev,run,root,usr/local/bin,etc/containers}
chmod 1777 "$root/tmp"

# A binary at its own path, with its shared libraries and the loader.
copy_binary() {
  mkdir -p "$root$(dirname "$1")"
  cp -L "$1" "$root$1"
  ldd "$1" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

copy_binary "$client"
ln -s "$client" "$root/usr/local/bin/podman"
ln -s "$client" "$root/usr/local/bin/docker"
copy_binary "$python"

# The standard library without its tests and its own site-packages, and
# the libraries of its extension modules.
mkdir -p "$root$stdlib"
tar -C "$stdlib" -cf - --exclude=./test --exclude=./site-packages --exclude='./idlelib' \
  --exclude='./tkinter' --exclude='./ensurepip' . | tar -C "$root$stdlib" -xf -
find "$stdlib/lib-dynload" -name '*.so' -print0 | xargs -0 ldd 2>/dev/null | grep -o '=> /[^ ]*' | cut -c4- | sort -u |
  while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done

# awscli and its dependencies, found through PYTHONPATH by the wrapper.
mkdir -p "$root/opt/aws"
tar -C "$site" -cf - --exclude='./pip' --exclude='./pip-*' --exclude='./setuptools' \
  --exclude='./setuptools-*' . | tar -C "$root/opt/aws" -xf -
cat >"$root/usr/local/bin/aws" <<EOF
#!/bin/sh
PYTHONPATH=/opt/aws exec $python -m awscli "\$@"
EOF
chmod 755 "$root/usr/local/bin/aws"
ln -s "$python" "$root/usr/local/bin/python3"

# busybox and one link per applet (sh, sleep, wget, sed, ...).
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"
# Short names (FROM name:tag) are resolved by the engine, not by this client.
printf 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n' >"$root/etc/containers/registries.conf"

tar -C "$root" -cf "$work/rootfs.tar" .
"$engine" image rm -f "$image" >/dev/null 2>&1 || true
"$engine" import -q \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/usr/local/bin:/bin' \
  --change 'ENV HOME=/root' \
  --change "LABEL cutover.builder-sha256=$digest" \
  "$work/rootfs.tar" "$image" >/dev/null
echo "build-builder-image: built $image (sha256 $digest, $(du -h "$work/rootfs.tar" | cut -f1) root file system)"
