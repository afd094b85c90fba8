"""Write the package's copyright file: mepd's licence and that of every bundled distribution.

Run with the staged venv's interpreter, so the distributions listed are exactly
the ones shipped under /opt/mepd.
"""

from __future__ import annotations

import importlib.metadata
import sys


def licence(dist: importlib.metadata.Distribution) -> str:
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return str(expression)
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:80] if text else "see its metadata in /opt/mepd"


def main() -> int:
    out = [
        "mepd",
        "",
        "Copyright (C) 2026 the mepd authors",
        "License: MIT",
        " Permission is hereby granted, free of charge, to any person obtaining a copy",
        " of this software and associated documentation files (the \"Software\"), to deal",
        " in the Software without restriction, including without limitation the rights",
        " to use, copy, modify, merge, publish, distribute, sublicense, and/or sell",
        " copies of the Software, and to permit persons to whom the Software is",
        " furnished to do so, subject to the following conditions:",
        " .",
        " The above copyright notice and this permission notice shall be included in",
        " all copies or substantial portions of the Software.",
        " .",
        " THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR",
        " IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,",
        " FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.",
        "",
        "Python distributions bundled under /opt/mepd/lib, with the licence each",
        "declares; their full licence texts are in their *.dist-info folders there.",
        "On Debian systems the GNU Lesser General Public License is in",
        "/usr/share/common-licenses/LGPL-2.1, and the Apache License 2.0 in",
        "/usr/share/common-licenses/Apache-2.0.",
        "",
    ]
    dists = sorted(importlib.metadata.distributions(), key=lambda d: str(d.metadata["Name"]).lower())
    out += [f"  {d.metadata['Name']} {d.version}: {licence(d)}" for d in dists if d.metadata["Name"] != "mepd"]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
