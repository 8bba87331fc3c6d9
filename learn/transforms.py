"""Transforms of maps into a network's inputs and targets: normalisation, cuts, resampling.

Pure functions and small frozen objects on arrays; no files, no models.

Images are cut from ``log10`` column-density maps ``(N, N)`` [log10 g/cm^2]:

* ``"flip"``: one of the 4 flip variants (identity, up-down, left-right, both), as
  :func:`turbsim.observe.flips`;
* ``"quadrant"``: one of the 4 quadrants (side ``N/2``), as :func:`turbsim.observe.quadrants`
  (flips and quadrants together are the study's 16 images per map);
* ``"crop"``: a random ``N/2`` window at any offset, wrapping around the periodic box
  (replaces the fixed quadrant positions);
* ``"rot90"``: a random rotation by a multiple of 90 degrees;
* ``"zoom"``: the window (a quadrant or crop, or the whole map) is replaced by one of
  ``z`` times its side, ``z`` log-uniform in :data:`ZOOM_RANGE` (0.5 to 2), wrapping around
  the periodic box, resampled back to the input size with anti-aliasing (a smaller or a
  larger piece of the cloud at the same pixel count: what a map at another distance or
  resolution looks like).

A low-pass (:func:`lowpass_maps`, ``Normaliser.lowpass_k``) removes every Fourier mode of a
map above a wavenumber of the box (sharp cut, periodic, on the linear Σ; applying it twice
is applying it once): inputs brought to a common physical scale and cut below the
coarsest grid's dissipation range (:mod:`learn.robust`).

Two normalisations of the log column density (both dimensionless):

* ``"global"``: ``(log10 Σ - m) / s`` with ``m``, ``s`` the mean and standard deviation
  over the training maps; keeps each image's mean level and fluctuation amplitude;
* ``"per_image"``: each image minus its own mean, divided by its own standard deviation;
  keeps only the shape of the fluctuations (more robust across codes and resolutions).

Evaluation images are always the study's deterministic 48 per simulation
(:func:`eval_set`, laid out by :func:`turbsim.observe.study_images`); a map of another
resolution is first resampled to twice the model's input size (:func:`resample_maps`),
which keeps the physical scale of a quadrant (half the box) whatever the grid.

Examples
--------
>>> norm = Normaliser("global", mean=-2.0, std=0.5)
>>> norm(np.array([[[-2.0, -1.0]]])).tolist()
[[[0.0, 2.0]]]
>>> input_size(128, STUDY_AUGMENT), input_size(128, ("flip", "rot90"))
(64, 128)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from turbsim import observe
from turbsim.ensemble_plan import BURGERS, KOLMOGOROV, default_class_names

AUGMENTATIONS = ("flip", "quadrant", "crop", "rot90", "zoom")
ZOOM_RANGE = (0.5, 2.0)
"""Range of the ``"zoom"`` augmentation's factor (window side over the nominal side)."""
STUDY_AUGMENT = ("flip", "quadrant")
NORMALISATIONS = ("global", "per_image")
CLASS_N = (KOLMOGOROV, BURGERS)
"""Spectral index ``n`` of class 0 and class 1 (Kolmogorov 11/3, Burgers 4)."""
CLASS_NAMES = default_class_names(CLASS_N)
"""Names of class 0 and class 1 (``"kolmogorov"``, ``"burgers"``), as ensembles store them."""
IMAGES_PER_SIM = observe.IMAGES_PER_SIM  # 48: 3 axes x 4 flips x 4 quadrants


class DataError(ValueError):
    """A data file cannot serve the request (names the file and the problem)."""


