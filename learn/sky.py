"""A trained run pointed at an observed column-density map: the domain check, per-tile predictions, outputs.

:func:`run_domain` states what a run was trained on in physical terms: the pixel scale
[pc] and the field of view [pc] of its images (the training box is 10 pc; a quadrant image
covers 5 pc), the range of zoom factors it saw (1 unless trained with zoom
augmentation), and the range of the images' dynamic range (standard deviation of
log10 Σ [dex]) and level (mean log10 Σ) on its training split. :func:`predict_map` checks
a map against it and refuses, with the numbers, a pixel scale, tile size or dynamic range
outside it (:class:`DomainError`); never extrapolates silently. It cuts the map into tiles
of the model's field of view (:func:`learn.fits.tile_map`), predicts each tile under the 8
rotations and reflections of the square (and with every run of an ensemble of runs), and
gives per tile the mean and the spread (with a regression's predicted σ added in
quadrature) as the uncertainty. :func:`write_outputs` writes ``prediction.fits`` (per-tile
values with the input's WCS, scaled to the tiles), ``overlay.png`` and ``summary.json``.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from turbsim import observe
from turbsim.atomic import atomic_path

from . import fits as lfits
from .transforms import ZOOM_RANGE, DataError, lowpass_maps, resample_maps

log = logging.getLogger(__name__)

DEFAULT_BOX_PC = 10.0
"""Side of turbsim's training box [pc] when the training data file cannot say it."""
SCALE_TOL = 0.02
"""Relative tolerance on the tile size and pixel scale against the trained range."""
DYN_TOL = 1.5
"""A tile's dynamic range may lie this factor beyond the training images' range."""
MIN_VALID = 0.9
"""Tiles with a smaller share of usable pixels are not predicted."""
DOMAIN_FILE = "domain.json"


class DomainError(DataError):
    """A map lies outside what the model was trained on (says which quantity and by how much)."""


@dataclass
class Domain:
    """What a run was trained on, in physical units.

    Attributes
    ----------
    box_pc : float
        Side of the training simulations' box [pc].
    map_size : int
        Side of the training maps [pixels] (after any common-scale resampling).
    image_size : int
        The model's input side [pixels].
    zoom : (float, float)
        Range of zoom factors of the training images (a factor z: a piece z times the
        nominal field of view, resampled to the input size).
    dyn_range : (float, float) or None
        Smallest and largest standard deviation of log10 Σ [dex] of a training image.
    level : (float, float) or None
        Smallest and largest mean log10 Σ [log10 g/cm^2] of a training image.
    normalisation : str
    notes : list of str
    """

    box_pc: float
    map_size: int
    image_size: int
    zoom: tuple = (1.0, 1.0)
    dyn_range: tuple | None = None
    level: tuple | None = None
    normalisation: str = "global"
    notes: list = field(default_factory=list)

    @property
    def pixel_pc(self) -> float:
        """Training pixel side [pc]."""
        return self.box_pc / self.map_size

    @property
    def fov_pc(self) -> float:
        """The model's field of view [pc] at zoom 1."""
        return self.pixel_pc * self.image_size

    def to_dict(self) -> dict:
        return {"box_pc": self.box_pc, "map_size": self.map_size, "image_size": self.image_size,
                "pixel_pc": self.pixel_pc, "fov_pc": self.fov_pc, "zoom": list(self.zoom),
                "dyn_range_dex": None if self.dyn_range is None else list(self.dyn_range),
                "level_log10_g_cm2": None if self.level is None else list(self.level),
                "normalisation": self.normalisation, "notes": list(self.notes)}


def _data_files(config) -> list[str]:
    d = config.data
    if d is None:
        return []
    return [d] if isinstance(d, str) else list(d)


