#!/usr/bin/env bash
# Installs budgetd in one command: builds release binaries, installs them, the systemd unit and
# the example configuration, and tells systemd about the unit.
#
#   sudo scripts/install.sh                      # /usr/local/bin, /etc/systemd/system, /etc/budgetd
#   scripts/install.sh --prefix /usr DESTDIR=…   # for packaging (DESTDIR also from the environment)
#
# Options: --prefix DIR (default /usr/local: binaries in DIR/bin, docs in DIR/share/doc/budgetd),
# --destdir DIR or DESTDIR=DIR (a staging root, as for a package; no daemon-reload then),
# --no-build (install what .build/release already holds).
# Existing files in /etc/budgetd are never overwritten (the new defaults go beside them as
# *.dist); the binaries and the unit are replaced (an upgrade: see docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
destdir=${DESTDIR:-}
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=$2; shift 2 ;;
        --destdir=*|DESTDIR=*) destdir=${1#*=}; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done

bindir=$destdir$prefix/bin
docdir=$destdir$prefix/share/doc/budgetd
unitdir=$destdir/etc/systemd/system
confdir=$destdir/etc/budgetd

if [ "$build" = 1 ]; then
    swift build -c release --product budgetd
    swift build -c release --product budgetctl
fi
bin=$(swift build -c release --show-bin-path)

install -d "$bindir" "$docdir" "$unitdir" "$confdir"
install -m 0755 "$bin/budgetd" "$bin/budgetctl" "$bindir/"
# The unit names /usr/local/bin/budgetd; follow --prefix.
sed "s|/usr/local/bin/budgetd|$prefix/bin/budgetd|g; s|/usr/local/share/doc/budgetd|$prefix/share/doc/budgetd|g" \
    systemd/budgetd.service >"$unitdir/budgetd.service.tmp"
chmod 0644 "$unitdir/budgetd.service.tmp"
mv "$unitdir/budgetd.service.tmp" "$unitdir/budgetd.service"
for f in budgetd.json prices.json; do
    if [ -e "$confdir/$f" ]; then
        install -m 0644 "config/$f" "$confdir/$f.dist"
        echo "kept $confdir/$f (the shipped one is $confdir/$f.dist)"
    else
        install -m 0644 "config/$f" "$confdir/$f"
    fi
done
install -m 0644 README.md docs/*.md config/grafana-dashboard.json "$docdir/"
install -m 0755 examples/publish.py examples/pager.py examples/budgetctl.sh "$docdir/"

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    reloaded="systemd reloaded its units."
else
    reloaded="(no daemon-reload: staging into DESTDIR, or systemd is not running here.)"
fi
"$bindir/budgetd" --version >/dev/null 2>&1 || true
cat <<NEXT
Installed budgetd $("$bindir/budgetd" --version 2>/dev/null || echo) into $destdir$prefix. $reloaded

Next steps (docs/operations.md has the whole walk-through):
  1. Check the configuration:   sudo budgetd --check-config --config /etc/budgetd/budgetd.json
  2. Start it now and at boot:  sudo systemctl enable --now budgetd
  3. Is it up?                  systemctl status budgetd; budgetctl health
  4. Logs:                      journalctl -u budgetd -f
  5. Metrics:                   curl -s http://127.0.0.1:9464/metrics | grep ^budgetd_
  6. Alerts:                    budgetctl alerts tail
  After editing /etc/budgetd/*.json: sudo systemctl reload budgetd (prices and alert settings).
NEXT
