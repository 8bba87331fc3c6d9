"""Column-density maps from FITS files: units, physical pixel scale, masks and tiles.

A real map is read with astropy (:func:`read_map`): its ``BUNIT`` says whether it holds
the H2 column density ``N(H2)`` [cm^-2] or the mass surface density Σ [g/cm^2] (or any unit
astropy can convert to either, e.g. ``Msun/pc2``), and it is converted to Σ [g/cm^2], the
quantity of turbsim's maps, with

    Σ = μ_H2 m_H N(H2),   μ_H2 = 2.8 (mass per H2 molecule in units of m_H, helium included;
    Kauffmann et al. 2008, A&A 487, 993, appendix A).

NaN, infinite, zero and negative pixels (and pixels of a FITS mask) are masked. The
physical pixel scale [pc] comes from the celestial WCS (angular pixel size times the
distance, :func:`pixel_scale_pc`) or is given. :func:`tile_map` cuts the map into square
tiles of a given physical side, each resampled to the model's input size (block means
for an integer reduction, an anti-aliased interpolation otherwise) with its few masked
pixels filled from their neighbours; :func:`tile_wcs` is the WCS of the grid of tiles
(one output pixel per tile).

Examples
--------
>>> parse_unit("cm-2", "map.fits")
('column', 1.0)
>>> kind, factor = parse_unit("g/cm2", "map.fits"); kind, factor
('surface', 1.0)
>>> f"{SIGMA_PER_NH2:.4g} g per H2 molecule"
'4.686e-24 g per H2 molecule'
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .transforms import DataError

log = logging.getLogger(__name__)

MU_H2 = 2.8
"""Mean mass per H2 molecule in units of the hydrogen mass (helium included; Kauffmann et al. 2008)."""
M_H_G = 1.6735575e-24
"""Mass of a hydrogen atom [g]."""
SIGMA_PER_NH2 = MU_H2 * M_H_G
"""Σ [g/cm^2] of one H2 molecule per cm^2 (4.686e-24 g)."""
PC_CM = 3.0856775814913673e18
"""One parsec [cm]."""
ACCEPTED_UNITS = "N(H2) in cm^-2 (e.g. BUNIT = 'cm-2') or Σ in g/cm^2 (e.g. 'g/cm2', or any mass per area)"


@dataclass
class FitsMap:
    """A column-density map read from FITS.

    Attributes
    ----------
    sigma : ndarray, float64, shape (ny, nx)
        Surface density Σ [g/cm^2]; NaN where masked.
    mask : ndarray of bool, shape (ny, nx)
        True where the pixel is usable (finite, positive, not masked in the file).
    header : astropy.io.fits.Header
    wcs : astropy.wcs.WCS or None
        The celestial WCS (two axes), None when the header has none.
    bunit : str
        The ``BUNIT`` as written.
    unit_kind : {"column", "surface"}
        What the file held: N(H2) or Σ.
    path : str
    """

    sigma: np.ndarray
    mask: np.ndarray
    header: object
    wcs: object
    bunit: str
    unit_kind: str
    path: str
    notes: list = field(default_factory=list)


def parse_unit(bunit, path) -> tuple[str, float]:
    """What a ``BUNIT`` means: ``("column", f)`` with N(H2) [cm^-2] = f x value, or ``("surface", f)``
    with Σ [g/cm^2] = f x value.

    Raises
    ------
    DataError
        No ``BUNIT``, a unit astropy cannot read, or one that is neither a column density
        nor a surface density (the file and the value are named).
    """
    from astropy import units as u

    if bunit is None or not str(bunit).strip():
        raise DataError(f"{path}: no BUNIT in the header; the map must say its unit: {ACCEPTED_UNITS}")
    text = str(bunit).strip()
    norm = text.replace("^", "").replace("**", "")
    try:
        unit = u.Unit(norm, format="fits", parse_strict="raise")
    except ValueError:
        try:
            unit = u.Unit(norm, parse_strict="raise")
        except ValueError:
            raise DataError(f"{path}: BUNIT = {text!r} is not a unit astropy can read; expected {ACCEPTED_UNITS}") \
                from None
    if unit.is_equivalent(u.cm ** -2):
        return "column", float(unit.to(u.cm ** -2))
    if unit.is_equivalent(u.g / u.cm ** 2):
        return "surface", float(unit.to(u.g / u.cm ** 2))
    raise DataError(f"{path}: BUNIT = {text!r} ({unit.physical_type}) is neither a column nor a surface density; "
                    f"expected {ACCEPTED_UNITS}")


def _celestial_wcs(header, path):
    """The two-axis celestial WCS of a header, or None when it has none."""
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    if not any(k in header for k in ("CTYPE1", "CDELT1", "CD1_1", "PC1_1")):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            w = WCS(header, naxis=2)
        except Exception as exc:  # astropy raises several types for a broken WCS
            raise DataError(f"{path}: the WCS of the header cannot be read ({str(exc).splitlines()[0]})") from None
    return w


def read_map(path, *, hdu: int | str | None = None) -> FitsMap:
    """Read a column-density map from a FITS file and convert it to Σ [g/cm^2].

    Parameters
    ----------
    path : path-like
        FITS file with a 2D image (a 3D cube with one plane is accepted).
    hdu : int or str, optional
        The HDU to read (default: the first with image data). A ``MASK`` extension of the
        same shape, if present, masks its non-zero pixels.

    Returns
    -------
    FitsMap

    Raises
    ------
    DataError
        Missing or unreadable file, no 2D image, wrong or missing units, no usable pixel.
    """
    from astropy.io import fits

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such FITS file")
    try:
        with fits.open(p, memmap=False) as hdul:
            if hdu is None:
                cands = [h for h in hdul if getattr(h, "data", None) is not None and h.data.ndim >= 2]
                if not cands:
                    raise DataError(f"{p}: no image HDU with 2D data")
                h = cands[0]
            else:
                try:
                    h = hdul[hdu]
                except (KeyError, IndexError):
                    raise DataError(f"{p}: no HDU {hdu!r}") from None
            data = np.asarray(h.data, np.float64)
            header = h.header.copy()
            mask_ext = None
            if "MASK" in hdul and hdul["MASK"].data is not None and hdul["MASK"].data.shape == data.shape:
                mask_ext = np.asarray(hdul["MASK"].data) != 0
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{p}: cannot read as FITS ({str(exc).splitlines()[0]})") from None
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
        if mask_ext is not None:
            mask_ext = mask_ext[0]
    if data.ndim != 2:
        raise DataError(f"{p}: the image has shape {data.shape}; a column-density map is 2D")
    kind, factor = parse_unit(header.get("BUNIT"), p)
    sigma = data * factor * (SIGMA_PER_NH2 if kind == "column" else 1.0)
    mask = np.isfinite(sigma) & (sigma > 0)
    if mask_ext is not None:
        mask &= ~mask_ext
    if not mask.any():
        raise DataError(f"{p}: no usable pixel (every pixel is NaN, infinite, zero, negative or masked)")
    sigma = np.where(mask, sigma, np.nan)
    return FitsMap(sigma, mask, header, _celestial_wcs(header, p), str(header.get("BUNIT")), kind, str(p))


def pixel_scale_pc(fmap: FitsMap, *, distance_pc: float | None = None, pixel_scale: float | None = None) -> float:
    """The physical side of one pixel [pc].

    Parameters
    ----------
    fmap : FitsMap
    distance_pc : float, optional
        Distance of the cloud [pc]; with a celestial WCS gives the scale (small angles).
    pixel_scale : float, optional
        The pixel side [pc] given directly (takes precedence over the WCS).

    Raises
    ------
    DataError
        Neither a WCS with a distance nor a pixel scale, a WCS whose axes are not angles,
        non-square pixels (more than 1 % apart), or a scale that is not positive.
    """
    if pixel_scale is not None:
        if not (math.isfinite(pixel_scale) and pixel_scale > 0):
            raise DataError(f"--pixel-scale-pc = {pixel_scale} must be a positive number of parsecs")
        return float(pixel_scale)
    if fmap.wcs is None:
        raise DataError(f"{fmap.path}: the header has no WCS (no CTYPE/CDELT/CD keywords) and no --pixel-scale-pc was "
                        "given: the physical pixel scale is unknown")
    from astropy import units as u
    from astropy.wcs.utils import proj_plane_pixel_scales

    w = fmap.wcs
    scales = proj_plane_pixel_scales(w)
    units = [u.Unit(c) if str(c) else None for c in w.wcs.cunit]
    if any(c is None or not c.is_equivalent(u.deg) for c in units):
        raise DataError(f"{fmap.path}: the WCS axes are in {[str(c) for c in w.wcs.cunit]}, not angles; "
                        "give --pixel-scale-pc")
    ang = np.array([(s * c).to_value(u.rad) for s, c in zip(scales, units)])
    if abs(ang[0] - ang[1]) > 0.01 * max(ang):
        raise DataError(f"{fmap.path}: pixels are not square ({ang[0] * 206264.806:.4g} x {ang[1] * 206264.806:.4g} "
                        "arcsec); resample the map to square pixels first")
    if distance_pc is None:
        raise DataError(f"{fmap.path}: the WCS gives the pixel size as an angle ({ang[0] * 206264.806:.4g} arcsec); "
                        "give --distance (pc) or --pixel-scale-pc")
    if not (math.isfinite(distance_pc) and distance_pc > 0):
        raise DataError(f"--distance = {distance_pc} must be a positive number of parsecs")
    return float(ang.mean() * distance_pc)


def fill_masked(values: np.ndarray, mask: np.ndarray, sigma_px: float = 2.0) -> np.ndarray:
    """Masked pixels of an image filled by a normalised Gaussian convolution of the valid ones.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        Any values (e.g. log10 Σ); those under ``~mask`` are ignored.
    mask : ndarray of bool
        True where valid.
    sigma_px : float
        Smoothing width [pixels], widened until every masked pixel has valid neighbours.

    Returns
    -------
    ndarray, float64
        ``values`` where valid, the local weighted mean elsewhere.
    """
    from scipy.ndimage import gaussian_filter

    if mask.all():
        return np.asarray(values, np.float64)
    v = np.where(mask, values, 0.0).astype(np.float64)
    w = mask.astype(np.float64)
    out = np.asarray(values, np.float64).copy()
    s = sigma_px
    todo = ~mask
    while todo.any() and s < 4 * max(values.shape):
        num, den = gaussian_filter(v, s, mode="nearest"), gaussian_filter(w, s, mode="nearest")
        ok = todo & (den > 1e-6)
        out[ok] = num[ok] / den[ok]
        todo &= ~ok
        s *= 2
    out[todo] = v[mask].mean()
    return out


def resample_image(img: np.ndarray, size: int) -> np.ndarray:
    """A (non-periodic) image brought to ``size`` x ``size`` pixels.

    Block means for an integer reduction (the value a coarser detector pixel would hold);
    otherwise :func:`skimage.transform.resize` with anti-aliasing (a Gaussian low-pass
    before a reduction) and linear interpolation.
    """
    n = img.shape[0]
    if n == size:
        return img.astype(np.float64)
    if n % size == 0 and img.shape[1] == n:
        f = n // size
        return img.reshape(size, f, size, f).mean(axis=(1, 3))
    from skimage.transform import resize

    return resize(img, (size, size), order=1, anti_aliasing=n > size, mode="reflect", preserve_range=True)


@dataclass
class Tiles:
    """Square tiles of a map, brought to a model's input size.

    Attributes
    ----------
    log_images : ndarray, float32, shape (T, S, S)
        log10 Σ of each tile at the model's input size (masked pixels filled).
    valid_fraction : ndarray, shape (T,)
        Share of usable pixels in each tile.
    rows, cols : ndarray of int, shape (T,)
        Position of each tile on the grid of tiles.
    grid : (int, int)
        Tiles along y and x.
    tile_px : int
        Tile side in map pixels.
    origin : (int, int)
        Map pixel (y, x) of the first tile's corner.
    """

    log_images: np.ndarray
    valid_fraction: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    grid: tuple
    tile_px: int
    origin: tuple


def tile_map(sigma: np.ndarray, mask: np.ndarray, tile_px: int, size: int) -> Tiles:
    """Cut a map into a centred grid of non-overlapping square tiles at the model's input size.

    Parameters
    ----------
    sigma : ndarray, shape (ny, nx)
        Σ [g/cm^2] (any positive linear quantity), NaN where masked.
    mask : ndarray of bool
        Usable pixels.
    tile_px : int
        Tile side [map pixels].
    size : int
        The model's input side [pixels].

    Returns
    -------
    Tiles
        Empty (``T = 0``) when no tile fits.
    """
    ny, nx = sigma.shape
    gy, gx = ny // tile_px, nx // tile_px
    oy, ox = (ny - gy * tile_px) // 2, (nx - gx * tile_px) // 2
    imgs, fr, rr, cc = [], [], [], []
    for r in range(gy):
        for c in range(gx):
            sl = (slice(oy + r * tile_px, oy + (r + 1) * tile_px), slice(ox + c * tile_px, ox + (c + 1) * tile_px))
            m = mask[sl]
            f = float(m.mean())
            rr.append(r), cc.append(c), fr.append(f)
            if f == 0:
                imgs.append(np.zeros((size, size)))
                continue
            tile = np.where(m, sigma[sl], np.nan)
            lin = 10 ** fill_masked(np.log10(np.where(m, tile, 1.0)), m) if f < 1 else tile
            imgs.append(np.log10(np.maximum(resample_image(lin, size), 1e-300)))
    return Tiles(np.asarray(imgs, np.float32).reshape(-1, size, size), np.asarray(fr), np.asarray(rr, np.int64),
                 np.asarray(cc, np.int64), (gy, gx), int(tile_px), (oy, ox))


def tile_wcs(wcs, tile_px: int, origin: tuple):
    """The celestial WCS of a grid of tiles: one output pixel per ``tile_px`` x ``tile_px`` block.

    Output pixel ``j`` (1-based) covers input pixels ``(j - 1) t + 0.5 + o`` to
    ``j t + 0.5 + o`` (FITS convention), so ``CRPIX' = (CRPIX - 0.5 - o) / t + 0.5`` and the
    pixel matrix is scaled by ``t``.
    """
    if wcs is None:
        return None
    w = wcs.deepcopy()
    t = float(tile_px)
    oy, ox = origin
    w.wcs.crpix = [(w.wcs.crpix[0] - 0.5 - ox) / t + 0.5, (w.wcs.crpix[1] - 0.5 - oy) / t + 0.5]
    if w.wcs.has_cd():
        w.wcs.cd = w.wcs.cd * t
    else:
        w.wcs.cdelt = w.wcs.cdelt * t
    w.wcs.set()
    return w
