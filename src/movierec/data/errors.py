"""Errors raised while reading data files.

``DataError`` is the root; ``DataFormatError`` names the file, the line and what is wrong so a
person can open the file and fix it.
"""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Any problem with input data."""


class DataFormatError(DataError):
    def __init__(self, path: Path | str, line: int | None, problem: str):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")
