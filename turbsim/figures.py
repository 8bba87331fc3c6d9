"""Column-density maps drawn for people: axes in pc and a title naming n, the axis and the time.

Matplotlib's object interface on the Agg canvas (no pyplot, no global state, no display
needed): :func:`plot_map` draws a map into given axes, :func:`save_map_png` writes one map
as a PNG, :func:`save_figure` writes any figure; files are written atomically (a temporary
name, then a rename).

Maps follow the indexing of :func:`turbsim.observe.column_density` and
:meth:`turbsim.ramses.RamsesDataset.column_density`: a map along ``axis`` is indexed by the
two remaining axes in order (``[ix, iy]`` along z). The first index is drawn horizontally,
the second vertically, with the origin at the lower left, as the box is usually pictured.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> log_sigma = np.random.default_rng(0).normal(-2.0, 0.1, (16, 16))
>>> path = save_map_png(pathlib.Path(tempfile.mkdtemp()) / "map.png", log_sigma, 10.0,
...                     n=11 / 3, axis=2, time_myr=0.5)
>>> path.read_bytes()[:4]
b'\\x89PNG'
>>> map_title(n=11 / 3, axis=2, time_myr=0.5)
'n = 3.667, along z, t = 0.5 Myr'
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path

__all__ = ["LOG_SIGMA_LABEL", "map_title", "new_figure", "plot_map", "save_figure", "save_map_png"]

AXIS_NAMES = ("x", "y", "z")
LOG_SIGMA_LABEL = r"$\log_{10}\,\Sigma$ [g cm$^{-2}$]"
"""Colour-bar label of a log column-density map in g/cm^2."""


def map_title(*, n: float | None = None, axis: int | None = None, time_myr: float | None = None,
              prefix: str | None = None) -> str:
    """The title of a map: what it is, its spectral index, projection axis and time.

    Parameters
    ----------
    n : float, optional
        Spectral index of the initial velocity power, ``|v_k|^2 ∝ k^-n``.
    axis : {0, 1, 2}, optional
        Projection axis (line of sight).
    time_myr : float, optional
        Time of the snapshot [Myr].
    prefix : str, optional
        Put first, before a colon (e.g. ``"RAMSES"``).

    Returns
    -------
    str
        The parts given, joined by commas; empty when none is given.

    Examples
    --------
    >>> map_title(n=4, axis=0, time_myr=0.522359, prefix="RAMSES")
    'RAMSES: n = 4, along x, t = 0.522 Myr'
    """
    parts = []
    if n is not None:
        parts.append(f"n = {n:.4g}")
    if axis is not None:
        parts.append(f"along {AXIS_NAMES[_check_axis(axis)]}")
    if time_myr is not None:
        parts.append(f"t = {time_myr:.3g} Myr")
    text = ", ".join(parts)
    if prefix:
        text = f"{prefix}: {text}" if text else prefix
    return text


def _check_axis(axis) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis = {axis!r} is not 0, 1 or 2 (x, y, z)")
    return int(axis)


def new_figure(ncols: int = 1, *, width: float = 5.2, height: float = 4.4, dpi: int = 100):
    """A figure on the Agg canvas with one row of ``ncols`` axes.

    Parameters
    ----------
    ncols : int
        Number of axes, side by side.
    width, height : float
        Size of each panel [inches].
    dpi : int
        Resolution [dots per inch].

    Returns
    -------
    (matplotlib.figure.Figure, list of matplotlib.axes.Axes)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def plot_map(ax, image, box_pc: float, *, n: float | None = None, axis: int | None = None,
             time_myr: float | None = None, prefix: str | None = None, cmap: str = "magma",
             vmin: float | None = None, vmax: float | None = None, label: str | None = LOG_SIGMA_LABEL,
             colorbar: bool = True):
    """Draw a map with axes in pc, a colour bar and a title (n, axis, time).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    image : array_like, shape (N, M)
        The map, e.g. ``log10 Sigma`` [g/cm^2], indexed by the two axes other than
        ``axis`` in order; any finite values (a difference map too).
    box_pc : float
        Box side [pc], > 0: the map spans ``[0, box_pc]`` on both axes.
    n : float, optional
        Spectral index, for the title.
    axis : {0, 1, 2}, optional
        Projection axis: names the plot axes (``x [pc]``, ``y [pc]`` along z) and goes in
        the title. Without it the axes read ``[pc]``.
    time_myr : float, optional
        Snapshot time [Myr], for the title.
    prefix : str, optional
        First words of the title (e.g. ``"RAMSES"``).
    cmap : str
        Matplotlib colour map.
    vmin, vmax : float, optional
        Colour range, in the units of ``image`` (default: its minimum and maximum).
    label : str or None
        Colour-bar label (default ``log10 Sigma [g cm^-2]``).
    colorbar : bool
        Draw a colour bar.

    Returns
    -------
    matplotlib.image.AxesImage

    Raises
    ------
    ValueError
        A map that is not 2D or not finite, a box that is not a positive finite size, or
        an axis other than 0, 1, 2.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"plot_map needs a 2D map, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError(f"plot_map: the map has {int((~np.isfinite(image)).sum())} non-finite values")
    if isinstance(box_pc, bool) or not (isinstance(box_pc, (int, float)) and math.isfinite(box_pc)
                                        and box_pc > 0):
        raise ValueError(f"box_pc = {box_pc!r} is not a positive box size [pc]")
    if axis is None:
        names = ("", "")
    else:
        names = tuple(a for i, a in enumerate(AXIS_NAMES) if i != _check_axis(axis))
    im = ax.imshow(image.T, origin="lower", extent=(0.0, box_pc, 0.0, box_pc), cmap=cmap,
                   vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xlabel(f"{names[0]} [pc]".strip())
    ax.set_ylabel(f"{names[1]} [pc]".strip())
    ax.set_title(map_title(n=n, axis=axis, time_myr=time_myr, prefix=prefix))
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax)
        if label:
            cb.set_label(label)
    return im


def save_figure(fig, path: str | os.PathLike, *, dpi: int | None = None) -> Path:
    """Write a figure as PNG, atomically (temporary name, then rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (e.g. from :func:`new_figure`).
    path : str or os.PathLike
        Output file; its folder must exist.
    dpi : int, optional
        Resolution [dots per inch] (default the figure's).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi or fig.dpi)
    return path


def save_map_png(path: str | os.PathLike, image, box_pc: float, *, dpi: int = 100, **kwargs) -> Path:
    """Draw one map (see :func:`plot_map`) and write it as a PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its folder must exist.
    image : array_like, shape (N, M)
        The map, e.g. ``log10 Sigma`` [g/cm^2].
    box_pc : float
        Box side [pc].
    dpi : int
        Resolution [dots per inch].
    **kwargs
        ``n``, ``axis``, ``time_myr``, ``prefix``, ``cmap``, ``vmin``, ``vmax``, ``label``,
        ``colorbar`` of :func:`plot_map`.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    fig, (ax,) = new_figure(dpi=dpi)
    plot_map(ax, image, box_pc, **kwargs)
    return save_figure(fig, path)
