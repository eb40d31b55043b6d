#!/usr/bin/env bash
# CPU per event, per daemon thread (issue 8): a fresh release budgetd, a PUB run of N events
# over M budgets, and the CPU time each of budgetd's threads used during it (from
# /proc/PID/task/*/stat; a thread started during the run counts from zero), divided by N. Less noisy than events/s on a shared machine: it
# counts the work, not the waiting.
#
#   swift build -c release
#   scripts/bench-cpu.sh [N=300000] [M=20]
#   MODE=ack scripts/bench-cpu.sh 100000 10     # the acknowledged path, window 256 (WINDOW=)
#   MODE=alerts RATE=95000 scripts/bench-cpu.sh 1900000 10
#                                               # an alerts run (`bench --mode alerts`, PROBES=500
#                                               # probe budgets) at RATE events/s: the CPU per event
#                                               # at moderate load, against full speed's
#   IDS=random scripts/bench-cpu.sh 300000 20   # ids as UUIDs spread (budgetctl bench --ids random)
#   PROBE=probe_libswiftCore:swift_beginAccess scripts/bench-cpu.sh 100000 20
#                                               # also how often a perf event fires per event and
#                                               # thread; a uprobe is made once (root) with
#                                               # perf probe -x /opt/swift/usr/lib/swift/linux/libswiftCore.so -a swift_beginAccess
#   RUN_ID=pub-1000000-10 SEND_HWM=10000 WITH_RAW=1 scripts/bench-cpu.sh 1000000 10
#                                               # the suite's pub run: its ids (longer than 15
#                                               # bytes, so not inline strings), HWM, raw run first
#
# Also the bytes the daemon wrote per event (/proc/PID/io: log, checkpoints), and the
# generator's CPU.
#
# Threads are named by what they are seen doing: the engine (the most CPU), the decode
# thread, the checkpoint thread, ZeroMQ's I/O thread.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
M=${2:-20}
BIN=${BIN:-.build/release}
DIR=$(mktemp -d /tmp/budgetd-cpu.XXXXXX)
"$BIN/budgetd" --db "$DIR/b.db" --log-level warning --prices config/prices.json \
    --ingest tcp://127.0.0.1:7700 --ingest-ack tcp://127.0.0.1:7701 --publish tcp://127.0.0.1:7702 \
    --control tcp://127.0.0.1:7703 2> "$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
until grep -q "^ready" "$DIR/log" 2>/dev/null; do sleep 0.1; done
ctl() { local sub=$1; shift; "$BIN/budgetctl" "$sub" --control tcp://127.0.0.1:7703 "$@"; }
RUN=${RUN_ID:-cpu$$}
# Budgets first (and one event, so the run itself creates nothing); an alerts run makes its own.
if [ "${MODE:-pub}" != alerts ]; then
    ctl bench --mode pub --ingest tcp://127.0.0.1:7700 --count 1 --budgets "$M" --setup --run-id "$RUN" > /dev/null
fi
snap() { for t in /proc/$PID/task/*; do echo "$(basename "$t") $(awk '{print $14 + $15}' "$t/stat") $(cat "$t/comm")"; done | sort; }
snap > "$DIR/before"; grep -E "^(wchar|write_bytes)" /proc/$PID/io > "$DIR/io0"
if [ -n "${PROBE:-}" ]; then
    # How often the perf event PROBE fires per event, per thread, during the run.
    perf stat -e "$PROBE" --per-thread -p "$PID" -o "$DIR/probe" &
    PERF=$!
    sleep 0.5
fi
# The generator's own CPU (it shares the cores), from bash's `time`, on stderr.
TIMEFORMAT="generator: %U s user, %S s system, %R s"
if [ "${MODE:-pub}" = alerts ]; then
    time ctl bench --mode alerts --ingest tcp://127.0.0.1:7700 --publish tcp://127.0.0.1:7702 --nodrop --send-hwm 10000 \
        --probes "${PROBES:-500}" --rate "${RATE:?MODE=alerts needs RATE=events/s}" --count "$N" --budgets "$M" --setup \
        | grep -E "^(backgroundEventsPerSecond|lost|missingAlerts|p50LatencyMs|p99LatencyMs|maxLatencyMs) "
elif [ "${MODE:-pub}" = ack ]; then
    time ctl bench --mode ack --ingest-ack tcp://127.0.0.1:7701 --window "${WINDOW:-256}" --count "$N" --budgets "$M" --run-id "$RUN" ${IDS:+--ids $IDS} \
        | grep -E "^(acknowledged|missingReplies|eventsPerSecond|p50LatencyMs|p99LatencyMs) "
else
    time ctl bench --mode pub --ingest tcp://127.0.0.1:7700 --nodrop ${SEND_HWM:+--send-hwm $SEND_HWM} ${WITH_RAW:+--with-raw} --count "$N" --budgets "$M" --run-id "$RUN" ${IDS:+--ids $IDS} \
        | grep -E "^(committed|lost|eventsPerSecond) "
fi
if [ -n "${PROBE:-}" ]; then
    kill -INT "$PERF"; wait "$PERF" || true
    awk -v n="$N" '$2 ~ /^[0-9,]+$/ { gsub(",", "", $2); if ($2 > 0) printf "probe %-26s %12d %8.2f/event\n", $1, $2, $2 / n }' "$DIR/probe"
fi
snap > "$DIR/after"; grep -E "^(wchar|write_bytes)" /proc/$PID/io > "$DIR/io1"; paste "$DIR/io0" "$DIR/io1" | awk -v n="$N" '{ printf "%s %.0f bytes/event\n", $1, ($4 - $2) / n }'
TICK=$(getconf CLK_TCK)
awk -v n="$N" -v tick="$TICK" 'NR == FNR { before[$1] = $2; next } { d = $2 - before[$1]; if (d > 0) printf "thread %-8s %-16s %6.1f µs/event\n", $1, $3, d * 1e6 / tick / n; t += d } END { printf "all threads               %6.1f µs/event\n", t * 1e6 / tick / n }' "$DIR/before" "$DIR/after"
