#!/usr/bin/env bash
# Build the fuzz targets with libFuzzer's coverage instrumentation on the stable toolchain (the same
# instrumentation flags cargo-fuzz passes, without a sanitizer: the code under test is safe Rust, so what
# a run looks for is a panic, an assertion of the target, an overflow or a hang) and run each of them.
#
#   fuzz/run.sh                 every target for 30 s
#   fuzz/run.sh 600             every target for 600 s
#   fuzz/run.sh 600 webhook     one target
#   fuzz/run.sh 15 command_sequence stored_event    what CI runs (the targets that need only the domain)
#
# The corpus of each target is fuzz/corpus/<target>, seeded from the docs' examples, the golden stored
# events and the sample scenarios; what a run discovers goes to $CARGO_TARGET_DIR/corpus/<target> (read
# by the next run too), so the repository's seeds stay as committed.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(command_sequence stored_event webhook scenario)
fi
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target}
# With an explicit --target the flags reach only the targets' code, not build scripts or proc macros
# (which are not linked against libFuzzer), as cargo-fuzz does it.
host=$(rustc -vV | sed -n 's/^host: //p')
# The webhook and scenario targets are behind features of their name (they need far more to build).
features=()
for target in "${targets[@]}"; do
    case "$target" in
        webhook | scenario) features+=("$target") ;;
    esac
done
cargo build --release --locked --bins --target "$host" --features "${features[*]:-}"
bin="$CARGO_TARGET_DIR/$host/release"
mkdir -p artifacts
total=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target" "$CARGO_TARGET_DIR/corpus/$target"
    log=$(mktemp)
    "$bin/$target" "$CARGO_TARGET_DIR/corpus/$target" "corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$target/" 2>"$log" || {
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz target $target: ${runs:-0} inputs in ${seconds}s, no failure"
    total=$((total + ${runs:-0}))
    rm -f "$log"
done
echo "fuzzing: $total inputs in all"
