"""The lease and balance logic of shared SNMP polling (mepd.fleet.leases), without NATS."""

from __future__ import annotations

from collections import Counter

from mepd.fleet.leases import Lease, Plan, View, decode_counters, encode_counters, plan

LIFE = 1.0
TARGETS = [f"t{i}" for i in range(30)]


def view_of(owners: dict[str, str], at: float = 0.0) -> View:
    view = View()
    for i, (target, owner) in enumerate(owners.items()):
        view.observe(target, i + 1, Lease(owner, 0.0), at)
    return view


def spread(n: int, pollers: list[str]) -> dict[str, str]:
    return {TARGETS[i]: pollers[i % len(pollers)] for i in range(n)}


def test_lease_value_round_trips_and_garbage_is_free() -> None:
    lease = Lease("p1", 12.5)
    assert Lease.decode(lease.encode()) == lease
    assert len(lease.encode()) < 64  # read by every poller every round: it must stay small
    assert Lease.decode(b"not json") is None
    assert Lease.decode(b'{"since": 1}') is None


def test_counters_round_trip_and_garbage_is_none() -> None:
    counters = {"version": 1, "rows": {"eth0": [[1, 2], 64, None]}}
    assert decode_counters(encode_counters(counters)) == counters
    assert decode_counters(b"not json") is None
    assert decode_counters(b"[1, 2]") is None


def test_first_poller_claims_everything_and_three_split_evenly() -> None:
    moves = plan("a", TARGETS, View(), {}, 0.0, LIFE)
    assert sorted(moves.claim) == sorted(TARGETS)
    assert not moves.take
    # b and c start while a holds everything: each takes its share, from a only.
    view = view_of(dict.fromkeys(TARGETS, "a"))
    b = plan("b", TARGETS, view, {}, 0.1, LIFE)
    assert not b.claim
    assert len(b.take) == 15
    owners = {t: ("b" if t in b.take else "a") for t in TARGETS}
    c = plan("c", TARGETS, view_of(owners), {}, 0.1, LIFE)
    assert len(c.take) == 10
    final = Counter("c" if t in c.take else o for t, o in owners.items())
    assert sorted(final.values()) == [10, 10, 10]
    # a, holding more than its share, gives nothing away by itself: only those under their share move.
    assert plan("a", TARGETS, view_of(owners), {t: 1 for t, o in owners.items() if o == "a"}, 0.1, LIFE) == Plan()


def test_a_dead_pollers_targets_are_claimed_only_once_its_leases_expired() -> None:
    owners = spread(30, ["a", "b", "c"])
    view = view_of(owners, at=0.0)
    held_a = {t: 1 for t, o in owners.items() if o == "a"}
    assert plan("a", TARGETS, view, held_a, LIFE - 0.01, LIFE).claim == ()
    moves = plan("a", TARGETS, view, held_a, LIFE, LIFE)  # b's and c's leases unchanged for a lifetime
    assert len(moves.claim) == 20
    assert not moves.take
    assert all(owners[t] != "a" for t in moves.claim)


def test_survivors_split_a_dead_pollers_share_at_most_one_over_the_fair_share() -> None:
    owners = spread(30, ["a", "b", "c"])
    view = view_of(owners)
    for t, o in owners.items():
        if o in ("a", "b"):
            view.observe(t, 100, Lease(o, 0.0), 5.0)  # a and b renew; c stopped at 0
    held_a = {t: 100 for t, o in owners.items() if o == "a"}
    claim = plan("a", TARGETS, view, held_a, 5.5, LIFE).claim
    assert len(claim) == 5
    assert all(owners[t] == "c" for t in claim)


def test_a_poller_that_comes_back_takes_its_share_and_no_more() -> None:
    owners = spread(30, ["a", "b"])
    moves = plan("c", TARGETS, view_of(owners), {}, 0.0, LIFE)
    assert len(moves.take) == 10
    assert not moves.claim
    assert Counter(owners[t] for t in moves.take) == {"a": 5, "b": 5}


def test_nothing_moves_when_the_spread_is_within_one() -> None:
    targets = [*TARGETS, "t30"]
    owners = {t: "abc"[i % 3] for i, t in enumerate(targets)}  # a 11, b 10, c 10
    for me in "abc":
        held = {t: 1 for t, o in owners.items() if o == me}
        assert plan(me, targets, view_of(owners), held, 0.0, LIFE) == Plan()


def test_own_leases_from_before_a_restart_are_claimed_back_at_once() -> None:
    owners = spread(30, ["a", "b", "c"])
    moves = plan("a", TARGETS, view_of(owners), {}, 0.0, LIFE)
    assert sorted(moves.claim) == sorted(t for t, o in owners.items() if o == "a")


def test_released_leases_are_free_at_once() -> None:
    owners = spread(30, ["a", "b", "c"])
    view = view_of(owners)
    for t, o in owners.items():
        if o == "c":
            view.observe(t, 200, Lease("", 1.0), 0.1)
    held_a = {t: 1 for t, o in owners.items() if o == "a"}
    assert len(plan("a", TARGETS, view, held_a, 0.2, LIFE).claim) == 5


def test_moves_converge_without_oscillation() -> None:
    """Pollers planning in turn from any start reach a spread within one, each move making it more even."""
    owners = dict.fromkeys(TARGETS, "a") | {TARGETS[0]: "b"}
    pollers = ["a", "b", "c", "d"]
    for _ in range(10):
        moved = 0
        for me in pollers:
            held = {t: 1 for t, o in owners.items() if o == me}
            moves = plan(me, TARGETS, view_of(owners), held, 0.0, LIFE)
            for t in (*moves.claim, *moves.take):
                owners[t] = me
                moved += 1
        if not moved:
            break
    counts = Counter(owners.values())
    assert set(counts) == set(pollers)
    assert max(counts.values()) - min(counts.values()) <= 1
