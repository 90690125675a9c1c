#!/usr/bin/env bash
# Fuzzes every parser of Cutover with cargo-fuzz (libFuzzer): JSON/YAML documents, task
# definitions, appspecs, imagedefinitions/imageDetail, buildspecs, pipelines, stack files, cron,
# both glob modules, alarm rules and the proxy's configuration (targets in fuzz/fuzz_targets).
# Each target runs for SECONDS (default 600) from its committed seeds (fuzz/seeds/TARGET) plus
# what earlier runs found (fuzz/corpus/TARGET, not committed), one target at a time.
#
# usage: bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   env: FUZZ_SANITIZER=address|none (default: address, or none when ASan's runtime cannot be
#        linked).
# Installs cargo-fuzz when it is missing (cargo install --locked). No nightly toolchain is
# needed: the pinned stable toolchain accepts cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1.
# Prints a table (target, executions, exec/s, crashes, corpus size and inputs added) and exits
# 1 when any target crashed, timed out or ran out of memory, naming the input that did it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
fuzz="$root/fuzz"
case "${1:-}" in
  -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
esac
seconds=600
if (($#)) && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
all=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz/Cargo.toml" | grep -v '^cutover-fuzz$')
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "error: unknown target $t (known: $(echo $all))" >&2; exit 2; }
done

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$fuzz/target"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked >&2
fi

sanitizer=${FUZZ_SANITIZER:-address}
# cargo fuzz build takes one target at a time, or all of them.
build_all() {
  if ((${#targets[@]} == $(wc -l <<<"$all"))); then
    (cd "$root" && cargo fuzz build --fuzz-dir "$fuzz" --sanitizer "$1" >&2)
  else
    for t in "${targets[@]}"; do
      (cd "$root" && cargo fuzz build --fuzz-dir "$fuzz" --sanitizer "$1" "$t" >&2)
    done
  fi
}
if ! build_all "$sanitizer"; then
  if [[ $sanitizer == address && -z ${FUZZ_SANITIZER:-} ]]; then
    echo "the AddressSanitizer build failed: building without a sanitizer" >&2
    sanitizer=none
    build_all none
  else
    exit 1
  fi
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$CARGO_TARGET_DIR/$triple/release"

echo "fuzzing ${#targets[@]} targets for $seconds s each (sanitizer: $sanitizer)" >&2
rows=()
failed=()
for t in "${targets[@]}"; do
  corpus="$fuzz/corpus/$t"
  artifacts="$fuzz/artifacts/$t"
  log="$fuzz/artifacts/$t.log"
  mkdir -p "$corpus" "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  echo "== $t" >&2
  status=0
  "$bin_dir/$t" "$corpus" "$fuzz/seeds/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  # The last status line ("#N ... corp: UNITS/SIZE ...") has the corpus size.
  units=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | sed 's/corp: //')
  crashed=$(find "$artifacts" -type f | wc -l)
  crashes=$((crashed - before))
  if ((status != 0)) && ((crashes == 0)); then
    crashes=1
  fi
  rows+=("| $t | ${execs:-?} | ${rate:-?} | $crashes | ${units:-?} (+${added:-?}) |")
  if ((crashes > 0)); then
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    failed+=("$t: exit $status, input ${input:-(none written)}, log $log")
    grep -m1 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" >&2 || true
  fi
done

echo
echo "Fuzzing, $seconds s per target, sanitizer $sanitizer, $(date -u +%Y-%m-%d):"
echo
echo "| target | executions | exec/s | crashes | corpus (added) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if ((${#failed[@]})); then
  echo
  echo "CRASHES:"
  printf '  %s\n' "${failed[@]}"
  echo "reproduce: $bin_dir/TARGET INPUT"
  exit 1
fi
