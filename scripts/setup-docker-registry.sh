#!/usr/bin/env bash
# Installs Debian's `docker-registry` (CNCF distribution 2.8), the reference
# OCI registry the image-pinning end-to-end test (crates/cutover/tests/
# pinning_e2e.rs) starts on a loopback port of its own. Idempotent; prints
# nothing when the registry is already installed. The Debian package starts
# a system service on port 5000: it is stopped and disabled, since the test
# runs its own instance with its own configuration and storage.
#
# Podman is told that the test's registry is insecure (plain HTTP) by a
# registries.conf drop-in the test writes for its port
# (/etc/containers/registries.conf.d/cutover-pinning-<port>.conf) and removes
# at the end; see README.md "Image digests are pinned".
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v docker-registry >/dev/null; then
  echo "setup-docker-registry: installing docker-registry" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry
fi
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
command -v skopeo >/dev/null || {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo
}
