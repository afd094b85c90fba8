"""The operations report (`mepd.analysis.report`'s dict) as text for a terminal, one self-contained HTML
page (its style inline and its graphs as data: URIs, so it can be archived as one file), or a mail: mail
clients (Gmail, Outlook) block data: images, so there the graphs are inline parts the page names by cid:."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any, Final

CSS: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}.muted{color:#777}img{display:block;margin:.4em 0}
"""


def _h(value: object) -> str:
    return escape("" if value is None else str(value))


def si(value: object, unit: str) -> str:
    """12.3 Mb/s; '-' for unknown."""
    if not isinstance(value, int | float):
        return "-"
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"


def pct(value: object) -> str:
    return f"{value:.2f}%" if isinstance(value, int | float) else "-"


def change(value: object) -> str:
    return f"{value:+.1f}%" if isinstance(value, int | float) else "-"


def duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    s = round(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h}h{m:02d}" if d else f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _outages(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return "none"
    shown = ", ".join(f"{o['start']} for {duration(o['seconds'])}" for o in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table of already escaped cells."""
    if not rows:
        return "<p class=muted>none</p>"
    return ("<table><tr>" + "".join(f"<th>{_h(c)}</th>" for c in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows) + "</table>")


def _interface_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for i in report["interfaces"]:
        for d in ("in", "out"):
            f = i[d]
            rows.append([f"{i['target']} {i['name']}" if d == "in" else "", d, si(f["average_bps"], "b/s"),
                         si(f["maximum_bps"], "b/s"), si(f["p95_bps"], "b/s"), si(f["bytes"], "B"),
                         pct(f["p95_utilisation_pct"]),
                         pct(i.get("availability_pct")) if d == "in" else "",
                         str(i.get(f"{d}_errors", "-")), str(i.get(f"{d}_discards", "-"))])
    return rows


INTERFACE_HEAD: Final = ("interface", "dir", "average", "max", "95th pct", "total", "95th / speed", "available",
                         "errors", "discards")


def render_html(report: Mapping[str, Any], graphs: Mapping[str, str]) -> str:
    """The page; `graphs` maps an interface key to its graph's URI (data:, or cid: in a mail)."""
    title = f"Operations report {report['since'][:10]} to {report['until'][:10]}"
    parts = [f"<p class=muted>{_h(report['since'])} to {_h(report['until'])}, compared with "
             f"{_h(report['previous']['since'])} to {_h(report['previous']['until'])}; generated "
             f"{_h(report['generated'])}. Interface figures are rrdtool's, over the finest archive that "
             f"covers the period.</p>", "<h2>Interfaces</h2>",
             _table(INTERFACE_HEAD, [[_h(c) for c in r] for r in _interface_rows(report)])]
    for i in report["interfaces"]:
        uri = graphs.get(i["key"])
        if uri:
            parts.append(f'<img src="{_h(uri)}" alt="{_h(i["target"])} {_h(i["name"])} traffic">')
        if i.get("outages"):
            parts.append(f"<p>{_h(i['target'])} {_h(i['name'])} down: {_h(_outages(i['outages']))}</p>")
    parts += ["<h2>SNMP targets</h2>",
              _table(("target", "available", "outages"),
                     [[_h(t["name"]), pct(t["availability_pct"]), _h(_outages(t["outages"]))]
                      for t in report["targets"]]),
              "<h2>Checks</h2>",
              _table(("check", "available", "outages"),
                     [[_h(c["name"]), pct(c["availability_pct"]), _h(_outages(c["outages"]))]
                      for c in report["checks"]]),
              "<h2>Incidents</h2>", _incidents_html(report.get("incidents")),
              "<h2>Logs</h2>", _logs_html(report["logs"]),
              "<h2>Web sources</h2>", _web_html(report["web"]),
              "<h2>Capacity forecasts</h2>",
              _table(("metric", "crosses", "threshold", "trend now", "per day", "fit r"),
                     [[_h(c) for c in row] for row in forecast_rows(report.get("forecasts", []))])]
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_h(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{_h(title)}</h1>{''.join(parts)}</body></html>\n")


def _incidents_html(inc: Mapping[str, Any] | None) -> str:
    if inc is None:
        return "<p class=muted>the alert engine is not running</p>"
    ack, res = inc["time_to_ack"], inc["time_to_resolve"]
    return (f"<p>{inc['count']} incidents ({inc['started_in_period']} started in the period). Time to acknowledge: "
            f"median {duration(ack['median_s'])}, worst {duration(ack['worst_s'])}; to resolve: median "
            f"{duration(res['median_s'])}, worst {duration(res['worst_s'])}.</p>"
            + _table(("rule", "incidents"), [[_h(k), str(v)] for k, v in inc["by_rule"].items()])
            + _table(("severity", "incidents"), [[_h(k), str(v)] for k, v in inc["by_severity"].items()])
            + _table(("action event", "outcome", "count"),
                     [[_h(a["event"]), _h(a["outcome"]), str(a["count"])] for a in inc["actions"]])
            + "<h3>Longest</h3>"
            + _table(("#", "rule", "severity", "started", "in period", "summary"),
                     [[str(i["id"]), _h(i["rule"]), _h(i["severity"]), _h(i["started"]),
                       duration(i["seconds_in_period"]), _h(i["summary"])] for i in inc["longest"]]))


def _logs_html(logs: Mapping[str, Any]) -> str:
    return (f"<p>{logs['records']:,} records ({change(logs['records_change_pct'])} against the previous period).</p>"
            + _table(("host", "records", "change", "by severity"),
                     [[_h(h["host"]), f"{h['records']:,}", change(h["change_pct"]),
                       _h(", ".join(f"{k} {v}" for k, v in h["by_severity"].items()))] for h in logs["hosts"]])
            + "<h3>Top errors</h3>"
            + _table(("message template", "count", "previous"),
                     [[_h(e["template"]), str(e["count"]), str(e["previous"])] for e in logs["top_errors"]]))


def _web_html(web: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for w in web:
        s, c = w["summary"], w["change_pct"]
        rows.append([_h(w["name"]), f"{s.get('requests', 0):,}", change(c.get("requests")), si(s.get("bytes"), "B"),
                     change(c.get("bytes")), f"{s.get('failed', 0):,}", change(c.get("failed"))])
    return _table(("source", "requests", "change", "bytes", "change", "failed", "change"), rows)


def forecast_rows(forecasts: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    def num(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, int | float) else "-"

    return [[f["key"], "now" if f["already"] else f["crossing"] or "not within a year", num(f["threshold"]),
             num(f["now"]), num(f["slope_per_day"]), num(f["correlation"])] for f in forecasts]


def render_forecasts(forecasts: Sequence[Mapping[str, Any]]) -> str:
    """What `mepctl forecast` prints: soonest crossing first."""
    head = ("metric", "crosses", "threshold", "trend now", "per day", "fit r")
    rows = [list(head), *forecast_rows(forecasts)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows)


def render_text(report: Mapping[str, Any]) -> str:
    """What `mepctl report` prints: the same figures, a line each."""
    lines = [f"Operations report {report['since']} to {report['until']}", "", "Interfaces:"]
    for row in _interface_rows(report):
        lines.append("  " + "  ".join(f"{c:>10}" for c in row))
    lines += ["", "SNMP targets:"]
    lines += [f"  {t['name']}: {pct(t['availability_pct'])} available; outages: {_outages(t['outages'])}"
              for t in report["targets"]] or ["  none"]
    lines += ["", "Checks:"]
    lines += [f"  {c['name']}: {pct(c['availability_pct'])} available; outages: {_outages(c['outages'])}"
              for c in report["checks"]] or ["  none"]
    inc = report.get("incidents")
    lines += ["", "Incidents:"]
    if inc is None:
        lines.append("  the alert engine is not running")
    else:
        lines.append(f"  {inc['count']} ({inc['started_in_period']} started in the period); by severity: "
                     + (", ".join(f"{k} {v}" for k, v in inc["by_severity"].items()) or "none"))
        ack, res = inc["time_to_ack"], inc["time_to_resolve"]
        lines.append(f"  time to ack: median {duration(ack['median_s'])}, worst {duration(ack['worst_s'])};"
                     f" to resolve: median {duration(res['median_s'])}, worst {duration(res['worst_s'])}")
    logs = report["logs"]
    lines += ["", f"Logs: {logs['records']:,} records ({change(logs['records_change_pct'])})"]
    lines += [f"  {h['host']}: {h['records']:,} ({change(h['change_pct'])})" for h in logs["hosts"]]
    lines += [f"  error x{e['count']}: {e['template']}" for e in logs["top_errors"]]
    lines += ["", "Web sources:"]
    lines += [f"  {w['name']}: {w['summary'].get('requests', 0):,} requests ({change(w['change_pct'].get('requests'))})"
              for w in report["web"]] or ["  none"]
    lines += ["", "Capacity forecasts:", render_forecasts(report.get("forecasts", []))]
    return "\n".join(lines)


def render_mail(report: Mapping[str, Any], graphs: Mapping[str, bytes], sender: str, to: Sequence[str],
                node: str) -> bytes:
    """An RFC 5322 message for `sendmail -t`: the text report and, as its alternative, the HTML page with each
    interface's PNG graph (`graphs`, by interface key) attached inline and named by a cid: URI."""
    domain = sender.rpartition("@")[2] or node
    cids = {key: make_msgid("graph", domain)[1:-1] for key in graphs}
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = f"mepd operations report {report['since'][:10]} to {report['until'][:10]} ({node})"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("report", domain)
    msg.set_content(render_text(report))
    msg.add_alternative(render_html(report, {key: f"cid:{cid}" for key, cid in cids.items()}), subtype="html")
    *_, page = msg.iter_parts()  # the HTML alternative
    for key, png in graphs.items():
        page.add_related(png, "image", "png", cid=f"<{cids[key]}>", disposition="inline", filename=f"{key}.png")
    return msg.as_bytes()
