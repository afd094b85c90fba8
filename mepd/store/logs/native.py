"""The log writer's packed rows (`_rows.c`), or None when they are not in use.

They are not when the extension was not built (no compiler or no SQLite headers where mepd was installed)
or when MEPD_PURE=1 is in the environment, as for the syslog speedups; nor when the writer's sqlite3 cannot
load an extension (`worker.state` tells the daemon).  The row tuples then go to the writer, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Pack = Callable[[list[tuple[Any, ...]], tuple[bytes | None, ...]], bytes]

pack: Pack | None = None
path: str | None = None  # the shared object, for the writer's sqlite3 load_extension
columns = 0  # the table columns the extension was built for

if os.environ.get("MEPD_PURE", "") in ("", "0"):
    try:
        from mepd.store.logs import _rows
    except ImportError:
        pass
    else:
        pack, path, columns = _rows.pack, _rows.__file__, _rows.COLUMNS
