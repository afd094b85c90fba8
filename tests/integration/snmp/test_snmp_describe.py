"""When the descriptive IF-MIB columns (ifName, ifDescr, ifAlias, ifType, speeds) are walked again.

snmpsim lets every trigger be set by hand; net-snmp's snmpd (5.9 on Linux) is used for
what it really does: it keeps ifTableLastChange at 0, does not read the kernel's
interface alias, and keeps the first ifName of an ifIndex (a rename shows in ifDescr).
What a real agent shows at once is a new interface and a changed oper status (a
rename with the link left down, for instance).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping

import pytest

from mepd.sources.snmp.interfaces import IF_TABLE_LAST_CHANGE
from mepd.sources.snmp.target import DESCRIBE_MAX_AGE, SnmpTarget
from tests.integration.snmp.conftest import COMMUNITY, T0, Iface, Poller, Sim, Snmpd, snmprec
from tests.integration.snmp.test_snmp_agents import target, wait_until_async

StartSim = Callable[[Mapping[str, str]], Sim]
LAST_CHANGE = ".".join(map(str, IF_TABLE_LAST_CHANGE))


def agent(uptime: int, *ifaces: Iface, last_change: int = 50) -> str:
    return snmprec(uptime, list(ifaces), extra={LAST_CHANGE: f"67|{last_change}"})


class Clock:
    """The poller's wall clock, moved by the test together with the agent's sysUpTime."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def alias(t: SnmpTarget, name: str) -> str:
    return t.interfaces[name].alias


async def test_alias_change_shows_when_if_table_last_change_moves(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"lc": agent(1000, Iface(1, "eth0", alias="old"))})
    clock = Clock()
    t = await poller(target("lc", sim.port), clock=clock)
    await t.poll_once()
    assert (alias(t, "eth0"), t.counters.get("describe_walks")) == ("old", 1)
    # Only the alias changed: the last walk's description stands, no walk of the descriptive columns.
    sim.set("lc", agent(2000, Iface(1, "eth0", alias="new")))
    clock.now += 10
    await t.poll_once()
    assert (alias(t, "eth0"), t.counters.get("describe_walks")) == ("old", 1)
    # ifTableLastChange moved: walked again.
    sim.set("lc", agent(3000, Iface(1, "eth0", alias="new"), last_change=2500))
    clock.now += 10
    await t.poll_once()
    assert (alias(t, "eth0"), t.counters.get("describe_walks")) == ("new", 2)


async def test_alias_change_alone_shows_within_the_hour(start_sim: StartSim, poller: Poller) -> None:
    sim = start_sim({"hr": agent(1000, Iface(1, "eth0", alias="old"))})
    clock = Clock()
    t = await poller(target("hr", sim.port), clock=clock)
    await t.poll_once()
    sim.set("hr", agent(1000 + 100 * 600, Iface(1, "eth0", alias="new")))
    clock.now += 600
    await t.poll_once()
    assert alias(t, "eth0") == "old"
    age = int(DESCRIBE_MAX_AGE)
    sim.set("hr", agent(1000 + 100 * age, Iface(1, "eth0", alias="new")))
    clock.now = T0 + age
    await t.poll_once()
    assert (alias(t, "eth0"), t.counters.get("describe_walks")) == ("new", 2)


@pytest.mark.parametrize("change", ["oper", "new interface", "restart", "discontinuity"])
async def test_what_else_walks_the_descriptive_columns_again(start_sim: StartSim, poller: Poller,
                                                             change: str) -> None:
    sim = start_sim({"ch": agent(1000, Iface(1, "eth0", alias="old"))})
    clock = Clock()
    t = await poller(target("ch", sim.port), clock=clock)
    await t.poll_once()
    eth0 = Iface(1, "eth0", alias="new")
    uptime = 2000
    ifaces = [eth0]
    if change == "oper":
        eth0.oper = 2
    elif change == "new interface":
        ifaces.append(Iface(2, "eth1"))
    elif change == "restart":
        uptime = 500  # sysUpTime went back
    else:
        eth0.extra["discontinuity"] = 1  # unused by snmprec: set the column below
    text = agent(uptime, *ifaces)
    if change == "discontinuity":
        text = text.replace("1.3.6.1.2.1.31.1.1.1.19.1|67|0", "1.3.6.1.2.1.31.1.1.1.19.1|67|1500")
    sim.set("ch", text)
    clock.now += 10
    await t.poll_once()
    assert (alias(t, "eth0"), t.counters.get("describe_walks")) == ("new", 2)
    if change == "new interface":
        assert "eth1" in t.interfaces


@pytest.fixture
def veth() -> Iterator[Callable[[], str]]:
    """`veth()`: a new veth pair in this network namespace (the host's, where the test snmpd runs);
    its first end's name.  Needs root and `ip`; both ends are deleted after the test."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to add interfaces")
    made: list[str] = []
    counter = itertools.count()

    def make() -> str:
        name = f"mpd{os.getpid() % 100000}x{next(counter)}"
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
        made.append(name)
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "link", "del", name], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", name + "r"], check=False, stderr=subprocess.DEVNULL)


async def test_real_snmpd_new_interface_and_rename_show_without_waiting_an_hour(
        snmpd: Snmpd, poller: Poller, veth: Callable[[], str]) -> None:
    t = await poller(target("real", snmpd.port, community=COMMUNITY), clock=time.time)
    await t.poll_once()
    walks = t.counters.get("describe_walks")
    name = veth()

    async def polled(want: str) -> bool:
        await t.poll_once()
        return want in t.interfaces

    await wait_until_async(lambda: polled(name), f"{name} among the polled interfaces")
    assert t.counters.get("describe_walks") > walks
    # Renamed (Linux renames only a link that is down) and left down: its oper status moved, so the
    # descriptive columns are walked again.  net-snmp keeps the ifName it first saw for an ifIndex and
    # shows the new name in ifDescr: the interface keeps its key (and history), its ifDescr changes.
    await ip("link", "set", name + "p", "up")
    await ip("link", "set", name, "up")
    await wait_until_async(lambda: oper_up(t, name), f"{name} up")
    await ip("link", "set", name, "down")
    await ip("link", "set", name, "name", name + "r")
    walks = t.counters.get("describe_walks")

    async def described_as(descr: str) -> bool:
        await t.poll_once()
        return t.interfaces[name].descr == descr

    await wait_until_async(lambda: described_as(name + "r"), f"{name} described as {name}r")
    assert t.counters.get("describe_walks") > walks
    assert t.interfaces[name].oper == 2


async def ip(*args: str) -> None:
    await asyncio.to_thread(subprocess.run, ["ip", *args], check=True)


async def oper_up(t: SnmpTarget, name: str) -> bool:
    await t.poll_once()
    return name in t.interfaces and t.interfaces[name].oper == 1
