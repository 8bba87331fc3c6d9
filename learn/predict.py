"""Predictions of a model on many images: batched, sharded over the devices, optionally symmetrized.

:func:`predict` runs a model (in eval mode) over an image stack in fixed-size padded
batches, the batch axis sharded over the local devices (:class:`Sharding`), through one
jitted program per graph and input shape (:func:`make_predict_call`). With
``symmetrize`` the outputs are averaged over the 8 rotations and reflections of each image
(:func:`dihedral_mean`).

``python -m learn.predict RUN_DIR MAP.fits --out DIR`` points a trained run at an
observed column-density map (FITS): the map is tiled into the model's field of view in
physical units and predicted per tile with an uncertainty (:func:`learn.sky.predict_map`;
reading, units and WCS in :mod:`learn.fits`). A map outside the training domain (pixel
scale, tile size, dynamic range) is refused with the numbers.

Examples
--------
>>> import jax.numpy as jnp
>>> x = jnp.arange(8.0).reshape(2, 2, 2)
>>> dihedral_mean(lambda x: x[:, 0, 0], x).tolist()  # the mean of the 4 corners
[1.5, 5.5]
"""
from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from turbsim.console import configure_logging
from turbsim.console import progress as progress_bar


def dihedral_mean(f: Callable, x: jax.Array) -> jax.Array:
    """Mean of ``f`` over the 8 rotations and reflections (group D4) of square images.

    Parameters
    ----------
    f : callable
        Batch function, ``(B, N, N[, C]) -> (B, ...)``.
    x : jax.Array, shape (B, N, N) or (B, N, N, C)

    Returns
    -------
    jax.Array
        ``mean_g f(g x)``: a function invariant under the group (exactly, up to rounding).
    """
    if x.shape[1] != x.shape[2]:
        raise ValueError(f"symmetrized predictions need square images, got {x.shape[1]}x{x.shape[2]}")
    total = 0.0
    for xf in (x, jnp.flip(x, axis=2)):
        for k in range(4):
            total = total + f(jnp.rot90(xf, k, axes=(1, 2)))
    return total / 8.0


@partial(jax.jit, static_argnums=0, static_argnames=("features", "symmetrize"))
def _apply(graphdef, model_state, x, features=False, symmetrize=False):
    """Outputs (or ``features``) of the model ``graphdef`` with arrays ``model_state`` on a batch ``x``."""
    model = nnx.merge(graphdef, model_state)
    f = model.features if features else model
    return dihedral_mean(f, x) if symmetrize else f(x)


def make_predict_call(graphdef, features: bool = False, symmetrize: bool = False) -> Callable:
    """Jitted ``predict(model_state, x) -> outputs`` of a model graph (in eval mode).

    The graph is a static argument of one module-level jitted function, so every call
    for an equal graph and input shape reuses one compiled program (validation each
    epoch and every evaluation compile it once, not once per call). With ``features`` the
    call returns the model's ``features(x)`` instead (the pyramid's log energies); with
    ``symmetrize`` their mean over the images' rotations and reflections
    (:func:`dihedral_mean`).
    """
    return partial(_apply, graphdef, features=features, symmetrize=symmetrize)


class Sharding:
    """Data parallelism over the local devices: batch axis sharded, state replicated.

    Parameters
    ----------
    devices : list of jax devices, optional
        Devices of the one-axis (``"data"``) mesh (default: all local devices).
    """

    def __init__(self, devices=None):
        self.devices = list(devices if devices is not None else jax.local_devices())
        self.mesh = jax.sharding.Mesh(np.array(self.devices), ("data",))
        self.replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
        self.n = len(self.devices)

    def batch(self, axis: int, ndim: int) -> jax.sharding.NamedSharding:
        """Sharding of an ``ndim``-dimensional array split over the devices along ``axis``."""
        spec = [None] * ndim
        spec[axis] = "data"
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec(*spec))

    def put_state(self, state):
        """The state (any pytree of arrays) replicated on every device."""
        return jax.device_put(state, self.replicated)

    def put_batch(self, x: np.ndarray, axis: int):
        """A batch split over the devices along ``axis`` (its length divisible by their number)."""
        return jax.device_put(x, self.batch(axis, x.ndim))


def eval_split(model: nnx.Module):
    """``nnx.split`` of an eval-mode view of a model; the model itself keeps its mode.

    The view shares the model's arrays (nothing is copied); only its modes differ
    (dropout off, batch statistics from the running averages).

    Returns
    -------
    graphdef : nnx.GraphDef
    state : nnx.State
    """
    view = nnx.merge(*nnx.split(model))
    view.eval()
    return nnx.split(view)


