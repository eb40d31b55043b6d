#!/usr/bin/env bash
# How often a probe fires per event, per budgetd thread, during a PUB run of N events over
# 20 budgets (issue 8). EVENT is a perf event; a uprobe on a library function is made once with
# `perf probe` (root):
#
#   perf probe -x /opt/swift/usr/lib/swift/linux/libswiftCore.so -a swift_beginAccess
#   scripts/probe-count.sh probe_libswiftCore:swift_beginAccess 100000
#       # dynamic exclusivity checks: 11.0 per event on the engine thread, 4.0 on the commit
#       # thread (seventeenth session, docs/benchmarks.md)
#
# BIN= another build's directory; MODE=ack for the acknowledged path.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release}
EV=$1; N=${2:-100000}
DIR=$(mktemp -d /tmp/cnt.XXXXXX)
"$BIN/budgetd" --db "$DIR/b.db" --log-level warning --prices config/prices.json \
    --ingest tcp://127.0.0.1:7700 --ingest-ack tcp://127.0.0.1:7701 --publish tcp://127.0.0.1:7702 \
    --control tcp://127.0.0.1:7703 2> "$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
until grep -q "^ready" "$DIR/log" 2>/dev/null; do sleep 0.1; done
"$BIN/budgetctl" bench --control tcp://127.0.0.1:7703 --mode pub --ingest tcp://127.0.0.1:7700 --count 1 --budgets 20 --setup --run-id c$$ > /dev/null
perf stat -e "$EV" --per-thread -p $PID -o $DIR/stat &
SP=$!
sleep 0.5
"$BIN/budgetctl" bench --control tcp://127.0.0.1:7703 --mode ${MODE:-pub} --nodrop --ingest tcp://127.0.0.1:7700 --ingest-ack tcp://127.0.0.1:7701 --count $N --budgets 20 --run-id c$$ 2>/dev/null | grep -E "^(eventsPerSecond|lost)"
sleep 0.5
kill -INT $SP; wait $SP || true
awk -v n=$N '$2 ~ /^[0-9,]+$/ { gsub(",", "", $2); if ($2 > 0) printf "%-28s %12d %8.2f/event\n", $1, $2, $2 / n }' $DIR/stat
