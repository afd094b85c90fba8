"""The compiled part of mepd: the rest of the metadata is in setup.cfg.

The extension is optional: without a C compiler or Python's headers, pip
installs mepd without it and mepd runs its pure Python syslog path.
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
    ],
)
