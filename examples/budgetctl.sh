#!/usr/bin/env bash
# A walk through budgetctl against a running budgetd: create a budget, send usage, watch the
# alerts it causes, look at the numbers. Safe to run against a test daemon; it creates one
# budget named "budgetctl.sh walk-through".
#
#   examples/budgetctl.sh                      # daemon on the default loopback ports
#   CONTROL=tcp://127.0.0.1:7603 PUBLISH=tcp://127.0.0.1:7602 INGEST_ACK=tcp://127.0.0.1:7601 \
#   BUDGETCTL=.build/release/budgetctl examples/budgetctl.sh
set -euo pipefail

BUDGETCTL=${BUDGETCTL:-budgetctl}
CONTROL=${CONTROL:-tcp://127.0.0.1:7603}
PUBLISH=${PUBLISH:-tcp://127.0.0.1:7602}
INGEST_ACK=${INGEST_ACK:-tcp://127.0.0.1:7601}
ctl() { "$BUDGETCTL" "$@" --control "$CONTROL"; }
step() { printf '\n== %s\n' "$*"; }

step "Is budgetd up? (exit 3 if it is DEGRADED)"
ctl health

step "Create a monthly budget of 10 USD starting on the first of this month"
start=$(date -u +%Y-%m-01)
budget=$(ctl budget create --json --name "budgetctl.sh walk-through" --type MONTHLY --total 10 --start "$start" \
    --allocation OpenAI:API:8 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "budget created: $budget"

step "Follow the alerts in the background (alerts tail stops after 2 messages)"
tail_out=$(mktemp)
trap 'rm -f "$tail_out"' EXIT
"$BUDGETCTL" alerts tail --control "$CONTROL" --publish "$PUBLISH" --count 2 >"$tail_out" 2>&1 &
tail_pid=$!
sleep 1

step "Send usage reliably (acknowledged once committed; retried on timeout)"
"$BUDGETCTL" events send --reliable --ingest-ack "$INGEST_ACK" --source walkthrough \
    --platform OpenAI --service API --cost 8.5 --budget "$budget"
"$BUDGETCTL" events send --reliable --ingest-ack "$INGEST_ACK" --source walkthrough \
    --platform OpenAI --service API --cost 0.6 --budget "$budget"

step "The alerts it caused (80 % and 90 % of the budget)"
for _ in $(seq 1 50); do kill -0 "$tail_pid" 2>/dev/null || break; sleep 0.1; done
kill "$tail_pid" 2>/dev/null || true
wait "$tail_pid" 2>/dev/null || true
cat "$tail_out"
ctl alerts list --budget "$budget"

step "The budget now"
ctl budget show "$budget"

step "Would another 2 USD be allowed? (exit 1 when denied)"
ctl spend check --budget "$budget" --platform OpenAI --service API --amount 2 || echo "denied (exit $?)"

step "Counters since budgetd started"
ctl stats
