"""What an observer sees: column-density maps, their logarithm, flips and quadrant cuts.

Pure functions on arrays (arrays in, arrays out, nothing kept), plus :func:`save_png` to
look at any map. The augmentation of the study is :func:`augment`: the 4 flip/flop
variants of a map times its 4 quadrant cuts, 16 images of half the side per map; with the
three projection axes that makes 48 images per simulation.

Conventions
-----------
* A density cube is indexed ``[ix, iy, iz]``. Projecting along axis ``a`` removes that
  axis and keeps the order of the other two: along x the map is ``[iy, iz]``, along y
  ``[ix, iz]``, along z ``[ix, iy]``.
* Maps are indexed ``[row, col]``; functions that take a map also take a stack of maps
  ``(..., H, W)`` and act on the last two axes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import units
from .atomic import atomic_path

MU_H2 = 2.8
"""Mean molecular weight per hydrogen molecule (Kauffmann et al. 2008, A&A 487, 993,
App. A.1: H2 plus 71% hydrogen mass fraction of helium and metals). It converts a mass
column density to ``N(H2) = Sigma / (MU_H2 m_H)``. It is *not* the mean weight per free
particle (2.37, used for the sound speed in :class:`turbsim.SimConfig`)."""

FLIP_NAMES = ("identity", "flip_rows", "flip_cols", "flip_both")
"""Order of the variants returned by :func:`flips`."""
QUADRANT_NAMES = ("top_left", "top_right", "bottom_left", "bottom_right")
"""Order of the cuts returned by :func:`quadrants` (row 0 is the top)."""


def column_density(density: np.ndarray, dx_cm: float, axis: int) -> np.ndarray:
    """Mass column density of a cube along one axis.

    Parameters
    ----------
    density : ndarray, shape (N, N, N)
        Mass density [g/cm^3] on a uniform grid.
    dx_cm : float
        Cell size [cm].
    axis : {0, 1, 2}
        Line of sight (0 = x, 1 = y, 2 = z).

    Returns
    -------
    ndarray, shape (N, N), float64
        ``Sigma = sum(rho dx)`` along ``axis`` [g/cm^2].

    Examples
    --------
    >>> rho = np.full((4, 4, 4), 2.0)
    >>> float(column_density(rho, 0.5, axis=2)[0, 0])
    4.0
    """
    density = np.asarray(density)
    if density.ndim != 3:
        raise ValueError(f"density must be a 3D cube, got shape {density.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    if not (np.isfinite(dx_cm) and dx_cm > 0):
        raise ValueError(f"dx_cm must be a positive cell size [cm], got {dx_cm!r}")
    return np.sum(density, axis=axis, dtype=np.float64) * dx_cm


def projections(density: np.ndarray, dx_cm: float) -> np.ndarray:
    """Column density along x, y and z.

    Parameters
    ----------
    density : ndarray, shape (N, N, N)
        Mass density [g/cm^3].
    dx_cm : float
        Cell size [cm].

    Returns
    -------
    ndarray, shape (3, N, N), float64
        ``out[a]`` is :func:`column_density` along axis ``a`` [g/cm^2].
    """
    return np.stack([column_density(density, dx_cm, a) for a in range(3)])


def h2_column(sigma: np.ndarray, mu_h2: float = MU_H2) -> np.ndarray:
    """Number column density of molecular hydrogen from a mass column density.

    Parameters
    ----------
    sigma : ndarray
        Mass column density [g/cm^2].
    mu_h2 : float, optional
        Mean molecular weight per H2 molecule (default :data:`MU_H2` = 2.8).

    Returns
    -------
    ndarray
        ``N(H2) = sigma / (mu_h2 m_H)`` [cm^-2].

    Examples
    --------
    >>> f"{float(h2_column(np.array(2.8 * units.M_H * 1e22))):.3g}"
    '1e+22'
    """
    if not mu_h2 > 0:
        raise ValueError(f"mu_h2 must be positive, got {mu_h2!r}")
    return np.asarray(sigma) / (mu_h2 * units.M_H)


def log_column(column: np.ndarray, *, floor: float | None = None) -> np.ndarray:
    """Decimal logarithm of a column-density map (or a stack of maps).

    Parameters
    ----------
    column : ndarray
        Column density, any positive quantity (g/cm^2 or cm^-2).
    floor : float, optional
        Values below ``floor`` are raised to it before the logarithm. Without a floor,
        any value that is not strictly positive raises ``ValueError``.

    Returns
    -------
    ndarray
        ``log10(column)`` (dimensionless, same shape; float32 in, float32 out,
        otherwise float64).
    """
    column = np.asarray(column)
    if floor is not None:
        if not floor > 0:
            raise ValueError(f"floor must be positive, got {floor!r}")
        column = np.maximum(column, floor)
    elif column.size and not np.all(column > 0):
        bad = column[~(column > 0)].flat[0]
        raise ValueError(f"log_column needs positive values, found {bad!r}; pass floor= to clip")
    dtype = np.float32 if column.dtype == np.float32 else np.float64
    return np.log10(column, dtype=dtype)


def _check_map(image: np.ndarray, even: bool = False) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"a map needs at least 2 dimensions (..., H, W), got shape {image.shape}")
    if even and (image.shape[-2] % 2 or image.shape[-1] % 2):
        raise ValueError(f"quadrant cuts need an even map size, got {image.shape[-2:]}")
    return image


def flips(image: np.ndarray) -> np.ndarray:
    """The four flip/flop variants of a map.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        A map or a stack of maps.

    Returns
    -------
    ndarray, shape (..., 4, H, W)
        Identity, rows reversed (up-down), columns reversed (left-right), both reversed
        (a rotation by 180 degrees), in the order of :data:`FLIP_NAMES`.
    """
    image = _check_map(image)
    return np.stack(
        [image, image[..., ::-1, :], image[..., :, ::-1], image[..., ::-1, ::-1]], axis=-3
    )


def quadrants(image: np.ndarray) -> np.ndarray:
    """The four quadrant cuts of a map.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        A map or a stack of maps; ``H`` and ``W`` even.

    Returns
    -------
    ndarray, shape (..., 4, H/2, W/2)
        Top-left, top-right, bottom-left, bottom-right (row 0 at the top), in the order
        of :data:`QUADRANT_NAMES`. Together they tile the map exactly once.
    """
    image = _check_map(image, even=True)
    h, w = image.shape[-2] // 2, image.shape[-1] // 2
    return np.stack(
        [image[..., :h, :w], image[..., :h, w:], image[..., h:, :w], image[..., h:, w:]],
        axis=-3,
    )


def augment(image: np.ndarray) -> np.ndarray:
    """The study's augmentation: 4 flips x 4 quadrant cuts of a map.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        A map or a stack of maps; ``H`` and ``W`` even.

    Returns
    -------
    ndarray, shape (..., 16, H/2, W/2)
        ``out[..., 4 * f + q]`` is quadrant ``q`` (:data:`QUADRANT_NAMES`) of flip
        variant ``f`` (:data:`FLIP_NAMES`).

    Examples
    --------
    >>> augment(np.arange(16.0).reshape(4, 4)).shape
    (16, 2, 2)
    """
    f = quadrants(flips(image))  # (..., 4, 4, H/2, W/2)
    return f.reshape(f.shape[:-4] + (16,) + f.shape[-2:])


IMAGES_PER_MAP = len(FLIP_NAMES) * len(QUADRANT_NAMES)
"""Images the study's augmentation cuts from one map (16)."""
IMAGES_PER_SIM = 3 * IMAGES_PER_MAP
"""Images per simulation in the study's layout: 3 axes x 4 flips x 4 quadrants (48)."""


