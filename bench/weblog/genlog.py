"""A deterministic, realistic Apache combined access log (seeded), for the bench and the tests.

Zipf-like popularity of pages and clients, a day/night cycle, static files,
304s without a body, 404 probes for /wp-login.php and friends, search-engine
and social referrers next to internal ones, a mix of browsers, tools and
robots, a few IPv6 clients, and (with `oddities`) the lines real logs hold:
"-" requests, TLS bytes on the plain port, escaped quotes in agents.

    python bench/weblog/genlog.py OUT [--lines N] [--seed S]
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
    "Edg/120.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
    "Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
    "OPR/106.0.0.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "curl/7.88.1",
    "Wget/1.21.3",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "-",
)
AGENT_WEIGHTS = (20, 6, 8, 6, 6, 3, 3, 2, 10, 2, 7, 2, 1, 1, 1, 5, 3, 2, 1, 2, 1, 2, 1, 1)
ODD_AGENT = r'Mozilla/5.0 (compatible; \"Quoted\" Crawler/1.0; +http://example.net/\"bot\")'
REFERRERS = (
    "https://www.google.com/", "https://www.google.fr/", "https://www.bing.com/search?q=mepd+logs",
    "https://duckduckgo.com/", "https://t.co/AbCdEf", "https://www.facebook.com/", "https://news.ycombinator.com/",
    "https://github.com/example/mepd", "http://forum.example.org/thread/42", "android-app://com.google.android.gm/",
)
PROBES = ("/wp-login.php", "/xmlrpc.php", "/.env", "/admin/config.php", "/phpmyadmin/index.php", "/.git/config",
          "/cgi-bin/luci", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php")
SITE = "https://www.example.com"


def _pages(rng: random.Random) -> list[tuple[str, int]]:
    """(path, typical size) for the site's pages, static files and API endpoints."""
    pages = [("/", 18_000), ("/index.html", 18_000), ("/about/", 9_000), ("/contact", 7_000),
             ("/feed.xml", 45_000), ("/robots.txt", 120), ("/favicon.ico", 4_286), ("/sitemap.xml", 30_000)]
    pages += [(f"/blog/{2015 + i // 80}/post-{i}.html", rng.randint(8_000, 60_000)) for i in range(800)]
    pages += [(f"/docs/{s}/{p}", rng.randint(5_000, 40_000)) for s in ("guide", "api", "faq")
              for p in ("", "install.html", "config.html", "reload.html", "metrics.html")]
    pages += [(f"/static/css/{n}.css", rng.randint(2_000, 90_000)) for n in ("app", "print", "theme")]
    pages += [(f"/static/js/{n}.js", rng.randint(10_000, 400_000)) for n in ("app", "vendor", "chart")]
    pages += [(f"/img/photo-{i}.jpg", rng.randint(40_000, 2_000_000)) for i in range(300)]
    pages += [(f"/img/icon-{i}.png", rng.randint(300, 9_000)) for i in range(60)]
    pages += [(f"/download/mepd-1.{i}.tar.gz", rng.randint(200_000, 900_000)) for i in range(10)]
    pages += [("/api/items", 1_500), ("/api/search", 2_500), ("/login", 6_000)]
    return pages


def lines(n: int, seed: int = 1, start: datetime | None = None, days: float = 14.0,  # noqa: PLR0912
          oddities: bool = False) -> Iterator[str]:
    rng = random.Random(seed)
    tz = timezone(timedelta(hours=1))
    t0 = (start or datetime(2024, 3, 4, tzinfo=UTC)).astimezone(tz)
    span = days * 86400.0
    pages = _pages(rng)
    page_w = [1.0 / (i + 1) ** 0.9 for i in range(len(pages))]
    clients = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(30_000)]
    clients += [f"2001:db8:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}" for _ in range(1_500)]
    rng.shuffle(clients)
    client_w = [1.0 / (i + 1) ** 0.7 for i in range(len(clients))]
    batch = 4096
    # times: a day/night cycle drawn by rejection, then sorted within the whole file
    times: list[float] = []
    while len(times) < n:
        t = rng.random() * span
        if rng.random() < 0.55 + 0.45 * math.sin(2 * math.pi * (t % 86400 - 6 * 3600) / 86400):
            times.append(t)
    times.sort()
    for base in range(0, n, batch):
        k = min(batch, n - base)
        pg = rng.choices(pages, page_w, k=k)
        cl = rng.choices(clients, client_w, k=k)
        ag = rng.choices(AGENTS, AGENT_WEIGHTS, k=k)
        for i in range(k):
            when = t0 + timedelta(seconds=times[base + i])
            stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
            path, size = pg[i]
            agent = ag[i]
            r = rng.random()
            method = "GET" if r < 0.92 else "POST" if r < 0.97 else "HEAD" if r < 0.995 else "OPTIONS"
            proto = "HTTP/1.1" if rng.random() < 0.7 else "HTTP/2.0" if rng.random() < 0.9 else "HTTP/1.0"
            query = ""
            if path.startswith("/api/"):
                query = f"?q={rng.randint(1, 500)}&page={rng.randint(1, 5)}"
            r = rng.random()
            if r < 0.04:
                path, status, nbytes = rng.choice(PROBES), "404", str(rng.choice((196, 209, 1_245)))
            elif r < 0.06:
                path, status, nbytes = f"/blog/missing-{rng.randint(1, 2_000)}.html", "404", "1245"
            elif r < 0.16:
                status, nbytes = "304", "-"
            elif r < 0.18:
                status, nbytes = rng.choice(("301", "302")), str(rng.randint(200, 600))
            elif r < 0.185:
                status, nbytes = rng.choice(("500", "502", "503")), str(rng.randint(300, 800))
            elif r < 0.19:
                status, nbytes = "206", str(rng.randint(1, size))
            elif r < 0.193:
                status, nbytes = "403", "199"
            else:
                status, nbytes = "200", str(max(0, int(size * rng.uniform(0.9, 1.1))))
            if method == "HEAD":
                nbytes = "-"
            r = rng.random()
            if r < 0.4:
                referer = "-"
            elif r < 0.8:
                referer = SITE + rng.choice(pages)[0]
            else:
                referer = rng.choice(REFERRERS)
            request = f"{method} {path}{query} {proto}"
            if oddities:
                r = rng.random()
                if r < 0.002:
                    request, status, nbytes = "-", "408", "-"
                elif r < 0.003:
                    request, status, nbytes = r"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "400", "226"
                elif r < 0.006:
                    agent = ODD_AGENT
                elif r < 0.007:
                    yield "this is not an access log line"
            yield f'{cl[i]} - - [{stamp}] "{request}" {status} {nbytes} "{referer}" "{agent}"'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--oddities", action="store_true")
    args = p.parse_args()
    with open(args.out, "w", encoding="utf-8") as f:
        for line in lines(args.lines, args.seed, oddities=args.oddities):
            f.write(line + "\n")


if __name__ == "__main__":
    main()
