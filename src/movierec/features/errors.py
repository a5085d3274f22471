"""Errors of the feature component.

``EncoderError``: an encoder cannot be built (unknown name, missing weights, bad options); it
stops a command or keeps a service from becoming ready. ``BadItemError``: one input (a poster, an
audio file, a text) cannot be encoded; a build skips and records the item, a service answers 4xx
naming the field.
"""

from __future__ import annotations

from movierec.data.errors import DataError


class EncoderError(DataError):
    """An encoder cannot be created or loaded."""


class BadItemError(ValueError):
    """One input cannot be encoded; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
