#!/usr/bin/env bash
# The reproducible benchmark suite (issue 8): every scenario against a fresh release budgetd,
# figures as a markdown table, the raw JSON reports kept in a results file.
#
# Not part of CI: it runs for minutes (tens of minutes with --full).
#
#   swift build -c release
#   scripts/bench-suite.sh [--full] [--quick] [--out DIR]
#
# Scenarios, in order:
#   raw       ZeroMQ PUB→SUB alone, RAW_COUNT messages (no daemon)
#   pub       PUB ingest with --nodrop (flow control, nothing lost) and --with-raw, for every
#             size in SIZES × budget count in BUDGET_COUNTS (sizes above BIG_M_MAX_SIZE only
#             with the first budget count: 1e4 budgets run at a few hundred events/s, so
#             1e5 × 1e4 alone takes about 8 minutes); 1e7 is added by --full
#   control   after the largest pub run with the first budget count (its costs stored):
#             CONTROL_REQUESTS budget.get / spend.check round trips
#   pub ids   the largest size with the first budget count again, with --ids random (ids that
#             start with 8 pseudo-random hex digits, as UUIDs do: each insert lands elsewhere in
#             the key index); RANDOM_IDS=0 leaves it out
#   ack       acknowledged ingest, window ACK_WINDOW, ACK_COUNT events, --with-raw; then
#             the same with --ids random (unless RANDOM_IDS=0)
#   alerts    ALERT_PROBES probe budgets, background PUB load at half the committed events/s of
#             the first pub run (or ALERT_RATE), for about ALERT_SECONDS
#
# Every parameter below can be set in the environment; flags:
#   --full          add the 1e7 pub scenario
#   --quick         SIZES=100000 only (a few minutes)
#   --out DIR       where databases, daemon logs and results go (default /tmp/budgetd-bench-TIME)
# Needs: a release build (.build/release/budgetd and budgetctl; BIN=DIR to use others, or
# BUDGETD=PATH for another daemon binary), and
# the tools of a fresh Debian (bash, sed, awk, grep). No jq or python.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.build/release}
BUDGETD=${BUDGETD:-$BIN/budgetd}
PRICES=${PRICES:-config/prices.json}
SIZES=${SIZES:-"100000 1000000"}
BUDGET_COUNTS=${BUDGET_COUNTS:-"10 10000"}
BIG_M_MAX_SIZE=${BIG_M_MAX_SIZE:-100000}
SEND_HWM=${SEND_HWM:-10000}
RAW_COUNT=${RAW_COUNT:-1000000}
ACK_COUNT=${ACK_COUNT:-100000}
ACK_WINDOW=${ACK_WINDOW:-256}
ALERT_PROBES=${ALERT_PROBES:-200}
ALERT_SECONDS=${ALERT_SECONDS:-20}
CONTROL_REQUESTS=${CONTROL_REQUESTS:-10000}
CONTROL_WARMUP=${CONTROL_WARMUP:-500}
TIMEOUT=${TIMEOUT:-120}
RANDOM_IDS=${RANDOM_IDS:-1}
OUT=${OUT:-}
FULL=${FULL:-0}

while [ $# -gt 0 ]; do
    case "$1" in
        --full) FULL=1 ;;
        --quick) SIZES=100000 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "bench-suite: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
[ "$FULL" = 1 ] && SIZES="$SIZES 10000000"
OUT=${OUT:-/tmp/budgetd-bench-$(date -u +%Y%m%dT%H%M%SZ)}

for tool in "$BUDGETD" "$BIN/budgetctl"; do
    [ -x "$tool" ] || { echo "bench-suite: $tool is missing: run swift build -c release first" >&2; exit 1; }
done
[ -f "$PRICES" ] || { echo "bench-suite: no price catalog at $PRICES" >&2; exit 1; }
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

DAEMON_PID=
INGEST= INGEST_ACK= PUBLISH= CONTROL=

stop_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
        # The scenario's database is kept (in $OUT): its dirty pages are written back now, not
        # during the next scenario, whose commits would wait behind that writeback (without
        # this, the pub 1e6 run after the 1e4-budget one measured the disk: ~126,000/s for
        # every build, against 150,000–170,000/s alone).
        sync
    fi
}
trap stop_daemon EXIT
trap 'exit 130' INT TERM

# daemon_gone: sets GONE to a note if this scenario's budgetd is no longer running (it
# crashed, or something outside the suite stopped it), with its exit status.
daemon_gone() {
    local status=0
    GONE=
    if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        wait "$DAEMON_PID" 2>/dev/null || status=$?
        GONE="budgetd (pid $DAEMON_PID) exited during the run with status $status; "
        DAEMON_PID=
    fi
}

