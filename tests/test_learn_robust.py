"""Tests of learn.robust (cross-resolution matrix, zoom curve, class spectra), the zoom augmentation,
the low-pass, merged ensembles of mixed resolutions and learn.fit with several --data and --robust."""
import json
import os

import numpy as np
import pytest

from learn import transforms

pytest.importorskip("flax")


# ------------------------------------------------------------------ transforms
def test_zoom_augmentation_shapes_and_constant_maps():
    rng = np.random.default_rng(0)
    maps = np.full((2, 16, 16), 3.0, np.float32)
    specs = transforms.image_specs(2, ("flip", "crop", "rot90", "zoom"), rng)
    out = transforms.cut_images(maps, specs, ("flip", "crop", "rot90", "zoom"), rng)
    assert out.shape == (len(specs), 8, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, 3.0, rtol=1e-6)


def test_zoom_windows_factor_one_is_the_crop_and_two_is_the_block_mean():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((1, 16, 16)).astype(np.float32)
    one = transforms.zoom_windows(m, np.array([0]), np.array([3]), np.array([5]), 8, 8)
    np.testing.assert_array_equal(one[0], np.roll(m[0], (-3, -5), axis=(0, 1))[:8, :8])
    two = transforms.zoom_windows(m, np.array([0]), np.array([0]), np.array([0]), 16, 8)
    np.testing.assert_allclose(two[0], m[0].reshape(8, 2, 8, 2).mean(axis=(1, 3)), rtol=1e-6)


def test_zoom_refused_with_circular_padding():
    from learn.config import TrainConfig

    with pytest.raises(ValueError, match="zoom"):
        TrainConfig(data="x.h5", model="pyramid", padding="circular", augment=("flip", "zoom"))


def test_lowpass_is_idempotent_and_keeps_the_mean():
    rng = np.random.default_rng(2)
    m = 1 + 0.05 * rng.standard_normal((2, 32, 32))
    a = transforms.lowpass_maps(m, 5)
    np.testing.assert_allclose(transforms.lowpass_maps(a, 5), a, rtol=1e-5)
    np.testing.assert_allclose(a.mean(axis=(1, 2)), m.mean(axis=(1, 2)), rtol=1e-6)
    norm = transforms.Normaliser("per_image", lowpass_k=5.0)
    assert transforms.Normaliser(**norm.to_dict()) == norm
    x1, _ = transforms.eval_set(m[:, None].repeat(3, 1), norm, 16)
    x2, _ = transforms.eval_set(np.asarray(a)[:, None].repeat(3, 1), norm, 16)
    np.testing.assert_allclose(x1, x2, atol=1e-4)


# ------------------------------------------------------------------ merged ensembles
def test_merge_mixed_resolutions(tmp_path, tiny_binary, tiny_binary32):
    from learn.data import file_lowpass, load_split, merge_ensembles, open_train_data

    out = merge_ensembles([tiny_binary, tiny_binary32], tmp_path / "m.h5", lowpass_k=4)
    test = load_split(out, "test")
    assert test.maps.shape == (12, 3, 16, 16)
    assert (test.labels["sim_id"] >= 1_000_000).sum() == 6  # the 32^3 file's, offset
    assert file_lowpass(out) == 4.0
    td = open_train_data(out, task="classify", augment=("flip", "crop"), normalisation="per_image",
                         memory_budget_mb=100)
    assert td.n_train == 24 and td.map_size == 16 and td.normaliser.lowpass_k == 4.0
    assert merge_ensembles([tiny_binary, tiny_binary32], out, lowpass_k=4) == out  # reused
    with pytest.raises(transforms.DataError, match="lowpass_k = 9"):
        merge_ensembles([tiny_binary], tmp_path / "n.h5", lowpass_k=9)


# ------------------------------------------------------------------ measurements
def test_spectra_find_the_coarse_grid_dissipation(tiny_binary, tiny_binary32):
    from learn.robust import class_spectra, radial_log_power

    x = np.random.default_rng(0).standard_normal((2, 16, 16))
    assert radial_log_power(x).shape == (2, 8)
    spec = class_spectra([tiny_binary32, tiny_binary])
    sizes = [d["map_size"] for d in spec["files"]]
    assert sizes == [16, 32] and spec["files"][1]["k_diss"] is None
    assert 0 <= spec["shared"] <= 1 and spec["files"][0]["mean"].shape == (2, 8)


def test_robust_cli_matrix_zoom_section(tmp_path, tiny_run, tiny_binary, tiny_binary32, capsys):
    from learn.robust import main
    from learn.sections import read_sections

    out = tmp_path / "an"
    assert main([str(tiny_run), "--data", str(tiny_binary), str(tiny_binary32), "--zoom", "0.5", "1", "2",
                 "--out", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got["matrix"]) == 2 and {r["map_size"] for r in got["matrix"]} == {16, 32}
    rows = next(iter(got["zoom"].values()))
    assert [r["zoom"] for r in rows] == [0.5, 1.0, 2.0] and all(0 <= r["accuracy_sim"] <= 1 for r in rows)
    sec = read_sections(out)["robust"]
    assert {f.file for f in sec.figures} == {"zoom.png", "spectra.png"} and "Dissipation" in sec.text
    with pytest.raises(SystemExit) as e:
        main([str(tiny_run), "--data", str(tmp_path / "missing.h5")])
    assert e.value.code == 2


def test_zoom_one_matches_the_evaluation_images(tiny_run, tiny_binary):
    """At zoom 1 the zoom curve's windows are the study's quadrants (unflipped): the same scores."""
    from learn.data import load_split
    from learn.robust import score_maps, zoom_curve
    from learn.rundir import load_run

    run = load_run(tiny_run)
    ms = load_split(tiny_binary, "test")
    z1 = zoom_curve(run, ms, (1.0,))[0]
    ref = score_maps(run, ms)
    assert z1["accuracy_sim"] == pytest.approx(ref["accuracy_sim"], abs=0.34)
    assert z1["n_images"] == 6 * 12


# ------------------------------------------------------------------ learn.fit with several --data and --robust
def test_fit_several_data_robust(tmp_path, tiny_binary, tiny_binary32, capsys):
    from learn.fit import main

    out = tmp_path / "r"
    assert main(["--data", os.fspath(tiny_binary), os.fspath(tiny_binary32), "--robust", "--epochs", "1",
                 "--pyramid-widths", "4", "8", "--pyramid-hidden", "8", "--batch-size", "32", "--lowpass-k", "6",
                 "--out", os.fspath(out), "--json", "--no-progress"]) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["augment"] == ["flip", "crop", "rot90", "zoom"]
    assert info["config"]["normalisation"] == "per_image" and info["config"]["data"].endswith("merged.h5")
    assert info["normaliser"]["lowpass_k"] == 6.0 and info["data"]["map_size"] == 16
