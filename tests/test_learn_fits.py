"""Tests of learn.fits (FITS maps, units, WCS, tiles) and learn.sky / python -m learn.predict on FITS.

The synthetic FITS maps are turbsim projections with known n (the tiny ensemble's test
split, n = 2 and n = 5), tiled 2 x 2 (the box is periodic) into 20 pc maps of 32 pixels.
"""
import json

import numpy as np
import pytest

pytest.importorskip("astropy")
from astropy.io import fits  # noqa: E402

from learn import fits as lfits  # noqa: E402
from learn.transforms import DataError  # noqa: E402

PIX = 10 / 16  # the tiny ensemble's pixel [pc]
DIST = 140.0  # [pc]


def write_fits(path, data, *, bunit="g/cm2", wcs_deg=None, mask=None):
    """A FITS map; ``wcs_deg`` the pixel side [deg] of a TAN WCS (None: no WCS)."""
    h = fits.Header()
    if bunit is not None:
        h["BUNIT"] = bunit
    if wcs_deg is not None:
        ny, nx = data.shape
        for k, v in (("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CUNIT1", "deg"), ("CUNIT2", "deg"),
                     ("CDELT1", -wcs_deg), ("CDELT2", wcs_deg), ("CRPIX1", nx / 2 + 0.5), ("CRPIX2", ny / 2 + 0.5),
                     ("CRVAL1", 83.8), ("CRVAL2", -5.4)):
            h[k] = v
    hdus = [fits.PrimaryHDU(np.asarray(data, np.float64), h)]
    if mask is not None:
        hdus.append(fits.ImageHDU(mask.astype(np.uint8), name="MASK"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


@pytest.fixture(scope="module")
def sim_maps(tiny_binary):
    from learn.data import load_split

    ms = load_split(tiny_binary, "test")
    return ms.maps.astype(np.float64), ms.labels["n"]


def tiled(m):
    return np.tile(m, (2, 2))


# ------------------------------------------------------------------ units, WCS, tiles
@pytest.mark.parametrize("bunit,kind,factor", [("cm-2", "column", 1.0), ("cm^-2", "column", 1.0),
                                               ("g/cm2", "surface", 1.0), ("g cm-2", "surface", 1.0),
                                               ("kg/m2", "surface", 0.1)])
def test_parse_unit(bunit, kind, factor):
    k, f = lfits.parse_unit(bunit, "m.fits")
    assert k == kind and f == pytest.approx(factor)


@pytest.mark.parametrize("bunit,match", [(None, "no BUNIT"), ("K km/s", "neither a column nor a surface"),
                                         ("MJy/sr", "neither"), ("parsnips", "not a unit")])
def test_wrong_units_refused(tmp_path, bunit, match):
    p = write_fits(tmp_path / "m.fits", np.ones((8, 8)), bunit=bunit)
    with pytest.raises(DataError, match=match):
        lfits.read_map(p)


def test_read_both_units_agree(tmp_path, sim_maps):
    m = tiled(sim_maps[0][0, 2])
    a = lfits.read_map(write_fits(tmp_path / "a.fits", m, bunit="g/cm2"))
    b = lfits.read_map(write_fits(tmp_path / "b.fits", m / lfits.SIGMA_PER_NH2, bunit="cm-2"))
    assert a.unit_kind == "surface" and b.unit_kind == "column"
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-12)


def test_pixel_scale_from_wcs_and_distance(tmp_path):
    ang = np.degrees(PIX / DIST)
    f = lfits.read_map(write_fits(tmp_path / "w.fits", np.ones((32, 32)), wcs_deg=ang))
    assert lfits.pixel_scale_pc(f, distance_pc=DIST) == pytest.approx(PIX, rel=1e-6)
    assert lfits.pixel_scale_pc(f, pixel_scale=0.3) == 0.3
    with pytest.raises(DataError, match="give --distance"):
        lfits.pixel_scale_pc(f)
    nowcs = lfits.read_map(write_fits(tmp_path / "n.fits", np.ones((32, 32))))
    with pytest.raises(DataError, match="no WCS .* no --pixel-scale-pc"):
        lfits.pixel_scale_pc(nowcs, distance_pc=DIST)


def test_nan_and_mask_pixels(tmp_path):
    d = np.ones((16, 16))
    d[0, 0] = np.nan
    d[1, 1] = -1
    mask = np.zeros((16, 16), bool)
    mask[2, 2] = True
    f = lfits.read_map(write_fits(tmp_path / "m.fits", d, mask=mask))
    assert (~f.mask).sum() == 3 and np.isnan(f.sigma[2, 2])
    t = lfits.tile_map(f.sigma, f.mask, 8, 4)
    assert t.grid == (2, 2) and np.all(np.isfinite(t.log_images))
    assert t.valid_fraction[0] == pytest.approx(61 / 64)


def test_tile_wcs_centres(tmp_path):
    from astropy.wcs import WCS

    ang = np.degrees(PIX / DIST)
    f = lfits.read_map(write_fits(tmp_path / "w.fits", np.ones((34, 33)), wcs_deg=ang))
    t = lfits.tile_map(f.sigma, f.mask, 8, 8)
    w = lfits.tile_wcs(f.wcs, 8, t.origin)
    oy, ox = t.origin
    # the centre of output pixel (r, c) is the centre of its block of input pixels
    for r, c in ((0, 0), (3, 2)):
        a = w.pixel_to_world_values(c, r)
        b = f.wcs.pixel_to_world_values(ox + c * 8 + 3.5, oy + r * 8 + 3.5)
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert isinstance(WCS(w.to_header()), WCS)


# ------------------------------------------------------------------ predictions on synthetic FITS
@pytest.fixture(scope="module")
def run(tiny_run):
    from learn.rundir import load_run

    return load_run(tiny_run)


def reference(run, m):
    """P(Burgers) of the 4 quadrants of a 16 px map (row-major), averaged over their 8 rotations and reflections."""
    from learn.metrics import softmax

    q = run.normaliser(np.log10(np.stack([m[:8, :8], m[:8, 8:], m[8:, :8], m[8:, 8:]])))
    views = [np.rot90(x, k, axes=(1, 2)) for x in (q, q[:, :, ::-1]) for k in range(4)]
    return np.mean([softmax(run.predict(np.ascontiguousarray(v), symmetrize=False))[:, 1] for v in views], axis=0)


def test_tiles_at_training_scale_match_the_run(tmp_path, run, sim_maps):
    from learn import sky

    maps, n = sim_maps
    mean_p = {}
    for i in range(len(n)):
        m = maps[i, 2]
        f = lfits.read_map(write_fits(tmp_path / f"s{i}.fits", tiled(m)))
        pred = sky.predict_map([run], f, pixel_scale_pc=PIX)
        assert pred.value.shape == (4, 4) and np.all(pred.flag == 0)
        ref = reference(run, m).reshape(2, 2)
        np.testing.assert_allclose(pred.value, np.tile(ref, (2, 2)), atol=2e-5)
        assert np.all(pred.sigma >= 0) and pred.summary["tile_pc"] == pytest.approx(5.0)
        mean_p.setdefault(float(n[i]), []).append(pred.summary["mean"])
    # the known n: every n = 5 (Burgers-like) map reads as more Burgers than every n = 2 map
    assert min(mean_p[5.0]) > max(mean_p[2.0])


def test_resampled_noisy_masked_and_wcs(tmp_path, run, sim_maps):
    """A map with twice finer pixels (Fourier interpolated), noise of 1e-6 (1 % of the fluctuations),
    masked pixels and a WCS in degrees read in N(H2): the same tiles, nearly the same predictions
    (the block mean of the interpolated map is a low-passed copy of the original: P moves by < 0.1)."""
    from learn import sky
    from learn.transforms import resample_maps

    m = sim_maps[0][1, 2]
    base = sky.predict_map([run], lfits.read_map(write_fits(tmp_path / "b.fits", tiled(m))), pixel_scale_pc=PIX)
    fine = tiled(resample_maps(m, 32).astype(np.float64))
    rng = np.random.default_rng(0)
    fine *= 1 + 1e-6 * rng.standard_normal(fine.shape)
    fine[5, 7] = np.nan
    fine[40:42, 40:42] = np.nan
    p = write_fits(tmp_path / "f.fits", fine / lfits.SIGMA_PER_NH2, bunit="cm-2", wcs_deg=np.degrees(PIX / 2 / DIST))
    pred = sky.predict_map([run], lfits.read_map(p), distance_pc=DIST)
    assert pred.summary["tile_px"] == 16 and pred.value.shape == (4, 4)
    assert np.abs(pred.value - base.value).max() < 0.1
    assert np.array_equal(pred.value > 0.5, base.value > 0.5)
    out = sky.write_outputs(pred, lfits.read_map(p), tmp_path / "out")
    with fits.open(tmp_path / "out" / "prediction.fits") as h:
        assert h[0].data.shape == (4, 4) and h["SIGMA"].data.shape == (4, 4)
        assert h[0].header["CTYPE1"].startswith("RA") and h[0].header["TILEPC"] == pytest.approx(5.0)
    assert (tmp_path / "out" / "overlay.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_predicted"] == out["n_predicted"] == 16


def test_refusals_say_the_numbers(tmp_path, run, sim_maps):
    from learn import sky

    m = tiled(sim_maps[0][0, 2])
    f = lfits.read_map(write_fits(tmp_path / "m.fits", m))
    with pytest.raises(sky.DomainError, match=r"pixel scale 1\.25 pc is 2 x coarser"):
        sky.predict_map([run], f, pixel_scale_pc=1.25)
    with pytest.raises(sky.DomainError, match=r"tile size 10 pc is 2 x the model's field of view 5 pc"):
        sky.predict_map([run], f, pixel_scale_pc=PIX, tile_pc=10)
    with pytest.raises(sky.DomainError, match="smaller than one 5 pc tile"):
        sky.predict_map([run], lfits.read_map(write_fits(tmp_path / "s.fits", m[:6, :6])), pixel_scale_pc=PIX)
    wild = 10 ** (np.log10(m).mean() + 30 * (np.log10(m) - np.log10(m).mean()))  # 30x the dynamic range
    fw = lfits.read_map(write_fits(tmp_path / "w.fits", wild))
    with pytest.raises(sky.DomainError, match=r"dynamic range .* dex, [0-9.]+ x the largest"):
        sky.predict_map([run], fw, pixel_scale_pc=PIX)
    pred = sky.predict_map([run], fw, pixel_scale_pc=PIX, extrapolate=True)
    assert pred.summary["extrapolated"] and pred.summary["domain_warning"]


def test_cli(tmp_path, tiny_run, sim_maps, capsys):
    from learn.predict import main

    m = tiled(sim_maps[0][0, 2])
    p = write_fits(tmp_path / "m.fits", m / lfits.SIGMA_PER_NH2, bunit="cm-2", wcs_deg=np.degrees(PIX / DIST))
    assert main([str(tiny_run), str(p), "--out", str(tmp_path / "o"), "--distance", str(DIST), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_tiles"] == 16 and s["quantity"] == "P(Burgers)"
    with pytest.raises(SystemExit) as e:
        main([str(tiny_run), str(p), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "give --distance" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])


def test_lowpass_tiles_keeps_smooth_and_removes_grid_scale():
    from learn.sky import lowpass_tiles

    y, x = np.mgrid[0:16, 0:16]
    smooth = -2 + 0.01 * np.cos(2 * np.pi * x / 16)[None]
    checker = smooth + 0.001 * (-1.0) ** (x + y)[None]
    out = lowpass_tiles(checker, 0.25)
    assert np.abs(out - smooth)[:, 2:-2, 2:-2].max() < 1e-4  # the checkerboard (0.5 cycles/px) is gone inside
    assert np.abs(out - smooth).max() < 3e-4  # and mostly at the mirrored edges
    np.testing.assert_allclose(lowpass_tiles(np.full((1, 8, 8), -1.5), 0.1), -1.5, atol=1e-6)
