#!/usr/bin/env bash
# Installs the registry clients the registry's end-to-end tests drive
# (crates/cutover/tests/registry_clients_e2e.rs): Debian's `skopeo` (and
# `tar`, which the tests make image layers with). Podman comes from
# scripts/setup-podman.sh. Idempotent: installs only what is missing.
# Run as root (or with sudo available).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v tar >/dev/null || need+=(tar)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-registry-clients: installing ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
echo "setup-registry-clients: $(skopeo --version)"
