"""HTML of every dashboard page: plain functions from gathered data to a string.

Every link is relative to the page (`Ctx.root` climbs back to the top), so the
same HTML works served live, behind a reverse proxy under any path, and as
exported files opened from any web server's folder.  Pages need no script;
only the live tail of the logs page loads `static/live.js`.  In a static
export (`Ctx.static`) forms and live parts are left out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Final
from urllib.parse import urlencode

from mepd.analysis.forecast import Forecast
from mepd.api.render import local_time, timeline_what
from mepd.model import SEVERITIES, Incident, rfc3339
from mepd.units import format_duration
from mepd.web.assets import WEBLOG_CSS_SCOPE
from mepd.web.data import (
    HostGraph,
    IntakeView,
    InterfaceView,
    NodeView,
    Overview,
    Stat,
    TargetView,
    WebSourceView,
)
from mepd.web.graphs import PERIOD_NAMES, SIZES, TREND

SILENCE_DURATIONS: Final = ("1h", "2h", "8h", "1d", "7d")
@dataclass(frozen=True, slots=True)
class Ctx:
    """How a page is rendered: its way back to the top, live or static, the form token, the site's title."""

    root: str = ""
    static: bool = False
    csrf: str = ""
    site: str = "mepd"


def h(value: object) -> str:
    return escape("" if value is None else str(value))


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float | None, now: float) -> str:
    return "-" if ts is None else format_duration(max(0.0, now - ts)) + " ago"


def si(value: float | None, unit: str) -> str:
    """12.3 Mb/s; '-' for unknown."""
    if value is None:
        return "-"
    for prefix, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f} {prefix}{unit}"
    return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def graph_url(ctx: Ctx, key: str, period: str, fmt: str = "png") -> str:
    return f"{ctx.root}graph/{key}/{period}.{fmt}"


def interface_url(ctx: Ctx, target: str, name: str) -> str:
    return f"{ctx.root}if/{target}/{name}.html"


def timeline_url(ctx: Ctx, target: str) -> str:
    return f"{ctx.root}timeline/{target}.html"


def img(ctx: Ctx, key: str, period: str, alt: str, size: str) -> str:
    width, height = SIZES["mini" if size == "mini" else "full"]
    return (f'<img src="{h(graph_url(ctx, key, period))}" width="{width}" height="{height}" alt="{h(alt)}" '
            f'loading="lazy">')


def badge(text: str, kind: str) -> str:
    return f'<span class="badge {h(kind)}">{h(text)}</span>'


def layout(ctx: Ctx, title: str, body: str, *, refresh: float | None = None, scripts: Sequence[str] = (),
           head: str = "") -> str:
    links = [("index.html", "Overview"), ("incidents.html", "Incidents"), ("checks.html", "Checks"),
             ("logs.html", "Logs"), ("intake.html", "Log intake")]
    links += [] if ctx.static else [("report.html", "Report")]  # made on request: not in a static export
    nav = "".join(f'<a href="{ctx.root}{href}">{label}</a>' for href, label in links)
    meta = f'<meta http-equiv="refresh" content="{max(10, round(refresh))}">' if refresh else ""
    script = "".join(f'<script src="{ctx.root}static/{h(s)}" defer></script>' for s in scripts)
    stamp = "exported" if ctx.static else "generated"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{h(title)} - {h(ctx.site)}</title>"
        f'<link rel="icon" href="data:,"><link rel="stylesheet" href="{ctx.root}static/mepd.css">'
        f"{head}{script}</head><body>"
        f'<header><a class=site href="{ctx.root}index.html">{h(ctx.site)}</a><nav>{nav}</nav></header>'
        f"<main><h1>{h(title)}</h1>{body}</main>"
        f"<footer>{stamp} {h(when(time.time()))}</footer></body></html>\n"
    )


def csrf_field(ctx: Ctx) -> str:
    return f'<input type=hidden name=csrf value="{h(ctx.csrf)}">'


