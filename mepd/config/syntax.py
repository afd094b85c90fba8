"""The small languages of alert rules: key globs, summary templates, label matchers.

Kept free of other mepd imports (but the leaf `mepd.errors`) so that config
validation can use the very parsers the engine runs, and a rule that loads is a
rule that works.  It sits in `mepd.config`, below `mepd.alerts`, which imports it.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol, cast

import re2

from mepd.errors import quoted

_GLOB_CHARS: Final = re.compile(r"[A-Za-z0-9_.:/@%+=,~*?\[\]!-]*")
LABEL_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Summary fields and the type of the value a template sees; anything else is a label name.
TEMPLATE_FIELDS: Final[Mapping[str, object]] = {
    "rule": "rule", "severity": "warning", "value": 1.0, "threshold": 1.0, "count": 1,
    "key": "key", "host": "host", "app": "app", "source": "source", "pattern": "pattern",
    "window": "5m", "for": "5m", "absent": "5m", "silent": "5m", "metric": "snmp.*.*.in_bps", "labels": {},
}
# What a log rule's summary may use besides: the fields of the matching line, as in its JSON shape, but
# the line's severity is {line_severity}: {severity} is the rule's in every rule, as notifications show it.
RECORD_FIELDS: Final[Mapping[str, object]] = {
    "host": "host", "app": "app", "pid": "1", "facility": "auth", "line_severity": "err", "msgid": "ID",
    "message": "message", "source": "syslog/udp", "peer": "192.0.2.1:514",
}
LOG_TEMPLATE_FIELDS: Final[Mapping[str, object]] = {**TEMPLATE_FIELDS, **RECORD_FIELDS}
# A log rule with `distinct` tracks at most DISTINCT_MAX values per window (per series), the most recently
# seen; its `count` may not exceed it, so whether it fires stays exact.  Its summary also has {distinct}, the
# number of values in the window, and {distinct_values}, the first DISTINCT_SHOWN of them.
DISTINCT_MAX: Final = 4096
DISTINCT_SHOWN: Final = 10
DISTINCT_TEMPLATE_FIELDS: Final[Mapping[str, object]] = {
    **LOG_TEMPLATE_FIELDS, "distinct": 5, "distinct_values": "web1, web2, web3",
}


def glob_error(text: str) -> str | None:
    """Why `text` is not a supported glob (`*`, `?`, `[...]` over key characters), or None."""
    if not _GLOB_CHARS.fullmatch(text):
        bad = sorted({c for c in text if not _GLOB_CHARS.fullmatch(c)})
        return f"unsupported character(s) {quoted(''.join(bad))} in glob {quoted(text)}; use *, ? and [...]"
    depth = 0
    for c in text:
        if c == "[":
            if depth:
                return f'nested "[" in glob {quoted(text)}'
            depth = 1
        elif c == "]" and depth:
            depth = 0
    if depth:
        return f'unclosed "[" in glob {quoted(text)}'
    return None


def compile_glob(text: str) -> re.Pattern[str]:
    """fnmatch semantics, case-sensitive: `*` crosses dots, so interface names with dots match."""
    return re.compile(fnmatch.translate(text))


class Regex(Protocol):
    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # the caller reports the error; RE2's own stderr line would only repeat it


@functools.lru_cache(maxsize=256)
def compile_regex(text: str) -> Regex:
    """A user's regex for matching untrusted text (log lines, label values) with RE2, in time linear in the
    text: Python's re backtracks, and `(a|a)+` against a host name doubles its time per character.
    RE2 has no backreferences or lookaround; ValueError says what it refused."""
    try:
        return cast(Regex, re2.compile(text, _RE2_OPTIONS))
    except re2.error as e:
        why = e.args[0] if e.args else e
        raise ValueError(why.decode(errors="replace") if isinstance(why, bytes) else str(why)) from None


def template_error(template: str, label_names: tuple[str, ...],
                   fields: Mapping[str, object] = TEMPLATE_FIELDS) -> str | None:
    """Why a summary template cannot render with `fields` (LOG_TEMPLATE_FIELDS for log rules) and labels,
    checked with sample values of the right types."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        return f"invalid template: {e}"
    known = set(fields) | set(label_names)
    for name in names:
        root = re.split(r"[.\[]", name, maxsplit=1)[0]
        if not root or root.isdigit():
            return "positional fields like {} or {0} are not supported; name a field such as {value}"
        if root not in known:
            return f"unknown field {{{root}}}; known: {', '.join(sorted(known))}"
    sample = dict(fields)
    sample.update((n, n) for n in label_names if n not in fields)
    sample["labels"] = {n: n for n in label_names}
    try:
        template.format_map(sample)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError) as e:
        return f"invalid template: {type(e).__name__}: {e}"
    return None


def render(template: str, fields: Mapping[str, object]) -> str:
    """The summary text; a template that fails on real values still says something useful."""
    try:
        return template.format_map(fields)
    except (KeyError, ValueError, IndexError, AttributeError, TypeError):
        return f"{fields.get('rule')}: {template} (value {fields.get('value')})"


Op = Literal["=", "!=", "=~", "!~"]
_MATCHER: Final = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


@dataclass(frozen=True, slots=True)
class Matcher:
    """One Alertmanager-style label matcher; regexes are anchored, as there, and run by RE2."""

    name: str
    op: Op
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = compile_regex(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def _split_matchers(text: str) -> Iterator[str]:
    """Split on commas outside double quotes, so a regex like a{1,2} can be quoted."""
    part: list[str] = []
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            yield "".join(part)
            part = []
        else:
            part.append(c)
    yield "".join(part)


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """`rule=uplink,host=~"web[0-9]+"` -> matchers; ValueError naming the bad part."""
    out: list[Matcher] = []
    for raw in _split_matchers(text):
        if not raw.strip():
            continue
        m = _MATCHER.fullmatch(raw)
        if not m:
            raise ValueError(
                f"bad matcher {raw.strip()!r}; expected name=value, name!=value, name=~regex or name!~regex"
            )
        name, op, value = m.group(1), m.group(2), m.group(3)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if op in ("=~", "!~"):
            try:
                compile_regex(value)
            except ValueError as e:
                raise ValueError(f"bad regular expression in matcher {raw.strip()!r}: {e}") from None
        out.append(Matcher(name, cast(Op, op), value))
    if not out:
        raise ValueError("expected at least one matcher like rule=NAME")
    return tuple(out)
