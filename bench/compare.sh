#!/usr/bin/env bash
# Before and after, side by side in one run: builds the release binary of an earlier commit and of
# the working tree, then runs each named benchmark of bench/ (this tree's script, so both binaries
# are measured by the same harness) with CUTOVER_BIN set to one binary, then the other, and
# prints both outputs one after the other under the same heading. Ratios within one run are what
# to compare: these machines are noisy.
#
# usage: bench/compare.sh [--before REV] [BENCH...]
#   REV    the commit measured as "before" (default dd60aba, the code issue 9 measured)
#   BENCH  any of: scale foundation proxy deploy pipeline (default: scale foundation deploy
#          pipeline proxy)
#   env:   BEFORE_TARGET (default target/compare-before) is the build directory of the old
#          commit, BEFORE_BIN names an already built "before" binary instead; COMPARE_OUT (default a temporary directory) keeps every log; the benchmarks'
#          own variables pass through (BENCH_SECONDS, NOLOSS_SECONDS, RUNS, DEPLOYMENTS, ...).
# A benchmark that fails with one binary is reported as failed there and the run goes on; the
# script exits 1 if any did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
esac
before=dd60aba
if [[ ${1:-} == --before ]]; then
  before=$2
  shift 2
fi
benches=("$@")
((${#benches[@]})) || benches=(scale foundation deploy pipeline proxy)
for b in "${benches[@]}"; do
  [[ -f bench/$b.sh ]] || { echo "error: no benchmark bench/$b.sh" >&2; exit 2; }
done

out=${COMPARE_OUT:-$(mktemp -d)}
mkdir -p "$out"
before_target=${BEFORE_TARGET:-$root/target/compare-before}
src=$(mktemp -d)
cleanup() { git -C "$root" worktree remove --force "$src/tree" >/dev/null 2>&1 || true; rm -rf "$src"; }
trap cleanup EXIT

if [[ -n ${BEFORE_BIN:-} ]]; then
  cp "$BEFORE_BIN" "$out/cutover-before"
else
  echo "compare: building $before (before), release" >&2
  git -C "$root" worktree add -q --detach "$src/tree" "$before"
  (cd "$src/tree" && CARGO_TARGET_DIR=$before_target cargo build --release --locked -p cutover >&2)
  cp "$before_target/release/cutover" "$out/cutover-before"
fi
echo "compare: building the working tree (after), release" >&2
cargo build --release --locked -p cutover >&2
after_target=${CARGO_TARGET_DIR:-$root/target}
cp "$after_target/release/cutover" "$out/cutover-after"
after_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +changes)"

failed=0
for b in "${benches[@]}"; do
  for side in before after; do
    log="$out/$b-$side.log"
    echo "== bench/$b.sh, $side ($([[ $side == before ]] && echo "$before" || echo "$after_rev")), load $(cut -d' ' -f1-3 /proc/loadavg)"
    if CUTOVER_BIN="$out/cutover-$side" "bench/$b.sh" >"$log" 2>&1; then
      cat "$log"
    else
      failed=1
      echo "(bench/$b.sh failed with the $side binary; last lines of $log:)"
      tail -n 15 "$log"
    fi
    echo
  done
done
echo "compare: logs in $out" >&2
exit "$failed"
