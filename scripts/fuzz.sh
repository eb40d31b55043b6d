#!/usr/bin/env bash
# Builds the libFuzzer target for the message decoder and validator (Fuzz/, with
# -sanitize=fuzzer,address) and runs it for a bounded time: `scripts/fuzz.sh [seconds]`
# (default 60). Starts from the committed seed corpus Fuzz/corpus/; inputs it discovers go to
# a scratch corpus (Fuzz/.build/corpus, not committed). Prints the executions and the crashes
# found; exits 1 on a crash, leaving the input in Fuzz/.build/artifacts/ (add it to
# Tests/BudgetCoreTests/FuzzRegressionTests.swift once fixed). See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
seconds=${1:-60}

swift build -c release -Xswiftc -sanitize=fuzzer,address 2>&1 | grep -vE "Cannot export local symbol '__asan_extra_spill_area'" || true
fuzzer=.build/release/EventFuzzer
[ -x "$fuzzer" ] || { echo "fuzz: build failed" >&2; exit 1; }

mkdir -p .build/corpus .build/artifacts
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# -max_len: messages over 64 KiB are rejected before parsing; 8 KiB keeps the search dense.
"$fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
    -dict=json.dict -artifact_prefix=.build/artifacts/ -print_final_stats=1 \
    .build/corpus corpus >"$log" 2>&1 || status=$?

grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)|stat::number_of_executed_units|Fatal error" "$log" || true
executions=$(grep -oE "stat::number_of_executed_units: [0-9]+" "$log" | grep -oE "[0-9]+$" || echo 0)
crashes=0
[ "$status" -eq 0 ] || crashes=1
echo "fuzz: ${seconds}s, executions=${executions}, corpus=$(find .build/corpus corpus -type f | wc -l), crashes=${crashes}"
if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    exit 1
fi
