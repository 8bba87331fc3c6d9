"""Tests of turbsim.spectra against analytic cases (single modes, Parseval, power laws)."""
import itertools

import numpy as np
import pytest

from turbsim.spectra import fit_slope, power_spectrum, spectral_curl, spectral_divergence


def _grid(n, d):
    """Cell coordinates i / n (box = 1) as d broadcastable axes."""
    x = np.arange(n) / n
    return [x.reshape([-1 if a == axis else 1 for a in range(d)]) for axis in range(d)]


def _shell_members(n, d, shell):
    """Brute force: integer wavevectors of an n^d grid with shell - 1/2 <= |k| < shell + 1/2."""
    ks = np.fft.fftfreq(n) * n
    return [k for k in itertools.product(ks, repeat=d)
            if shell - 0.5 <= np.sqrt(np.dot(k, k)) < shell + 0.5]


@pytest.mark.parametrize("d,n,wave", [(3, 16, (3, 4, 0)), (3, 16, (1, 2, 2)), (3, 15, (2, 1, 6)),
                                      (2, 16, (0, 5)), (2, 12, (3, 4))])
def test_single_mode_lands_in_its_shell(d, n, wave):
    amp = 1.7
    x = _grid(n, d)
    f = amp * np.sin(2 * np.pi * sum(k * xi for k, xi in zip(wave, x))) * np.ones((n,) * d)
    kmag = np.sqrt(np.dot(wave, wave))
    shell = int(np.floor(kmag + 0.5))
    k, e = power_spectrum(f, kind="shell")
    # mean square of a sine of amplitude A is A^2/2, all of it in the one shell
    assert k[shell] == shell
    assert e[shell] == pytest.approx(amp ** 2 / 2, rel=1e-12)
    assert np.delete(e, shell).max() < 1e-25
    # per-mode average: the power sits in 2 of the shell's modes
    _, p = power_spectrum(f, kind="mode")
    assert p[shell] == pytest.approx(amp ** 2 / 2 / len(_shell_members(n, d, shell)), rel=1e-12)
    # mean-|k| abscissa of that shell, by brute force
    mean_k = np.mean([np.sqrt(np.dot(m, m)) for m in _shell_members(n, d, shell)])
    assert power_spectrum(f, centres="mean")[0][shell] == pytest.approx(mean_k, rel=1e-12)


def test_nyquist_mode_counts_once():
    n = 8
    x, _, _ = _grid(n, 3)
    f = np.cos(np.pi * n * x) * np.ones((n, n, n))  # alternating +-1 along x: k = (N/2, 0, 0)
    for field in (f, f.transpose(1, 2, 0)):  # along the first and along the rfft (last) axis
        _, e = power_spectrum(field, kind="shell")
        assert e[n // 2] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("shape,vector", [((3, 16, 16, 16), None), ((12, 10, 9), False),
                                          ((2, 20, 21), True), ((17, 16), None)])
def test_parseval(shape, vector):
    f = np.random.default_rng(0).standard_normal(shape) + 0.3
    comps = f if (vector or f.ndim == 4) else f[np.newaxis]
    spatial = tuple(range(1, comps.ndim))
    _, e = power_spectrum(f, kind="shell", vector=vector)
    assert e.sum() == pytest.approx(np.mean(np.sum(comps ** 2, axis=0)), rel=1e-12)
    assert e[0] == pytest.approx(np.sum(comps.mean(axis=spatial) ** 2), rel=1e-12)


def test_mode_average_is_shell_sum_over_mode_count():
    n = 10
    f = np.random.default_rng(1).standard_normal((3, n, n, n))
    _, e = power_spectrum(f, kind="shell")
    _, p = power_spectrum(f, kind="mode")
    for shell in (1, 2, 5):
        assert p[shell] == pytest.approx(e[shell] / len(_shell_members(n, 3, shell)), rel=1e-12)


def test_vector_power_is_sum_of_components():
    f = np.random.default_rng(2).standard_normal((3, 8, 8, 8))
    _, total = power_spectrum(f)
    parts = sum(power_spectrum(c)[1] for c in f)
    np.testing.assert_allclose(total, parts, rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        power_spectrum(np.zeros((4, 4)), kind="band")
    with pytest.raises(ValueError, match="centres"):
        power_spectrum(np.zeros((4, 4)), centres="median")
    with pytest.raises(ValueError, match="spatial axes"):
        power_spectrum(np.zeros(8))
    with pytest.raises(ValueError, match="real"):
        power_spectrum(np.zeros((4, 4), dtype=complex))
    with pytest.raises(ValueError, match="usable points"):
        fit_slope(np.arange(5.0), np.ones(5), 10, 20)
    with pytest.raises(ValueError, match="vector field"):
        spectral_divergence(np.zeros((3, 4, 4)))


def test_fit_slope_exact_power_law_and_ignores_bad_points():
    k = np.arange(0.0, 40.0)
    p = np.full_like(k, np.inf)  # k = 0 must be dropped whatever p is there
    p[1:] = 3e-5 * k[1:] ** -1.9
    p[7] = np.nan
    p[9] = 0.0
    assert fit_slope(k, p, 2, 30) == pytest.approx(-1.9, abs=1e-12)
    assert fit_slope(k, p, 0, 40) == pytest.approx(-1.9, abs=1e-12)  # k = 0 dropped


def _potential_flows(n):
    """(gradient field, curl field) of random smooth potentials on an n^3 grid, spectrally."""
    rng = np.random.default_rng(3)
    k = np.fft.fftfreq(n) * n
    k[n // 2] = 0.0  # no Nyquist content
    kv = np.meshgrid(k, k, k, indexing="ij")
    phi = np.fft.fftn(rng.standard_normal((n, n, n)))
    grad = np.stack([np.fft.ifftn(1j * ki * phi).real for ki in kv])
    a = [np.fft.fftn(rng.standard_normal((n, n, n))) for _ in range(3)]
    curl = np.stack([np.fft.ifftn(1j * (kv[(i + 1) % 3] * a[(i + 2) % 3] - kv[(i + 2) % 3] * a[(i + 1) % 3])).real
                     for i in range(3)])
    return grad, curl


def test_divergence_and_curl_of_potential_flows():
    grad, curl = _potential_flows(16)
    assert spectral_curl(grad) < 1e-13
    assert spectral_divergence(grad) == pytest.approx(1.0, abs=1e-13)
    assert spectral_divergence(curl) < 1e-13
    assert spectral_curl(curl) == pytest.approx(1.0, abs=1e-13)
    mix = grad + curl
    assert spectral_divergence(mix) ** 2 + spectral_curl(mix) ** 2 == pytest.approx(1.0, abs=1e-12)
    assert 0.1 < spectral_divergence(mix) < 0.9
    assert spectral_divergence(np.ones((3, 8, 8, 8))) == 0.0


def test_divergence_2d():
    x, y = _grid(16, 2)
    s = np.sin(2 * np.pi * (x + 2 * y))
    # v = (2 s, -s) is perpendicular to k = (1, 2): divergence-free; v = (s, 2 s) parallel
    assert spectral_divergence(np.stack([2 * s, -s])) < 1e-15
    assert spectral_curl(np.stack([s, 2 * s])) < 1e-15
