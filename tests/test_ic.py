"""Tests of turbsim.ic: Helmholtz content, normalisation, spectrum, determinism, shared modes
across resolutions, and bit-for-bit reproduction of the shared RAMSES initial conditions."""
import numpy as np
import pytest

import turbsim.ic
from turbsim.config import SimConfig
from turbsim.ic import initial_conditions, velocity_field
from turbsim.spectra import fit_slope, power_spectrum, spectral_curl, spectral_divergence

KOLMOGOROV = 11.0 / 3.0


def _rms(v):
    return np.sqrt(np.mean(np.sum(v.astype(np.float64) ** 2, axis=0)))


# -- Helmholtz content --------------------------------------------------------------------
@pytest.mark.parametrize("cells", [32, 48, 33])
def test_solenoidal_field_is_divergence_free(cells):
    v = velocity_field(cells, KOLMOGOROV, seed=4)
    assert spectral_divergence(v) <= 1e-10


def test_compressive_field_is_curl_free():
    v = velocity_field(32, 4.0, seed=4, solenoidal=0.0)
    assert spectral_curl(v) <= 1e-10


@pytest.mark.parametrize("zeta", [0.25, 0.5, 0.75])
def test_solenoidal_fraction_mixture(zeta):
    # isotropic noise has 2 solenoidal and 1 compressive degree of freedom per mode, weighted
    # by zeta^2 and (1 - zeta)^2: the divergence carries (1-zeta)^2 / (2 zeta^2 + (1-zeta)^2)
    expected = (1 - zeta) ** 2 / (2 * zeta ** 2 + (1 - zeta) ** 2)
    v = velocity_field(32, KOLMOGOROV, seed=11, solenoidal=zeta)
    assert spectral_divergence(v) ** 2 == pytest.approx(expected, abs=0.03)


def test_white_noise_field_is_divergence_free_off_nyquist():
    v = velocity_field(32, KOLMOGOROV, seed=4, method="white_noise")
    assert spectral_divergence(v) <= 1e-10


# -- normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["fourier", "white_noise"])
def test_rms_mach_and_zero_mean(method):
    v = velocity_field(32, 4.0, seed=2, mach=1.41, method=method)
    assert v.shape == (3, 32, 32, 32) and v.dtype == np.float64
    assert _rms(v) == pytest.approx(1.41, rel=1e-12)
    assert np.abs(v.mean(axis=(1, 2, 3))).max() <= 1e-15 * 1.41
    v32 = velocity_field(32, 4.0, seed=2, mach=1.41, method=method, dtype=np.float32)
    assert v32.dtype == np.float32
    assert _rms(v32) == pytest.approx(1.41, rel=1e-6)
    np.testing.assert_array_equal(v32, v.astype(np.float32))


def test_velocity_scales_linearly_with_mach():
    np.testing.assert_allclose(velocity_field(16, 4.0, 1, mach=2.5),
                               2.5 * velocity_field(16, 4.0, 1), rtol=1e-14, atol=1e-15)
    assert not velocity_field(16, 4.0, 1, mach=0.0).any()


# -- spectrum -----------------------------------------------------------------------------
@pytest.mark.parametrize("n,seed", [(KOLMOGOROV, 21), (4.0, 22)])
def test_per_mode_spectrum_slope(n, seed):
    cells = 128
    v = velocity_field(cells, n, seed)
    # mean |k| of each shell as abscissa: integer centres bias steep slopes flat (see
    # power_spectrum's docstring); fit over the resolved range 2 <= k <= N/4
    k, p = power_spectrum(v, kind="mode", centres="mean")
    assert fit_slope(k, p, 2, cells / 4) == pytest.approx(-n, abs=0.1)
    k, e = power_spectrum(v, kind="shell", centres="mean")
    assert fit_slope(k, e, 2, cells / 4) == pytest.approx(2 - n, abs=0.1)


