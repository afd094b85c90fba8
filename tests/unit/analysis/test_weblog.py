"""Web-log aggregates against an independent count of the same file.

The reference count tokenises each line with the csv module (space-separated,
double-quoted, backslash-escaped), parses times with strptime and tallies
with collections.Counter: nothing is shared with the analyser but the file.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import posixpath
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mepd.analysis import weblog
from mepd.analysis.hll import HyperLogLog
from mepd.analysis.useragent import classify
from mepd.analysis.weblog import Aggregate, Table, analyze_file, analyze_main, file_type, referer_site

SITE = ("www.example.com",)


@dataclass
class Reference:
    requests: int = 0
    nbytes: int = 0
    unparsed: int = 0
    status: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    path_bytes: Counter[str] = field(default_factory=Counter)
    notfound: Counter[str] = field(default_factory=Counter)
    clients: Counter[str] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)
    referers: Counter[str] = field(default_factory=Counter)
    sites: Counter[str] = field(default_factory=Counter)
    filetypes: Counter[str] = field(default_factory=Counter)
    hourly: Counter[int] = field(default_factory=Counter)
    daily: Counter[str] = field(default_factory=Counter)
    weekday: Counter[int] = field(default_factory=Counter)
    first: float = float("inf")
    last: float = float("-inf")


def reference_count(path: Path) -> Reference:
    ref = Reference()
    with path.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter=" ", quotechar='"', escapechar="\\", doublequote=False):
            if not row:
                continue
            if len(row) != 10 or not row[3].startswith("[") or not row[6].isdigit():
                ref.unparsed += 1
                continue
            client, _, _, day, zone, request, status, size, referer, agent = row
            when = datetime.strptime(day[1:] + " " + zone[:-1], "%d/%b/%Y:%H:%M:%S %z")
            ts = when.timestamp()
            nbytes = 0 if size == "-" else int(size)
            ref.requests += 1
            ref.nbytes += nbytes
            ref.first, ref.last = min(ref.first, ts), max(ref.last, ts)
            ref.hourly[int(ts) // 3600 * 3600] += 1
            ref.daily[when.date().isoformat()] += 1
            ref.weekday[when.weekday()] += 1
            ref.status[status] += 1
            words = request.split(" ")
            if len(words) == 3 and words[0].isalpha() and words[0].isupper():
                method, target, proto = words
                url_path = target.split("?")[0]
            else:
                method, proto, url_path = "(invalid)", "(none)", request
            ref.methods[method] += 1
            ref.protocols[proto] += 1
            ref.paths[url_path] += 1
            ref.path_bytes[url_path] += nbytes
            ext = posixpath.splitext(posixpath.basename(url_path))[1][1:].lower()
            ref.filetypes["(directory)" if url_path.endswith("/") else ext if ext.isalnum() else "(none)"] += 1
            if status == "404":
                ref.notfound[url_path] += 1
            ref.clients[client] += 1
            ref.agents[agent] += 1
            if referer != "-" and not referer.startswith("https://www.example.com/"):
                ref.referers[referer] += 1
                ref.sites[referer.split("/")[2] if "://" in referer else "(not a URL)"] += 1
    return ref


def counts(table: Table) -> Counter[str]:
    """Requests per key, backslashes dropped: the csv reader unescapes what the analyser keeps as logged."""
    return Counter({k.replace("\\", ""): v[0] for k, v in table.rows.items()})


@pytest.fixture(scope="module")
def reference(access_log: Path) -> Reference:
    return reference_count(access_log)


@pytest.fixture(scope="module")
def analysed(access_log: Path) -> Aggregate:
    return analyze_file(str(access_log), "combined", SITE, workers=1)


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


def test_report_sections(analysed: Aggregate, reference: Reference) -> None:
    tz = timezone(timedelta(hours=1))
    report = weblog.report_from_aggregate(analysed, "test", top=5, tz=tz)
    summary = report["summary"]
    assert isinstance(summary, dict)
    ok = sum(n for code, n in reference.status.items() if code[0] in "23")
    failed = sum(n for code, n in reference.status.items() if code[0] in "45")
    assert (summary["requests"], summary["successful"], summary["failed"]) == (reference.requests, ok, failed)
    series = report["series"]
    assert isinstance(series, dict)
    assert {d["date"]: d["requests"] for d in series["daily"]} == reference.daily
    assert [d["requests"] for d in series["day_of_week"]] == [reference.weekday[i] for i in range(7)]
    assert sum(h["requests"] for h in series["hour_of_day"]) == reference.requests
    top = report["top"]
    assert isinstance(top, dict)
    paths = top["path"]
    assert [r["requests"] for r in paths["rows"]] == [n for _, n in reference.paths.most_common(5)]
    assert paths["others"]["requests"] == reference.requests - sum(r["requests"] for r in paths["rows"])
    by_bytes = top["path_by_bytes"]
    assert [r["bytes"] for r in by_bytes["rows"]] == [n for _, n in reference.path_bytes.most_common(5)]
    assert analysed.log_tz() == tz
    json.dumps(report)


def test_parallel_ranges_agree_with_one_pass(access_log: Path, analysed: Aggregate,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weblog, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(weblog, "BLOCK", 4096)
    parallel = analyze_file(str(access_log), "combined", SITE, workers=3)
    assert parallel.series == analysed.series
    assert parallel.rejected == analysed.rejected
    for dim, table in analysed.tables.items():
        assert parallel.tables[dim].rows == table.rows, dim


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=6))
def test_byte_ranges_split_lines_exactly_once(tmp_path_factory: pytest.TempPathFactory, cuts: list[int]) -> None:
    path = tmp_path_factory.mktemp("ranges") / "f"
    text = "".join(f"line {i} " + "x" * (i % 37) + "\n" for i in range(400)) + "no newline at end"
    path.write_text(text)
    size = path.stat().st_size
    bounds = sorted({0, size, *(c % size for c in cuts)})
    got: list[str] = []
    for start, end in itertools.pairwise(bounds):
        for block in weblog._blocks(str(path), start, end):
            got.extend(line for line in block if line)
    assert got == text.split("\n")


def test_gzip_and_stdin_paths(access_log: Path, analysed: Aggregate, tmp_path: Path) -> None:
    gz = tmp_path / "access.log.gz"
    with access_log.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    packed = analyze_file(str(gz), "combined", SITE)
    assert packed.series == analysed.series
    assert packed.tables["path"].rows == analysed.tables["path"].rows


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
    from mepd.analysis.accesslog import access_time, parse_access_line  # noqa: PLC0415

    live = Aggregate("combined", SITE)
    with access_log.open(encoding="utf-8") as f:
        for line in f:
            fields = parse_access_line(line.rstrip("\n"), "combined")
            if fields is None:
                if line.strip():
                    live.add_rejected()
                continue
            live.add_fields(access_time(fields["time"]), fields)
    live.settle()
    assert live.series == analysed.series
    assert live.rejected == analysed.rejected
    for dim, table in analysed.tables.items():
        assert live.tables[dim].rows == table.rows, dim


@settings(max_examples=60, deadline=None)
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


def test_folding_is_reported(access_log: Path) -> None:
    agg = analyze_file(str(access_log), "combined", SITE, keep=20, workers=1)
    report = weblog.report_from_aggregate(agg, "x", top=5)
    top = report["top"]
    assert isinstance(top, dict)
    assert not top["path"]["exact"]
    assert top["path"]["max_error"]["requests"] > 0
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["clients_exact"] is False
    exact = analyze_file(str(access_log), "combined", SITE, workers=1).clients
    assert abs(summary["clients"] - exact) <= 0.05 * exact


def test_hyperloglog_error_and_merge() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    a.add_many(f"10.0.{i // 256}.{i % 256}" for i in range(60_000))
    b.add_many(f"10.0.{i // 256}.{i % 256}" for i in range(30_000, 100_000))
    assert abs(a.estimate() - 60_000) <= 0.05 * 60_000
    a.merge(b)
    assert abs(a.estimate() - 100_000) <= 0.05 * 100_000
    assert HyperLogLog.from_blob(a.to_blob()).registers == a.registers
    small = HyperLogLog()
    small.add_many(str(i) for i in range(100))
    assert abs(small.estimate() - 100) <= 2


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


def test_analyze_main_outputs(access_log: Path, reference: Reference) -> None:
    out: list[str] = []
    assert analyze_main([str(access_log), "--json", "--site-host", "www.example.com", "--top", "3"],
                        out=out.append) == 0
    report = json.loads(out[0])
    assert report["summary"]["requests"] == reference.requests
    assert len(report["top"]["client"]["rows"]) == 3
    out.clear()
    assert analyze_main([str(access_log), "--html", "--utc"], out=out.append) == 0
    page = out[0]
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 5
    assert "<script" not in page
    assert f"{reference.requests:,}" in page
    out.clear()
    assert analyze_main([str(access_log)], out=out.append) == 0
    assert f"requests        {reference.requests}" in out[0]


def test_analyze_main_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert analyze_main([str(tmp_path / "missing.log")]) == 1
    assert "missing.log" in capsys.readouterr().err
    assert analyze_main(["--format", "xml", "f"]) == 2
    assert analyze_main(["f", "--top", "0"]) == 2


def test_html_escapes_what_the_log_holds(tmp_path: Path) -> None:
    log = tmp_path / "evil.log"
    log.write_text('1.2.3.4 - - [01/Jan/2024:10:00:00 +0000] "GET /<script>alert(1)</script> HTTP/1.1" 404 1 '
                   '"https://e.example/<b>" "<img src=x onerror=alert(1)>"\n')
    out: list[str] = []
    assert analyze_main([str(log), "--html"], out=out.append) == 0
    assert "<script>" not in out[0]
    assert "&lt;script&gt;" in out[0]
    assert "<img" not in out[0]


def test_empty_file(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("")
    report = weblog.report_from_aggregate(analyze_file(str(log)), "empty", tz=UTC)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert (summary["requests"], summary["first"], summary["clients"]) == (0, None, 0)
    assert "<svg" not in weblog.render_text(report)
