"""Stores: where records end up; they never import sources."""