# start_daemon NAME: a fresh budgetd on ephemeral loopback ports, database in $OUT/NAME.
start_daemon() {
    local dir=$OUT/$1 line="" i
    rm -rf "$dir"
    mkdir -p "$dir"
    "$BUDGETD" --db "$dir/b.db" --log-level warning --prices "$PRICES" \
        --ingest 'tcp://127.0.0.1:*' --ingest-ack 'tcp://127.0.0.1:*' \
        --publish 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*' 2> "$dir/budgetd.log" &
    DAEMON_PID=$!
    for i in $(seq 1 600); do
        line=$(grep -m1 '^ready ' "$dir/budgetd.log" || true)
        [ -n "$line" ] && break
        kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$dir/budgetd.log" >&2; echo "bench-suite: budgetd exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$line" ] || { echo "bench-suite: no ready line from budgetd in 60 s" >&2; exit 1; }
    INGEST=$(endpoint "$line" ingest)
    INGEST_ACK=$(endpoint "$line" ingest-ack)
    PUBLISH=$(endpoint "$line" publish)
    CONTROL=$(endpoint "$line" control)
}

# endpoint READY-LINE NAME: NAME=value from the ready line.
endpoint() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# field JSON KEY: a top-level value of a flat JSON report (strings unquoted), or — if absent.
field() {
    local value
    value=$(printf '%s' "$1" | sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"')
    printf '%s' "${value:-—}"
}

# bench SCENARIO ARGS...: one budgetctl bench run; its JSON (tagged with the scenario) is
# appended to the results file and left in J.
# A failed run is recorded as {"scenario", "failed": "<its error>"} and the suite goes on.
bench() {
    local scenario=$1 json status=0
    shift
    echo "== $(date -u +%H:%M:%S) $scenario: budgetctl bench $*" >&2
    json=$("$BIN/budgetctl" bench --json --timeout "$TIMEOUT" --control "$CONTROL" --ingest "$INGEST" \
        --ingest-ack "$INGEST_ACK" --publish "$PUBLISH" "$@" 2> "$OUT/last-error") || status=$?
    if [ "$status" != 0 ] || [ "${json:0:1}" != "{" ]; then
        daemon_gone
        echo "bench-suite: $scenario failed (exit $status): $GONE$(cat "$OUT/last-error")" >&2
        json="{\"scenario\":\"$scenario\",\"failed\":\"${GONE}exit $status: $(grep -m1 . "$OUT/last-error" | tr -d '"\\|')\"}"
    else
        json="{\"scenario\":\"$scenario\",${json#\{}"
    fi
    printf '%s\n' "$json" >> "$RESULTS"
    printf '%s\n' "$json" >&2
    J=$json
}

mb() {  # bytes → MB with one decimal
    awk -v b="$1" 'BEGIN { if (b !~ /^[0-9]+$/) print "—"; else printf "%.1f", b / 1e6 }'
}

# failed JSON: " (failed: …)" for a failed run, else nothing.
failed() {
    local reason
    reason=$(printf '%s' "$1" | sed -n 's/.*"failed":"\([^"]*\)".*/\1/p')
    [ -n "$reason" ] && printf ' (failed: %s)' "$reason"
    return 0
}

INGEST_ROWS=()
ALERT_ROWS=()
CONTROL_ROWS=()

ingest_row() {  # ingest_row SCENARIO N M JSON
    local j=$4 rate lost latency=—
    case "$j" in *'"mode":"raw"'*) rate=$(field "$j" messagesPerSecond) ;; *) rate=$(field "$j" eventsPerSecond) ;; esac
    case "$j" in *'"mode":"ack"'*)
        lost="$(field "$j" missingReplies) missing"
        latency="$(field "$j" p50LatencyMs) / $(field "$j" p99LatencyMs)" ;;
    *) lost=$(field "$j" lost) ;; esac
    INGEST_ROWS+=("| $1$(failed "$j") | $2 | $3 | $rate | $lost | $(field "$j" rawMessagesPerSecond) | $(field "$j" ratioToRaw) \
| $(mb "$(field "$j" peakRssBytes)") | $(mb "$(field "$j" rssSteadyBytes)") | $(mb "$(field "$j" databaseBytesPerMillionEvents)") | $latency |")
}

# --- raw
echo "== raw" >&2
CONTROL=tcp://127.0.0.1:1 INGEST=tcp://127.0.0.1:1 INGEST_ACK=tcp://127.0.0.1:1 PUBLISH=tcp://127.0.0.1:1
bench raw --mode raw --count "$RAW_COUNT"; j=$J
ingest_row raw "$RAW_COUNT" — "$j"

