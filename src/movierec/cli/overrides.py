"""``--set KEY=VALUE`` options shared by the command groups: values are JSON when they parse."""

from __future__ import annotations

import json


def parse_set_pairs(pairs: list[str], error: type[Exception], key_hint: str = "KEY") -> dict:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b.c": "x"}``; a pair without ``=`` raises ``error``."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise error(f"--set: expected {key_hint}=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
