#!/bin/sh
# mepd vs MRTG (cfgmaker + mrtg, LogFormat rrdtool) vs snmpbulkwalk on the same real net-snmp agents.
#
# Everything runs in network namespaces made for the bench: AGENTS namespaces,
# each with PAIRS veth pairs (2 x PAIRS interfaces) and its own snmpd, linked to
# one poller namespace by a veth pair (10.199.K.0/30).  net-snmp 5.9.3's
# include_ifmib_iface_prefix does not filter (net-snmp issue 1081), hence one
# namespace per agent.  Needs root and the Debian packages snmpd snmp mrtg librrds-perl rrdtool bc time.
#   sh bench/snmp/run.sh            # 10 agents x 1,000 interfaces
#   AGENTS=2 PAIRS=50 sh bench/snmp/run.sh
#   sh bench/snmp/run.sh --pollers 3   # also 3 mepd pollers sharing the agents through JetStream leases
#                                      # (shared.py; needs nats-server)
#   PROFILE=/tmp/prof sh bench/snmp/run.sh --pollers 3   # cProfiles: mepd.prof, pN.prof, one.prof
set -eu
# One bench at a time on the machine: every run.sh takes this lock (bench/README.md).
[ "${MEPD_BENCH_LOCKED:-}" = 1 ] || exec env MEPD_BENCH_LOCKED=1 flock /tmp/mepd-bench.lock sh "$0" "$@"
POLLERS=0
while [ $# -gt 0 ]; do
    case $1 in
        --pollers) POLLERS=$2; shift 2 ;;
        *) echo "usage: sh bench/snmp/run.sh [--pollers N]" >&2; exit 2 ;;
    esac
done
[ "$POLLERS" -eq 0 ] || command -v nats-server >/dev/null || { echo "--pollers needs: apt-get install -y nats-server" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
AGENTS=${AGENTS:-10}
PAIRS=${PAIRS:-500}
PROFILE=${PROFILE:-}
[ -z "$PROFILE" ] || mkdir -p "$PROFILE"
W=$(mktemp -d /tmp/mepd-snmpbench.XXXXXX)
SHM=$(mktemp -d /dev/shm/mepd-snmpbench.XXXXXX)   # snmpd persistentDir: it fsyncs once per new interface
P=mepdb-poll
PIDS=""

cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
    ip netns del $P 2>/dev/null || true
    k=0; while [ $k -lt "$AGENTS" ]; do ip netns del mepdb-a$k 2>/dev/null || true; k=$((k + 1)); done
    rm -rf "$W" "$SHM"
}
trap cleanup EXIT INT TERM

echo "setting up $AGENTS agents x $((2 * PAIRS)) interfaces in network namespaces..."
ip netns add $P
ip -n $P link set lo up
HOSTS=""
k=0
while [ $k -lt "$AGENTS" ]; do
    ns=mepdb-a$k
    ip netns add $ns
    ip -n $ns link set lo up
    # No IPv6 in the agents' namespaces: net-snmp reloads its interface table every 3 s even when idle
    # (ifTable's cache), and looks up every interface's IPv6 addresses over netlink each time, which with
    # a link-local address on each of 1,000 veths costs 70 ms of CPU per agent and reload (10 ms without).
    ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip link add pl$k netns $P type veth peer name al$k netns $ns
    ip -n $P addr add 10.199.$k.1/30 dev pl$k && ip -n $P link set pl$k up
    ip -n $ns addr add 10.199.$k.2/30 dev al$k && ip -n $ns link set al$k up
    i=0
    while [ $i -lt "$PAIRS" ]; do
        echo "link add x$i type veth peer name y$i"; echo "link set x$i up"; echo "link set y$i up"
        i=$((i + 1))
    done > "$W/batch$k"
    ip -n $ns -batch "$W/batch$k"
    mkdir -p "$SHM/a$k"
    printf '[snmp] persistentDir %s\nagentAddress udp:10.199.%d.2:161\nrocommunity public 10.199.%d.0/30\n' \
        "$SHM/a$k" $k $k > "$W/snmpd$k.conf"
    ip netns exec $ns snmpd -f -Lo -C -m "" -c "$W/snmpd$k.conf" -p "$W/snmpd$k.pid" > "$W/snmpd$k.log" 2>&1 &
    PIDS="$PIDS $!"
    HOSTS="$HOSTS 10.199.$k.2"
    k=$((k + 1))
done
for h in $HOSTS; do
    n=0
    until ip netns exec $P snmpget -v2c -c public -m "" -t 1 -r 0 "$h" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1; do
        n=$((n + 1)); [ $n -lt 300 ] || { echo "agent $h does not answer"; exit 1; }
    done
