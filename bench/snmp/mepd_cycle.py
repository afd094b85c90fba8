"""One full mepd poll-and-store cycle over many agents: the poller and RRD sink components, in one process.

Cycle 1 creates the RRD files; cycles 2-4 are the steady state and are what the bench
compares.  Prints one JSON line: wall and CPU seconds per cycle, max RSS.  CPU and RSS
count the RRD store's worker process too (it is a child: /proc, while it runs).

With `--share URL --node NAME` it is one of several pollers sharing the targets through
the leases of `[fleet] share_polling` (mepd.fleet.sharing, on the nats-server at URL),
driven by `shared.py` through stdin: `held` prints the targets it holds, `go` polls
those (as the daemon's shared poll does: the poll, then its counters for the lease) and
prints the cycle, `end` prints the totals and exits.  `--driven` without `--share`: one
mepd driven the same way, polling every target (`shared.py`'s lone mepd, measured in the
same rounds as the pollers alone).  The RRD files step at `--rrd-step`
(the lone mepd's interval), not at the short `--interval` that paces the leases: a
target's files step at its interval, and at 8 s they are 9 times the size of the lone
mepd's (3.5 MB a file against 0.37 MB: 10-14 GB a poller), whose creation and write-back
to disk were then measured in place of the poller's share of the work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mepd.app import rrd_layouts, tune_gc
from mepd.config import Config, FleetConfig, SnmpConfig, SnmpTargetConfig
from mepd.fleet import sharing
from mepd.pipeline import Counters, Pipeline
from mepd.sources.snmp.target import SnmpHub, SnmpTarget
from mepd.store.rrd.store import RrdSink, RrdStore

TICK = os.sysconf("SC_CLK_TCK")


def children() -> list[str]:
    return [pid for tid in os.listdir("/proc/self/task")
            for pid in Path(f"/proc/self/task/{tid}/children").read_text().split()]


def cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its live children (the RRD worker)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    kids = 0
    for pid in children():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        kids += int(fields[11]) + int(fields[12])
    return r.ru_utime + r.ru_stime, kids / TICK


def children_rss_mb() -> list[float]:
    out = []
    for pid in children():
        status = Path(f"/proc/{pid}/status").read_text()
        out.append(round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rrd", required=True)
    ap.add_argument("--hosts", nargs="+", required=True)
    ap.add_argument("--community", default="public")
    ap.add_argument("--cycles", type=int, default=4, help="cycle 1 creates the RRDs; the others are steady state")
    ap.add_argument("--profile", help="write a cProfile of the steady-state cycles (main thread CPU) to this file")
    ap.add_argument("--rrd-step", type=float, default=300.0,
                    help="the step of the RRD files (the layout of targets polled at this interval)")
    ap.add_argument("--share", metavar="URL", help="share the targets with other pollers through this nats-server")
    ap.add_argument("--node", default="p0", help="this poller's name, with --share")
    ap.add_argument("--driven", action="store_true", help="without --share: cycles on stdin's `go`, as with it")
    ap.add_argument("--interval", type=float, default=300.0,
                    help="the targets' interval; with --share it sets the lease rounds (a quarter of it)")
    args = ap.parse_args()
    targets_cfg = tuple(SnmpTargetConfig(name=f"a{i}", host=h, community=args.community, interval=args.interval)
                        for i, h in enumerate(args.hosts))
    fleet = FleetConfig(servers=(args.share,), node=args.node, share_polling=True) if args.share else None
    cfg = Config(snmp=SnmpConfig(target=targets_cfg), fleet=fleet)  # the daemon's defaults, as `mepd` would run them
    hub = SnmpHub(cfg.snmp)
    pipeline = Pipeline()
    stepped = tuple(dataclasses.replace(t, interval=args.rrd_step) for t in targets_cfg)
    store = RrdStore(args.rrd, layouts=rrd_layouts(dataclasses.replace(cfg, snmp=SnmpConfig(target=stepped))))
    rrd = cfg.storage.rrd
    sink = RrdSink(store, pipeline.samples.subscribe("store/rrd", 10_000_000), Counters(), pipeline.sample_counters,
                   batch_size=rrd.batch_size, flush_interval=rrd.flush_interval)
    sink_task = asyncio.create_task(sink.run(lambda: None))
    targets = [SnmpTarget(t, hub, pipeline.samples) for t in cfg.snmp.target]
    for t in targets:
        await t.open()
    if fleet is not None or args.driven:
        await driven(fleet, hub, targets, sink_task, store, pipeline, args.profile)
        return
    cycles = []
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    for n in range(1, args.cycles + 1):
        if n > 1:
            await asyncio.sleep(2)  # a later poll, as the next cycle would be; not timed
        if profile is not None and n > 1:
            profile.enable()
        w0, (m0, k0) = time.perf_counter(), cpu()
        await asyncio.gather(*(t.poll_once() for t in targets))
        await pipeline.samples.join()
        w1, (m1, k1) = time.perf_counter(), cpu()
        if profile is not None:
            profile.disable()
        cycles.append({"cycle": n, "wall_s": round(w1 - w0, 3), "cpu_s": round(m1 + k1 - m0 - k0, 3),
                       "main_cpu_s": round(m1 - m0, 3), "children_cpu_s": round(k1 - k0, 3),
                       "slowest_target_s": round(max(t.status.last_duration or 0 for t in targets), 3),
                       "resent": sum(t.counters.get("resent") for t in targets)})
        failed = [t.name for t in targets if t.status.state != "ok"]
        if failed:
            raise SystemExit(f"targets failed: {failed}")
    if profile is not None:
        profile.dump_stats(args.profile)
    children_rss = children_rss_mb()
    sink_task.cancel()
    await store.close()
    print(json.dumps({
        "interfaces": sum(t.status.interfaces for t in targets),
        "samples_per_cycle": pipeline.sample_counters.get("received") // args.cycles,
        "rrd": sink.counters.snapshot(),
        "cycles": cycles,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "children_max_rss_mb": children_rss,
    }))


async def driven(fleet: FleetConfig | None, hub: SnmpHub, targets: list[SnmpTarget], sink_task: asyncio.Task[None],
                 store: RrdStore, pipeline: Pipeline, profile_to: str | None) -> None:
    """One poller of several (`fleet`): the leases run in the background, as in the daemon; a cycle polls what
    it holds.  Without `fleet`, one mepd polling every target.  `profile_to`: a cProfile of the main thread's
    CPU from the end of cycle 1 (lease rounds included)."""
    share, share_task, node = None, None, "one"
    if fleet is not None:
        share = hub.share = sharing.create(fleet, [t.cfg for t in targets])
        share_task, node = asyncio.create_task(share.run(lambda: None)), fleet.node
    loop = asyncio.get_running_loop()
    n, last_cpu = 0, sum(cpu())
    profile = cProfile.Profile(time.thread_time) if profile_to else None
    while (command := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) not in ("end", ""):
        if command == "held":
            print(json.dumps({"held": sorted(t.cfg.name for t in targets if share is None or share.holds(t.cfg.name))}),
                  flush=True)
            continue
        n += 1
        mine = [t for t in targets if share is None or share.holds(t.cfg.name)]
        w0, (m0, k0) = time.monotonic(), cpu()
        # The daemon's shared poll: the poll, then its counters kept for the lease's next renewal.
        done = await asyncio.gather(*(t.poll_once() if share is None else t._shared_poll() for t in mine),
                                    return_exceptions=True)
        await pipeline.samples.join()
        w1, (m1, k1) = time.monotonic(), cpu()
        print(json.dumps({
            "cycle": n, "node": node, "start": w0, "end": w1, "wall_s": round(w1 - w0, 3),
            "cpu_s": round(m1 + k1 - m0 - k0, 3), "main_cpu_s": round(m1 - m0, 3), "children_cpu_s": round(k1 - k0, 3),
            "between_cpu_s": round(m0 + k0 - last_cpu, 3),  # since the last cycle: lease rounds (and idle)
            "targets": [t.cfg.name for t in mine], "interfaces": sum(t.status.interfaces for t in mine),
            "failed": [t.cfg.name for t, r in zip(mine, done, strict=True)
                       if isinstance(r, BaseException) or t.status.state != "ok"],
        }), flush=True)
        last_cpu = m1 + k1
        if profile is not None and n == 1:
            profile.enable()
    if profile is not None and profile_to:
        profile.disable()
        profile.dump_stats(profile_to)
    children_rss = children_rss_mb()
    if share_task is not None:
        share_task.cancel()  # releases its leases, as at SIGTERM
        with contextlib.suppress(asyncio.CancelledError):
            await share_task
    sink_task.cancel()
    await store.close()
    print(json.dumps({"node": node, "counters": share.counters.snapshot() if share is not None else {},
                      "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "children_max_rss_mb": children_rss}), flush=True)


if __name__ == "__main__":
    tune_gc()  # as `mepd.app.run` does
    asyncio.run(main())
