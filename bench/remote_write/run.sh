#!/bin/sh
# Remote write throughput and CPU against real Prometheus and VictoriaMetrics (Debian's packages, installed if
# missing and root), on 127.0.0.1:
#   sh bench/remote_write/run.sh [--interfaces 10000] [--cycles 6] [--receivers prometheus,victoria-metrics]
#   sh bench/remote_write/run.sh --stages        # CPU per sample of each step alone, no receiver
set -eu
cd "$(dirname "$0")/../.."
missing=""
command -v prometheus >/dev/null || missing="$missing prometheus"
command -v victoria-metrics >/dev/null || missing="$missing victoria-metrics"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "bench/remote_write needs: apt-get install -y --no-install-recommends$missing" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null \
        || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends $missing >/dev/null; }
fi
PY=.venv/bin/python
[ -x "$PY" ] || PY=/work/main/.venv/bin/python
exec flock /tmp/mepd-bench.lock env PYTHONPATH="$PWD" "$PY" bench/remote_write/bench.py "$@"
