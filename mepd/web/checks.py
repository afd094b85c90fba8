"""The Checks page (`/checks.html`): each `[[check]]`'s state, since when, its last result and a day's graph.

The states are the checks' component details (`mepd.api.checks.check_states`),
so the page, `mepctl checks` and `mepctl status` say the same; the graphs are
the RRDs of each check's main metric, drawn like any other metric key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from mepd.web.pages import Ctx, ago, badge, graph_url, h, img, layout

KINDS: Final = {"ok": "ok", "failed": "bad", "unknown": "warn", "error": "bad"}
# The metric drawn for each kind of check: what an admin watches it for.
MAIN_METRIC: Final = {"http": "latency_seconds", "tcp": "latency_seconds", "filesystem": "used_pct",
                      "process": "rss_bytes", "systemd_unit": "up"}


def value_text(metric: str, value: float | None) -> str:  # noqa: PLR0911 - one return per unit
    """A check's value as people read it: up/down, ms, %, GiB, days."""
    if value is None:
        return "-"
    if metric == "up":
        return "up" if value >= 0.5 else "down"
    if metric == "latency_seconds":
        return f"{1000 * value:.1f} ms"
    if metric.endswith("_pct"):
        return f"{value:.1f}%"
    if metric.endswith("_bytes"):
        return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.1f} MiB"
    if metric == "cert_days_left":
        return f"{value:.0f} days"
    return f"{value:g}"


def main_key(state: Mapping[str, Any]) -> str:
    return f"check.{state['name']}.{MAIN_METRIC.get(str(state.get('kind')), 'up')}"


def page(ctx: Ctx, states: Sequence[Mapping[str, Any]], stored: set[str], now: float, refresh: float) -> str:
    """`stored`: the metric keys with an RRD, whose graphs the page shows."""
    if not states:
        return layout(ctx, "Checks", "<p class=muted>No check configured (see [[check]] in the README).</p>",
                      refresh=refresh)
    rows = []
    for s in states:
        state = str(s.get("state"))
        since = s.get("since")
        since_ts = datetime.fromisoformat(since).timestamp() if isinstance(since, str) else None
        values = " ".join(f"{h(m)}&nbsp;{h(value_text(m, v))}" for m, v in (s.get("values") or {}).items() if m != "up")
        rows.append(
            f'<tr id="check-{h(s["name"])}"><td>{h(s["name"])}</td><td>{badge(state, KINDS.get(state, "muted"))}</td>'
            f"<td>{h(ago(since_ts, now))}</td><td>{h(s.get('kind'))}</td><td>{h(s.get('target'))}</td>"
            f"<td>{h(s.get('message') or '-')}</td><td class=muted>{values or '-'}</td></tr>")
    parts = ["<div class=scroll><table class=list id=checks><tr><th>check</th><th>state</th><th>for</th>"
             "<th>kind</th><th>target</th><th>last result</th><th>values</th></tr>", *rows, "</table></div>"]
    graphs = [(s, key) for s in states if (key := main_key(s)) in stored]
    if graphs:
        parts.append("<section id=graphs><h2>Last day</h2><div class=cards>")
        for s, key in graphs:
            name, metric = s["name"], key.rpartition(".")[2]
            parts.append(f'<div class=card><a href="{h(graph_url(ctx, key, "day"))}">'
                         f"{img(ctx, key, 'mini', f'{name} {metric}, last day', 'mini')}</a>"
                         f"<div>{h(name)} <span class=muted>{h(metric)}</span></div></div>")
        parts.append("</div></section>")
    return layout(ctx, "Checks", "".join(parts), refresh=refresh)
