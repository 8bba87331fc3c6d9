"""The run directory: its files, its checkpoints, and loading a trained run back.

A run directory (``workdir``) holds

* ``run.json``: configuration, data description, normalisation, image size, versions;
* ``checkpoints/latest`` and ``checkpoints/best`` (orbax, written every epoch, the last
  :data:`KEEP` of each kept): the state arrays (parameters, batch statistics, optimiser
  state) in tree order, a JSON record of the training progress, and the SHA-256 of every
  file (:data:`CHECKSUMS_FILE`), so a damaged checkpoint is found and named before it is
  read, moved to ``checkpoints/damaged/``, and the one before it used (:class:`Checkpoints`);
* ``history.csv`` and ``curves.png``: loss and metric per epoch, training and validation
  (the CSV, written every epoch, also holds the mean learning rate of the epoch's steps;
  the figure is drawn after the first and the last epoch and at most every
  ``learn.train.PLOT_EVERY_S`` seconds in between);
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
import gc
import hashlib
import json
import logging
import re
import shutil
import sys
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

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
SUMMARY_FILE = "train_summary.json"
READOUT_FILE = "readout.npz"
CKPT_DIR = "checkpoints"
HISTORY_FIELDS = ("epoch", "train_loss", "train_metric", "val_loss", "val_metric", "learning_rate", "images_per_s",
                  "epoch_s", "data_wait_s", "data_wait_fraction")


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


def write_history(workdir: Path, history: list[dict], task: str, *, plot: bool = True) -> None:
    """Learning curves: ``history.csv`` (:data:`HISTORY_FIELDS`) and, with ``plot``, ``curves.png`` (atomic)."""
    with atomic_path(workdir / HISTORY_FILE) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)
    if history and plot:
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
KEEP = 2
"""Checkpoints kept per folder: a damaged newest one falls back to the one before."""
CHECKSUMS_FILE = "checksums.json"
"""SHA-256 of every file of a checkpoint, written beside them once the checkpoint is complete."""
DAMAGED_DIR = "damaged"
"""Folder of ``checkpoints/`` where damaged checkpoints are moved (kept for inspection)."""


class CheckpointError(RunError):
    """A checkpoint is damaged or unreadable (names the file or folder and the problem)."""


def _ocp():
    import orbax.checkpoint as ocp

    return ocp


def checkpoint_manager(path: Path):
    """An orbax manager of one checkpoint folder (synchronous, keeps the last :data:`KEEP`)."""
    ocp = _ocp()
    opts = ocp.CheckpointManagerOptions(max_to_keep=KEEP, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(Path(path).absolute(), options=opts)


def checkpoint_steps(folder: Path) -> list[int]:
    """The steps (epochs) of the complete checkpoints in a folder, ascending.

    Orbax writes a checkpoint under a temporary name and renames it to its step when
    complete, so only folders named by an integer count.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE)


def write_checksums(step_dir: Path) -> None:
    """Record the SHA-256 of every file of a complete checkpoint (:data:`CHECKSUMS_FILE`, atomic)."""
    step_dir = Path(step_dir)
    write_json(step_dir / CHECKSUMS_FILE, {p.relative_to(step_dir).as_posix(): _sha256(p) for p in _files(step_dir)})


def checkpoint_problem(step_dir: Path) -> str | None:
    """What is wrong with a checkpoint's files, against its checksums.

    Returns
    -------
    str or None
        The first damaged or missing file and what is wrong with it; None if every file
        is as written, or if the checkpoint has no checksums (written before they
        existed, or interrupted before they were recorded: orbax then decides).
    """
    step_dir = Path(step_dir)
    manifest = step_dir / CHECKSUMS_FILE
    if not manifest.is_file():
        return None
    try:
        want = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return f"{manifest}: its checksum list is unreadable"
    for rel, digest in want.items():
        f = step_dir / rel
        if not f.is_file():
            return f"{f}: missing"
        if _sha256(f) != digest:
            return f"{f}: damaged (its bytes differ from those written)"
    return None


def save_checkpoint(mngr, step: int, state, meta: dict) -> None:
    """Save the state arrays (flattened, in tree order) and a JSON record, then their checksums.

    A checkpoint of the same step already in the folder (an epoch trained again after a
    fall-back) is replaced.
    """
    ocp = _ocp()
    if step in mngr.all_steps():
        mngr.delete(step)
    leaves = {f"{i:05d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(meta)),
              force=True)
    mngr.wait_until_finished()
    write_checksums(Path(mngr.directory) / str(step))


