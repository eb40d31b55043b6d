#!/usr/bin/env bash
# Where one of budgetd's threads waits while publishing at a set rate (issue 8, the alert
# latency's tail): a fresh release budgetd, `budgetctl bench --mode alerts` at RATE events/s for
# SECONDS, and meanwhile `perf record` of every context switch and wakeup (-a -g); then
# scripts/offcpu.py on the thread named THREAD (default budgetd-commit): its off-CPU time by
# kernel stack (fsync's writeback and flush waits, futex sleeps between jobs, preemptions) and
# how long it waited for a core once woken. Needs perf and the right to trace (root, or
# kernel.perf_event_paranoid ≤ 1).
#
#   swift build -c release
#   scripts/offcpu.sh [RATE=95000] [SECONDS=12]
#   THREAD=budgetd-engine scripts/offcpu.sh 95000 12
#
# BIN (default .build/release) holds budgetd and budgetctl; the recording stays in
# OUT (default /tmp/budgetd-offcpu.data) for `perf report`. Environment variables BUDGETD_*
# reach the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-95000}
SECS=${2:-12}
BIN=${BIN:-.build/release}
THREAD=${THREAD:-budgetd-commit}
OUT=${OUT:-/tmp/budgetd-offcpu.data}
command -v perf > /dev/null || { echo "offcpu.sh needs perf (apt-get install linux-perf)" >&2; exit 69; }
DIR=$(mktemp -d /tmp/budgetd-offcpu.XXXXXX)
"$BIN/budgetd" --db "$DIR/b.db" --log-level warning --prices config/prices.json \
    --ingest tcp://127.0.0.1:7750 --ingest-ack tcp://127.0.0.1:7751 --publish tcp://127.0.0.1:7752 \
    --control tcp://127.0.0.1:7753 2> "$DIR/log" &
PID=$!
REC=
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ -n "$REC" ] && kill -INT $REC 2>/dev/null; rm -rf "$DIR"' EXIT
until grep -q "^ready" "$DIR/log" 2>/dev/null; do
    kill -0 $PID 2>/dev/null || { cat "$DIR/log" >&2; exit 1; }
    sleep 0.1
done
TID=
for t in /proc/$PID/task/*; do
    if [ "$(cat "$t/comm")" = "$THREAD" ]; then TID=$(basename "$t"); fi
done
[ -n "$TID" ] || { echo "no thread named $THREAD in budgetd $PID" >&2; exit 1; }
perf record -q -e sched:sched_switch,sched:sched_wakeup -g -a -o "$OUT" 2> "$DIR/perf.log" &
REC=$!
sleep 0.5
"$BIN/budgetctl" bench --control tcp://127.0.0.1:7753 --ingest tcp://127.0.0.1:7750 --publish tcp://127.0.0.1:7752 \
    --mode alerts --nodrop --send-hwm 10000 --probes 200 --rate "$RATE" --count $((RATE * SECS)) --budgets 10 --setup \
    | awk '/^(backgroundEventsPerSecond|p50LatencyMs|p99LatencyMs|maxLatencyMs|missingAlerts|lost) / { printf "%s=%s ", $1, $2 }'
echo
kill -INT $REC
wait $REC 2>/dev/null || true
REC=
perf script -i "$OUT" -F comm,tid,cpu,time,event,trace,ip,sym 2> /dev/null | python3 scripts/offcpu.py "$TID"