def study_images(maps: np.ndarray, *, augment_maps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The study's image stack: every simulation's projections, flipped and cut, flattened.

    The one definition of the study's layout (used by :class:`turbsim.dataset.Ensemble`
    and by ``learn``'s evaluation images): simulation, then projection axis, then flip
    variant, then quadrant.

    Parameters
    ----------
    maps : ndarray, shape (k, 3, H, W)
        Maps of ``k`` simulations along x, y, z (any quantity, usually log10 column
        density); ``H`` and ``W`` even when ``augment_maps``.
    augment_maps : bool, optional
        Cut every map into the 16 flipped quadrants of :func:`augment` (default True):
        48 images of side ``H/2`` per simulation. Otherwise the 3 whole maps.

    Returns
    -------
    images : ndarray, float32, shape (k*48, H/2, W/2) or (k*3, H, W)
        Contiguous image stack.
    sim_index : ndarray of int64, shape (k*48,) or (k*3,)
        Position (``0..k-1``) in ``maps`` of the simulation each image comes from.

    Examples
    --------
    >>> images, sim = study_images(np.ones((2, 3, 8, 8)))
    >>> images.shape, sim[[0, 47, 48]].tolist()
    ((96, 4, 4), [0, 0, 1])
    """
    maps = np.asarray(maps)
    if maps.ndim != 4 or maps.shape[1] != 3:
        raise ValueError(f"maps must be (k, 3, H, W) (k simulations, 3 axes), got shape {maps.shape}")
    imgs = augment(maps) if augment_maps else maps
    per_sim = int(np.prod(imgs.shape[1:-2]))
    images = np.ascontiguousarray(imgs.reshape((-1,) + imgs.shape[-2:]), dtype=np.float32)
    return images, np.repeat(np.arange(maps.shape[0], dtype=np.int64), per_sim)


def save_png(
    image: np.ndarray,
    path: str | os.PathLike,
    *,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = False,
    label: str | None = None,
    origin: str = "upper",
    dpi: int = 100,
) -> Path:
    """Write a map to an 8-bit PNG file for inspection (atomically).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Any finite map (take :func:`log_column` first for column densities).
    path : str or os.PathLike
        Output file; written to a temporary name in the same directory, then renamed.
    cmap : str, optional
        Matplotlib colormap name (default ``"viridis"``).
    vmin, vmax : float, optional
        Colour range, in the units of ``image`` (default: the map's min and max).
    colorbar : bool, optional
        Draw a figure with a labelled colour bar instead of one pixel per cell.
    label : str, optional
        Colour-bar label, e.g. ``"log10 Sigma [g/cm^2]"``.
    origin : {"upper", "lower"}, optional
        Where row 0 goes (default ``"upper"``, the array convention).
    dpi : int, optional
        Resolution of the colour-bar figure (default 100).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import matplotlib  # deferred: heavy, and only needed here

    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"save_png needs a 2D map, got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("save_png: the map has non-finite values")
    if origin not in ("upper", "lower"):
        raise ValueError(f"origin must be 'upper' or 'lower', got {origin!r}")
    colormap = matplotlib.colormaps[cmap]  # KeyError names the valid colormaps
    path = Path(path)
    with atomic_path(path) as tmp:
        if colorbar:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5.2, 4.2), dpi=dpi)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            im = ax.imshow(image, cmap=colormap, vmin=vmin, vmax=vmax, origin=origin)
            cb = fig.colorbar(im, ax=ax)
            if label:
                cb.set_label(label)
            fig.savefig(tmp, format="png", dpi=dpi)
        else:
            import matplotlib.image

            matplotlib.image.imsave(
                tmp, image, cmap=colormap, vmin=vmin, vmax=vmax, origin=origin, format="png"
            )
    return path
