#!/usr/bin/env bash
# Builds everything with zero warnings allowed in our own code, then runs every test
# (unit, store, ZeroMQ and the integration tests that start the real budgetd binary).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
# Warnings from our own sources fail the build (dependencies are not ours to fix).
if grep -E "^$(pwd)/(Sources|Tests)/.*warning:" "$log"; then
    echo "error: compiler warnings in budgetd's sources (above)" >&2
    exit 1
fi
swift test --skip-build
