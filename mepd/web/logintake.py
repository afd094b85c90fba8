"""The Log intake page (`/intake.html`): graphs of the log-derived metrics (mepd.analysis.logmetrics).

All records first, then by severity, by host, by app and each `[[logs.metric]]`:
every `logs.` key with an RRD, drawn like any other metric key; the latest value
of each is its last step's count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from mepd.model import Sample
from mepd.web.pages import Ctx, graph_url, h, img, layout

# (section title, key prefix, key suffix): the order the page shows them in.
SECTIONS: Final = (("By severity", "logs.severity.", ".records"), ("By host", "logs.host.", ".records"),
                   ("By app", "logs.app.", ".records"), ("Errors by host", "logs.host.", ".errors"),
                   ("Log metrics", "logs.metric.", ""))
PREFIX: Final = "logs."
TOTAL: Final = PREFIX + "all.records"


def _label(key: str, prefix: str, suffix: str) -> str:
    return key[len(prefix): len(key) - len(suffix)] if suffix else key[len(prefix):]


def page(ctx: Ctx, stored: Sequence[str], latest: Mapping[str, Sample], step: float) -> str:
    """`stored`: the metric keys with an RRD; `latest`: their newest values."""
    keys = sorted(k for k in stored if k.startswith(PREFIX))
    if not keys:
        return layout(ctx, "Log intake", "<p class=muted>No log-derived metric stored yet: set [logs] intake = true"
                      " or add a [[logs.metric]] (see the README).</p>", refresh=step)
    parts = [f"<p class=muted>Records per step of {step:g}s, counted as mepd receives them.</p>"]
    if TOTAL in keys:
        parts.append(f"<section class=graph id=all><h2>All records, last day</h2>"
                     f"{img(ctx, TOTAL, 'day', 'all records, last day', 'full')}</section>")
    for title, prefix, suffix in SECTIONS:
        chosen = [k for k in keys if k.startswith(prefix) and k.endswith(suffix)]
        if not chosen:
            continue
        parts.append(f"<section id={h(prefix.strip('.').replace('.', '-') + suffix.replace('.', '-'))}>"
                     f"<h2>{h(title)}, last day</h2><div class=cards>")
        for key in chosen:
            label = _label(key, prefix, suffix)
            sample = latest.get(key)
            value = "-" if sample is None or sample.value is None else f"{sample.value:g}"
            parts.append(f'<div class=card><a href="{h(graph_url(ctx, key, "day"))}">'
                         f"{img(ctx, key, 'mini', f'{label}, last day', 'mini')}</a>"
                         f"<div>{h(label)} <span class=muted>last step {h(value)}</span></div></div>")
        parts.append("</div></section>")
    return layout(ctx, "Log intake", "".join(parts), refresh=step)
