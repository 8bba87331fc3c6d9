"""learn.transforms: augmentations equal turbsim.observe's, normalisations, targets, resampling, evaluation images."""
import numpy as np
import pytest

from turbsim import observe
from learn import transforms


def _maps(k=2, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(k, n, n)).astype(np.float32)


def test_study_augment_cuts_exactly_the_16_images_of_observe_augment():
    maps = _maps()
    rng = np.random.default_rng(0)
    specs = transforms.image_specs(len(maps), transforms.STUDY_AUGMENT, rng)
    imgs = transforms.cut_images(maps, specs, transforms.STUDY_AUGMENT, rng)
    assert len(imgs) == 32
    for m in range(len(maps)):
        ours = sorted(i.tobytes() for i in imgs[specs[:, 0] == m])
        ref = sorted(i.tobytes() for i in observe.augment(maps[m]))
        assert ours == ref


def test_crop_wraps_around_the_periodic_map_and_rot90_rotates():
    maps = _maps(1, 8)
    specs = np.zeros((1, 5), np.int64)
    rng = np.random.default_rng(3)
    crop = transforms.cut_images(maps, specs, ("crop",), np.random.default_rng(3))[0]
    oy, ox = rng.integers(0, 8, 1)[0], rng.integers(0, 8, 1)[0]
    np.testing.assert_array_equal(crop, np.roll(maps[0], (-oy, -ox), axis=(0, 1))[:4, :4])
    specs[0, 3] = 1
    rot = transforms.cut_images(maps, specs, ("rot90",), rng)[0]
    np.testing.assert_array_equal(rot, np.rot90(maps[0]))


def test_normalisations():
    x = _maps(3, 8) * 2 + 5
    per = transforms.Normaliser("per_image")(x)
    np.testing.assert_allclose(per.mean(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(per.std(axis=(1, 2)), 1, atol=1e-5)
    glob = transforms.fit_normaliser("global", x)
    g = glob(x)
    assert abs(g.mean()) < 1e-5 and abs(g.std() - 1) < 1e-5
    # the global normalisation keeps the differences of level between images
    np.testing.assert_allclose(np.diff(g.mean(axis=(1, 2))), np.diff(x.mean(axis=(1, 2))) / glob.std, rtol=1e-4)
    with pytest.raises(ValueError, match="normalisation"):
        transforms.Normaliser("minmax")


def test_resample_block_mean_and_fourier_keep_the_mean():
    # smooth periodic positive maps (a few low modes, like real column density)
    x = np.arange(16) / 16
    a = np.random.default_rng(1).uniform(-0.1, 0.1, (2, 3))
    cols = 1 + sum(a[:, i, None, None] * np.cos(2 * np.pi * (i + 1) * (x[:, None] + 2 * x[None, :]))
                   for i in range(3))
    for size in (8, 12, 32):
        r = transforms.resample_maps(cols, size)
        assert r.shape == (2, size, size)
        np.testing.assert_allclose(r.mean(axis=(1, 2)), cols.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(transforms.resample_maps(cols, 8)[:, 0, 0], cols[:, :2, :2].mean(axis=(1, 2)), rtol=1e-6)


def test_targets_name_missing_labels():
    with pytest.raises(transforms.DataError, match="class labels"):
        transforms.targets({"klass": np.array([0, -1]), "n": np.array([3.0, 4.0])}, "classify", "x.h5")
    np.testing.assert_array_equal(transforms.targets({"klass": np.array([1, 0], np.int8)}, "classify"), [1, 0])


def test_evaluation_images_are_the_studys_layout():
    # the 48 images of each simulation in observe.study_images' order (simulation, axis, flip,
    # quadrant), normalised; whole maps: the 3 projections
    logm = _maps(2 * 3, 8).reshape(2, 3, 8, 8)
    norm = transforms.Normaliser("global", mean=1.0, std=2.0)
    x, idx = transforms.eval_images(logm, norm)
    ref, ref_idx = observe.study_images(logm)
    assert x.shape == (2 * transforms.IMAGES_PER_SIM, 4, 4)
    np.testing.assert_allclose(x, (ref - 1.0) / 2.0, rtol=1e-6)
    np.testing.assert_array_equal(idx, ref_idx)
    whole, idx = transforms.eval_images(logm, norm, full_maps=True)
    assert whole.shape == (6, 8, 8) and idx.tolist() == [0, 0, 0, 1, 1, 1]


def test_class_constants_follow_the_ensemble_plan():
    from turbsim.ensemble_plan import BURGERS, KOLMOGOROV

    assert transforms.CLASS_N == (KOLMOGOROV, BURGERS)
    assert transforms.CLASS_NAMES == ("kolmogorov", "burgers")

