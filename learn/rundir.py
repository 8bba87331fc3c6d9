"""The run directory: its files, its checkpoints, and loading a trained run back.

A run directory (``workdir``) holds

* ``run.json``: configuration, data description, normalisation, image size, versions;
* ``checkpoints/latest`` and ``checkpoints/best`` (orbax, written every epoch): the state
  arrays (parameters, batch statistics, optimiser state) in tree order and a JSON record
  of the training progress (:class:`Checkpoints`);
* ``history.csv`` and ``curves.png``: loss and metric per epoch, training and validation
  (the CSV also holds the mean learning rate of the epoch's steps);
* ``train_summary.json``; with ``refit_readout`` ``readout.npz`` (:mod:`learn.readout`);
* after evaluation ``metrics.json``, ``eval/NAME/`` and ``report.html``.

Every file is written to a temporary name and renamed when complete.
:func:`load_run` gives a :class:`Run`: the trained model with what is needed to feed it.

Examples
--------
>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> write_json(d / "x.json", {"n": np.int64(3), "v": np.float32(0.5)})
>>> (d / "x.json").read_text()
'{\\n  "n": 3,\\n  "v": 0.5\\n}\\n'
>>> load_run(d)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
learn.rundir.RunError: ...: not a training run directory (no run.json)
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from turbsim.atomic import atomic_path

from . import readout as lreadout
from .config import TrainConfig, model_and_optimizer
from .figures import plot_curves
from .predict import predict
from .transforms import Normaliser, TargetScaler

RUN_FILE = "run.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
SUMMARY_FILE = "train_summary.json"
READOUT_FILE = "readout.npz"
CKPT_DIR = "checkpoints"
HISTORY_FIELDS = ("epoch", "train_loss", "train_metric", "val_loss", "val_metric", "learning_rate", "images_per_s",
                  "epoch_s")


class RunError(RuntimeError):
    """A run directory cannot be used as asked (names the directory and the problem)."""


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def json_default(o):
    """JSON form of numpy scalars and arrays (``json.dumps(..., default=json_default)``)."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (indented; numpy scalars and arrays as numbers and lists)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=json_default) + "\n")


def versions() -> dict:
    """Versions of the learning stack (``None`` for a package that is not installed)."""
    import importlib.metadata as md

    out = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "turbsim"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def write_history(workdir: Path, history: list[dict], task: str) -> None:
    """Learning curves: ``history.csv`` (:data:`HISTORY_FIELDS`) and ``curves.png`` (atomic)."""
    with atomic_path(workdir / HISTORY_FILE) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)
    if history:
        plot_curves(history, task, workdir / CURVES_FILE)


def check_workdir(workdir: Path, info: dict) -> None:
    """Refuse a run directory that holds a run of another configuration.

    Raises
    ------
    RunError
        ``workdir/run.json`` exists with a different configuration (the fields are named).
    """
    path = workdir / RUN_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("config") != info["config"]:
            diff = sorted(k for k in set(old.get("config", {})) | set(info["config"])
                          if old.get("config", {}).get(k) != info["config"].get(k))
            raise RunError(f"{workdir} holds a run with a different configuration (fields {diff}); "
                           "use a new output directory or the same options to resume")


# --------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------
def _ocp():
    import orbax.checkpoint as ocp

    return ocp


def checkpoint_manager(path: Path):
    """An orbax manager of one checkpoint folder (synchronous, keeps the last checkpoint only)."""
    ocp = _ocp()
    opts = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(path.absolute(), options=opts)


def save_checkpoint(mngr, step: int, state, meta: dict) -> None:
    """Save the state arrays (flattened, in tree order) and a JSON record atomically."""
    ocp = _ocp()
    leaves = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)),
              force=True)
    mngr.wait_until_finished()


def restore_checkpoint(mngr, like_state, step: int | None = None):
    """Restore ``(state, meta)`` from a manager, shaped like ``like_state``; None if empty.

    Raises
    ------
    RunError
        The checkpoint holds arrays of other shapes (another model).
    """
    ocp = _ocp()
    step = mngr.latest_step() if step is None else step
    if step is None:
        return None
    got = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    leaves, treedef = jax.tree.flatten(like_state)
    arrays = [np.asarray(got.state[f"{i:05d}"]) for i in range(len(leaves))]
    if len(got.state) != len(leaves) or any(a.shape != np.shape(b) for a, b in zip(arrays, leaves)):
        raise RunError(f"{mngr.directory}: checkpoint does not match the model of this run")
    return jax.tree.unflatten(treedef, arrays), dict(got.meta)