# -- determinism and shared modes ---------------------------------------------------------
@pytest.mark.parametrize("method", ["fourier", "white_noise"])
def test_deterministic_in_seed(method):
    a = velocity_field(16, KOLMOGOROV, 5, method=method)
    np.testing.assert_array_equal(a, velocity_field(16, KOLMOGOROV, 5, method=method))
    b = velocity_field(16, KOLMOGOROV, 6, method=method)
    assert np.abs(a - b).max() > 0.1


def test_seed_sequence_input_matches_int_and_is_not_mutated():
    root = np.random.SeedSequence(5)
    np.testing.assert_array_equal(velocity_field(16, 4.0, root), velocity_field(16, 4.0, 5))
    assert root.n_children_spawned == 0


def _common_coefficients(v, kmax):
    """Fourier coefficients (normalised by N^3) of the modes with |k_i| <= kmax, kz >= 0,
    referred to the box origin (the field is sampled at cell centres (i + 1/2) / N)."""
    cells = v.shape[1]
    k = np.arange(-kmax, kmax + 1)
    kz = np.arange(kmax + 1)
    f = np.fft.rfftn(v, axes=(1, 2, 3))[:, k % cells][:, :, k % cells][..., kz] / cells ** 3
    shift = np.exp(-1j * np.pi / cells * (k[:, None, None] + k[None, :, None] + kz))
    return f * shift


@pytest.mark.parametrize("coarse,fine", [(64, 128), (48, 64), (33, 64)])
def test_resolutions_share_their_common_modes(coarse, fine):
    mach = 1.3
    kmax = (coarse - 1) // 2
    a = _common_coefficients(velocity_field(coarse, KOLMOGOROV, 8, mach=mach), kmax)
    b = _common_coefficients(velocity_field(fine, KOLMOGOROV, 8, mach=mach), kmax)
    # The coarse grid holds exactly the common modes, so its field is the fine field
    # low-passed to them and rescaled to rms `mach`. The factor follows from Parseval: the
    # common modes of the fine field carry mean square sum w |b|^2 (w = 2 for kz > 0,
    # the conjugate half), the coarse field mach^2.
    weight = np.where(np.arange(kmax + 1) > 0, 2.0, 1.0)
    factor = mach / np.sqrt(np.sum(weight * np.abs(b) ** 2))
    assert factor > 1.0  # the fine field spreads the same rms over more modes
    assert np.abs(a - factor * b).max() <= 1e-12 * np.abs(a).max()


def test_draws_do_not_depend_on_the_block_size(monkeypatch):
    # the modes are computed in cache-sized blocks; the random stream must not see them
    # (a misplaced draw changes the field by O(1); the blocks may only move the last bits,
    # as vectorised and scalar loops round differently)
    reference = velocity_field(24, KOLMOGOROV, 9, solenoidal=0.7)
    for block in (1, 37, 1 << 20):
        monkeypatch.setattr(turbsim.ic, "_BLOCK", block)
        v = velocity_field(24, KOLMOGOROV, 9, solenoidal=0.7)
        assert np.abs(v - reference).max() <= 1e-13 * np.abs(reference).max(), block


def _modes(v):
    """rfftn coefficients of v, the integer wavevector of each, and the mask of the modes
    that should carry power (k != 0, no Nyquist component)."""
    cells = v.shape[1]
    f = np.fft.rfftn(v, axes=(1, 2, 3))
    k = np.meshgrid(np.fft.fftfreq(cells, 1 / cells), np.fft.fftfreq(cells, 1 / cells),
                    np.fft.rfftfreq(cells, 1 / cells), indexing="ij")
    live = (np.abs(np.stack(k)) < cells / 2).all(axis=0) & (sum(c ** 2 for c in k) > 0)
    return f, np.stack(k), live


