"""OS and browser families of real User-Agent strings (most specific rule first)."""

from __future__ import annotations

import pytest

from mepd.analysis.weblog.useragent import classify


@pytest.mark.parametrize(("agent", "expected"), [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 Edg/120.0.0.0", ("Windows", "Edge")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 OPR/106.0.0.0", ("Windows", "Opera")),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", ("Windows", "Chrome")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Safari/605.1.15", ("macOS", "Safari")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/120.0 Mobile/15E148 Safari/604.1", ("iOS", "Chrome")),
    ("Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
     "Chrome/115.0.0.0 Mobile Safari/537.36", ("Android", "Samsung Internet")),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", ("Linux", "Firefox")),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", ("Chrome OS", "Chrome")),
    ("Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko", ("Windows", "Internet Explorer")),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ("Robot", "Googlebot")),
    ("Mozilla/5.0 (compatible; SomeNewCrawler/0.1)", ("Robot", "Other robot")),
    ("curl/8.4.0", ("Unknown", "curl")),
    ("python-requests/2.31.0", ("Unknown", "Python")),
    ("-", ("Unknown", "Unknown")),
    ("", ("Unknown", "Unknown")),
])
def test_families(agent: str, expected: tuple[str, str]) -> None:
    assert classify(agent) == expected
