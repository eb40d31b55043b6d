#!/usr/bin/env bash
# Checks systemd/budgetd.service: `systemd-analyze verify` must print nothing (it exits 0 on
# unknown keys and other warnings, so its output is what counts), and the offline security
# exposure must be 2.0 or below. verify needs ExecStart's binary to exist: it checks a copy of
# the unit whose ExecStart points at a stub script in a temporary directory (the real binary is
# not installed in CI). Skips, saying why, where systemd-analyze cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

max_exposure=2.0
unit=systemd/budgetd.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-unit: SKIPPED: systemd-analyze is not installed (apt-get install systemd)"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$tmp/budgetd"
chmod +x "$tmp/budgetd"
sed "s|/usr/local/bin/budgetd|$tmp/budgetd|g" "$unit" >"$tmp/budgetd.service"

if ! out=$(systemd-analyze verify "$tmp/budgetd.service" 2>&1); then
    if grep -qiE "failed to (connect|initialize)|not been booted|Operation not permitted" <<<"$out"; then
        echo "check-unit: SKIPPED: systemd-analyze verify cannot run here: $out"
        exit 0
    fi
    echo "check-unit: systemd-analyze verify failed:" >&2
    echo "$out" >&2
    exit 1
fi
if [ -n "$out" ]; then
    echo "check-unit: systemd-analyze verify printed warnings (each one fails CI):" >&2
    echo "$out" >&2
    exit 1
fi

# libzmq opens a netlink socket (getifaddrs) to resolve every bind address and aborts when the
# family is refused: a unit without it cannot start the daemon at all.
if ! grep -qE '^RestrictAddressFamilies=.*\bAF_NETLINK\b' "$unit"; then
    echo "check-unit: RestrictAddressFamilies must allow AF_NETLINK (libzmq's bind aborts without it)" >&2
    exit 1
fi

sec=$(systemd-analyze security --offline=yes "$tmp/budgetd.service" 2>&1 || true)
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$sec")
if [ -z "$level" ]; then
    echo "check-unit: SKIPPED security score: systemd-analyze security --offline=yes gave no score here:"
    echo "$sec" | tail -3
    exit 0
fi
if awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l > m) }'; then
    echo "check-unit: exposure level $level is above $max_exposure:" >&2
    grep "✗" <<<"$sec" >&2 || true
    exit 1
fi
echo "check-unit: $unit verified (no warnings), exposure level $level (<= $max_exposure)"
