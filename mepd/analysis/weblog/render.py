"""The web report as people read it: plain text, or one self-contained HTML page.

Both are built from the JSON report (the same dict `--json` prints), so the
daemon's stored reports and the one-shot analyser render identically.  The
page has inline CSS and inline SVG charts and no script, so it can be mailed
or dropped on any web server as a single file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from mepd.analysis.weblog.report import TOP_TITLES
from mepd.terminal import printable


def render(report: Mapping[str, object], *, as_json: bool = False, as_html: bool = False) -> str:
    """The report as printed: JSON, one HTML page, or text."""
    if as_json:
        return json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if as_html:
        return render_html(report)
    return render_text(report) + "\n"


def human_bytes(n: float) -> str:
    if abs(n) < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if abs(n) < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"


def _table_text(title: str, rows: Sequence[Mapping[str, object]], key: str = "key", note: str = "") -> list[str]:
    out = [f"{title}{note}"]
    if not rows:
        return [*out, "  (none)", ""]
    for row in rows:
        label = printable(row[key])
        if len(label) > 70:
            label = label[:67] + "..."
        out.append(f"  {row['requests']:>10}  {human_bytes(float(str(row['bytes']))):>11}  {label}")
    return [*out, ""]


def render_text(report: Mapping[str, object]) -> str:
    """The report as readable plain text: what `mepctl weblog` prints without --json/--html."""
    s = report["summary"]
    assert isinstance(s, dict)
    lines = [
        f"Web report: {printable(report['source'])}",
        f"  period          {s['first'] or '-'} .. {s['last'] or '-'}",
        f"  requests        {s['requests']}  (successful {s['successful']}, failed {s['failed']})",
        f"  bytes           {s['bytes']}  ({human_bytes(float(s['bytes']))})",
        f"  clients         {s['clients']}{'' if s['clients_exact'] else ' (estimate, +-1.6%)'}",
        f"  requests/hour   {s['requests_per_hour']}",
        f"  unparsed lines  {s['unparsed_lines']}",
        "",
    ]
    status = report["status"]
    assert isinstance(status, dict)
    lines.append("Status classes")
    lines.extend(f"  {n:>10}  {c}" for c, n in status["classes"].items())
    lines.append("")
    lines += _table_text("Status codes", status["codes"])
    for name in ("methods", "protocols"):
        section = report[name]
        assert isinstance(section, list)
        lines += _table_text(name.capitalize(), section)
    top = report["top"]
    assert isinstance(top, dict)
    for dim, section in top.items():
        title = TOP_TITLES.get(dim, "Requested paths by bytes")
        bound = section["max_error"]["requests"]
        note = "" if section["exact"] else f" (approximate: each count may be low by <= {bound})"
        lines += _table_text(f"{title} (top {len(section['rows'])} of {section['distinct']})", section["rows"],
                             note=note)
    series = report["series"]
    assert isinstance(series, dict)
    lines += _table_text("Daily", series["daily"], key="date")
    lines += _table_text("Hour of day", series["hour_of_day"], key="hour")
    lines += _table_text("Day of week", series["day_of_week"], key="day")
    return "\n".join(lines)


# ---- HTML -------------------------------------------------------------------------------------------------


_CSS: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:2px 10px;text-align:right;vertical-align:top}
th{background:#eef}td.k,th.k{text-align:left;word-break:break-all;max-width:640px}
tr:nth-child(even) td{background:#f7f7fb}.note{color:#a33;font-size:.9em}.muted{color:#777}
svg{display:block;margin:.3em 0 1em}svg text{font:11px system-ui,sans-serif;fill:#444}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:0 2em}
"""
_BAR: Final = "#3a6ea5"
_BYTES: Final = "#e08a2c"


