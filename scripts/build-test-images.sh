#!/usr/bin/env bash
# Builds the container images the container tests use, without any registry:
#
#   cutover-sample:test  the `cutover` binary (run as `/cutover sample-app`),
#                        the shared libraries `ldd` lists for it, and a static
#                        busybox for `sh` and the usual tools (health checks).
#
# The root file system is assembled in a temporary folder, packed as a tar and
# imported (`podman import` / `docker import`): no base image, no pull.
# Idempotent: the image carries the sha256 of the binary in the label
# `cutover.binary-sha256` and is rebuilt only when the binary changed.
#
# Usage: scripts/build-test-images.sh [PATH-TO-CUTOVER-BINARY]
#        (default target/debug/cutover; build it first with `cargo build -p cutover`)
# Environment:
#   ENGINE  the engine's command line client (default podman, else docker)
#   IMAGE   image name (default cutover-sample:test)
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-target/debug/cutover}"
image="${IMAGE:-cutover-sample:test}"
engine="${ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman; else engine=docker; fi
fi
busybox=/bin/busybox

[ -x "$binary" ] || { echo "build-test-images: no executable at $binary (run cargo build -p cutover)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "build-test-images: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
# Read the whole output first: with pipefail, `| head` or `| grep -q` closing
# the pipe early makes busybox die of SIGPIPE and the check fail at random.
banner="$("$busybox" --help 2>&1 || true)"
case "$banner" in
  *[Bb]usy[Bb]ox*) ;;
  *) echo "build-test-images: $busybox is not busybox" >&2; exit 1 ;;
esac

digest="$(sha256sum "$binary" | cut -d' ' -f1)"
current="$("$engine" image inspect --format '{{ index .Config.Labels "cutover.binary-sha256" }}' "$image" 2>/dev/null || true)"
if [ "$current" = "$digest" ]; then
  echo "build-test-images: $image is up to date (binary sha256 $digest)"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,tmp,etc,proc,sys,dev}
chmod 1777 "$root/tmp"

# The binary, without debug sections (a debug build is mostly DWARF).
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$binary" "$root/cutover"
else
  cp "$binary" "$root/cutover"
fi
chmod 755 "$root/cutover"

# Its shared libraries and the dynamic loader, at the paths ldd names.
ldd "$binary" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# busybox and one link per applet (sh, sleep, wget, head, ...).
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "hosts: files dns" >"$root/etc/nsswitch.conf"

tar -C "$root" -cf "$work/rootfs.tar" .
"$engine" image rm -f "$image" >/dev/null 2>&1 || true
"$engine" import -q \
  --change 'CMD ["/cutover", "sample-app"]' \
  --change 'ENV PATH=/bin' \
  --change 'ENV HOST=0.0.0.0' \
  --change 'ENV PORT=8080' \
  --change 'EXPOSE 8080' \
  --change "LABEL cutover.binary-sha256=$digest" \
  "$work/rootfs.tar" "$image" >/dev/null
echo "build-test-images: built $image from $binary (sha256 $digest, $(du -h "$work/rootfs.tar" | cut -f1) root file system)"
