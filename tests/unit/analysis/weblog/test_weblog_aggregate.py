"""Web-log aggregates against an independent count of the same file (tests/unit/analysis/weblog/reference.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.analysis.weblog.accesslog import parse_access_line
from mepd.analysis.weblog.aggregate import Aggregate, Table, file_type, referer_site
from mepd.analysis.weblog.scan import analyze_file
from mepd.analysis.weblog.useragent import classify
from tests.unit.analysis.weblog.reference import SITE, Reference, counts


def test_totals_and_series_agree(analysed: Aggregate, reference: Reference) -> None:
    assert reference.requests > 29_000
    assert reference.unparsed > 0
    assert analysed.requests == reference.requests
    assert analysed.nbytes == reference.nbytes
    assert analysed.rejected == reference.unparsed
    assert (analysed.first, analysed.last) == (reference.first, reference.last)
    assert Counter({h: v[0] for h, v in analysed.series.items()}) == reference.hourly
    assert analysed.clients_exact
    assert analysed.clients == len(reference.clients)


def test_tables_agree(analysed: Aggregate, reference: Reference) -> None:
    t = analysed.tables
    assert counts(t["status"]) == reference.status
    assert counts(t["method"]) == reference.methods
    assert counts(t["protocol"]) == reference.protocols
    assert counts(t["path"]) == reference.paths
    assert Counter({k.replace("\\", ""): v[1] for k, v in t["path"].rows.items()}) == reference.path_bytes
    assert counts(t["notfound"]) == reference.notfound
    assert counts(t["client"]) == reference.clients
    assert counts(t["filetype"]) == reference.filetypes
    assert counts(t["referer"]) == reference.referers
    assert counts(t["referer_site"]) == reference.sites
    assert counts(t["agent"]) == reference.agents
    expected_browsers: Counter[str] = Counter()
    for agent, n in reference.agents.items():
        expected_browsers[classify(agent)[1]] += n
    assert counts(t["browser"]) == expected_browsers
    assert all(table.exact for table in t.values())


def test_common_format_ignores_referer_and_agent(tmp_path: Path) -> None:
    log = tmp_path / "common.log"
    log.write_text('1.2.3.4 - - [01/Jan/2024:10:00:00 +0000] "GET /a.css HTTP/1.1" 200 10\n'
                   '1.2.3.4 - - [01/Jan/2024:10:30:00 +0000] "GET /a.css HTTP/1.1" 304 -\n'
                   '5.6.7.8 - - [01/Jan/2024:11:00:00 +0000] "GET / HTTP/1.1" 200 5 "http://x/" "curl/8"\n')
    agg = analyze_file(str(log), "common")
    assert agg.requests == 3
    assert agg.nbytes == 15
    assert agg.tables["agent"].rows == {}
    assert agg.tables["referer"].rows == {}
    assert counts(agg.tables["filetype"]) == Counter({"css": 2, "(directory)": 1})


def test_add_fields_matches_scan(access_log: Path, analysed: Aggregate) -> None:
    """The live path (parsed fields of LogRecords) counts exactly as the file path."""
    live = Aggregate("combined", SITE)
    with access_log.open(encoding="utf-8") as f:
        for line in f:
            try:
                ts, fields = parse_access_line(line.rstrip("\n"), "combined")
            except ValueError:
                if line.strip():
                    live.add_rejected()
                continue
            live.add_fields(ts, fields)
    live.settle()
    assert live.series == analysed.series
    assert live.rejected == analysed.rejected
    for dim, table in analysed.tables.items():
        assert live.tables[dim].rows == table.rows, dim


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 5), st.integers(0, 1000)), min_size=1, max_size=400),
       st.integers(1, 8), st.integers(1, 30))
def test_pruned_counts_stay_within_the_stated_bound(events: list[tuple[int, int, int]], keep: int,
                                                    every: int) -> None:
    truth: Counter[str] = Counter()
    truth_bytes: Counter[str] = Counter()
    table = Table()
    for i, (key, n, b) in enumerate(events):
        table.add(f"k{key}", n, b)
        truth[f"k{key}"] += n
        truth_bytes[f"k{key}"] += b
        if i % every == 0:
            table.prune(keep)
    table.prune(keep)
    assert sum(v[0] for v in table.rows.values()) + table.other_requests == sum(truth.values())
    assert sum(v[1] for v in table.rows.values()) + table.other_bytes == sum(truth_bytes.values())
    for key, (requests, nbytes) in table.rows.items():
        assert truth[key] - table.err_requests <= requests <= truth[key]
        assert truth_bytes[key] - table.err_bytes <= nbytes <= truth_bytes[key]
    for key, n in truth.items():
        if key not in table.rows:
            assert n <= table.err_requests
    assert len(table.rows) <= 2 * keep


@pytest.mark.parametrize(("referer", "site"), [
    ("-", None), ("", None), ("https://www.example.com/a", None), ("http://static.www.example.com/x", None),
    ("https://www.google.com/search?q=x", "www.google.com"),
    ("https://user@Evil.example.org:8443/x", "evil.example.org"),
    ("http://[2001:db8::1]:8080/p", "2001:db8::1"), ("android-app://com.google.android.gm/", "com.google.android.gm"),
    ("not a url", "(not a URL)"),
])
def test_referer_site(referer: str, site: str | None) -> None:
    assert referer_site(referer, SITE) == site


@pytest.mark.parametrize(("path", "kind"), [
    ("/", "(directory)"), ("/a/", "(directory)"), ("/a/b.HTML", "html"), ("/x.tar.gz", "gz"), ("/.env", "(none)"),
    ("/a", "(none)"), ("/a.php%20x", "(none)"), ("/a.b/c", "(none)"),
])
def test_file_type(path: str, kind: str) -> None:
    assert file_type(path) == kind
