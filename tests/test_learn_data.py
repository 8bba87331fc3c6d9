"""learn.data: augmentations equal turbsim.observe's, normalisations, streaming, resampling."""
import numpy as np
import pytest

from turbsim import observe
from learn import data as ldata


def _maps(k=2, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(k, n, n)).astype(np.float32)


def test_study_augment_cuts_exactly_the_16_images_of_observe_augment():
    maps = _maps()
    rng = np.random.default_rng(0)
    specs = ldata.image_specs(len(maps), ldata.STUDY_AUGMENT, rng)
    imgs = ldata.cut_images(maps, specs, ldata.STUDY_AUGMENT, rng)
    assert len(imgs) == 32
    for m in range(len(maps)):
        ours = sorted(i.tobytes() for i in imgs[specs[:, 0] == m])
        ref = sorted(i.tobytes() for i in observe.augment(maps[m]))
        assert ours == ref


def test_crop_wraps_around_the_periodic_map_and_rot90_rotates():
    maps = _maps(1, 8)
    specs = np.zeros((1, 5), np.int64)
    rng = np.random.default_rng(3)
    crop = ldata.cut_images(maps, specs, ("crop",), np.random.default_rng(3))[0]
    oy, ox = rng.integers(0, 8, 1)[0], rng.integers(0, 8, 1)[0]
    np.testing.assert_array_equal(crop, np.roll(maps[0], (-oy, -ox), axis=(0, 1))[:4, :4])
    specs[0, 3] = 1
    rot = ldata.cut_images(maps, specs, ("rot90",), rng)[0]
    np.testing.assert_array_equal(rot, np.rot90(maps[0]))


def test_normalisations():
    x = _maps(3, 8) * 2 + 5
    per = ldata.Normaliser("per_image")(x)
    np.testing.assert_allclose(per.mean(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(per.std(axis=(1, 2)), 1, atol=1e-5)
    glob = ldata.fit_normaliser("global", x)
    g = glob(x)
    assert abs(g.mean()) < 1e-5 and abs(g.std() - 1) < 1e-5
    # the global normalisation keeps the differences of level between images
    np.testing.assert_allclose(np.diff(g.mean(axis=(1, 2))), np.diff(x.mean(axis=(1, 2))) / glob.std, rtol=1e-4)
    with pytest.raises(ValueError, match="normalisation"):
        ldata.Normaliser("minmax")


def test_resample_block_mean_and_fourier_keep_the_mean():
    # smooth periodic positive maps (a few low modes, like real column density)
    x = np.arange(16) / 16
    a = np.random.default_rng(1).uniform(-0.1, 0.1, (2, 3))
    cols = 1 + sum(a[:, i, None, None] * np.cos(2 * np.pi * (i + 1) * (x[:, None] + 2 * x[None, :]))
                   for i in range(3))
    for size in (8, 12, 32):
        r = ldata.resample_maps(cols, size)
        assert r.shape == (2, size, size)
        np.testing.assert_allclose(r.mean(axis=(1, 2)), cols.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(ldata.resample_maps(cols, 8)[:, 0, 0], cols[:, :2, :2].mean(axis=(1, 2)), rtol=1e-6)


def test_epoch_batches_cover_every_image_once_in_a_seeded_order():
    logm = _maps(4 * 3, 8).reshape(4, 3, 8, 8)
    src = ldata.InMemorySource(logm, np.arange(4))
    kw = dict(seed=1, batch_size=8, steps_per_call=2, augment=ldata.STUDY_AUGMENT, normaliser=ldata.Normaliser())
    a = list(ldata.epoch_batches(src, 0, **kw))
    assert len(a) == ldata.calls_per_epoch(4, ldata.STUDY_AUGMENT, 8, 2) == 12
    xs = np.concatenate([x.reshape(-1, 4, 4) for x, _ in a])
    ref = observe.augment(logm).reshape(-1, 4, 4)
    assert sorted(i.tobytes() for i in xs) == sorted(i.tobytes() for i in ref)
    b = list(ldata.epoch_batches(src, 0, **kw))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    c = list(ldata.epoch_batches(src, 1, **kw))
    assert not np.array_equal(a[0][0], c[0][0])


def test_prefetch_passes_items_and_errors():
    assert list(ldata.prefetch(iter(range(5)))) == list(range(5))

    def bad():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        list(ldata.prefetch(bad()))


def test_targets_name_missing_labels():
    with pytest.raises(ldata.DataError, match="class labels"):
        ldata.targets({"klass": np.array([0, -1]), "n": np.array([3.0, 4.0])}, "classify", "x.h5")
    np.testing.assert_array_equal(ldata.targets({"klass": np.array([1, 0], np.int8)}, "classify"), [1, 0])


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