def button_form(ctx: Ctx, action: str, label: str, extra: str = "") -> str:
    return (f'<form method=post action="{h(action)}" class=inline>{csrf_field(ctx)}{extra}'
            f"<button type=submit>{h(label)}</button></form>")


# -- overview ------------------------------------------------------------------------------------------------


def loop_marks(inc: Incident) -> str:
    """Escalated, flapping, suppressed behind a parent: what closed-loop handling did to the incident."""
    marks = [(name, when(ts)) for name, ts in (("escalated", inc.escalated), ("flapping", inc.flapping))
             if ts is not None]
    if inc.suppressed:
        marks.append(("suppressed", f"behind {inc.suppressed}"))
    return "".join(f' <span class=muted title="{h(title)}">{h(name)}</span>' for name, title in marks)


def incident_rows(ctx: Ctx, incidents: Sequence[Incident], now: float, *, actions: bool) -> str:
    rows = []
    for inc in incidents:
        link = f'<a href="{ctx.root}incident/{inc.id}.html">#{inc.id}</a>'
        state = badge(inc.state, inc.state)
        if inc.acknowledged is not None and inc.state != "resolved":
            state += f' <span class=muted title="{h(when(inc.acknowledged))}">acked</span>'
        state += loop_marks(inc)
        cells = [link, badge(inc.severity, inc.severity), state,
                 f'<span title="{h(when(inc.started))}">{h(ago(inc.started, now))}</span>', h(inc.summary or inc.rule)]
        if actions:
            cells.append(button_form(ctx, f"{ctx.root}incident/{inc.id}/ack", "Acknowledge")
                         if not ctx.static and inc.state == "firing" else "")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "<th>id</th><th>severity</th><th>state</th><th>since</th><th>summary</th>" + (
        "<th></th>" if actions else "")
    return f"<div class=scroll><table class=list><tr>{head}</tr>{''.join(rows)}</table></div>"


def incidents_section(ctx: Ctx, incidents: Sequence[Incident] | None, now: float) -> str:
    if incidents is None:
        return '<section id=incidents><h2>Incidents</h2><p class="bad">The alert engine is not running.</p></section>'
    if not incidents:
        return '<section id=incidents><h2>Incidents</h2><p class="ok">No open incidents.</p></section>'
    return (f'<section id=incidents class=alerting><h2>Incidents ({len(incidents)} open)</h2>'
            f"{incident_rows(ctx, incidents, now, actions=True)}</section>")


def target_kind(t: TargetView) -> str:
    if t.state not in ("ok", "not polled"):
        return "bad"
    return "warn" if t.down else "ok"


def interface_card(ctx: Ctx, i: InterfaceView) -> str:
    kind = {"up": "ok", "down": "bad", "admin down": "muted"}.get(i.status, "muted")
    label = f"{i.name}" + (f" ({i.alias})" if i.alias else "")
    return (
        f'<div class=card><a href="{h(interface_url(ctx, i.target, i.name))}">'
        f"{img(ctx, i.key, 'mini', f'{i.target} {i.name} traffic, last day', 'mini')}</a>"
        f'<div><a href="{h(interface_url(ctx, i.target, i.name))}">{h(label)}</a> {badge(i.status, kind)}</div>'
        f'<div class=muted>in {h(si(i.in_bps, "b/s"))} &middot; out {h(si(i.out_bps, "b/s"))}</div></div>'
    )


def targets_section(ctx: Ctx, targets: Sequence[TargetView]) -> str:
    if not targets:
        return "<section id=targets><h2>Targets</h2><p class=muted>No SNMP target.</p></section>"
    parts = ["<section id=targets><h2>Targets</h2>"]
    for t in targets:
        error = f' <span class=muted>{h(t.error)}</span>' if t.error else ""
        host = f' <span class=muted>{h(t.host)}</span>' if t.host else ""
        timeline = f' <a class=timeline href="{h(timeline_url(ctx, t.name))}">timeline</a>' if t.timeline else ""
        parts.append(f'<div class=target id="target-{h(t.name)}"><h3>{h(t.name)}{host} '
                     f"{badge(t.summary, target_kind(t))}{error}{timeline}</h3><div class=cards>")
        parts += [interface_card(ctx, i) for i in t.interfaces]
        if not t.interfaces:
            parts.append("<p class=muted>No interface data yet.</p>")
        parts.append("</div></div>")
    parts.append("</section>")
    return "".join(parts)


