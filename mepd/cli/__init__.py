"""Entry points only; the logic lives in the modules they call."""
