"""Shared test fixtures: the location of the shared reference data."""
import os
from pathlib import Path

import pytest


def shared_dir() -> Path:
    """The shared data folder beside the repository (override with TURBSIM_SHARED)."""
    env = os.environ.get("TURBSIM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared():
    path = shared_dir()
    if not (path / "ramses").is_dir():
        pytest.skip(f"shared reference data not found at {path}")
    return path
