"""Analysers: pure functions turning raw readings into the values stored and alerted on."""
