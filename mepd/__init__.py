"""mepd: a log-and-metrics collection daemon for Linux servers."""

__version__ = "0.1.0"
