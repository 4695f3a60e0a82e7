"""Imports what is not installed."""
import not_installed_xyz  # noqa: F401
