"""Features of the classical baselines against what they must be for known fields."""
import numpy as np
import pytest

from learn import baselines

S = 128


def _gaussian(rng, m, slope):
    """Periodic Gaussian random fields with power spectrum ~ k^-slope, unit variance."""
    k = np.fft.fftfreq(S) * S
    kk = np.hypot(k[:, None], k[None, :])
    amp = np.where(kk > 0, np.maximum(kk, 1.0) ** (-slope / 2), 0.0)
    f = np.fft.ifft2(np.fft.fft2(rng.normal(size=(m, S, S))) * amp).real
    return f / f.std(axis=(1, 2), keepdims=True)


def _split(feats, n_bins, n_bands):
    q = len(baselines.QUANTILES)
    one = feats[:, n_bins:n_bins + 3 + q]
    multi = feats[:, n_bins + 3 + q:]
    return one, multi[:, :n_bands], multi[:, n_bands:2 * n_bands], multi[:, 2 * n_bands:]


def test_statistics_of_a_gaussian_field():
    # a Gaussian field: no skewness or excess kurtosis, every band-passed field Gaussian
    # (kurtosis 3, mean modulus sigma sqrt(2/pi)), and bands independent (moduli uncorrelated)
    rng = np.random.default_rng(1)
    x = _gaussian(rng, 8, 2.0)
    n_bins, n_bands = 8, 5
    feats = baselines.statistics_features(x, n_bins=n_bins, n_bands=n_bands)
    assert feats.shape == (8, n_bins + 3 + len(baselines.QUANTILES) + 2 * n_bands + n_bands * (n_bands - 1) // 2)
    np.testing.assert_allclose(feats[:, :n_bins], baselines.spectrum_features(x, n_bins))
    one, logamp, logkurt, corr = _split(feats, n_bins, n_bands)
    np.testing.assert_allclose(one[:, 0], 1.0, rtol=1e-12)  # unit standard deviation
    assert np.abs(one[:, 1:3].mean(0)).max() < 0.1
    # band variance by Parseval, from the masks the features use
    f = np.fft.fft2(x)
    bands = baselines.band_masks(S, n_bands)
    var = np.stack([(np.abs(f[:, b]) ** 2).sum(1) for b in bands], 1) / S ** 4
    fine = slice(2, None)  # bands with many modes
    np.testing.assert_allclose(logamp[:, fine], 0.5 * np.log(var[:, fine] * 2 / np.pi), atol=0.03)
    np.testing.assert_allclose(logkurt[:, fine].mean(0), np.log(3.0), atol=0.05)
    assert np.abs(corr.mean(0)[-3:]).max() < 0.03  # pairs of the finest bands


def test_statistics_see_shocks_a_spectrum_misses():
    # sign(g) of a smooth Gaussian field: sharp fronts put power in every band at the same
    # places, so band moduli correlate and bands are intermittent (kurtosis above 3);
    # its phase-randomised copy has the same power spectrum and none of that
    rng = np.random.default_rng(2)
    fronts = np.sign(_gaussian(rng, 4, 4.0))
    f = np.fft.fft2(fronts)
    phases = np.exp(1j * np.angle(np.fft.fft2(rng.normal(size=f.shape))))  # Hermitian: stays real
    random = np.fft.ifft2(np.abs(f) * phases).real
    n_bins, n_bands = 8, 5
    a, b = (baselines.statistics_features(v, n_bins=n_bins, n_bands=n_bands) for v in (fronts, random))
    np.testing.assert_allclose(a[:, :n_bins], b[:, :n_bins], atol=1e-8)  # the same power spectrum
    _, _, ka, ca = _split(a, n_bins, n_bands)
    _, _, kb, cb = _split(b, n_bins, n_bands)
    assert ca[:, -3:].mean() > 0.2 > 10 * abs(cb[:, -3:].mean())
    assert ka[:, 2:].mean() > np.log(3.0) + 0.3 > kb[:, 2:].mean()


def test_statistics_of_a_flat_image_are_finite():
    assert np.isfinite(baselines.statistics_features(np.ones((1, 16, 16)), n_bins=4, n_bands=3)).all()


def test_unknown_baseline_kind_is_named():
    with pytest.raises(ValueError, match="'wavelet'"):
        baselines.features("wavelet", np.zeros((1, 8, 8)))
