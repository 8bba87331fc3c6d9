"""Tests of turbsim.observe: projections conserve mass, flips and cuts tile and invert."""
from __future__ import annotations

import numpy as np
import pytest

from turbsim import observe, units


@pytest.fixture
def cube():
    rng = np.random.default_rng(1)
    return rng.lognormal(size=(8, 8, 8)) * 1e-21  # g/cm^3


def test_column_density_conserves_mass_along_every_axis(cube):
    dx = 3.0e17
    mass = cube.sum() * dx**3
    maps = observe.projections(cube, dx)
    assert maps.shape == (3, 8, 8)
    for a in range(3):
        assert maps[a].sum() * dx**2 == pytest.approx(mass, rel=1e-12)


def test_column_density_keeps_the_other_axes_in_order():
    # rho varies along x only: the map along x is constant, along y/z it is rho(x) N dx.
    n, dx = 6, 2.0
    f = np.arange(1.0, n + 1)
    rho = np.broadcast_to(f[:, None, None], (n, n, n))
    np.testing.assert_allclose(observe.column_density(rho, dx, 0), f.sum() * dx)
    np.testing.assert_allclose(observe.column_density(rho, dx, 1), np.outer(f, np.ones(n)) * n * dx)
    np.testing.assert_allclose(observe.column_density(rho, dx, 2), np.outer(f, np.ones(n)) * n * dx)


def test_column_density_rejects_bad_input(cube):
    with pytest.raises(ValueError, match="axis"):
        observe.column_density(cube, 1.0, 3)
    with pytest.raises(ValueError, match="dx_cm"):
        observe.column_density(cube, -1.0, 0)
    with pytest.raises(ValueError, match="3D"):
        observe.column_density(cube[0], 1.0, 0)


def test_h2_column_uses_mu_2p8_per_molecule():
    sigma = np.array([1.0, 2.0])  # g/cm^2
    n_h2 = observe.h2_column(sigma)
    np.testing.assert_allclose(n_h2 * 2.8 * units.M_H, sigma, rtol=1e-14)
    assert n_h2[0] == pytest.approx(2.1509e23, rel=1e-4)  # 1 / (2.8 * 1.660539e-24)


def test_log_column():
    x = np.array([1e-3, 1.0, 1e2], np.float32)
    out = observe.log_column(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-3, 0, 2], atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        observe.log_column(np.array([1.0, 0.0]))
    np.testing.assert_allclose(observe.log_column(np.array([0.0, 10.0]), floor=1e-5), [-5, 1])


def test_flips_are_the_four_reflections():
    m = np.arange(12.0).reshape(3, 4)
    f = observe.flips(m)
    assert f.shape == (4, 3, 4)
    np.testing.assert_array_equal(f[0], m)
    np.testing.assert_array_equal(f[1], np.flipud(m))
    np.testing.assert_array_equal(f[2], np.fliplr(m))
    np.testing.assert_array_equal(f[3], np.rot90(m, 2))
    # each variant is an involution and the four are distinct
    for v in range(4):
        np.testing.assert_array_equal(observe.flips(f[v])[v], m)
    assert len({f[v].tobytes() for v in range(4)}) == 4


def test_quadrants_tile_the_map_once():
    m = np.arange(36.0).reshape(6, 6)
    q = observe.quadrants(m)
    assert q.shape == (4, 3, 3)
    np.testing.assert_array_equal(np.block([[q[0], q[1]], [q[2], q[3]]]), m)
    assert sorted(q.ravel()) == sorted(m.ravel())
    with pytest.raises(ValueError, match="even"):
        observe.quadrants(np.zeros((5, 4)))


def test_augment_is_quadrants_of_flips_on_stacks():
    rng = np.random.default_rng(0)
    stack = rng.random((2, 3, 8, 8))
    a = observe.augment(stack)
    assert a.shape == (2, 3, 16, 4, 4)
    for f in range(4):
        for q in range(4):
            np.testing.assert_array_equal(a[1, 2, 4 * f + q], observe.quadrants(observe.flips(stack[1, 2])[f])[q])
    # every pixel of every flip appears exactly once among its 4 quadrants: sums agree
    np.testing.assert_allclose(a.reshape(2, 3, 4, -1).sum(-1), stack.sum((-1, -2))[..., None] * np.ones(4))


def test_save_png_colours_and_atomicity(tmp_path):
    import matplotlib
    import matplotlib.image

    m = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    p = observe.save_png(m, tmp_path / "map.png", cmap="magma")
    img = matplotlib.image.imread(p)
    assert img.shape[:2] == (3, 4)
    cmap = matplotlib.colormaps["magma"]
    np.testing.assert_allclose(img[0, 0, :3], cmap(0.0)[:3], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(img[-1, -1, :3], cmap(1.0)[:3], atol=1 / 255 + 1e-6)
    pb = observe.save_png(m, tmp_path / "bar.png", colorbar=True, label="log10 Sigma [g/cm^2]")
    assert matplotlib.image.imread(pb).shape[1] > 100  # a figure, not one pixel per cell
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bar.png", "map.png"]  # no temporaries
    with pytest.raises(ValueError, match="non-finite"):
        observe.save_png(np.array([[np.nan, 1.0]]), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