def _drop_event_loop_echoes(unraisable) -> None:
    """``sys.unraisablehook`` dropping tensorstore's ``Event loop is closed`` echoes (see below)."""
    if not (isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)):
        _drop_event_loop_echoes.previous(unraisable)


def _keep_log(record: logging.LogRecord) -> bool:
    return "exception was never retrieved" not in record.getMessage()


def _silence_read_failure_echoes() -> None:
    """Silence the echoes of a failed orbax read, which is raised and named on its own.

    When orbax fails to read a damaged checkpoint, tensorstore's pending callbacks report
    ``RuntimeError: Event loop is closed`` through ``sys.unraisablehook``, from its own
    threads, during the failure and for a while after it, and asyncio logs "Task exception
    was never retrieved" with the raw error text. A hook that drops only these is
    installed once, before a checkpoint without checksums is read (everything else passes
    through).
    """
    if sys.unraisablehook is not _drop_event_loop_echoes:
        _drop_event_loop_echoes.previous = sys.unraisablehook
        sys.unraisablehook = _drop_event_loop_echoes
        logging.getLogger("asyncio").addFilter(_keep_log)


def _read_failure(step_dir: Path, exc: Exception) -> str:
    """One line for an orbax read failure: the file tensorstore names if any, else the folder."""
    text = str(exc).strip()
    files = [f for f in re.findall(r'local file "([^"]+)"', text) if not f.endswith("/")]
    code = re.match(r"([A-Z_]{4,}):", text)
    what = code.group(1) if code else type(exc).__name__
    if files:
        return f"{files[-1]}: damaged or unreadable (orbax reading the checkpoint {step_dir}: {what})"
    first = (text.splitlines() or [""])[0][:160]
    return f"{step_dir}: unreadable checkpoint ({what}{': ' + first if first and not code else ''})"