def _fmt(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else escape(str(n))


def _svg_bars(title: str, labels: Sequence[str], values: Sequence[int], colour: str = _BAR,
              width: int = 1000, height: int = 170) -> str:
    """A bar chart; labels thin out so that each has about 70 pixels."""
    if not values:
        return f"<p class=muted>{escape(title)}: no data</p>"
    top = max(values) or 1
    left, bottom, plot_h = 60, 20, height - 40
    bar_w = (width - left - 10) / len(values)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="4" y="14">{escape(title)}</text>',
             f'<text x="{left - 6}" y="{height - bottom - plot_h + 4}" text-anchor="end">{_short(top)}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>']
    step = max(1, math.ceil(len(values) * 70 / (width - left)))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * v / top
        x = left + i * bar_w
        parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(bar_w * 0.85, 0.5):.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {v:,}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 5}" text-anchor="middle">'
                         f"{escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _short(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _rows_table(rows: Sequence[Mapping[str, Any]], key: str = "key", head: str = "", total: int = 0) -> str:
    """Rows with their share of `total` (default: of the rows shown)."""
    total = total or sum(int(r["requests"]) for r in rows) or 1
    out = [f"<table><tr><th>requests</th><th>%</th><th>bytes</th><th class=k>{escape(head or key)}</th></tr>"]
    for r in rows:
        label = str(r[key]) if str(r[key]) != "" else "(empty)"
        out.append(f"<tr><td>{_fmt(r['requests'])}</td><td>{100 * int(r['requests']) / total:.1f}</td>"
                   f"<td>{escape(human_bytes(float(r['bytes'])))}</td><td class=k>{escape(label)}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _top_table(section: Mapping[str, Any]) -> str:
    rows = section["rows"]
    others = section["others"]
    out = [_rows_table(rows, total=sum(int(r["requests"]) for r in rows) + int(others["requests"]))]
    if others["requests"] or others["bytes"]:
        out.append(f"<p class=muted>others: {_fmt(others['requests'])} requests, "
                   f"{escape(human_bytes(float(others['bytes'])))} ({_fmt(section['distinct'])} distinct)</p>")
    if not section["exact"]:
        out.append(f"<p class=note>approximate: each count may be low by at most "
                   f"{_fmt(section['max_error']['requests'])} requests</p>")
    return "".join(out)


def render_html(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    series = report["series"]
    status = report["status"]
    title = f"Web report: {report['source']}"
    body = [f"<h1>{escape(title)}</h1>", "<table>"]
    clients = _fmt(s["clients"]) + ("" if s["clients_exact"] else " (estimate, &plusmn;1.6%)")
    for label, value in (
        ("First request", escape(str(s["first"] or "-"))), ("Last request", escape(str(s["last"] or "-"))),
        ("Requests", _fmt(s["requests"])), ("Successful (2xx, 3xx)", _fmt(s["successful"])),
        ("Failed (4xx, 5xx)", _fmt(s["failed"])), ("Distinct clients", clients),
        ("Bytes sent", f"{_fmt(s['bytes'])} ({escape(human_bytes(float(s['bytes'])))})"),
        ("Average requests per hour", _fmt(s["requests_per_hour"])), ("Unparsed lines", _fmt(s["unparsed_lines"])),
    ):
        body.append(f"<tr><th class=k>{label}</th><td>{value}</td></tr>")
    body.append("</table>")

    daily = series["daily"]
    hourly = series["hourly"]
    body.append("<h2>Traffic</h2>")
    body.append(_svg_bars("Requests per day", [d["date"][5:] for d in daily], [d["requests"] for d in daily]))
    body.append(_svg_bars("Bytes per day", [d["date"][5:] for d in daily], [d["bytes"] for d in daily], _BYTES))
    body.append(_svg_bars("Requests per hour (UTC)", [h["t"][5:13].replace("T", " ") + "h" for h in hourly],
                          [h["requests"] for h in hourly]))
    body.append("<div class=grid><div>")
    hod = series["hour_of_day"]
    body.append(_svg_bars("Requests by hour of day", [f"{h['hour']:02d}" for h in hod], [h["requests"] for h in hod],
                          width=500))
    body.append("</div><div>")
    dow = series["day_of_week"]
    body.append(_svg_bars("Requests by day of week", [d["day"] for d in dow], [d["requests"] for d in dow], width=500))
    body.append("</div></div>")

    body.append("<h2>Status</h2><div class=grid><div>")
    classes = [{"key": k, "requests": v, "bytes": 0} for k, v in status["classes"].items()]
    body.append("<table><tr><th>requests</th><th class=k>class</th></tr>")
    body.extend(f"<tr><td>{_fmt(c['requests'])}</td><td class=k>{escape(c['key'])}</td></tr>" for c in classes)
    body.append("</table></div><div>")
    body.append(_rows_table(status["codes"], head="status code"))
    body.append("</div></div><div class=grid><div><h2>Methods</h2>")
    body.append(_rows_table(report["methods"], head="method"))
    body.append("</div><div><h2>Protocols</h2>")
    body.append(_rows_table(report["protocols"], head="protocol"))
    body.append("</div></div>")

    for dim, section in report["top"].items():
        name = TOP_TITLES.get(dim, "Requested paths by bytes")
        body.append(f"<h2>{escape(name)} (top {len(section['rows'])} of {_fmt(section['distinct'])})</h2>")
        body.append(_top_table(section))

    body.append(_rows_table(daily, key="date", head="day").join(("<h2>Daily</h2>", "")))
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
