#!/bin/sh
# Fleet throughput and lag through JetStream (R1: one nats-server; R3: three clustered on loopback):
#   sh bench/fleet/run.sh [--records N] [--rate R] [--seconds S] [--replicas 1,3]
set -eu
cd "$(dirname "$0")/../.."
command -v nats-server >/dev/null || { echo "bench/fleet needs: apt-get install -y nats-server" >&2; exit 1; }
PY=.venv/bin/python
[ -x "$PY" ] || PY=/work/main/.venv/bin/python
exec flock /tmp/mepd-bench.lock env PYTHONPATH="$PWD" "$PY" bench/fleet/bench.py "$@"