done
# Warm every agent's interface cache once, so no poller pays for the first load.
for h in $HOSTS; do ip netns exec $P snmpbulkwalk -v2c -c public -m "" -t 10 -r 3 -Cr25 "$h" 1.3.6.1.2.1.2.2.1.2 >/dev/null; done

measure() {   # measure NAME CMD...: wall, CPU (user+sys of the command and its children), max RSS
    name=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$W/time.$name" "$@"
    read -r wall user sys rss < "$W/time.$name"
    echo "$name $wall $(echo "$user + $sys" | bc) $rss" >> "$W/results"
}
: > "$W/results"

echo "snmpbulkwalk: ifTable + ifXTable of each agent, one after the other"
measure snmpbulkwalk ip netns exec $P sh -c "for h in $HOSTS; do
    snmpbulkwalk -v2c -c public -m '' -t 10 -On -Cr25 \$h 1.3.6.1.2.1.2.2.1 >/dev/null
    snmpbulkwalk -v2c -c public -m '' -t 10 -On -Cr25 \$h 1.3.6.1.2.1.31.1.1.1 >/dev/null; done"

echo "mepd: poll-and-store cycles (cycle 1 creates the RRDs; the median of cycles 2-4 is compared)"
ip netns exec $P /usr/bin/time -f "%e %U %S %M" -o "$W/time.mepd-process" \
    "$PY" "$ROOT/bench/snmp/mepd_cycle.py" --rrd "$W/mepd-rrd" --hosts $HOSTS ${PROFILE:+--profile "$PROFILE/mepd.prof"} \
    > "$W/mepd.json"
cat "$W/mepd.json"

echo '{}' > "$W/shared.json"
if [ "$POLLERS" -gt 0 ]; then
    echo "mepd x $POLLERS: pollers sharing the agents through leases on a nats-server (cycle 1 creates the RRDs)"
    mkdir -p "$W/shared"
    ip netns exec $P "$PY" "$ROOT/bench/snmp/shared.py" --work "$W/shared" --pollers "$POLLERS" --hosts $HOSTS \
        ${PROFILE:+--profile "$PROFILE"} > "$W/shared.json"
    cat "$W/shared.json"
fi

echo "MRTG: cfgmaker, then mrtg 4 times (run 1 creates the RRDs; the median of runs 2-4 is compared)"
mkdir -p "$W/mrtg"
targets=""; for h in $HOSTS; do targets="$targets public@$h"; done
ip netns exec $P env LANG=C cfgmaker --global "WorkDir: $W/mrtg" --global "LogFormat: rrdtool" \
    --output "$W/mrtg.cfg" $targets > "$W/cfgmaker.log" 2>&1
echo "  cfgmaker made $(grep -c '^Target\[' "$W/mrtg.cfg") targets"
ip netns exec $P env LANG=C mrtg --lock-file "$W/mrtg.lock" --confcache-file "$W/mrtg.ok" "$W/mrtg.cfg" \
    > "$W/mrtg1.log" 2>&1 || true
for run in 2 3 4; do
    sleep 2   # a later poll (RRDs take one update per second at most); not timed
    measure mrtg$run ip netns exec $P env LANG=C mrtg --lock-file "$W/mrtg.lock" --confcache-file "$W/mrtg.ok" \
        "$W/mrtg.cfg"
done
echo "  mrtg wrote $(find "$W/mrtg" -name '*.rrd' | wc -l) RRD files"

"$PY" - "$W/mepd.json" "$W/results" "$W/time.mepd-process" "$W/shared.json" <<'PYEOF'
import json, statistics, sys
mepd = json.load(open(sys.argv[1]))
shared = json.load(open(sys.argv[4]))
rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in open(sys.argv[2])}
proc = [float(x) for x in open(sys.argv[3]).read().split()]
steady = mepd["cycles"][1:]
mw, mc = (statistics.median(c[k] for c in steady) for k in ("wall_s", "cpu_s"))
mrtg = [rows[f"mrtg{r}"] for r in (2, 3, 4)]
rw, rc, rr = (statistics.median(m[i] for m in mrtg) for i in range(3))
ww, wc, _ = rows["snmpbulkwalk"]
print(f"\ninterfaces polled by mepd: {mepd['interfaces']}; samples per cycle: {mepd['samples_per_cycle']}")
print(f"{'':30}{'wall s':>10}{'CPU s':>10}{'max RSS MB':>12}")
print(f"{'snmpbulkwalk (sequential)':30}{ww:>10.2f}{wc:>10.2f}")
for r, m in zip((2, 3, 4), mrtg):
    print(f"{f'MRTG run {r}':30}{m[0]:>10.2f}{m[1]:>10.2f}{m[2] / 1024:>12.1f}")
