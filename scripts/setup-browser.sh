#!/usr/bin/env bash
# Installs what the console's browser tests and bench/console.sh drive:
# Debian's `chromium` (apt, when missing) and `playwright-core` from npm, at
# the version pinned by crates/cutover/tests/browser/package-lock.json, into
# target/browser (nothing from npm is installed system-wide; Playwright's own
# browser download is never used). Prints the node_modules directory to put
# in NODE_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-browser: installing ${need[*]}" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
src=crates/cutover/tests/browser
dir="${CUTOVER_BROWSER_DIR:-$PWD/target/browser}"
stamp="$dir/.cutover-installed"
want="$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)"
if [ ! -d "$dir/node_modules/playwright-core" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-browser: npm ci into $dir" >&2
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent >&2)
  echo "$want" > "$stamp"
fi
chromium --version >&2
echo "$dir/node_modules"
