"""Shared test fixtures.

Files from ../shared (posters, plots, YAMNet) are reached through ``shared_path``: on a user's
machine without them the test is skipped; under CI (CI=true) a missing file fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from movierec.settings import REPO_ROOT, Settings

SHARED_DIR = Path(os.environ.get("MOVIEREC_SHARED_DIR") or (REPO_ROOT.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_path(relative: str) -> Path:
    """A file or folder under ../shared, or skip (fail under CI) when it is missing."""
    path = SHARED_DIR / relative
    if not path.exists():
        message = f"{path} is missing (set MOVIEREC_SHARED_DIR to the shared folder)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_settings(tmp_path: Path) -> Settings:
    """Settings on the vendored ml-latest-small plus ../shared, with artifacts in a temp folder."""
    return Settings(home=tmp_path / "home", shared_dir=shared_path("data").parent)


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Settings with no optional sources at all (no shared folder, no MMTF)."""
    return Settings(home=tmp_path / "home", shared_dir=None, mmtf_dir=None)
