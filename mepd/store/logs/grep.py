"""What `--grep TEXT` asks of the word index: a pure function, so that its exactness can be tested alone.

`--grep` means: the message contains TEXT, ASCII letters compared without case (SQLite's `lower()`, which
folds A-Z only).  The store always checks exactly that on the rows it reads; the word index (`logs_words`,
FTS5's `ascii` tokenizer) only narrows which rows it reads.  Its tokens are the runs of ASCII letters and
digits and non-ASCII characters, folded like `lower()`; every other character separates them.

Where TEXT occurs in a message, each run of token characters inside TEXT lines up with the message's
tokens: a run with a separator on both sides within TEXT is one of the message's tokens, whole; the run
that ends TEXT is the start of one (a prefix query); the run that starts TEXT is only the end of one (the
index cannot look that up: it is left out).  So the rows holding all those tokens are a superset of the
matches, and a TEXT with no such run (one word or part of one, like `sshd` or `ail`, or only separators)
cannot use the index: the store scans the rows the other filters select instead.
"""

from __future__ import annotations

import re
from typing import Final

# A token character for FTS5's `ascii` tokenizer: an ASCII letter or digit, or any non-ASCII character.
_RUNS: Final = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# A shorter last run is left out rather than looked up as a prefix: "a*" reads the lists of every token
# starting with "a", more than the other runs' rows cost to check.
MIN_PREFIX: Final = 3


def fold(text: str) -> str:
    """ASCII letters to lower case, nothing else: what SQLite's lower() and the `ascii` tokenizer do."""
    return text.translate(_ASCII_LOWER)


def match_expression(text: str) -> str | None:
    """The FTS5 query whose rows include every message containing `text`, or None when the word index cannot
    narrow the search (the caller scans)."""
    terms: list[str] = []
    for m in _RUNS.finditer(fold(text)):
        starts, ends = m.start() == 0, m.end() == len(text)
        if starts:
            continue  # possibly the end of a longer token: not a lookup the index has
        if not ends:
            terms.append(f'"{m.group()}"')
        elif len(m.group()) >= MIN_PREFIX:
            terms.append(f'"{m.group()}"*')
    return " AND ".join(terms) or None
