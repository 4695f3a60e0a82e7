"""Exits while importing."""
import sys

sys.exit(3)
