"""Operating system and browser families from a User-Agent header, Analog-style.

Ordered substring tests, most specific first (Edge and Opera also say
"Chrome", Chrome also says "Safari", iOS also says "Mac OS X", Android also
says "Linux").  Families only, no versions: they are what the reports group
by, and the few hundred rules of a full UA database would cost more than the
whole parse of a line.  Called once per distinct agent, never per line.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

UNKNOWN: Final = "Unknown"
ROBOT: Final = "Robot"

# (substring, family): the first substring found in the agent wins.
_BOTS: Final = (
    ("Googlebot", "Googlebot"), ("bingbot", "Bingbot"), ("YandexBot", "YandexBot"), ("Baiduspider", "Baiduspider"),
    ("DuckDuckBot", "DuckDuckBot"), ("Applebot", "Applebot"), ("AhrefsBot", "AhrefsBot"),
    ("SemrushBot", "SemrushBot"), ("MJ12bot", "MJ12bot"), ("facebookexternalhit", "Facebook"),
    ("GPTBot", "GPTBot"), ("ClaudeBot", "ClaudeBot"), ("PetalBot", "PetalBot"),
)
_BOT_WORDS: Final = ("bot", "spider", "crawl", "slurp", "scan", "monitor", "check", "fetch")
_TOOLS: Final = (
    ("curl/", "curl"), ("Wget/", "Wget"), ("python-requests", "Python"), ("Python-urllib", "Python"),
    ("aiohttp", "Python"), ("Go-http-client", "Go"), ("okhttp", "OkHttp"), ("Java/", "Java"),
    ("libwww-perl", "Perl"), ("PostmanRuntime", "Postman"), ("HeadlessChrome", "Headless Chrome"),
)
_BROWSERS: Final = (
    ("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("Edge/", "Edge"),
    ("OPR/", "Opera"), ("Opera", "Opera"), ("YaBrowser/", "Yandex Browser"), ("Vivaldi/", "Vivaldi"),
    ("SamsungBrowser/", "Samsung Internet"), ("UCBrowser/", "UC Browser"), ("Brave", "Brave"),
    ("CriOS/", "Chrome"), ("FxiOS/", "Firefox"), ("Firefox/", "Firefox"), ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"), ("MSIE ", "Internet Explorer"), ("Trident/", "Internet Explorer"),
    ("Safari/", "Safari"), ("Lynx/", "Lynx"), ("Links", "Links"), ("w3m/", "w3m"),
)
_SYSTEMS: Final = (
    ("Windows Phone", "Windows Phone"), ("Windows", "Windows"), ("iPhone", "iOS"), ("iPad", "iOS"),
    ("iPod", "iOS"), ("CrOS", "Chrome OS"), ("Android", "Android"), ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"), ("FreeBSD", "FreeBSD"), ("OpenBSD", "OpenBSD"), ("NetBSD", "NetBSD"),
    ("SunOS", "Solaris"), ("Linux", "Linux"), ("X11", "Unix"),
)


def _first(agent: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for needle, family in table:
        if needle in agent:
            return family
    return None


@lru_cache(maxsize=4096)
def classify(agent: str) -> tuple[str, str]:
    """(os family, browser family); robots are browser family "<Name>" and os "Robot"."""
    if not agent or agent == "-":
        return UNKNOWN, UNKNOWN
    bot = _first(agent, _BOTS)
    if bot is None:
        lower = agent.lower()
        if any(word in lower for word in _BOT_WORDS):
            bot = "Other robot"
    if bot is not None:
        return ROBOT, bot
    tool = _first(agent, _TOOLS)
    system = _first(agent, _SYSTEMS) or UNKNOWN
    if tool is not None:
        return system, tool
    return system, _first(agent, _BROWSERS) or UNKNOWN