def predict(model: nnx.Module, images: np.ndarray, *, batch_size: int = 256, sharding: Sharding | None = None,
            progress: bool = False, features: bool = False, symmetrize: bool = False) -> np.ndarray:
    """Raw model outputs for many images (in eval mode, padded fixed-size batches).

    The model is evaluated in eval mode whatever its own mode, which is left as it was
    (:func:`eval_split`): a model in training mode stays in training mode.

    Parameters
    ----------
    model : nnx.Module
    images : ndarray, shape (M, H, W)
        Normalised images.
    batch_size : int
    sharding : Sharding, optional
        Devices (default: all local devices).
    features : bool
        Return ``model.features`` (e.g. the pyramid's log energies) instead of the outputs.
    symmetrize : bool
        Average over the 8 rotations and reflections of every (square) image.
    progress : bool
        Show a progress bar (:func:`turbsim.console.progress`: plain lines when redirected,
        none for a call that ends within 2 s).

    Returns
    -------
    ndarray, float32, shape (M, n_out) (or (M, n_features))
    """
    sharding = sharding or Sharding()
    bs = -(-min(batch_size, max(len(images), 1)) // sharding.n) * sharding.n
    graphdef, mstate = eval_split(model)
    call = make_predict_call(graphdef, features, symmetrize)
    mstate = sharding.put_state(mstate)
    outs = []
    for start in progress_bar(range(0, len(images), bs), desc="predict", unit="batch", disable=not progress,
                              leave=False, min_time=2):
        x = images[start:start + bs]
        pad = bs - len(x)
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        outs.append(np.asarray(call(mstate, sharding.put_batch(x, 0)))[: bs - pad])
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------------------
# the command line: a trained run on an observed map (FITS)
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m learn.predict``."""
    from turbsim.console import ArgumentParser

    p = ArgumentParser(
        prog="python -m learn.predict", short_usage="RUN_DIR MAP.fits --out DIR [options]",
        description="Predict the spectral index n (a regression run) or P(Burgers) (a classifier) per tile of an "
                    "observed column-density map (FITS; BUNIT N(H2) in cm^-2 or a surface density such as g/cm2; "
                    "NaN or masked pixels allowed). The map is cut into tiles of the model's field of view in "
                    "physical units (pixel scale from the WCS and --distance, or --pixel-scale-pc); each tile is "
                    "predicted under the 8 rotations and reflections (and by every --also run), their spread "
                    "being the uncertainty. Writes prediction.fits (per-tile values with the map's WCS), "
                    "overlay.png and summary.json into --out. Maps outside what the model was trained on (pixel "
                    "scale, tile size, dynamic range) are refused with the numbers.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="trained run directory (python -m learn.fit)")
    p.add_argument("map", metavar="MAP.fits", help="column-density map (FITS)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--distance", type=float, metavar="PC", help="distance of the cloud [pc] (with a WCS in angles)")
    p.add_argument("--pixel-scale-pc", type=float, metavar="PC", help="pixel side [pc] (instead of WCS and distance)")
    p.add_argument("--tile-pc", type=float, metavar="PC",
                   help="tile side [pc] (default: the model's field of view: 5 pc for quadrant images of the 10 pc box)")
    p.add_argument("--also", nargs="*", default=[], metavar="RUN_DIR",
                   help="more runs of the same task and input size: an ensemble whose spread adds to the uncertainty")
    p.add_argument("--hdu", default=None, help="HDU to read (index or name; default the first image)")
    p.add_argument("--min-valid", type=float, default=0.9, metavar="F",
                   help="smallest share of usable (finite, positive, unmasked) pixels for a tile to be predicted, "
                        "in (0, 1] (default 0.9)")
    p.add_argument("--extrapolate", action="store_true",
                   help="predict a map whose dynamic range lies outside the training range anyway (marked in every "
                        "output); scale and tile checks are never waived")
    p.add_output_options(json="print the summary as one JSON line", progress=False)
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments, data or map)."""
    from . import fits as lfits
    from . import sky
    from .rundir import RunError, load_run
    from .transforms import DataError

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    hdu = int(args.hdu) if args.hdu is not None and args.hdu.isdigit() else args.hdu
    try:
        runs = [load_run(d) for d in [args.run_dir, *args.also]]
        fmap = lfits.read_map(args.map, hdu=hdu)
        pred = sky.predict_map(runs, fmap, distance_pc=args.distance, pixel_scale_pc=args.pixel_scale_pc,
                               tile_pc=args.tile_pc, min_valid=args.min_valid, extrapolate=args.extrapolate)
        summary = sky.write_outputs(pred, fmap, args.out)
    except (DataError, RunError, ValueError) as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "tiles"}))
    else:
        q = summary["quantity"]
        print(f"{summary['map']}: {summary['n_predicted']} of {summary['n_tiles']} tiles of {summary['tile_pc']:.3g} pc "
              f"predicted; {q} mean {summary['mean']:.3f}, median {summary['median']:.3f}"
              + (" (EXTRAPOLATED: " + summary["domain_warning"] + ")" if summary["extrapolated"] else ""))
        print(f"wrote {args.out}/prediction.fits, overlay.png, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