def hosts_section(ctx: Ctx, hosts: Mapping[str, Sequence[HostGraph]]) -> str:
    """Each host's CPU, memory, file system and disk graphs (its interfaces are a target's, above)."""
    parts = []
    for host, graphs in hosts.items():
        parts.append(f'<div class=target id="host-{h(host)}"><h3>{h(host)}</h3><div class=cards>')
        parts += [f'<div class=card><a href="{h(graph_url(ctx, g.key, "day"))}">'
                  f"{img(ctx, g.key, 'mini', f'{host} {g.label}, last day', 'mini')}</a>"
                  f"<div>{h(g.label)}</div></div>" for g in graphs]
        parts.append("</div></div>")
    return f"<section id=hosts><h2>Hosts</h2>{''.join(parts)}</section>" if parts else ""


def web_section(ctx: Ctx, sources: Sequence[WebSourceView]) -> str:
    if not sources:
        return ""
    rows = []
    for s in sources:
        rate = s.error_rate
        kind = "bad" if s.server_errors else "warn" if rate and rate > 0.05 else "ok"
        rows.append(
            f'<tr><td><a href="{ctx.root}web/{h(s.name)}.html">{h(s.name)}</a></td><td>{s.requests:,}</td>'
            f"<td>{badge(percent(rate), kind) if s.has_data else '-'}</td><td>{s.server_errors:,}</td>"
            f"<td>{h(s.last or '-')}</td></tr>")
    return ("<section id=web><h2>Web sources (last 24 hours)</h2><div class=scroll><table class=list>"
            "<tr><th>source</th><th>requests</th><th>errors (4xx+5xx)</th><th>5xx</th><th>last request</th></tr>"
            f"{''.join(rows)}</table></div></section>")


def intake_section(intake: Sequence[IntakeView], dropped: int, stored: int) -> str:
    rows = []
    for i in intake:
        rate = "-" if i.rate is None else f"{i.rate:.1f}/s"
        drop = badge(f"{i.dropped:,}", "bad") if i.dropped else "0"
        rows.append(f"<tr><td>{h(i.name)}</td><td>{h(i.state)}</td><td>{i.received:,}</td><td>{h(rate)}</td>"
                    f"<td>{drop}</td><td>{i.parse_errors:,}</td></tr>")
    if not rows:
        rows.append("<tr><td colspan=6 class=muted>No log source configured.</td></tr>")
    return (
        "<section id=intake><h2>Log intake</h2><div class=scroll><table class=list>"
        "<tr><th>source</th><th>state</th><th>received</th><th>rate</th><th>dropped</th><th>parse errors</th></tr>"
        f"{''.join(rows)}</table></div><p>Stored {stored:,} records; "
        f"{badge(f'{dropped:,} dropped', 'bad') if dropped else 'none dropped'} in the pipeline.</p></section>"
    )


def nodes_section(ctx: Ctx, nodes: Sequence[NodeView] | None, now: float) -> str:
    """A central's fleet nodes, as `mepctl fleet status` lists them; each links to its records."""
    if nodes is None:
        return ""
    rows = []
    for n in nodes:
        link = "" if ctx.static else f' <a href="{ctx.root}logs.html?{h(urlencode({"node": n.name}))}">logs</a>'
        backlog = "-" if n.backlog is None else badge(f"{n.backlog:,}", "warn") if n.backlog else "0"
        oldest = "-" if n.backlog_oldest_age is None else format_duration(n.backlog_oldest_age)
        rows.append(f"<tr><td>{h(n.name)}{link}</td><td>{h(ago(n.last_heard, now))}</td><td>{n.records:,}</td>"
                    f"<td>{backlog}</td><td>{h(oldest)}</td><td>{h(ago(n.heartbeat, now))}</td></tr>")
    if not rows:
        rows.append("<tr><td colspan=6 class=muted>No node heard from yet.</td></tr>")
    return ("<section id=nodes><h2>Fleet nodes</h2><div class=scroll><table class=list>"
            "<tr><th>node</th><th>last heard</th><th>records</th><th>backlog</th><th>oldest</th><th>heartbeat</th>"
            f"</tr>{''.join(rows)}</table></div></section>")


