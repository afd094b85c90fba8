"""What forecast rules read: every `[alert] forecast_interval`, the days until each key a forecast rule
names crosses the rule's `above`, at its least-squares trend over `[report] forecast_window`.

The figures are those `mepctl forecast` shows (`RrdStore.stats`, then
`mepd.analysis.forecast.forecast`).  They go on the sample channel as
`forecast.<rule>.<key>` samples: the rule (`rules.ForecastRule`) is a threshold
on them, and the RRD store keeps them as any other metric.  A key whose trend
does not cross within a year reads 365; one already above, 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from mepd.alerts.rules import forecast_prefix
from mepd.analysis.forecast import HORIZON, Forecast, forecast
from mepd.config import AlertRuleConfig
from mepd.config.syntax import compile_glob
from mepd.model import Sample
from mepd.pipeline import Channel, Counters
from mepd.store.rrd.files import ANOMALY_PREFIX, FORECAST_PREFIX, RrdError

log = logging.getLogger(__name__)


class Trends(Protocol):
    """The metric store's side `ForecastWatch` needs (an `RrdStore`)."""

    async def list_keys(self) -> list[str]: ...

    async def stats(self, key: str, since: float, until: float, percentile: float = 95.0) -> dict[str, object]: ...


def days_left(f: Forecast, now: float) -> float:
    if f.already:
        return 0.0
    return (f.crossing - now) / 86400 if f.crossing is not None else HORIZON / 86400


class ForecastWatch:
    """The component that feeds the forecast rules (`[[alert.rule]] forecast = "30d"`)."""

    def __init__(self, rules: Sequence[AlertRuleConfig], window: float, store: Trends, samples: Channel[Sample],
                 *, interval: float, clock: Callable[[], float] = time.time) -> None:
        self.name = "alerts/forecast"
        self.rules = [r for r in rules if r.forecast]
        self.window = window
        self.store = store
        self.samples = samples
        self.clock = clock
        self.interval = interval
        self.counters = Counters()
        self.counters.declare("forecasts", "errors")

    async def evaluate(self, now: float) -> list[Sample]:
        """Each forecast rule's days left for each key its `metric` matches that has a trend."""
        keys = [k for k in await self.store.list_keys() if not k.startswith((ANOMALY_PREFIX, FORECAST_PREFIX))]
        out: list[Sample] = []
        for rule in self.rules:
            assert rule.above is not None, "a forecast rule has `above` (AlertRuleConfig.check)"
            glob = compile_glob(rule.metric)
            for key in filter(glob.match, keys):
                try:
                    stats = await self.store.stats(key, now - self.window, now)
                except RrdError as e:
                    self.counters.inc("errors")
                    log.warning("forecast rule %s: %s: %s", rule.name, key, e)
                    continue
                f = forecast(key, stats, rule.above, now)
                if f.now_value is not None:  # None: too few known rows for a line
                    out.append(Sample(forecast_prefix(rule.name) + key, now, days_left(f, now)))
        self.counters.inc("forecasts", len(out))
        return out

    async def run(self, started: Callable[[], None]) -> None:
        started()
        while True:
            samples = await self.evaluate(self.clock())
            if samples:
                await self.samples.put_many(samples)
            await asyncio.sleep(self.interval)
