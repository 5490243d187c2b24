"""The one error type the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input: an unknown name, a bad number, a broken file, a missing device."""
