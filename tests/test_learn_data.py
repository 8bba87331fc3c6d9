"""learn.data: RAMSES map files load with their classes (names or integers); bad files are named."""
import logging

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


def _npz(path, klass=None, **arrays):
    cols = np.random.default_rng(0).uniform(0.5, 2.0, size=(4, 3, 8, 8)).astype(np.float32)
    kw = {"columns": cols, "n": np.array([11 / 3, 4.0, 11 / 3, 4.0]), **arrays}
    if klass is not None:
        kw["klass"] = klass
    np.savez(path, **kw)
    return path


@pytest.mark.parametrize("klass", [np.array([0, 1, 0, 1]), np.array([0, 1, 0, 1], np.int8),
                                   np.array(["kolmogorov", "burgers", "kolmogorov", "burgers"]),
                                   np.array([b"kolmogorov", b"burgers", b"kolmogorov", b"burgers"])])
def test_class_labels_are_names_or_integers(tmp_path, klass, caplog):
    with caplog.at_level(logging.WARNING):
        ms = ldata.load_split(_npz(tmp_path / "m.npz", klass), "test")
    assert ms.labels["klass"].tolist() == [0, 1, 0, 1] and not caplog.records


def test_labels_that_are_no_classes_are_said_not_reinterpreted(tmp_path, caplog):
    # no klass: no classes (the sweep experiment), silently as documented
    assert ldata.load_split(_npz(tmp_path / "none.npz"), "test").labels["klass"].tolist() == [-1] * 4
    # -1 is "none"; other integers are refused, naming them
    got = ldata.load_split(_npz(tmp_path / "m1.npz", np.array([0, -1, 1, -1])), "test")
    assert got.labels["klass"].tolist() == [0, -1, 1, -1]
    with pytest.raises(ldata.DataError, match=r"m2.npz: integer klass values must be 0 .kolmogorov., 1 .burgers. "
                                              r"or -1 .none., got \[2, 3\]"):
        ldata.load_split(_npz(tmp_path / "m2.npz", np.array([0, 1, 2, 3])), "test")
    with pytest.raises(ldata.DataError, match="klass must hold class names or integers 0/1, got dtype float64"):
        ldata.load_split(_npz(tmp_path / "m3.npz", np.array([0.0, 1.0, 0.0, 1.0])), "test")
    with pytest.raises(ldata.DataError, match="klass has 3 entries for 4 simulations"):
        ldata.load_split(_npz(tmp_path / "m4.npz", np.array([0, 1, 0])), "test")
    # unknown names: no class, and a warning naming them
    with caplog.at_level(logging.WARNING, logger="learn.data"):
        got = ldata.load_split(_npz(tmp_path / "m5.npz", np.array(["kolmogorov", "K41", "burgers", ""])), "test")
    assert got.labels["klass"].tolist() == [0, -1, 1, -1]
    assert "m5.npz: klass names ['K41'] are not kolmogorov or burgers" in caplog.text


def test_map_files_with_bad_maps_are_named(tmp_path):
    cols = np.ones((2, 3, 4, 4), np.float32)
    cols[1, 0, 1, 1] = 0.0
    cols[1, 0, 2, 2] = -1.0
    np.savez(tmp_path / "zero.npz", columns=cols, n=np.ones(2))
    with pytest.raises(ldata.DataError, match=r"zero.npz: simulation 1 has column densities that are not finite "
                                              r"and positive \(2 zero or negative pixels in its x projection\)"):
        ldata.load_split(tmp_path / "zero.npz", "test")
    np.savez(tmp_path / "short.npz", columns=cols)
    with pytest.raises(ldata.DataError, match=r"short.npz: map file lacks array\(s\) \['n'\]"):
        ldata.load_split(tmp_path / "short.npz", "test")
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ldata.DataError, match="pickle.npz: not a numpy .npz archive"):
        ldata.load_split(tmp_path / "pickle.npz", "test")
