#!/usr/bin/env bash
# Two builds compared the way docs/benchmarks.md compares them: alternately, each run against a
# fresh daemon, so that both see the same minutes of a machine whose speed wanders by 20–30 %
# within an hour. One line per run, then each build's mean.
#
#   git worktree add /tmp/base REV && (cd /tmp/base && swift build -c release)
#   swift build -c release
#   BASE=/tmp/base/.build/release scripts/bench-pairs.sh pub 1000000 20    # PUB, --nodrop
#   BASE=/tmp/base/.build/release scripts/bench-pairs.sh ack 300000 20     # window 256
#   BASE=/tmp/base/.build/release scripts/bench-pairs.sh alerts 85000 12   # RATE SECONDS
#
# BASE and NEW (default .build/release) are directories holding budgetd and budgetctl; ROUNDS
# pairs (default 3). pub and ack run scripts/bench-cpu.sh (its CPU per event per thread is
# summed up here: daemon, engine, commit); alerts runs `budgetctl bench --mode alerts` with
# 200 probe budgets (PROBES=) over 10 background budgets at RATE events/s for SECONDS. Environment
# variables BUDGETD_* reach both daemons (BUDGETD_MAX_BATCH=2048, say).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?usage: BASE=DIR scripts/bench-pairs.sh pub|ack|alerts [N|RATE] [M|SECONDS]}
BASE=${BASE:?BASE=DIR: the build to compare with (budgetd and budgetctl in it)}
NEW=${NEW:-.build/release}
ROUNDS=${ROUNDS:-3}

alerts() {
    local bin=$1 rate=$2 secs=$3
    local dir pid
    dir=$(mktemp -d /tmp/budgetd-pairs.XXXXXX)
    "$bin/budgetd" --db "$dir/b.db" --log-level warning --prices config/prices.json \
        --ingest tcp://127.0.0.1:7750 --ingest-ack tcp://127.0.0.1:7751 --publish tcp://127.0.0.1:7752 \
        --control tcp://127.0.0.1:7753 2> "$dir/log" &
    pid=$!
    until grep -q "^ready" "$dir/log" 2>/dev/null; do sleep 0.1; done
    "$bin/budgetctl" bench --control tcp://127.0.0.1:7753 --ingest tcp://127.0.0.1:7750 --publish tcp://127.0.0.1:7752 \
        --mode alerts --nodrop --send-hwm 10000 --probes "${PROBES:-200}" --rate "$rate" --count $((rate * secs)) --budgets 10 --setup \
        | awk '/^(p50LatencyMs|p99LatencyMs|maxLatencyMs|missingAlerts|lost) / { printf "%s=%s ", $1, $2 }'
    echo
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}

one() {
    local bin=$1
    case "$MODE" in
        pub) BIN=$bin scripts/bench-cpu.sh "${2:-1000000}" "${3:-20}" 2>&1 | summary ;;
        ack) BIN=$bin MODE=ack scripts/bench-cpu.sh "${2:-300000}" "${3:-20}" 2>&1 | summary ;;
        alerts) alerts "$bin" "${2:-85000}" "${3:-12}" ;;
        *) echo "unknown mode $MODE (pub, ack or alerts)" >&2; exit 64 ;;
    esac
}

# bench-cpu.sh's output in one line: events/s, lost or missing, p50/p99 (ack), CPU per event.
summary() {
    awk '
        /^eventsPerSecond / { eps = $2 }
        /^(lost|missingReplies) / { lost = $1 "=" $2 }
        /^p50LatencyMs / { p50 = " p50=" $2 }
        /^p99LatencyMs / { p99 = " p99=" $2 }
        /budgetd-engine/ { engine = $4 }
        /budgetd-commit/ { commit = $4 }
        /^all threads/ { daemon = $3 }
        END { printf "eventsPerSecond=%s %s%s%s daemon=%s engine=%s commit=%s µs/event\n", eps, lost, p50, p99, daemon, engine, commit }'
}

results=$(mktemp /tmp/budgetd-pairs.XXXXXX)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$ROUNDS"); do
    for which in base new; do
        if [ "$which" = base ]; then bin=$BASE; else bin=$NEW; fi
        line="$which $(one "$bin" "${2:-}" "${3:-}")"
        echo "$line"
        echo "$line" >> "$results"
    done
done
# Each build's mean of every numeric KEY=VALUE of its lines.
awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[2] + 0 == kv[2] && kv[2] != "") { sum[$1, kv[1]] += kv[2]; keys[kv[1]] = 1 } }
    n[$1]++
} END {
    for (w in n) { printf "mean %-4s", w; for (k in keys) if ((w, k) in sum) printf " %s=%.2f", k, sum[w, k] / n[w]; printf "\n" }
}' "$results"