# --------------------------------------------------------------------------------------
# normalisation and targets
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Normaliser:
    """Normalisation of log10 column-density images.

    Parameters
    ----------
    kind : {"global", "per_image"}
        See the module docstring.
    mean, std : float
        Training-set mean and standard deviation of log10 Σ [log10 g/cm^2]
        (used by ``"global"`` only).
    lowpass_k : float or None
        Wavenumber of the box (``k = L / lambda``) above which every Fourier mode of a map is
        removed before its images are cut (:func:`eval_set`; the training maps of such a run
        are stored low-passed); None for none.
    """

    kind: str = "global"
    mean: float = 0.0
    std: float = 1.0
    lowpass_k: float | None = None

    def __post_init__(self):
        if self.kind not in NORMALISATIONS:
            raise ValueError(f"normalisation = {self.kind!r} is not one of {', '.join(NORMALISATIONS)}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"normaliser needs a finite mean and a positive std, got {self.mean}, {self.std}")

    def __call__(self, log_images: np.ndarray) -> np.ndarray:
        """Normalise images ``(..., H, W)`` of log10 Σ; returns float32 of the same shape."""
        x = np.asarray(log_images, dtype=np.float32)
        if self.kind == "global":
            return (x - np.float32(self.mean)) / np.float32(self.std)
        m = x.mean(axis=(-2, -1), keepdims=True)
        s = x.std(axis=(-2, -1), keepdims=True)
        return (x - m) / np.maximum(s, np.float32(1e-12))

    def to_dict(self) -> dict:
        d = {"kind": self.kind, "mean": self.mean, "std": self.std}
        if self.lowpass_k is not None:
            d["lowpass_k"] = self.lowpass_k
        return d


def fit_normaliser(kind: str, log_maps: np.ndarray) -> Normaliser:
    """The normaliser of a training set.

    Parameters
    ----------
    kind : {"global", "per_image"}
    log_maps : ndarray
        Training maps of log10 Σ, any shape.

    Returns
    -------
    Normaliser
    """
    x = np.asarray(log_maps, dtype=np.float64)
    return Normaliser(kind, float(x.mean()), float(max(x.std(), 1e-12)))


@dataclass(frozen=True)
class TargetScaler:
    """Affine scaling of the regression target: ``z = (n - mean) / std``.

    Parameters
    ----------
    mean, std : float
        Mean and standard deviation of the training labels ``n`` (dimensionless).
    """

    mean: float = 0.0
    std: float = 1.0

    def encode(self, n):
        return (np.asarray(n, np.float64) - self.mean) / self.std

    def decode(self, z):
        return np.asarray(z, np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}


def fit_target_scaler(n: np.ndarray) -> TargetScaler:
    """Scaler from the training labels (std floored at 1e-3 for a single-valued set)."""
    n = np.asarray(n, np.float64)
    return TargetScaler(float(n.mean()), float(max(n.std(), 1e-3)))


def targets(labels: dict, task: str, source: str = "data") -> np.ndarray:
    """Per-simulation targets of a task, checked.

    Parameters
    ----------
    labels : dict
        ``klass`` (int, -1 for none) and ``n`` per simulation (:meth:`Ensemble.labels`).
    task : {"classify", "regress"}
    source : str
        Name of the data, for error messages.

    Returns
    -------
    ndarray
        int32 classes 0/1 (``classify``) or float64 ``n`` (``regress``).

    Raises
    ------
    DataError
        Classes missing (-1) or outside {0, 1}, or ``n`` not finite.
    """
    if task == "classify":
        k = np.asarray(labels["klass"])
        bad = ~np.isin(k, (0, 1))
        if bad.any():
            raise DataError(f"{source}: classification needs class labels 0 ({CLASS_NAMES[0]}) or 1 "
                            f"({CLASS_NAMES[1]}); {int(bad.sum())} simulations have klass "
                            f"{sorted(set(np.asarray(k[bad]).tolist()))} (a sweep has no classes: use --task regress)")
        return k.astype(np.int32)
    if task == "regress":
        n = np.asarray(labels["n"], np.float64)
        if not np.all(np.isfinite(n)):
            raise DataError(f"{source}: regression needs a finite label n for every simulation")
        return n
    raise ValueError(f"task = {task!r} is not one of 'classify', 'regress'")


AXES = ("x", "y", "z")


def check_maps(maps: np.ndarray, sim_ids, source: str) -> None:
    """Refuse column-density maps that are not finite and positive (their log is undefined).

    Parameters
    ----------
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2] of ``k`` simulations.
    sim_ids : array_like of int, shape (k,)
        The simulations' ids (named in the message).
    source : str
        Name of the data (file and split), for the message.

    Raises
    ------
    DataError
        One line naming the source, the first bad simulation with its projection and
        what is wrong (NaN, infinite, zero or negative pixels), and how many simulations
        are affected.

    Examples
    --------
    >>> maps = np.ones((2, 3, 4, 4), np.float32)
    >>> maps[1, 2, 0, 0] = np.nan
    >>> check_maps(maps, [7, 9], "sweep.h5 (test)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    learn.transforms.DataError: sweep.h5 (test): simulation 9 has ... (1 NaN pixel in its z projection); ...
    """
    maps = np.asarray(maps)
    good = np.isfinite(maps) & (maps > 0)
    if good.all():
        return
    sim_ids = np.asarray(sim_ids).reshape(-1)
    bad_sims = np.flatnonzero(~good.reshape(len(maps), -1).all(axis=1))
    first = bad_sims[0]
    axis = int(np.flatnonzero(~good[first].reshape(3, -1).all(axis=1))[0])
    v = maps[first, axis]
    kinds = {"NaN": int(np.isnan(v).sum()), "infinite": int(np.isinf(v).sum()),
             "zero or negative": int((v <= 0).sum())}
    what = ", ".join(f"{c} {k} pixel{'s' * (c > 1)}" for k, c in kinds.items() if c)
    ids = sim_ids[bad_sims].tolist()
    listed = f"{ids}" if len(ids) <= 10 else f"[{', '.join(map(str, ids[:10]))}, ...]"
    raise DataError(f"{source}: simulation {sim_ids[first]} has column densities that are not finite and positive "
                    f"({what} in its {AXES[axis]} projection); {len(ids)} simulation{'s' * (len(ids) > 1)} "
                    f"affected: {listed}")


def input_size(map_size: int, augment: Iterable[str]) -> int:
    """Image side [pixels] for maps of side ``map_size``: half with quadrants or crops."""
    aug = set(augment)
    return map_size // 2 if aug & {"quadrant", "crop"} else map_size


def check_augment(augment: Iterable[str]) -> tuple[str, ...]:
    """Validated augmentation names (see :data:`AUGMENTATIONS`)."""
    aug = tuple(augment)
    bad = [a for a in aug if a not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTATIONS)}")
    if "quadrant" in aug and "crop" in aug:
        raise ValueError("augmentations 'quadrant' and 'crop' exclude each other (both cut N/2 windows)")
    return aug