@pytest.mark.parametrize("zeta", [1.0, 0.0])
def test_every_mode_carries_power_with_equal_variance(zeta):
    # every mode below Nyquist has power (the kz axis, where the transverse basis is
    # special, included), and the kz = 0 plane (built from two draws) has the same
    # per-mode variance as the rest: <|v_k|^2 |k|^n> agrees to its sampling error (~2 %)
    n = 4.0
    f, k, live = _modes(velocity_field(64, n, 13, solenoidal=zeta))
    power = np.sum(np.abs(f) ** 2, axis=0)
    floor = 1e-20 * power.max()  # far above the FFT's rounding, far below any drawn mode
    assert (power[live] > floor).all()
    assert (power[~live] < floor).all()
    assert (power[0, 0, 1:32] > floor).all()  # the kz axis
    scaled = power * np.sum(k ** 2, axis=0) ** (n / 2)
    plane, rest = scaled[..., 0][live[..., 0]], scaled[..., 1:][live[..., 1:]]
    assert plane.mean() / rest.mean() == pytest.approx(1.0, abs=0.08)


def test_mixture_shares_the_solenoidal_part():
    # the solenoidal and compressive parts come from separate streams: the solenoidal
    # projection of a mixture is the pure solenoidal field of the same seed, rescaled
    mix, k, live = _modes(velocity_field(32, KOLMOGOROV, 3, solenoidal=0.5))
    pure, _, _ = _modes(velocity_field(32, KOLMOGOROV, 3, solenoidal=1.0))
    k2 = np.where(live, np.sum(k ** 2, axis=0), 1.0)
    perp = mix - k * np.sum(k * mix, axis=0) / k2
    ratio = np.sum(np.abs(perp) ** 2) / np.sum(np.abs(pure) ** 2)
    assert 0.0 < ratio < 1.0
    assert np.abs(perp - np.sqrt(ratio) * pure).max() <= 1e-12 * np.abs(pure).max()


# -- reproduction of the shared RAMSES initial conditions ---------------------------------
@pytest.mark.parametrize("case", ["kolmo64", "burgers64", "amr"])
def test_white_noise_reproduces_shared_ramses_ic(case, shared):
    # `shared` (conftest) skips when the shared reference data are absent
    path = shared / "ramses" / case / f"ic_{case}.npz"
    if not path.is_file():
        pytest.skip(f"shared reference file not found: {path}")
    with np.load(path) as ic:
        v = velocity_field(int(ic["N"]), float(ic["n"]), int(ic["seed"]), mach=float(ic["mach"]),
                           method="white_noise")
        code = (v * float(ic["cs_code"])).astype(np.float32)
        for c, name in enumerate(("vx", "vy", "vz")):
            np.testing.assert_array_equal(code[c], ic[name], err_msg=f"{case}: {name}")


# -- config entry point and argument checks -----------------------------------------------
def test_initial_conditions_follow_config():
    config = SimConfig(cells=16, seed=3, mach=2.0, n=4.0, solenoidal=0.5, ic="white_noise",
                       dtype="float32")
    rho, velocity = initial_conditions(config)
    assert rho.shape == (16, 16, 16) and rho.dtype == np.float32 and (rho == 1).all()
    np.testing.assert_array_equal(
        velocity, velocity_field(16, 4.0, 3, mach=2.0, solenoidal=0.5, method="white_noise",
                                 dtype=np.float32))


@pytest.mark.parametrize("kwargs,match", [
    (dict(cells=3), "cells"), (dict(cells=16.0), "cells"), (dict(n=np.nan), "spectral index"),
    (dict(seed=-1), "seed"), (dict(solenoidal=1.5), "solenoidal"), (dict(mach=-1.0), "mach"),
    (dict(method="gaussian"), "method"), (dict(dtype=np.int32), "dtype"),
    (dict(dtype="double-ish"), "dtype"), (dict(dtype=None), "dtype"), (dict(seed=-1, method="white_noise"), "seed"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    args = dict(cells=8, n=4.0, seed=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        velocity_field(args.pop("cells"), args.pop("n"), args.pop("seed"), **args)