# --- pub, and control after the largest first-budget-count run
first_m=${BUDGET_COUNTS%% *}
largest=0
for n in $SIZES; do [ "$n" -gt "$largest" ] && largest=$n; done
capacity=
for n in $SIZES; do
    for m in $BUDGET_COUNTS; do
        if [ "$m" != "$first_m" ] && [ "$n" -gt "$BIG_M_MAX_SIZE" ]; then continue; fi
        start_daemon "pub-$n-$m"
        run=pub-$n-$m
        bench "pub" --mode pub --nodrop --send-hwm "$SEND_HWM" --with-raw --count "$n" --budgets "$m" --setup --run-id "$run"; j=$J
        ingest_row "pub --nodrop" "$n" "$m" "$j"
        if [ -z "$capacity" ] && [ "$(field "$j" eventsPerSecond)" != — ]; then capacity=$(field "$j" eventsPerSecond); fi
        if [ "$n" = "$largest" ] && [ "$m" = "$first_m" ] && [ -n "$DAEMON_PID" ]; then
            bench control --mode control --budget-id "bench-$run-0" --requests "$CONTROL_REQUESTS" --warmup "$CONTROL_WARMUP"; j=$J
            CONTROL_ROWS+=("| after pub $n × $m budgets$(failed "$j") | $(field "$j" daemonAccepted) | $(field "$j" budgetGetP50LatencyMs) | $(field "$j" budgetGetP90LatencyMs) | $(field "$j" budgetGetP99LatencyMs) | $(field "$j" budgetGetMaxLatencyMs) \
| $(field "$j" spendCheckP50LatencyMs) | $(field "$j" spendCheckP90LatencyMs) | $(field "$j" spendCheckP99LatencyMs) | $(field "$j" spendCheckMaxLatencyMs) | $(field "$j" requestsPerSecond) |")
        fi
        stop_daemon
    done
done

# --- pub with random ids (the largest size, the first budget count)
if [ "$RANDOM_IDS" = 1 ]; then
    start_daemon "pub-random-$largest-$first_m"
    bench "pub" --mode pub --nodrop --send-hwm "$SEND_HWM" --with-raw --count "$largest" --budgets "$first_m" --setup \
        --ids random --run-id "pub-random-$largest-$first_m"; j=$J
    ingest_row "pub --nodrop, random ids" "$largest" "$first_m" "$j"
    stop_daemon
fi

# --- ack
start_daemon ack
bench ack --mode ack --window "$ACK_WINDOW" --count "$ACK_COUNT" --budgets "$first_m" --setup --with-raw --run-id ack; j=$J
ingest_row "ack, window $ACK_WINDOW" "$ACK_COUNT" "$first_m" "$j"
stop_daemon
if [ "$RANDOM_IDS" = 1 ]; then
    start_daemon ack-random
    bench ack --mode ack --window "$ACK_WINDOW" --count "$ACK_COUNT" --budgets "$first_m" --setup --with-raw --ids random --run-id ack-random; j=$J
    ingest_row "ack, window $ACK_WINDOW, random ids" "$ACK_COUNT" "$first_m" "$j"
    stop_daemon
fi

# --- alerts at half the measured pub capacity
rate=${ALERT_RATE:-$(( ${capacity:-2000} / 2 ))}
[ "$rate" -ge 1 ] || rate=1
count=$(( rate * ALERT_SECONDS ))
start_daemon alerts
bench alerts --mode alerts --nodrop --send-hwm "$SEND_HWM" --probes "$ALERT_PROBES" --rate "$rate" --count "$count" \
    --budgets "$first_m" --setup --run-id alerts; j=$J
ALERT_ROWS+=("| $(field "$j" probes)$(failed "$j") | $(field "$j" alertsReceived) | $(field "$j" missingAlerts) | $(field "$j" p50LatencyMs) | $(field "$j" p99LatencyMs) \
| $(field "$j" maxLatencyMs) | $rate | $(field "$j" backgroundEventsPerSecond) | $(field "$j" committed) | $(field "$j" lost) |")
stop_daemon

# --- the tables
{
    echo
    echo "## Ingest ($(date -u +%Y-%m-%d), $(nproc) CPUs, $(uname -m))"
    echo
    echo "| scenario | events | budgets | events/s committed | lost | raw msg/s | ÷ raw | peak RSS MB | steady RSS MB | DB MB per 1e6 events | ack p50 / p99 ms |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    printf '%s\n' "${INGEST_ROWS[@]}"
    echo
    echo "## Alert latency under load (send of an 85 USD probe → its THRESHOLD_80)"
    echo
    echo "| probes | received | missing | p50 ms | p99 ms | max ms | target rate | background events/s sent | committed | lost |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ALERT_ROWS[@]}"
    if [ ${#CONTROL_ROWS[@]} -gt 0 ]; then
        echo
        echo "## Control round trips (REQ, one at a time; ms)"
        echo
        echo "| when | events stored | budget.get p50 | p90 | p99 | max | spend.check p50 | p90 | p99 | max | requests/s |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s\n' "${CONTROL_ROWS[@]}"
    fi
    echo
    echo "JSON reports: $RESULTS"
} | tee "$OUT/results.md"