for c in mepd["cycles"]:
    what = f"mepd cycle {c['cycle']}" + (" (creates RRDs)" if c["cycle"] == 1 else "")
    print(f"{what:30}{c['wall_s']:>10.2f}{c['cpu_s']:>10.2f}{'':>12}  main {c['main_cpu_s']}s + worker"
          f" {c['children_cpu_s']}s CPU, slowest target {c['slowest_target_s']}s, resent {c['resent']}")
print(f"{'mepd whole process':30}{proc[0]:>10.2f}{proc[1] + proc[2]:>10.2f}{proc[3] / 1024:>12.1f}")
print(f"{'  of which main process':30}{'':>10}{'':>10}{mepd['max_rss_mb']:>12.1f}")
for rss in mepd.get("children_max_rss_mb", []):
    print(f"{'  a child (RRD worker)':30}{'':>10}{'':>10}{rss:>12.1f}")
print(f"\nmedians: MRTG {rw:.2f}s wall {rc:.2f}s CPU; mepd {mw:.2f}s wall {mc:.2f}s CPU")
print(f"MRTG / mepd: wall x{rw / mw:.1f}, CPU x{rc / mc:.1f}; snmpbulkwalk / mepd wall x{ww / mw:.2f}")
if shared:
    n = shared["pollers"]
    print(f"\n{n} pollers sharing the agents (leases settled in {shared['settle_s']}s):")
    for c in shared["cycles"]:
        parts = " | ".join(f"{p['node']}: {len(p['targets'])} targets {p['wall_s']:.2f}s {p['cpu_s']:.2f}s CPU"
                           f" (main {p['main_cpu_s']} + worker {p['children_cpu_s']}), leases between"
                           f" {p['between_cpu_s']}s" for p in c["pollers"])
        print(f"  cycle {c['cycle']}: {c['wall_s']:.2f}s wall{'' if c['complete'] else ' (INCOMPLETE)'}; {parts}")
    for t in shared["totals"]:
        print(f"  {t['node']}: leases {t['counters']}, max RSS {t['max_rss_mb']} MB + {t['children_max_rss_mb']}")
    steady = shared["cycles"][1:]
    sw = statistics.median(c["wall_s"] for c in steady)
    busiest = statistics.median(max(p["cpu_s"] for p in c["pollers"]) for c in steady)
    total = statistics.median(sum(p["cpu_s"] for p in c["pollers"]) for c in steady)
    print(f"medians: cycle across the {n} pollers {sw:.2f}s wall; busiest poller {busiest:.2f}s CPU,"
          f" all pollers {total:.2f}s CPU")
    print(f"{n} pollers / one mepd: cycle wall x{sw / mw:.2f}, busiest poller's CPU x{busiest / mc:.2f},"
          f" all pollers' CPU x{total / mc:.2f}")
    print(f"MRTG / {n} pollers: wall x{rw / sw:.1f}, CPU x{rc / busiest:.1f} (busiest poller),"
          f" x{rc / total:.1f} (all pollers)")
    print(f"\none mepd then each poller polling its share alone, in turn (the others idle), {len(shared['alone'])} rounds:")
    for r in shared["alone"]:
        parts = " | ".join(f"{p['node']}: {len(p['targets'])} targets {p['wall_s']:.2f}s {p['cpu_s']:.2f}s CPU"
                           f" (main {p['main_cpu_s']} + worker {p['children_cpu_s']})" for p in r["pollers"])
        print(f"  round {r['round']}{'' if r['complete'] else ' (INCOMPLETE)'}: {parts}")
    nodes = [p["node"] for p in shared["alone"][0]["pollers"]]
    alone = {node: [p for r in shared["alone"] for p in r["pollers"] if p["node"] == node] for node in nodes}
    aw = {node: statistics.median(p["wall_s"] for p in ps) for node, ps in alone.items()}
    ac = {node: statistics.median(p["cpu_s"] for p in ps) for node, ps in alone.items()}
    ow, oc = aw.pop("one"), ac.pop("one")
    slow = max(aw, key=lambda node: aw[node])
    print("medians alone: " + ", ".join(f"{node} {aw[node]:.2f}s wall {ac[node]:.2f}s CPU" for node in aw)
          + f"; one mepd in the same rounds {ow:.2f}s wall {oc:.2f}s CPU")
    print(f"separate machines (the slowest poller alone, {slow}) / one mepd in the same rounds: wall"
          f" x{aw[slow] / ow:.2f} ({aw[slow]:.2f}s / {ow:.2f}s), busiest poller's CPU alone x{max(ac.values()) / oc:.2f}")
PYEOF