class Checkpoints:
    """The two checkpoints of a run directory: the latest epoch's and the best one's.

    Parameters
    ----------
    workdir : Path
        Run directory (``checkpoints/latest`` and ``checkpoints/best`` are created).
    """

    def __init__(self, workdir: Path):
        self.latest = checkpoint_manager(Path(workdir) / CKPT_DIR / "latest")
        self.best = checkpoint_manager(Path(workdir) / CKPT_DIR / "best")

    def restore(self, like_state):
        """``(state, meta)`` of the latest checkpoint, shaped like ``like_state``; None if none."""
        return restore_checkpoint(self.latest, like_state)

    def save(self, epoch: int, state, meta: dict, *, best: bool) -> None:
        """Save an epoch's state and record as the latest checkpoint (and as the best one)."""
        if best:
            save_checkpoint(self.best, epoch, state, meta)
        save_checkpoint(self.latest, epoch, state, meta)


# --------------------------------------------------------------------------------------
# loading a trained run
# --------------------------------------------------------------------------------------
@dataclass
class Run:
    """A trained model with what is needed to feed it.

    Attributes
    ----------
    model : nnx.Module
        In eval mode, best (lowest validation loss) parameters.
    config : TrainConfig
    normaliser : learn.transforms.Normaliser
    scaler : learn.transforms.TargetScaler or None
    image_size : int
        Input side [pixels].
    full_maps : bool
        Trained on whole maps (no quadrants or crops).
    info : dict
        Contents of ``run.json``.
    path : Path
    """

    model: nnx.Module
    config: TrainConfig
    normaliser: Normaliser
    scaler: TargetScaler | None
    image_size: int
    full_maps: bool
    info: dict
    path: Path

    def predict(self, images: np.ndarray, **kw) -> np.ndarray:
        """Raw outputs (logits, or standardised mean [and log-variance]) for normalised images.

        Keywords as :func:`learn.predict.predict`. Averaged over the images' rotations and
        reflections if the run's configuration says ``symmetrize`` (unless the keyword
        overrides it).
        """
        kw.setdefault("symmetrize", self.config.symmetrize)
        return predict(self.model, images, **kw)


def load_run(run_dir, *, which: str = "best", readout: bool = True) -> Run:
    """Load a trained run for prediction.

    Parameters
    ----------
    run_dir : path-like
        Directory written by :func:`learn.train.train_and_evaluate`.
    which : {"best", "latest"}
        Checkpoint to load.
    readout : bool
        Install the refitted readout of a ``refit_readout`` run (default True); False
        gives the network with its trained head.

    Raises
    ------
    RunError
        Not a run directory, no checkpoint, or a ``refit_readout`` run whose readout has
        not been fitted yet.
    """
    run_dir = Path(run_dir)
    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise RunError(f"{run_dir}: not a training run directory (no {RUN_FILE})")
    info = json.loads(info_path.read_text())
    config = TrainConfig.from_dict(info["config"])
    model, opt = model_and_optimizer(config, info["image_size"], info["steps_per_epoch"])
    like = nnx.state((model, opt))
    ckdir = run_dir / CKPT_DIR / which
    got = restore_checkpoint(checkpoint_manager(ckdir), like) if ckdir.is_dir() else None
    if got is None:
        raise RunError(f"{run_dir}: no {which} checkpoint yet")
    nnx.update((model, opt), got[0])
    if config.refit_readout and readout:
        path = run_dir / READOUT_FILE
        if not path.is_file():
            raise RunError(f"{run_dir}: the readout is not refitted yet (no {READOUT_FILE}); rerun the training "
                           "command to finish the run")
        fitted = lreadout.Readout.load(path)
        model.set_readout(fitted.weights, fitted.bias)
    model.eval()
    scaler = TargetScaler(**info["scaler"]) if info.get("scaler") else None
    return Run(model, config, Normaliser(**info["normaliser"]), scaler, info["image_size"],
               bool(info.get("full_maps", False)), info, run_dir)


def final_state(workdir, which: str = "latest") -> list[np.ndarray]:
    """The parameter arrays of a run's checkpoint, in tree order (for comparisons)."""
    run = load_run(workdir, which=which)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(run.model, nnx.Param))]
