"""Stored samples sent on to existing metric stores: Prometheus remote write (`[[metrics.remote_write]]`)."""