def overview(ctx: Ctx, ov: Overview, now: float) -> str:
    body = (incidents_section(ctx, ov.incidents, now) + nodes_section(ctx, ov.nodes, now)
            + targets_section(ctx, ov.targets) + hosts_section(ctx, ov.hosts) + web_section(ctx, ov.web)
            + intake_section(ov.intake, ov.pipeline_dropped, ov.stored))
    return layout(ctx, "Overview", body, refresh=ov.step)


# -- interface -----------------------------------------------------------------------------------------------


def crossing_text(f: Forecast) -> str:
    when = "now" if f.already else f"on {rfc3339(f.crossing)[:10]}" if f.crossing is not None else "not within a year"
    return f"{f.key.rpartition('.')[2].removesuffix('_bps')} reaches {si(f.threshold, 'b/s')} {when}"


def timeline_section(events: Sequence[Mapping[str, Any]], ctx: Ctx | None = None, target: str = "") -> str:
    """An interface's timeline, as `mepctl timeline` shows it: its device's lines, its incidents' history; with
    `ctx` and `target`, a whole target's, with a column linking each event's interface."""
    head = "<section id=timeline><h2>Timeline, last day</h2>"
    if not events:
        return head + "<p class=muted>No events.</p></section>"

    def where(e: Mapping[str, Any]) -> str:
        if ctx is None:
            return ""
        name = e.get("interface")
        link = f'<a href="{h(interface_url(ctx, target, name))}">{h(name)}</a>' if name else "device"
        return f"<td>{link}</td>"

    rows = [f'<tr class="kind-{h(e["kind"])}"><td>{h(local_time(e["ts"]))}</td><td>{h(e["kind"])}</td>{where(e)}'
            f'<td>{h(e.get("event") or "-")}</td><td class=msg>{h(timeline_what(e))}</td></tr>' for e in events]
    column = "<th>interface</th>" if ctx is not None else ""
    return (head + f"<div class=scroll><table class=list><tr><th>time</th><th>kind</th>{column}<th>event</th>"
            "<th>what</th></tr>" + "".join(rows) + "</table></div></section>")


def target_timeline(ctx: Ctx, target: str, events: Sequence[Mapping[str, Any]], step: float) -> str:
    """A target's timeline page: its device's lines (link changes, restarts, the rest), its interfaces' incidents
    and theirs, on one time axis; each interface linked to its page."""
    intro = (f'<p><a href="{ctx.root}index.html#target-{h(target)}">{h(target)}</a>: the lines its device sent'
             " (link changes, restarts and the rest) and the history of its and its interfaces' incidents.</p>")
    return layout(ctx, f"{target} timeline", intro + timeline_section(events, ctx, target), refresh=step)


