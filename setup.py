"""The compiled part of mepd: the rest of the metadata is in setup.cfg.

The extensions are optional: without a C compiler or Python's (or SQLite's)
headers, pip installs mepd without them, and mepd runs its pure Python syslog
path and sends the log writer row tuples.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mepd.sources.syslog._speedups",
            ["mepd/sources/syslog/_speedups.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(  # needs SQLite's headers (libsqlite3-dev) besides
            "mepd.store.logs._rows",
            ["mepd/store/logs/_rows.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ],
)
