"""The host itself: its metrics (metrics.py) and Monit-style checks (checks.py)."""