def interface(ctx: Ctx, i: InterfaceView, stats: Mapping[str, tuple[Stat, Stat]], step: float,
              forecasts: Sequence[Forecast] = (), events: Sequence[Mapping[str, Any]] | None = None) -> str:
    """`events`: the interface's timeline (None: not an SNMP target's interface, no timeline)."""
    status_kind = {"up": "ok", "down": "bad"}.get(i.status, "muted")
    timeline = f' (<a href="{h(timeline_url(ctx, i.target))}">timeline</a>)' if events is not None else ""
    info = [("Target", f'<a href="{ctx.root}index.html#target-{h(i.target)}">{h(i.target)}</a>{timeline}'),
            ("Interface", h(i.name)), ("ifAlias", h(i.alias or "-")), ("ifDescr", h(i.descr or "-")),
            ("ifIndex", h(i.index if i.index is not None else "-")), ("Speed", h(si(i.speed_bps, "b/s"))),
            ("Status", badge(i.status, status_kind)), ("Last update", h(when(i.updated)))]
    parts = ["<table class=info>", *(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in info), "</table>"]
    parts.append("<div class=scroll><table class=list id=stats><tr><th>period</th><th>max in</th><th>average in</th>"
                 "<th>current in</th><th>max out</th><th>average out</th><th>current out</th></tr>")
    for period, (s_in, s_out) in stats.items():
        cells = [si(v, "b/s") for s in (s_in, s_out) for v in (s.maximum, s.average, s.current)]
        parts.append(f"<tr><th>{h(period)}</th>" + "".join(f"<td>{h(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table></div>")
    if forecasts:
        told = "; ".join(map(crossing_text, forecasts))
        parts.append(f"<p id=forecast>Forecast (the least-squares trend the report draws): {h(told)}.</p>"
                     f"<section class=graph id=trend><h2>Trend</h2>"
                     f"{img(ctx, i.key, TREND, f'{i.target} {i.name} traffic trend and forecast', 'full')}</section>")
    for period in PERIOD_NAMES:
        svg = "" if ctx.static else f'<p class=muted><a href="{h(graph_url(ctx, i.key, period, "svg"))}">SVG</a></p>'
        parts.append(f"<section class=graph><h2>{period.capitalize()}</h2>"
                     f"{img(ctx, i.key, period, f'{i.target} {i.name} traffic, last {period}', 'full')}{svg}</section>")
    if events is not None:
        parts.append(timeline_section(events))
    return layout(ctx, f"{i.target} {i.name}", "".join(parts), refresh=step)


# -- web source ----------------------------------------------------------------------------------------------


def _weblog_parts(report_html: str) -> tuple[str, str]:
    """The style and body of the web-log report page (mepd.analysis.weblog.render), to nest in ours."""
    style = report_html.partition("<style>")[2].partition("</style>")[0]
    body = report_html.partition("<body>")[2].rpartition("</body>")[0]
    body = body.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return style, body


def web_source(ctx: Ctx, name: str, report_html: str | None, graph_key: str | None, step: float) -> str:
    parts = []
    if graph_key is not None:
        parts.append(f"<section class=graph><h2>Requests per step, last day</h2>"
                     f"{img(ctx, graph_key, 'day', f'{name} requests, last day', 'full')}</section>")
    head = ""
    if report_html is None:
        parts.append("<p class=muted>No web-log data stored for this source yet.</p>")
    else:
        style, body = _weblog_parts(report_html)
        scoped = "".join(f"{WEBLOG_CSS_SCOPE} {rule.strip()}}}" for rule in style.split("}") if rule.strip())
        head = f"<style>{scoped}</style>"
        parts.append(f'<div class=weblog>{body}</div>')
    return layout(ctx, f"Web source {name}", "".join(parts), refresh=step, head=head)


# -- logs ----------------------------------------------------------------------------------------------------


def log_rows(records: Iterable[Mapping[str, Any]], fleet: bool = False) -> str:
    """The records' rows; `fleet`: with the node each came from (on a central)."""
    out = []
    for r in records:
        ts = r.get("ts")
        stamp = datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if isinstance(ts, str) else "-"
        node = f'<td>{h(r.get("node"))}</td>' if fleet else ""
        out.append(f'<tr class="sev-{h(r.get("severity"))}"><td>{h(stamp)}</td>{node}<td>{h(r.get("host"))}</td>'
                   f'<td>{h(r.get("app"))}</td><td>{h(r.get("severity"))}</td><td class=msg>{h(r.get("message"))}</td>'
                   "</tr>")
    return "".join(out)


def log_head(fleet: bool = False) -> str:
    node = "<th>node</th>" if fleet else ""
    return f"<tr><th>time</th>{node}<th>host</th><th>app</th><th>severity</th><th>message</th></tr>"


LOG_PARAMS: Final = ("host", "app", "severity", "grep", "source", "node")  # what the live tail filters on too


def logs(ctx: Ctx, params: Mapping[str, str], records: Sequence[Mapping[str, Any]], error: str | None,
         truncated: bool, fleet: bool = False) -> str:
    """`fleet`: this mepd is a central: the records' nodes are shown and can be filtered on."""
    parts = []
    if not ctx.static:
        def field(name: str, label: str, hint: str) -> str:
            return (f'<label>{label}<input name={name} value="{h(params.get(name, ""))}" placeholder="{h(hint)}">'
                    "</label>")

        current = params.get("severity", "")
        options = "".join(f'<option value="{s}"{" selected" if s == current else ""}>{s} or worse</option>'
                          for s in SEVERITIES)
        parts.append(
            '<form method=get action="logs.html" class=filters>'
            + field("since", "since", "10m, 2h, 2024-05-01 08:00") + field("until", "until", "time or duration")
            + (field("node", "node", "web1, web*") if fleet else "")
            + field("host", "host", "web1") + field("app", "app", "sshd") + field("grep", "text", "words")
            + field("source", "source", "syslog/udp ...")
            + f'<label>severity<select name=severity><option value="">any</option>{options}</select></label>'
            + field("limit", "limit", "200")
            + "<button type=submit>Search</button></form>")
    if error:
        parts.append(f"<p class=bad>{h(error)}</p>")
    note = " (newest shown; narrow the search for more)" if truncated else ""
    parts.append(f"<h2>Found {len(records):,} records{h(note)}</h2><div class=scroll><table class=\"list logs\">"
                 f"{log_head(fleet)}{log_rows(reversed(records), fleet)}</table></div>")
    scripts: tuple[str, ...] = ()
    if not ctx.static and not error:
        query = urlencode({k: v for k, v in params.items() if k in LOG_PARAMS and v})
        stream = "logs/stream" + (f"?{query}" if query else "")
        nodes = " data-node" if fleet else ""
        parts.insert(1, f'<section id=tail><h2>Live tail <span id=live-state class=muted>(needs JavaScript)</span>'
                        f'</h2><div class=scroll><table class="list logs" id=live data-stream="{h(stream)}"{nodes}>'
                        f"<thead>{log_head(fleet)}</thead><tbody></tbody></table></div></section>")
        scripts = ("live.js",)
    return layout(ctx, "Logs", "".join(parts), scripts=scripts)


# -- incidents -----------------------------------------------------------------------------------------------


def incidents(ctx: Ctx, open_: Sequence[Incident] | None, recent: Sequence[Incident],
              silences: Sequence[Mapping[str, Any]], now: float) -> str:
    parts = [incidents_section(ctx, open_, now).replace("<h2>Incidents", "<h2>Open", 1)]
    resolved = [i for i in recent if i.state == "resolved"]
    parts.append("<section id=history><h2>History</h2>")
    parts.append(incident_rows(ctx, resolved, now, actions=False) if resolved else "<p class=muted>Nothing yet.</p>")
    parts.append("</section><section id=silences><h2>Silences</h2>")
    if silences:
        rows = "".join(f"<tr><td>{h(s['id'])}</td><td>{h(s['matchers'])}</td><td>{h(s['ends'])}</td>"
                       f"<td>{h(s['comment'] or '')}</td></tr>" for s in silences)
        parts.append("<div class=scroll><table class=list><tr><th>id</th><th>matchers</th><th>until</th>"
                     f"<th>comment</th></tr>{rows}</table></div>")
    else:
        parts.append("<p class=muted>No active silence.</p>")
    parts.append("</section>")
    return layout(ctx, "Incidents", "".join(parts), refresh=None if not ctx.static else 300)


def default_matchers(inc: Incident) -> str:
    """rule=NAME plus the labels that tell this incident's series apart (values quoted)."""
    labels = {"rule": inc.rule, **{k: v for k, v in inc.labels.items() if k not in ("rule", "severity")}}
    return ",".join(f'{k}="{v}"' for k, v in labels.items() if '"' not in v)


def incident(ctx: Ctx, inc: Incident, history: Sequence[Mapping[str, Any]], now: float, message: str = "") -> str:
    labels = " ".join(f"{k}={v}" for k, v in inc.labels.items())
    fields = [("State", badge(inc.state, inc.state)), ("Severity", badge(inc.severity, inc.severity)),
              ("Rule", h(f"{inc.rule} ({inc.kind})")), ("Summary", h(inc.summary)), ("Labels", h(labels)),
              ("Started", h(f"{when(inc.started)} ({ago(inc.started, now)})")), ("Last seen", h(when(inc.last_seen))),
              ("Count", h(inc.count)), ("Value", h(inc.value if inc.value is not None else "-")),
              ("Acknowledged", h(when(inc.acknowledged))), ("Resolved", h(when(inc.resolved))),
              ("Comment", h(inc.comment or "-"))]
    if marks := loop_marks(inc):
        fields.insert(1, ("Loop", marks))
    parts = [f"<p class=notice>{h(message)}</p>" if message else "", "<table class=info id=incident>"]
    parts += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in fields]
    parts.append("</table>")
    if not ctx.static and inc.state != "resolved":
        base = f"{ctx.root}incident/{inc.id}"
        comment = '<input name=comment placeholder="comment (optional)">'
        parts.append("<section id=actions><h2>Actions</h2>")
        if inc.state == "firing":
            parts.append(button_form(ctx, f"{base}/ack", "Acknowledge", comment))
        parts.append(button_form(ctx, f"{base}/resolve", "Resolve", comment))
        durations = "".join(f'<option value="{d}"{" selected" if d == "2h" else ""}>{d}</option>'
                            for d in SILENCE_DURATIONS)
        parts.append(button_form(
            ctx, f"{base}/silence", "Silence",
            f'<label>matching <input name=matchers value="{h(default_matchers(inc))}" size=40></label>'
            f"<label>for <select name=for>{durations}</select></label>{comment}"))
        parts.append("</section>")
    if inc.lines:
        parts.append("<h2>Lines</h2><pre>" + h("\n".join(inc.lines)) + "</pre>")
    if inc.steps:
        parts.append("<h2>Corrective steps</h2><div class=scroll><table class=list id=steps><tr><th>step</th>"
                     "<th>started</th><th>argv</th><th>exit</th><th>outcome</th><th>cleared in</th></tr>")
        for step in inc.steps:
            exit_ = ("timed out" if step.get("timed_out") else step.get("signal") or step.get("error")
                     or step.get("exit_status", "-"))
            clear = step.get("time_to_clear")
            output = f"<pre>{h(step['output'])}</pre>" if step.get("output") else ""
            argv = step.get("argv")
            argv_text = " ".join(str(a) for a in argv) if isinstance(argv, list) else ""
            parts.append(f"<tr><td>{h(step['step'])}.{h(step['attempt'])}</td><td>{h(step.get('started'))}</td>"
                         f"<td>{h(argv_text)}{output}</td><td>{h(exit_)}</td>"
                         f"<td>{badge(str(step['outcome']), str(step['outcome']))}</td>"
                         f"<td>{h(f'{clear}s' if clear is not None else '-')}</td></tr>")
        parts.append("</table></div>")
    parts.append("<h2>History</h2><div class=scroll><table class=list id=history><tr><th>time</th><th>event</th>"
                 "<th>detail</th></tr>")
    for entry in history:
        detail = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("ts", "event", "output")
                          and v not in (None, "", []))
        ts = entry.get("ts")
        stamp = datetime.fromisoformat(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S") if isinstance(ts, str) else "-"
        output = f"<pre>{h(entry['output'])}</pre>" if entry.get("output") else ""
        parts.append(f"<tr><td>{h(stamp)}</td><td>{h(entry.get('event'))}</td><td>{h(detail)}{output}</td></tr>")
    parts.append("</table></div>")
    return layout(ctx, f"Incident #{inc.id}", "".join(parts))


def error_page(ctx: Ctx, status: int, message: str) -> str:
    return layout(ctx, f"{status}", f"<p>{h(message)}</p>")
