#!/usr/bin/env bash
# Installs AWS's own clients, the aws CLI and boto3, from PyPI into a venv
# under target/ (a clean checkout gets them; nothing is installed system-wide).
# The AWS-protocol tests drive the server with them. Prints the venv's bin
# directory. Versions are pinned so a new botocore cannot change the tests'
# wire format under them; bump them together with scripts/gen-aws-shapes.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CUTOVER_AWS_VENV:-$PWD/target/aws-venv}"
want="awscli==1.45.11 boto3==1.43.11 botocore==1.43.11"
stamp="$venv/.cutover-installed"
if [ ! -x "$venv/bin/aws" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-aws-clients: installing $want into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" > "$stamp"
fi
"$venv/bin/aws" --version >&2
echo "$venv/bin"
