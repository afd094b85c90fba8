#!/bin/sh
# mepd's web-log analyser vs GoAccess and Analog: `make bench`, or
#   sh bench/weblog/run.sh [--lines N] [--seed S] [--out FILE]
set -eu
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || make venv
missing=$(for p in goaccess analog; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench/weblog needs: apt-get install -y --no-install-recommends" $missing >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends $missing >/dev/null; }
fi
exec .venv/bin/python bench/weblog/bench.py "$@"
