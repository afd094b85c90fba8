"""The target timeline page: the device's lines and its interfaces' incidents on one axis, each interface linked
to its page; and the links to it from the overview and the interface page."""

from __future__ import annotations

from mepd.web.data import InterfaceView, TargetView
from mepd.web.pages import Ctx, interface, target_timeline, targets_section

EVENTS = [
    {"ts": "2027-01-15T08:00:00.000000Z", "kind": "log", "event": "restart", "interface": None, "host": "sw1",
     "app": None, "severity": "notice", "message": "%SYS-5-RESTART: System restarted --"},
    {"ts": "2027-01-15T08:05:00.000000Z", "kind": "log", "event": "down", "interface": "Gi0_1", "host": "sw1",
     "app": None, "severity": "err", "message": "%LINK-3-UPDOWN: Interface <Gi0/1>, changed state to down"},
    {"ts": "2027-01-15T08:05:00.100000Z", "kind": "incident", "event": "fired", "incident": 7, "rule": "link-down",
     "summary": "snmp.sw1.Gi0_1.oper_up is 0, below 1", "interface": "Gi0_1", "detail": {}},
]


def test_the_page_puts_each_event_on_one_axis_with_its_interface_linked() -> None:
    html = target_timeline(Ctx(root="../"), "sw1", EVENTS, 300.0)
    table = html.split("<section id=timeline>", 1)[1]
    rows = table.split("<tr")[2:]
    assert len(rows) == 3
    assert "<td>device</td>" in rows[0]
    assert "restart" in rows[0]
    assert '<td><a href="../if/sw1/Gi0_1.html">Gi0_1</a></td>' in rows[1]
    assert "Interface &lt;Gi0/1&gt;, changed state to down" in rows[1]  # escaped
    assert "incident 7 (link-down)" in rows[2]
    assert '<a href="../index.html#target-sw1">sw1</a>' in html
    assert 'content="300"' in html


def test_an_empty_timeline_says_so() -> None:
    assert "No events." in target_timeline(Ctx(root="../"), "sw1", [], 300.0)


def test_the_overview_links_the_timeline_of_the_targets_that_have_one() -> None:
    polled = TargetView("sw1", "192.0.2.1", "ok", None, 300.0, (), timeline=True)
    only_stored = TargetView("old", "", "not polled", None, 300.0, ())
    html = targets_section(Ctx(), [polled, only_stored])
    assert 'href="timeline/sw1.html"' in html
    assert "timeline/old.html" not in html


def test_the_interface_page_links_its_targets_timeline_when_it_has_one() -> None:
    view = InterfaceView("sw1", "Gi0_1", "snmp.sw1.Gi0_1")
    assert 'href="../../timeline/sw1.html"' in interface(Ctx(root="../../"), view, {}, 300.0, events=[])
    assert "timeline/" not in interface(Ctx(root="../../"), view, {}, 300.0, events=None)