def restore_step(step_dir: Path, like_state):
    """``(state, meta)`` of one checkpoint folder, shaped like ``like_state``.

    The files are checked against their checksums first (:func:`checkpoint_problem`), so
    damaged bytes are named without orbax reading them.

    Raises
    ------
    CheckpointError
        A file is damaged or missing, or orbax cannot read the checkpoint.
    RunError
        The checkpoint holds arrays of other shapes (another model).
    """
    ocp = _ocp()
    step_dir = Path(step_dir).absolute()
    problem = checkpoint_problem(step_dir)
    if problem:
        raise CheckpointError(problem)
    if not (step_dir / CHECKSUMS_FILE).is_file():  # unverified: orbax may fail on damaged bytes
        _silence_read_failure_echoes()
    try:
        got = ocp.Checkpointer(ocp.CompositeCheckpointHandler()).restore(
            step_dir, args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    except Exception as exc:  # noqa: BLE001 (orbax and tensorstore raise many kinds; named below)
        gc.collect()  # the failed tasks are collected (and their log records dropped) now
        raise CheckpointError(_read_failure(step_dir, exc)) from None
    leaves, treedef = jax.tree.flatten(like_state)
    if len(got.state) != len(leaves):
        raise RunError(f"{step_dir}: checkpoint does not match the model of this run")
    arrays = [np.asarray(got.state[f"{i:05d}"]) for i in range(len(leaves))]
    if any(a.shape != np.shape(b) for a, b in zip(arrays, leaves)):
        raise RunError(f"{step_dir}: checkpoint does not match the model of this run")
    return jax.tree.unflatten(treedef, arrays), dict(got.meta)


def restore_checkpoint(mngr, like_state, step: int | None = None):
    """Restore ``(state, meta)`` from a manager's folder (default: its newest step); None if empty.

    Raises
    ------
    CheckpointError, RunError
        As :func:`restore_step`.
    """
    steps = checkpoint_steps(mngr.directory)
    step = (steps[-1] if steps else None) if step is None else step
    if step is None:
        return None
    return restore_step(Path(mngr.directory) / str(step), like_state)


class Checkpoints:
    """The checkpoints of a run directory: the latest epochs' and the best ones (:data:`KEEP` each).

    Parameters
    ----------
    workdir : Path
        Run directory (``checkpoints/latest`` and ``checkpoints/best`` are created).
    """

    def __init__(self, workdir: Path):
        self.root = Path(workdir) / CKPT_DIR
        self.dirs = {"latest": self.root / "latest", "best": self.root / "best"}
        self._managers: dict = {}

    def _manager(self, which: str):
        if which not in self._managers:  # created after restore() has moved damaged checkpoints away
            self._managers[which] = checkpoint_manager(self.dirs[which])
        return self._managers[which]

    def _set_aside(self, which: str, step: int) -> Path:
        """Move a damaged checkpoint to ``checkpoints/damaged/<which>-<step>`` (kept, out of the way)."""
        dest = self.root / DAMAGED_DIR / f"{which}-{step}"
        k = 1
        while dest.exists():
            k += 1
            dest = self.root / DAMAGED_DIR / f"{which}-{step}.{k}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        (self.dirs[which] / str(step)).rename(dest)
        return dest

    def restore(self, like_state):
        """``(state, meta)`` of the newest intact latest checkpoint, shaped like ``like_state``.

        A damaged checkpoint is moved to ``checkpoints/damaged/`` with a warning naming
        the damaged file, and the one before it is used: training then repeats the lost
        epochs, with the same result (the run is deterministic). Best checkpoints of
        epochs after the one resumed from are dropped (training saves them again).

        Returns
        -------
        tuple or None
            None if there is no checkpoint yet.

        Raises
        ------
        RunError
            Every latest checkpoint is damaged (the first problem is named); they have been
            moved aside, so running the same command again trains from the first epoch.
        """
        damaged = []
        got, resumed = None, 0
        for step in reversed(checkpoint_steps(self.dirs["latest"])):
            try:
                got, resumed = restore_step(self.dirs["latest"] / str(step), like_state), step
                break
            except CheckpointError as exc:
                dest = self._set_aside("latest", step)
                damaged.append(str(exc))
                log.warning("%s; the checkpoint of epoch %d was moved to %s and training resumes from the "
                            "checkpoint before it", exc, step, dest)
        if got is None and damaged:
            raise RunError(f"{damaged[0]}; no intact checkpoint to resume from (the damaged ones were moved to "
                           f"{self.root / DAMAGED_DIR}): run the same command again to train from the first epoch "
                           "(which replaces the best checkpoints too)")
        for step in checkpoint_steps(self.dirs["best"]):
            if step > resumed:  # from epochs to be trained again (or from before a restart)
                log.info("%s: best checkpoint of epoch %d dropped (training resumes after epoch %d)",
                         self.dirs["best"], step, resumed)
                shutil.rmtree(self.dirs["best"] / str(step))
        return got

    def save(self, epoch: int, state, meta: dict, *, best: bool) -> None:
        """Save an epoch's state and record as the latest checkpoint (and as the best one)."""
        if best:
            save_checkpoint(self._manager("best"), epoch, state, meta)
        save_checkpoint(self._manager("latest"), epoch, state, meta)


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
        Not a run directory, no checkpoint, a damaged checkpoint without an intact copy
        (the file and the way to recover are named), or a ``refit_readout`` run whose
        readout has not been fitted yet.

    Notes
    -----
    The latest and the best checkpoint of an epoch are the same state: if the newest one
    asked for is damaged, its copy in the other folder is used, with a warning.
    """
    run_dir = Path(run_dir)
    info_path = run_dir / RUN_FILE
    if not info_path.is_file():
        raise RunError(f"{run_dir}: not a training run directory (no {RUN_FILE})")
    info = json.loads(info_path.read_text())
    config = TrainConfig.from_dict(info["config"])
    model, opt = model_and_optimizer(config, info["image_size"], info["steps_per_epoch"])
    like = nnx.state((model, opt))
    nnx.update((model, opt), _restore_newest(run_dir, which, like)[0])
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


def _restore_newest(run_dir: Path, which: str, like_state):
    """``(state, meta)`` of the newest ``which`` checkpoint, or of its twin in the other folder."""
    ckdir = run_dir / CKPT_DIR / which
    steps = checkpoint_steps(ckdir)
    if not steps:
        raise RunError(f"{run_dir}: no {which} checkpoint yet")
    step = steps[-1]
    try:
        return restore_step(ckdir / str(step), like_state)
    except CheckpointError as exc:
        damage = exc
    twin = run_dir / CKPT_DIR / ("latest" if which == "best" else "best") / str(step)
    if twin.is_dir():
        try:
            got = restore_step(twin, like_state)
        except CheckpointError:
            pass
        else:
            log.warning("%s; using %s, the same state saved for the same epoch (copy it over the damaged "
                        "folder to repair the run)", damage, twin)
            return got
    older = steps[:-1]
    how = (f"delete {ckdir / str(step)} to use the {which} checkpoint before it (epoch {older[-1]})" if older
           else f"no intact copy is kept: train again (delete {run_dir} and rerun python -m learn.fit)")
    raise RunError(f"{damage}; {how}")


def final_state(workdir, which: str = "latest") -> list[np.ndarray]:
    """The parameter arrays of a run's checkpoint, in tree order (for comparisons)."""
    run = load_run(workdir, which=which)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(run.model, nnx.Param))]
