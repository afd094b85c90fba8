"""Analysers: turn records into aggregates and metrics (web access logs, counters)."""
