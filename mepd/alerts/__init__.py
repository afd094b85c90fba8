"""Incidents from metric thresholds, log patterns and silence; notification and corrective actions."""
