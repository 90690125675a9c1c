#!/usr/bin/env bash
# The project's test command: what README.md tells a new user to run and
# what CI runs (.ci/run). Installs the few system tools the tests need when
# they are missing, then runs every test of the workspace.
#
# CUTOVER_CONTAINER_TESTS=1 (set by .ci/run) also sets up Podman with its
# Docker-compatible API socket, builds the local test image and installs
# Debian's Docker Engine (docker.io) for the swarm test, and makes the
# container tests fail instead of skip when no engine answers.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v curl >/dev/null || need+=(curl)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# AWS's own clients (aws CLI, boto3) from PyPI, first on PATH: the AWS
# protocol tests drive the server with them, and builds the server runs find
# `aws` as they would in AWS's build images.
aws_bin="$(./scripts/setup-aws-clients.sh)"
export PATH="$aws_bin:$PATH"

# Debian's chromium and playwright-core from npm (pinned) for the console's
# browser tests (crates/cutover/tests/console_e2e.rs), which fail without them.
CUTOVER_NODE_MODULES="$(./scripts/setup-browser.sh)"
export CUTOVER_NODE_MODULES

if [ "${CUTOVER_CONTAINER_TESTS:-0}" = 1 ]; then
  ./scripts/setup-podman.sh
  ./scripts/setup-registry-clients.sh
  cargo build --locked -p cutover
  ./scripts/build-test-images.sh target/debug/cutover
  # The image of privileged container builds (podman CLI + aws CLI) that
  # tests/registry_pipeline_e2e.rs builds and pushes with.
  ./scripts/build-builder-image.sh
  # The two-node swarm of tests/swarm_e2e.rs: Debian's Docker Engine (the
  # test itself runs swarm-up.sh and swarm-down.sh).
  command -v dockerd >/dev/null || {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io
  }
  ./scripts/setup-docker-registry.sh
fi

cargo test --workspace --locked "$@"