# --------------------------------------------------------------------------------------
# image cutting
# --------------------------------------------------------------------------------------
def image_specs(n_maps: int, augment: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """One epoch of image specifications for ``n_maps`` maps, shuffled.

    Returns
    -------
    ndarray of int64, shape (n_images, 5)
        Columns: map index, flip code (bit 0 up-down, bit 1 left-right), window index
        (quadrant 0..3, or crop number), rotation (multiples of 90 degrees), unused 0.
        ``n_images = n_maps * (4 if flip) * (4 if quadrant or crop)``.
    """
    flips = np.arange(4) if "flip" in augment else np.zeros(1, np.int64)
    wins = np.arange(4) if {"quadrant", "crop"} & set(augment) else np.zeros(1, np.int64)
    m, f, w = np.meshgrid(np.arange(n_maps), flips, wins, indexing="ij")
    specs = np.zeros((m.size, 5), np.int64)
    specs[:, 0], specs[:, 1], specs[:, 2] = m.ravel(), f.ravel(), w.ravel()
    if "rot90" in augment:
        specs[:, 3] = rng.integers(0, 4, m.size)
    return specs[rng.permutation(m.size)]


def cut_images(maps: np.ndarray, specs: np.ndarray, augment: tuple[str, ...],
               rng: np.random.Generator) -> np.ndarray:
    """Cut augmented images out of maps.

    Parameters
    ----------
    maps : ndarray, shape (M, N, N)
        Maps (any values, e.g. log10 Σ).
    specs : ndarray of int, shape (B, 5)
        Rows of :func:`image_specs` (map indices into ``maps``).
    augment : tuple of str
        Augmentations (:data:`AUGMENTATIONS`).
    rng : numpy.random.Generator
        Draws the crop offsets.

    Returns
    -------
    ndarray, shape (B, S, S), same dtype
        ``S = N/2`` with quadrants or crops, else ``N``. A crop wraps around the periodic map.
    """
    n = maps.shape[-1]
    size = input_size(n, augment)
    b = specs.shape[0]
    if "zoom" in augment:
        return _cut_zoomed(maps, specs, augment, rng, size)
    if "crop" in augment:
        oy, ox = rng.integers(0, n, b), rng.integers(0, n, b)
    elif "quadrant" in augment:
        oy, ox = (specs[:, 2] // 2) * size, (specs[:, 2] % 2) * size
    else:
        oy = ox = np.zeros(b, np.int64)
    ar = np.arange(size)
    iy, ix = oy[:, None] + ar, ox[:, None] + ar  # (B, S)
    # a flip of the whole map followed by a quadrant cut = the mirrored quadrant, flipped
    ud, lr = (specs[:, 1] & 1).astype(bool), (specs[:, 1] & 2).astype(bool)
    iy[ud] = (n - 1) - iy[ud]
    ix[lr] = (n - 1) - ix[lr]
    iy %= n
    ix %= n
    out = maps[specs[:, 0, None, None], iy[:, :, None], ix[:, None, :]]
    for k in (1, 2, 3):
        sel = specs[:, 3] == k
        if sel.any():
            out[sel] = np.rot90(out[sel], k, axes=(1, 2))
    return out


def zoom_windows(maps: np.ndarray, map_index: np.ndarray, oy: np.ndarray, ox: np.ndarray, side: int,
                 size: int) -> np.ndarray:
    """Square windows of periodic maps resampled to ``size`` pixels.

    Parameters
    ----------
    maps : ndarray, shape (M, N, N)
        Periodic maps (any values; log10 Σ here, whose fluctuations are small enough that
        resampling the log or the linear map differ negligibly).
    map_index, oy, ox : ndarray of int, shape (B,)
        Map and corner of each window.
    side : int
        Window side [pixels], any (> N wraps around the periodic map).
    size : int
        Output side [pixels].

    Returns
    -------
    ndarray, float32, shape (B, size, size)
        Block means for an integer reduction, else linear interpolation after a Gaussian
        anti-aliasing filter (:func:`skimage.transform.resize`).
    """
    n = maps.shape[-1]
    ar = np.arange(side)
    iy, ix = (oy[:, None] + ar) % n, (ox[:, None] + ar) % n
    win = maps[map_index[:, None, None], iy[:, :, None], ix[:, None, :]].astype(np.float64)
    if side == size:
        return win.astype(np.float32)
    if side % size == 0:
        f = side // size
        return win.reshape(len(win), size, f, size, f).mean(axis=(2, 4)).astype(np.float32)
    from skimage.transform import resize

    return np.stack([resize(w, (size, size), order=1, anti_aliasing=side > size, mode="wrap", preserve_range=True)
                     for w in win]).astype(np.float32)


def _cut_zoomed(maps, specs, augment, rng, size):
    """:func:`cut_images` with the ``"zoom"`` augmentation: windows of random side, resampled."""
    n = maps.shape[-1]
    b = specs.shape[0]
    lo, hi = np.log(ZOOM_RANGE[0]), np.log(ZOOM_RANGE[1])
    sides = np.maximum(2, np.rint(size * np.exp(rng.uniform(lo, hi, b))).astype(np.int64))
    if "crop" in augment:
        oy, ox = rng.integers(0, n, b), rng.integers(0, n, b)
    elif "quadrant" in augment:
        oy, ox = (specs[:, 2] // 2) * size, (specs[:, 2] % 2) * size
    else:
        oy = ox = np.zeros(b, np.int64)
    out = np.empty((b, size, size), np.float32)
    for side in np.unique(sides):
        sel = np.flatnonzero(sides == side)
        centre = (int(side) - size) // 2  # the window keeps the nominal window's centre
        out[sel] = zoom_windows(maps, specs[sel, 0], oy[sel] - centre, ox[sel] - centre, int(side), size)
    ud, lr = (specs[:, 1] & 1).astype(bool), (specs[:, 1] & 2).astype(bool)
    out[ud] = out[ud, ::-1, :]
    out[lr] = out[lr, :, ::-1]
    for k in (1, 2, 3):
        sel = specs[:, 3] == k
        if sel.any():
            out[sel] = np.rot90(out[sel], k, axes=(1, 2))
    return np.ascontiguousarray(out.astype(maps.dtype, copy=False))


def lowpass_maps(maps: np.ndarray, k_cut: float) -> np.ndarray:
    """Periodic maps with every Fourier mode above a wavenumber of the box removed.

    Parameters
    ----------
    maps : ndarray, shape (..., N, N)
        Column density [g/cm^2] (linear; the mean is kept).
    k_cut : float
        Largest kept wavenumber ``|k|`` in units of the box's fundamental (``k = L / lambda``;
        a 64^3 grid's Nyquist is 32).

    Returns
    -------
    ndarray, float32
        Floored at 1e-6 of each map's mean so that a logarithm stays defined.

    Examples
    --------
    >>> x = np.arange(16.0) / 16
    >>> m = 1 + 0.1 * np.cos(2 * np.pi * x)[:, None] + 0.1 * np.cos(2 * np.pi * 4 * x)[None, :]
    >>> out = lowpass_maps(m, 2.0)
    >>> bool(np.allclose(out, 1 + 0.1 * np.cos(2 * np.pi * x)[:, None], atol=1e-6))
    True
    """
    maps = np.asarray(maps, np.float64)
    n = maps.shape[-1]
    ky = np.fft.fftfreq(n, 1.0 / n)
    kx = np.fft.rfftfreq(n, 1.0 / n)
    keep = np.hypot(ky[:, None], kx[None, :]) <= k_cut + 1e-9
    out = np.fft.irfftn(np.fft.rfftn(maps, axes=(-2, -1)) * keep, s=(n, n), axes=(-2, -1))
    out = np.maximum(out, 1e-6 * maps.mean(axis=(-2, -1), keepdims=True))
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------
# resampling and evaluation images
# --------------------------------------------------------------------------------------
def resample_maps(maps: np.ndarray, size: int) -> np.ndarray:
    """Resample periodic column-density maps to another grid.

    An integer reduction factor averages blocks of pixels (the column density a coarser
    grid would have); any other factor interpolates in Fourier space (band-limited,
    periodic, conserving the mean). Values are floored at 1e-6 of the map mean so that
    a logarithm stays defined.

    Parameters
    ----------
    maps : ndarray, shape (..., N, N)
        Column density [g/cm^2] (a linear quantity: resample before taking the log).
    size : int
        New side [pixels].

    Returns
    -------
    ndarray, float32, shape (..., size, size)
    """
    maps = np.asarray(maps, np.float64)
    n = maps.shape[-1]
    if n == size:
        return maps.astype(np.float32)
    if n % size == 0:
        f = n // size
        out = maps.reshape(maps.shape[:-2] + (size, f, size, f)).mean(axis=(-3, -1))
    else:
        from scipy.signal import resample

        out = resample(resample(maps, size, axis=-1), size, axis=-2)
        out = np.maximum(out, 1e-6 * maps.mean(axis=(-2, -1), keepdims=True))
    return out.astype(np.float32)


def eval_set(maps: np.ndarray, normaliser: Normaliser, image_size: int,
             full_maps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The study's deterministic evaluation images of some simulations.

    Parameters
    ----------
    maps : ndarray, shape (k, 3, N, N)
        Column density [g/cm^2].
    normaliser : Normaliser
    image_size : int
        The model's input side; maps are low-passed (if the normaliser says
        ``lowpass_k``) and resampled to ``2 * image_size`` (or to ``image_size`` with
        ``full_maps``) first.
    full_maps : bool
        The model reads whole maps (trained without quadrants or crops).

    Returns
    -------
    images : ndarray, float32, shape (k*48, S, S) (or (k*3, S, S) with ``full_maps``)
        Normalised log10 images, ordered simulation, axis, flip, quadrant.
    sim_index : ndarray of int64
        Position (0..k-1) of the simulation of every image.
    """
    if normaliser.lowpass_k is not None:
        maps = lowpass_maps(maps, normaliser.lowpass_k)
    maps = resample_maps(maps, image_size if full_maps else 2 * image_size)
    return eval_images(observe.log_column(maps), normaliser, full_maps)


def eval_images(log_maps: np.ndarray, normaliser: Normaliser, full_maps: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """:func:`eval_set` of log10 maps already at the model's scale.

    Parameters
    ----------
    log_maps : ndarray, shape (k, 3, M, M)
        log10 column density [log10 g/cm^2], ``M`` the model's input side (``full_maps``)
        or twice it.
    normaliser : Normaliser
    full_maps : bool

    Returns
    -------
    images, sim_index
        As :func:`eval_set`.
    """
    images, sim_index = observe.study_images(log_maps, augment_maps=not full_maps)
    return np.ascontiguousarray(normaliser(images), np.float32), sim_index

