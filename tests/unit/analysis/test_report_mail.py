"""The report as a mail (render_mail): parsed back as a mail client would, its text is the text report and its
HTML page names every graph by a cid: that an inline image/png part of the message carries."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from typing import Any

from mepd.analysis.report_render import render_html, render_mail, render_text

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # bytes of every value: must come back as they went


def direction(avg: float) -> dict[str, object]:
    return {"average_bps": avg, "maximum_bps": 2 * avg, "p95_bps": 1.5 * avg, "bytes": 1e9,
            "p95_utilisation_pct": 1.5}


def interface(target: str, name: str) -> dict[str, object]:
    return {"target": target, "name": name, "key": f"snmp.{target}.{name}", "in": direction(1e6),
            "out": direction(2e6), "availability_pct": 99.5, "outages": []}


REPORT: dict[str, Any] = {
    "since": "2026-03-01T00:00:00.000000Z", "until": "2026-04-01T00:00:00.000000Z",
    "previous": {"since": "2026-02-01T00:00:00.000000Z", "until": "2026-03-01T00:00:00.000000Z"},
    "generated": "2026-04-01T00:05:00.000000Z", "percentile": 95.0,
    "interfaces": [interface("core", "eth0"), interface("core", "eth1"), interface("edge", "ge-0/0/0")],
    "targets": [{"name": "core", "availability_pct": 100.0, "outages": []}],
    "checks": [{"name": "web", "availability_pct": 99.9,
                "outages": [{"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:05:00Z", "seconds": 300}]}],
    "incidents": None,
    "logs": {"records": 1234, "records_change_pct": 5.0, "hosts": [], "top_errors": []},
    "web": [], "forecasts": [],
}
GRAPHS = {"snmp.core.eth0": PNG, "snmp.core.eth1": PNG[::-1], "snmp.edge.ge-0/0/0": PNG + b"x"}


def parse(message: bytes) -> EmailMessage:
    parsed = BytesParser(policy=default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_mail_is_text_and_html_with_its_graphs_inline() -> None:
    msg = parse(render_mail(REPORT, GRAPHS, "mepd@mon.example.org", ["ops@example.org", "Noc <noc@example.org>"],
                            "mon"))
    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == render_text(REPORT)
    assert related.get_content_type() == "multipart/related"
    page, *images = related.iter_parts()
    assert page.get_content_type() == "text/html"
    html = page.get_content()
    assert "data:" not in html
    by_cid = {str(i["Content-ID"]).strip("<>"): i for i in images}
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert len(cids) == len(GRAPHS) == len(images)
    assert sorted(cids) == sorted(by_cid)
    for cid, key in zip(cids, GRAPHS, strict=True):  # in the page's order: the report's interfaces
        part = by_cid[cid]
        assert part.get_content_type() == "image/png"
        assert part.get_content_disposition() == "inline"
        assert part.get_content() == GRAPHS[key]
    # Apart from where its images come from, the page is the report's page.
    same = re.sub(r'src="cid:[^"]+"', 'src="graph"', html).replace("\r\n", "\n")
    assert same == render_html(REPORT, dict.fromkeys(GRAPHS, "graph"))


def test_the_headers_sendmail_t_needs() -> None:
    msg = parse(render_mail(REPORT, GRAPHS, "mepd@mon.example.org", ["ops@example.org", "Noc <noc@example.org>"],
                            "mon"))
    assert msg["Subject"] == "mepd operations report 2026-03-01 to 2026-04-01 (mon)"
    assert msg["From"] == "mepd@mon.example.org"
    assert [a.addr_spec for a in msg["To"].addresses] == ["ops@example.org", "noc@example.org"]
    assert msg["Date"].datetime is not None
    assert re.fullmatch(r"<[^<>@\s]+@mon\.example\.org>", msg["Message-ID"])
    assert msg["MIME-Version"] == "1.0"


def test_lines_end_crlf_and_stay_short() -> None:
    """SMTP's rules, which sendmail and an .eml reader accept: CRLF line ends, none longer than 998."""
    raw = render_mail(REPORT, GRAPHS, "mepd@h", ["ops@example.org"], "h")
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines)
    assert max(len(line) for line in lines) <= 998
    assert message_from_bytes(raw).is_multipart()


def test_a_report_without_graphs_is_a_mail_too() -> None:
    msg = parse(render_mail(REPORT, {}, "mepd@h", ["ops@example.org"], "h"))
    _, page = msg.iter_parts()
    assert page.get_content_type() == "text/html"  # nothing related to it
    assert "cid:" not in page.get_content()
