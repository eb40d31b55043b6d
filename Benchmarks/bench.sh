#!/usr/bin/env bash
# Micro-benchmarks of the ingest hot path (issue 8): ns/event and allocations/event in a
# release build, then instructions/event under callgrind. See README.md.
#
#   Benchmarks/bench.sh                 # DecodeBench, BudgetCore of the working tree
#   Benchmarks/bench.sh eda5805         # BudgetCore of a git revision (exported to /tmp)
#   BENCH=LedgerBench Benchmarks/bench.sh [rev]   # route, price and book (the ledger's part)
#   EVENTS=100000 ROUNDS=10 CG_EVENTS=5000 Benchmarks/bench.sh
set -euo pipefail
cd "$(dirname "$0")"
rev=${1:-}
bench=${BENCH:-DecodeBench}
events=${EVENTS:-100000}
rounds=${ROUNDS:-10}
cg_events=${CG_EVENTS:-5000}
case "$bench" in
    DecodeBench) loop='*decodeAll*' ;;
    LedgerBench) loop='*bookAll*' ;;
    *) echo "BENCH: DecodeBench or LedgerBench" >&2; exit 2 ;;
esac

package=$(pwd)
if [ -n "$rev" ]; then
    # A copy of this package whose BudgetCore is that revision's, not the symlink.
    package=$(mktemp -d /tmp/budgetd-bench-XXXXXX)
    # -L: the events' generator (BenchEvents/BenchWorkload.swift, a symlink into budgetctl)
    # is copied as the working tree has it, so every revision is measured on the same events.
    cp -RL Package.swift Sources "$package"/
    rm -r "$package/Sources/BudgetCore"
    git -C .. archive "$rev" Sources/BudgetCore | tar -x -C "$package"
fi

swift build -c release --package-path "$package" --product "$bench" 2>&1 | tail -1
binary="$package/.build/release/$bench"
"$binary" "$events" "$rounds"

if command -v valgrind > /dev/null; then
    # valgrind 3.19 cannot read Swift 6's DWARF 5: profile a copy without debug info.
    stripped=$(mktemp "/tmp/$bench-XXXXXX")
    strip --strip-debug -o "$stripped" "$binary"
    out=$(mktemp /tmp/callgrind-XXXXXX)
    # Only the measured loop counts (one round over cg_events events), not event generation.
    # Swift seeds its hashing per process: fixed here, so dictionary probes and the count
    # repeat from run to run (LedgerBench's varied by ~1 % without it).
    SWIFT_DETERMINISTIC_HASHING=1 valgrind --tool=callgrind --collect-atstart=no --toggle-collect="$loop" \
        --callgrind-out-file="$out" "$stripped" "$cg_events" 1 > /dev/null 2>&1
    total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    echo "instructions/event (callgrind, $cg_events events): $((total / cg_events))"
    rm -f "$stripped" "$out"
fi
