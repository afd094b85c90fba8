#!/bin/sh
# mepd vs rsyslog vs syslog-ng as syslog receivers: `make bench`, or
#   sh bench/syslog/run.sh [--quick] [--daemons mepd,rsyslog,syslog-ng] [--profile DIR] [--out FILE]
# Prepares what bench.py needs (the C sender, rsyslogd, an unpacked syslog-ng), then runs it.
set -eu
cd "$(dirname "$0")/../.."
CACHE=var/bench/syslog
mkdir -p "$CACHE"

[ -x .venv/bin/mepd ] || make venv

as_root_install() {
    missing=$(for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "bench/syslog needs: apt-get install -y --no-install-recommends" $missing >&2
        return 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends $missing >/dev/null; }
}

as_root_install gcc libc6-dev rsyslog

if [ ! -x "$CACHE/sender" ] || [ bench/syslog/sender.c -nt "$CACHE/sender" ]; then
    gcc -O2 -Wall -Wextra -o "$CACHE/sender" bench/syslog/sender.c
fi

# syslog-ng-core conflicts with rsyslog as a package (both provide system-log-daemon), and the
# tests need rsyslog: unless syslog-ng is already installed, install only its libraries and run
# the binary from the unpacked .deb.
set --  --sender "$CACHE/sender" "$@"
if command -v syslog-ng >/dev/null 2>&1; then
    set -- --syslog-ng "$(command -v syslog-ng)" "$@"
else
    SNG="$CACHE/syslog-ng-root"
    if [ ! -x "$SNG/usr/sbin/syslog-ng" ] \
        && as_root_install libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 libwrap0 libcap2; then
        (cd "$CACHE" && rm -f syslog-ng-core_*.deb \
            && { apt-get download syslog-ng-core >/dev/null 2>&1 \
                 || { apt-get update >/dev/null && apt-get download syslog-ng-core >/dev/null 2>&1; }; } \
            && dpkg-deb -x syslog-ng-core_*.deb syslog-ng-root) || echo "could not fetch syslog-ng-core" >&2
    fi
    if [ -x "$SNG/usr/sbin/syslog-ng" ]; then
        SNG=$(cd "$SNG" && pwd)
        set -- --syslog-ng "$SNG/usr/sbin/syslog-ng" --syslog-ng-libs "$SNG/usr/lib/syslog-ng" \
            --syslog-ng-modules "$(dirname "$(find "$SNG/usr/lib/syslog-ng" -name libafsocket.so | head -n 1)")" "$@"
    fi
fi

exec flock /tmp/mepd-bench.lock .venv/bin/python bench/syslog/bench.py "$@"  # one bench at a time (bench/README.md)
