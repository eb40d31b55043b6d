#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks, builds budgetd (release) and runs it in the
# foreground on its embedded defaults (loopback ports 7600-7603, ./budgetd.db). Extra
# arguments go to budgetd, e.g. `scripts/run.sh --prices config/prices.json`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libzmq3-dev libsqlite3-dev libjemalloc-dev sqlite3 >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzmq3-dev libsqlite3-dev libjemalloc-dev sqlite3 pkg-config
fi
swift build -c release --product budgetd
swift build -c release --product budgetctl
exec .build/release/budgetd "$@"
