# The C extension built from _speedups.c (see native.py, which is how mepd uses it).
from collections.abc import Callable, Iterable
from datetime import tzinfo
from types import MappingProxyType

from mepd.model import LogRecord

def datagrams(
    fd: int, buffer: memoryview, slot: int, limit: int, /,
) -> tuple[list[tuple[bytes, int, str | None]], int]: ...
def frames(buf: bytes, pos: int, limit: int, out: list[tuple[bytes, int]], /) -> int: ...
def parse_many(
    frames: Iterable[bytes], received: float, source: str, peer: str | None, tz: tzinfo | None,
    fallback_host: str | None,
    slow: Callable[[bytes, float, str, str | None, tzinfo | None, str | None], LogRecord], /,
) -> list[LogRecord]: ...
def setup(
    record_type: type[LogRecord], filled: tuple[str, ...], others: tuple[str, ...],
    no_sd: MappingProxyType[str, object],
    wall_hour: Callable[[tzinfo | None, int, int, int, int], float | None],
    bsd_hour: Callable[[tzinfo | None, tuple[str, str, str | None, str], int], float | None], /,
) -> None: ...
