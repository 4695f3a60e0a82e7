"""Fails while importing."""
LIMIT = 1 / 0
