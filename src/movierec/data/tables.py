"""Strict reading of delimited files: every problem names the file and the line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.errors import DataFormatError

_PANDAS_LINE = re.compile(r"line (\d+)")


def read_table(
    path: Path,
    *,
    sep: str,
    names: list[str],
    header: bool,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a delimited file as strings with exactly ``len(names)`` fields per line.

    Blank lines are kept (and reported by the checks), so line numbers in errors are the
    line numbers a person sees in an editor.
    """
    if not path.exists():
        raise DataFormatError(path, None, "file not found")
    if header:
        _check_header(path, sep, names, encoding)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            names=names,
            header=0 if header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding=encoding,
            engine="python" if len(sep) > 1 else "c",
            quotechar='"',
        )
    except pd.errors.ParserError as exc:
        match = _PANDAS_LINE.search(str(exc))
        line = int(match.group(1)) if match else None
        raise DataFormatError(path, line, f"wrong number of fields ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, f"not {encoding} text: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, None, "file is empty") from None
    frame.attrs["first_line"] = 2 if header else 1
    return frame


def read_number_table(path: Path, *, sep: str, names: list[str], dtypes: list[str], header: bool) -> pd.DataFrame:
    """``read_table`` for a file of numbers only (a ratings file), read as numbers straight away.

    Read as strings, every cell is a Python object: about 200 bytes a line, 5 GB for ml-25m's 25M
    ratings, in every process that loads them. A file that is not clean numbers (a blank, missing
    or non-numeric field, a wrong field count) is read again by ``read_table``, whose checks name
    the file and the line, so errors read the same either way.
    """
    if not path.exists() or len(sep) != 1:
        return read_table(path, sep=sep, names=names, header=header)
    if header:
        _check_header(path, sep, names, "utf-8")
    try:
        frame = pd.read_csv(path, sep=sep, names=names, header=0 if header else None, dtype=dict(zip(names, dtypes)),
                            skip_blank_lines=False, encoding="utf-8", engine="c", quotechar='"')
    except (ValueError, OverflowError):  # also pandas' ParserError and EmptyDataError, and UnicodeDecodeError
        return read_table(path, sep=sep, names=names, header=header)
    if frame.isna().to_numpy().any():
        return read_table(path, sep=sep, names=names, header=header)
    frame.attrs["first_line"] = 2 if header else 1
    return frame


def _check_header(path: Path, sep: str, names: list[str], encoding: str) -> None:
    with path.open(encoding=encoding, errors="replace") as fh:
        got = fh.readline().strip()
    if not got:
        raise DataFormatError(path, 1, "file is empty or has no header")
    fields = [f.strip().strip('"') for f in got.split(sep)]
    if [f.lower() for f in fields] != [n.lower() for n in names]:
        raise DataFormatError(path, 1, f"header is {got!r}, expected {sep.join(names)!r}")


def line_of(frame: pd.DataFrame, position: int) -> int:
    return int(frame.attrs.get("first_line", 1)) + position


def numeric_column(frame: pd.DataFrame, column: str, path: Path, *, integer: bool) -> np.ndarray:
    """Convert a string column, failing on the first empty or non-numeric value."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        text = raw.iloc[pos]
        what = "missing" if text == "" else f"not a number: {text!r}"
        if frame.iloc[pos].eq("").all():
            what = "empty line (truncated or blank)"
        raise DataFormatError(path, line_of(frame, pos), f"{column} {what}")
    arr = values.to_numpy()
    if integer:
        if not np.all(np.mod(arr, 1) == 0):
            pos = int(np.flatnonzero(np.mod(arr, 1) != 0)[0])
            raise DataFormatError(path, line_of(frame, pos), f"{column} must be an integer: {raw.iloc[pos]!r}")
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def check_no_blank_rows(frame: pd.DataFrame, path: Path, key: str) -> None:
    blank = frame[key].eq("").to_numpy()
    if blank.any():
        pos = int(np.flatnonzero(blank)[0])
        raise DataFormatError(path, line_of(frame, pos), f"{key} missing (blank or truncated line)")
