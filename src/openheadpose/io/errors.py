"""The errors of reading inputs and writing outputs (their own module, so that ``io.images`` and
``io.limits`` can both raise them without importing each other)."""

from __future__ import annotations


class InputError(Exception):
    """An input could not be used; the message is ``"<file>: <reason>"``."""


class OutputError(Exception):
    """An output could not be written (unknown format, OpenCV writer would not open)."""