def _box_pc(path) -> float | None:
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return float(json.loads(f.attrs["ensemble_config"])["sim"]["box"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def image_statistics(log_images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image standard deviation [dex] and mean of log10 Σ images ``(M, S, S)``."""
    x = np.asarray(log_images, np.float64)
    return x.std(axis=(1, 2)), x.mean(axis=(1, 2))


def run_domain(run, *, sample_sims: int = 64) -> Domain:
    """The physical domain of a trained run (cached in ``RUN_DIR/domain.json``).

    Parameters
    ----------
    run : learn.rundir.Run
    sample_sims : int
        Training simulations read for the dynamic range (every k-th of the split).

    Returns
    -------
    Domain
        Without ``dyn_range`` (and a note saying so) when the training data cannot be read.
    """
    from .data import load_split

    cache = Path(run.path) / DOMAIN_FILE
    desc = run.info.get("data", {})
    map_size = int(desc.get("model_map_size", desc.get("map_size", run.image_size)))
    zoom = tuple(ZOOM_RANGE) if "zoom" in run.config.augment else (1.0, 1.0)
    files = _data_files(run.config)
    if cache.is_file():
        d = json.loads(cache.read_text())
        if d.get("map_size") == map_size and d.get("image_size") == run.image_size:
            return Domain(d["box_pc"], map_size, run.image_size, tuple(d["zoom"]),
                          None if d["dyn_range_dex"] is None else tuple(d["dyn_range_dex"]),
                          None if d["level_log10_g_cm2"] is None else tuple(d["level_log10_g_cm2"]),
                          d["normalisation"], d["notes"])
    notes = []
    box = _box_pc(files[0]) if files else None
    if box is None:
        box = DEFAULT_BOX_PC
        notes.append(f"training box side not readable from the data; taken as turbsim's {DEFAULT_BOX_PC:g} pc")
    dyn = level = None
    stds, means = [], []
    for f in files:
        try:
            ms = load_split(f, "train")
        except DataError as exc:
            notes.append(f"dynamic range not checked: {exc}")
            continue
        maps = ms.maps[:: max(1, len(ms.maps) // sample_sims)]
        if run.normaliser.lowpass_k is not None:
            maps = lowpass_maps(maps, run.normaliser.lowpass_k)
        size = run.image_size if run.full_maps else 2 * run.image_size
        logm = observe.log_column(resample_maps(maps, size))
        imgs, _ = observe.study_images(logm, augment_maps=not run.full_maps)
        s, m = image_statistics(imgs)
        stds.append(s), means.append(m)
    if stds:
        s, m = np.concatenate(stds), np.concatenate(means)
        dyn, level = (float(s.min()), float(s.max())), (float(m.min()), float(m.max()))
    dom = Domain(box, map_size, run.image_size, zoom, dyn, level, run.normaliser.kind, notes)
    try:
        from .rundir import write_json

        write_json(cache, dom.to_dict())
    except OSError:
        pass
    return dom


@dataclass
class MapPrediction:
    """Per-tile predictions on a map (arrays on the grid of tiles, NaN where not predicted)."""

    value: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    flag: np.ndarray
    tiles: lfits.Tiles
    summary: dict


FLAGS = {0: "predicted", 1: "too many masked pixels", 2: "dynamic range outside the training range",
         3: "level outside the training range (global normalisation)"}


def check_scale(dom: Domain, pix_pc: float, tile_pc: float, shape, source: str) -> int:
    """Tile side in map pixels, after checking the scale against the domain.

    Raises
    ------
    DomainError
        Tile size outside the trained zoom range, map pixels coarser than the model's
        (resolution the model would have to invent), or a map smaller than one tile.
    """
    zlo, zhi = dom.zoom
    z = tile_pc / dom.fov_pc
    if z < zlo * (1 - SCALE_TOL) or z > zhi * (1 + SCALE_TOL):
        rng = f"{dom.fov_pc * zlo:.4g} pc" if zlo == zhi else f"{dom.fov_pc * zlo:.4g}-{dom.fov_pc * zhi:.4g} pc"
        raise DomainError(f"{source}: tile size {tile_pc:.4g} pc is {z:.3g} x the model's field of view "
                          f"{dom.fov_pc:.4g} pc; it was trained on tiles of {rng} (zoom {zlo:g}-{zhi:g})")
    tile_px = int(round(tile_pc / pix_pc))
    model_px = tile_pc / dom.image_size  # [pc] per model pixel
    ratio = tile_px / dom.image_size  # > 1: map pixels finer than the model's (reduced, fine)
    if ratio < zlo * (1 - SCALE_TOL):
        raise DomainError(f"{source}: pixel scale {pix_pc:.4g} pc is {pix_pc / model_px:.3g} x coarser than the model's "
                          f"{model_px:.4g} pc per input pixel (a {tile_pc:.4g} pc tile would be {tile_pc / pix_pc:.3g} "
                          f"map pixels for {dom.image_size} input pixels); the model never saw maps that coarse")
    ny, nx = shape
    if tile_px > min(ny, nx):
        raise DomainError(f"{source}: the map is {nx} x {ny} pixels = {nx * pix_pc:.4g} x {ny * pix_pc:.4g} pc, "
                          f"smaller than one {tile_pc:.4g} pc tile ({tile_px} pixels)")
    return tile_px


def lowpass_tiles(log_images: np.ndarray, cycles_per_px: float) -> np.ndarray:
    """Non-periodic tiles (log10 Σ) with every Fourier mode above a frequency removed.

    Each tile is mirrored into a periodic image of twice its side (no edge jump), cut
    sharply at ``cycles_per_px`` [cycles per pixel] on the linear Σ, and cropped back.
    """
    x = 10 ** np.asarray(log_images, np.float64)
    s = x.shape[-1]
    big = np.concatenate([x, x[:, ::-1]], axis=1)
    big = np.concatenate([big, big[:, :, ::-1]], axis=2)
    f = np.fft.fftfreq(2 * s)
    keep = np.hypot(f[:, None], np.fft.rfftfreq(2 * s)[None, :]) <= cycles_per_px + 1e-12
    out = np.fft.irfft2(np.fft.rfft2(big) * keep, s=(2 * s, 2 * s))[:, :s, :s]
    return np.log10(np.maximum(out, 1e-6 * x.mean(axis=(1, 2), keepdims=True))).astype(np.float32)


def _d4_stack(x: np.ndarray) -> np.ndarray:
    """The 8 rotations and reflections of images ``(T, S, S)``: ``(8, T, S, S)``."""
    out = []
    for xf in (x, x[:, :, ::-1]):
        for k in range(4):
            out.append(np.rot90(xf, k, axes=(1, 2)))
    return np.ascontiguousarray(np.stack(out))


def tile_outputs(run, log_images: np.ndarray) -> dict:
    """Predictions of one run for tiles under the 8 symmetries of the square.

    Returns
    -------
    dict
        Classification: ``p`` (8, T) P(Burgers); regression: ``n`` (8, T) and, with an
        uncertainty head, ``n_std`` (8, T).
    """
    from .metrics import softmax

    imgs = run.normaliser(log_images)
    stack = _d4_stack(imgs)
    t = len(imgs)
    out = run.predict(stack.reshape((-1,) + imgs.shape[1:]), symmetrize=False)
    if run.config.task == "classify":
        return {"p": softmax(out)[:, 1].reshape(8, t)}
    res = {"n": run.scaler.decode(out[:, 0]).reshape(8, t)}
    if run.config.uncertainty:
        res["n_std"] = (np.exp(0.5 * np.clip(out[:, 1].astype(np.float64), -12, 12)) * run.scaler.std).reshape(8, t)
    return res


def predict_map(runs, fmap: lfits.FitsMap, *, distance_pc: float | None = None, pixel_scale_pc: float | None = None,
                tile_pc: float | None = None, min_valid: float = MIN_VALID, extrapolate: bool = False) -> MapPrediction:
    """Per-tile predictions of one or more runs (an ensemble) on a map.

    Parameters
    ----------
    runs : list of learn.rundir.Run
        Runs of one task with the same input size and domain (the first's domain is used).
    fmap : learn.fits.FitsMap
    distance_pc, pixel_scale_pc : float, optional
        See :func:`learn.fits.pixel_scale_pc`.
    tile_pc : float, optional
        Tile side [pc] (default: the model's field of view).
    min_valid : float
        Smallest share of usable pixels for a tile to be predicted.
    extrapolate : bool
        Predict a map whose dynamic range lies outside the training range anyway (the
        summary and the FITS header say so); scale and tile checks are never waived.

    Raises
    ------
    DomainError
        Scale, tile size or dynamic range outside the training domain (with the numbers).
    """
    runs = list(runs)
    run = runs[0]
    tasks = {r.config.task for r in runs}
    if len(tasks) > 1 or len({r.image_size for r in runs}) > 1:
        raise DataError("an ensemble of runs must share the task and the input size")
    dom = run_domain(run)
    pix = lfits.pixel_scale_pc(fmap, distance_pc=distance_pc, pixel_scale=pixel_scale_pc)
    tile_pc = dom.fov_pc if tile_pc is None else float(tile_pc)
    tile_px = check_scale(dom, pix, tile_pc, fmap.sigma.shape, fmap.path)
    tiles = lfits.tile_map(fmap.sigma, fmap.mask, tile_px, dom.image_size)
    if run.normaliser.lowpass_k is not None:  # the run's low-pass, at its physical wavenumber
        tiles.log_images = lowpass_tiles(tiles.log_images, run.normaliser.lowpass_k / dom.map_size)
    stds, means = image_statistics(tiles.log_images)
    flag = np.zeros(len(stds), np.int64)
    flag[tiles.valid_fraction < min_valid] = 1
    usable = flag == 0
    if not usable.any():
        raise DomainError(f"{fmap.path}: no tile has {min_valid:.0%} usable pixels (best "
                          f"{tiles.valid_fraction.max():.0%}); masked or NaN pixels cover too much of the map")
    refusal = None
    if dom.dyn_range is not None:
        lo, hi = dom.dyn_range[0] / DYN_TOL, dom.dyn_range[1] * DYN_TOL
        out = usable & ((stds < lo) | (stds > hi))
        med = float(np.median(stds[usable]))
        if out.sum() * 2 > usable.sum():
            how = f"{med / dom.dyn_range[1]:.3g} x the largest" if med > hi else f"{dom.dyn_range[0] / med:.3g} x below the smallest"
            refusal = (f"{fmap.path}: dynamic range (std of log10 column density per {tile_pc:.4g} pc tile) median "
                       f"{med:.4g} dex, {how} of the training images ({dom.dyn_range[0]:.4g}-{dom.dyn_range[1]:.4g} dex); "
                       f"{int(out.sum())} of {int(usable.sum())} tiles outside {lo:.4g}-{hi:.4g} dex")
        if not extrapolate:
            flag[out] = 2
    if dom.level is not None and dom.normalisation == "global":
        span = dom.level[1] - dom.level[0]
        lo, hi = dom.level[0] - max(span, 0.05), dom.level[1] + max(span, 0.05)
        outl = (flag == 0) & ((means < lo) | (means > hi))
        if outl.sum() * 2 > usable.sum() and refusal is None:
            refusal = (f"{fmap.path}: mean log10 Σ per tile median {float(np.median(means[usable])):.4g} "
                       f"(log10 g/cm^2) lies outside the training images' {dom.level[0]:.4g} to {dom.level[1]:.4g} "
                       "and the model (global normalisation) reads the level")
        if not extrapolate:
            flag[outl] = 3
    if refusal and not extrapolate:
        raise DomainError(refusal + "; refused (--extrapolate predicts anyway, marked as such)")
    pred = flag == 0
    gy, gx = tiles.grid
    value = np.full(len(flag), np.nan)
    sigma = np.full(len(flag), np.nan)
    task = run.config.task
    if pred.any():
        outs = [tile_outputs(r, tiles.log_images[pred]) for r in runs]
        key = "p" if task == "classify" else "n"
        allv = np.concatenate([o[key] for o in outs])  # (8R, T)
        value[pred] = allv.mean(axis=0)
        var = allv.var(axis=0)
        if task == "regress" and all("n_std" in o for o in outs):
            var = var + np.concatenate([o["n_std"] ** 2 for o in outs]).mean(axis=0)
        sigma[pred] = np.sqrt(var)
    grid = lambda a: a.reshape(gy, gx)  # noqa: E731
    quantity = "P(Burgers)" if task == "classify" else "n"
    okv = value[pred]
    summary = {
        "map": fmap.path, "bunit": fmap.bunit, "unit_kind": fmap.unit_kind,
        "runs": [str(r.path) for r in runs], "task": task, "quantity": quantity,
        "pixel_scale_pc": pix, "tile_pc": tile_px * pix, "tile_px": tile_px, "grid": [gy, gx],
        "domain": dom.to_dict(), "extrapolated": bool(refusal and extrapolate), "domain_warning": refusal,
        "n_tiles": int(len(flag)), "n_predicted": int(pred.sum()),
        "flags": {FLAGS[k]: int((flag == k).sum()) for k in FLAGS},
        "uncertainty": ("spread over the 8 rotations and reflections" + (f" and {len(runs)} runs" if len(runs) > 1 else "")
                        + (" with the predicted sigma in quadrature" if task == "regress" and run.config.uncertainty else "")),
        "mean": float(okv.mean()) if okv.size else None,
        "median": float(np.median(okv)) if okv.size else None,
        "tiles": [{"row": int(r), "col": int(c), "value": None if not math.isfinite(v) else float(v),
                   "sigma": None if not math.isfinite(s) else float(s), "valid_fraction": float(f),
                   "dyn_range_dex": float(sd), "flag": int(fl)}
                  for r, c, v, s, f, sd, fl in zip(tiles.rows, tiles.cols, value, sigma, tiles.valid_fraction, stds, flag)],
    }
    if task == "classify" and okv.size:
        summary["fraction_burgers"] = float((okv > 0.5).mean())
    return MapPrediction(grid(value), grid(sigma), grid(tiles.valid_fraction), grid(flag), tiles, summary)


def write_outputs(pred: MapPrediction, fmap: lfits.FitsMap, out_dir) -> dict:
    """Write ``prediction.fits``, ``overlay.png`` and ``summary.json`` into ``out_dir`` (atomically).

    The FITS primary HDU holds the per-tile value (``n`` or P(Burgers)) with the input's
    celestial WCS scaled to the tiles; extensions ``SIGMA`` (uncertainty), ``VALID``
    (share of usable pixels) and ``FLAG`` (0 predicted; see :data:`FLAGS`).

    Returns
    -------
    dict
        The summary, with the file names under ``files``.
    """
    from astropy.io import fits

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = pred.summary
    w = lfits.tile_wcs(fmap.wcs, pred.tiles.tile_px, pred.tiles.origin)
    hdr = w.to_header() if w is not None else fits.Header()
    hdr["BUNIT"] = ("" if s["task"] == "regress" else "probability", "")
    hdr["QUANTITY"] = (s["quantity"], "per-tile prediction")
    hdr["TILEPC"] = (s["tile_pc"], "tile side [pc]")
    hdr["TILEPX"] = (s["tile_px"], "tile side [input pixels]")
    hdr["PIXPC"] = (s["pixel_scale_pc"], "input pixel side [pc]")
    hdr["EXTRAPOL"] = (bool(s["extrapolated"]), "predicted outside the training domain")
    hdus = [fits.PrimaryHDU(pred.value.astype(np.float32), hdr)]
    for name, arr, dt in (("SIGMA", pred.sigma, np.float32), ("VALID", pred.valid, np.float32),
                          ("FLAG", pred.flag, np.int16)):
        hdus.append(fits.ImageHDU(arr.astype(dt), hdr.copy(), name=name))
    with atomic_path(out / "prediction.fits") as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    plot_overlay(pred, fmap, out / "overlay.png")
    s = {**s, "files": ["prediction.fits", "overlay.png", "summary.json"]}
    from .rundir import write_json

    write_json(out / "summary.json", s)
    return s


def plot_overlay(pred: MapPrediction, fmap: lfits.FitsMap, path: Path) -> None:
    """The map (log10 Σ) with each predicted tile outlined and labelled with its value ± σ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    s = pred.summary
    t, (oy, ox) = pred.tiles.tile_px, pred.tiles.origin
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(np.log10(fmap.sigma), origin="lower", cmap="gray")
    fig.colorbar(im, ax=ax, label="log10 Σ [g/cm$^2$]")
    cmap = plt.get_cmap("coolwarm")
    vals = pred.value[np.isfinite(pred.value)]
    lo, hi = (0.0, 1.0) if s["task"] == "classify" else ((vals.min(), vals.max() + 1e-9) if vals.size else (0, 1))
    for r in range(pred.value.shape[0]):
        for c in range(pred.value.shape[1]):
            v, e = pred.value[r, c], pred.sigma[r, c]
            x0, y0 = ox + c * t - 0.5, oy + r * t - 0.5
            ok = np.isfinite(v)
            col = cmap((v - lo) / (hi - lo)) if ok else (0.5, 0.5, 0.5, 1)
            ax.add_patch(Rectangle((x0, y0), t, t, fill=ok, alpha=0.35 if ok else 1, facecolor=col, edgecolor=col, lw=1))
            if ok:
                ax.text(x0 + t / 2, y0 + t / 2, f"{v:.2f}\n±{e:.2f}", ha="center", va="center", fontsize=7)
    ax.set_title(f"{s['quantity']} per {s['tile_pc']:.3g} pc tile ({s['n_predicted']} of {s['n_tiles']} predicted)"
                 + (" EXTRAPOLATED" if s["extrapolated"] else ""), fontsize=9)
    ax.set_xlabel(f"pixel ({s['pixel_scale_pc']:.3g} pc)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
