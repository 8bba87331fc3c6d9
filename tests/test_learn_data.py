"""learn.data: RAMSES map files load with their classes."""
import numpy as np
import pytest

from learn import data as ldata


def test_ramses_map_file_loads_with_classes(shared_dir):
    ms = ldata.load_split(shared_dir / "ramses" / "ensemble_dev" / "binary64_dev.npz", "test")
    assert ms.maps.shape == (24, 3, 64, 64)
    np.testing.assert_array_equal(ms.labels["klass"], (ms.labels["n"] == 4.0).astype(int))


@pytest.fixture
def shared_dir():
    import os
    from pathlib import Path

    d = Path(os.environ.get("TURBSIM_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    if not (d / "ramses" / "ensemble_dev" / "binary64_dev.npz").is_file():
        pytest.skip(f"shared reference data not found in {d}")
    return d
