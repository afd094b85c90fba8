"""`printable`: what mepctl's human output does with control characters, in every renderer that prints
outside text (the integration test sends the real bytes through a daemon)."""

from __future__ import annotations

from mepd.analysis.weblog.render import _table_text
from mepd.api import render
from mepd.terminal import printable


def test_printable_escapes_c0_del_and_c1_but_keeps_tabs_and_text() -> None:
    assert printable("a\tb é ✓") == "a\tb é ✓"
    assert printable("\x1b]0;t\x07\x00\r\n\x7f\u0080\u009b\u009f\u00a0") == (
        r"\x1b]0;t\x07\x00\x0d\x0a\x7f\u0080\u009b\u009f" + "\u00a0")


def test_every_human_renderer_escapes() -> None:
    hostile = "x\x1b[2Jy\u009b"
    shown = r"x\x1b[2Jy\u009b"
    assert shown in render.log_line({"host": hostile, "app": hostile, "message": hostile})
    assert render.table(("A", "B"), [(hostile, hostile)]).count(shown) == 2
    inc = {"id": 1, "state": "firing", "severity": "warning", "rule": "r", "kind": "log", "summary": hostile,
           "labels": {"host": hostile}, "started": None, "last_seen": None, "count": 1, "value": None,
           "comment": hostile, "lines": [hostile + "\nforged line"]}
    text = render.incident(inc, [{"ts": None, "event": "action", "output": f"{hostile}\n{hostile}\n"}])
    assert "\x1b" not in text
    assert "\u009b" not in text
    assert text.count(shown) == 6
    assert "forged line" not in text.split("\n")
    assert "\x1b" not in "\n".join(_table_text("Paths", [{"key": hostile, "requests": 1, "bytes": 1}]))
