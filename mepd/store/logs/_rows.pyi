# The C extension built from _rows.c (see native.py, which is how mepd uses it).
from typing import Any

COLUMNS: int

def pack(rows: list[tuple[Any, ...]], forms: tuple[bytes | None, ...], /) -> bytes: ...
