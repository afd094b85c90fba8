"""Text from outside (a message, a host name, an ifAlias) made safe to show on a terminal.

Shared by every human renderer (mepctl's tables and log lines, the web-log text report), so none of
them lets an ESC, OSC or C1 sequence reach the user's terminal; `--json` prints the exact text instead.
"""

from __future__ import annotations

import re
from typing import Final

# C0 but tab, DEL, C1: what a terminal acts on (ESC starts CSI/OSC sequences, U+009B is CSI by itself).
_CONTROL: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """`value` as text a terminal only displays: control characters become `\\x1b`, `\\u009b` escapes.

    Newlines too, so a record cannot forge a line that looks like another record; tabs are kept: they
    only move the cursor to the next tab stop.
    """
    return _CONTROL.sub(_escape, str(value))
