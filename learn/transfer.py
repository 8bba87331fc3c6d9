"""Transfer learning: does a network that learned ``n`` first need fewer simulations to tell the classes apart?

A regression run (the spectral index ``n`` of a sweep) gives its features to a classifier
of the same architecture with a new output layer (:func:`transfer_model`): all its
parameters and batch statistics but those of the output layer (:func:`head_filter`) are
copied from the regression network. Three ways to train the classifier
(:data:`ARMS`), on the same images of the same training simulations:

* ``scratch``: a freshly initialised network, every parameter trained;
* ``probe``: the regression network's features frozen (the network in eval mode: no
  dropout, batch statistics fixed), only the new output layer trained: a linear probe;
* ``finetune``: every parameter trained, starting from the regression network's.

:func:`learning_curve` trains each arm on ``N`` simulations per class for several ``N``
(nested subsets of the train split) and scores it on the test split, per image and per
simulation; :func:`transfer_run` writes the curve as a section of a run directory
(``RUN_DIR/transfer/``, :mod:`learn.sections`) and ``python -m learn.transfer`` is its
command line.

Every arm reads the images as the regression run does (its normaliser, image size and
cuts, :func:`learn.transforms.eval_set`), with random rotations and reflections in
training; each is trained for the same number of steps with AdamW (warm-up and cosine
decay), without early stopping, so the arms differ in nothing but their start and what is
trained.

Examples
--------
>>> from learn.models import build_model
>>> reg = build_model("pyramid", task="regress", input_size=16, widths=(4, 8), hidden=8, seed=1)
>>> cls = transfer_model(reg, "pyramid", seed=2, input_size=16, config_kwargs={"widths": (4, 8), "hidden": 8})
>>> bool(np.array_equal(cls.convs[0].kernel[...], reg.convs[0].kernel[...])), cls.head.kernel.shape
(True, (8, 2))
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from turbsim.console import ArgumentParser, configure_logging
from turbsim.console import progress as progress_bar

from . import figures, rundir
from .data import load_split
from .metrics import classification_scores, per_simulation, softmax
from .models import PyramidCNN, ResNet, StudyCNN, build_model
from .predict import Sharding, predict
from .sections import Figure, Section, Table, small_split_note, write_section
from .train import loss_and_metric, make_train_call
from .transforms import DataError, eval_set, targets

log = logging.getLogger(__name__)

ARMS = ("scratch", "probe", "finetune")
ARM_NAMES = {"scratch": "from scratch", "probe": "linear probe (regression features frozen)",
             "finetune": "fine-tuned from regression"}
SECTION = "transfer"


# --------------------------------------------------------------------------------------
# the models
# --------------------------------------------------------------------------------------
def head_prefixes(model: nnx.Module) -> tuple[tuple, ...]:
    """Paths of a model's output layer(s): what a transferred model gets new.

    study_cnn: its last dense layer; resnet: ``head``; pyramid: ``head`` and the linear
    ``skip`` path (both read into the outputs).
    """
    if isinstance(model, StudyCNN):
        return (("dense", len(model.dense) - 1),)
    if isinstance(model, ResNet):
        return (("head",),)
    if isinstance(model, PyramidCNN):
        return (("head",), ("skip",))
    raise TypeError(f"no output layer known for a {type(model).__name__}")


@dataclass(frozen=True)
class PathPrefixes:
    """NNX filter of the parameters whose path starts with one of ``prefixes`` (hashable and comparable,
    so equal filters make equal graphs and share compiled programs)."""

    prefixes: tuple[tuple, ...]

    def __call__(self, path, value) -> bool:
        return isinstance(value, nnx.Param) and any(tuple(path[:len(p)]) == p for p in self.prefixes)


def head_filter(model: nnx.Module) -> PathPrefixes:
    """NNX filter of the parameters of a model's output layer(s) (:func:`head_prefixes`)."""
    return PathPrefixes(head_prefixes(model))


def transfer_model(source: nnx.Module, name: str, *, task: str = "classify", seed: int = 0, input_size: int = 64,
                   config_kwargs: dict | None = None, **build_kwargs) -> nnx.Module:
    """A model of the same architecture as ``source`` with its weights and a new output layer.

    Parameters
    ----------
    source : nnx.Module
        The trained network (e.g. a regression run's model).
    name : {"study_cnn", "resnet", "pyramid"}
        Its architecture.
    task : {"classify", "regress"}
        Task of the new model (its output layer: 2 logits, or one value of n).
    seed : int
        Initialisation of the new output layer.
    input_size : int
        Image side [pixels] (fixes study_cnn's dense layer).
    config_kwargs : dict, optional
        Architecture options as :func:`learn.models.build_model` takes them (``widths``,
        ``hidden``... for the pyramid); a readout is never built.
    **build_kwargs
        ``dropout``, ``conv_impl``, ``padding``.

    Returns
    -------
    nnx.Module
        In training mode; every parameter and batch statistic outside the output layer
        equal to ``source``'s.

    Raises
    ------
    ValueError
        The architectures differ (a parameter of another shape).
    """
    kw = dict(config_kwargs or {})
    kw.pop("readout", None)
    model = build_model(name, task=task, input_size=input_size, seed=seed, **build_kwargs, **kw)
    body = nnx.All(nnx.Any(nnx.Param, nnx.BatchStat), nnx.Not(head_filter(source)))
    src = nnx.state(source, body)
    dst = dict(nnx.to_flat_state(nnx.state(model, body)))
    for path, value in nnx.to_flat_state(src):
        if path not in dst or dst[path].shape != value.shape:
            raise ValueError(f"transfer: parameter {'/'.join(map(str, path))} of shape {value.shape} has no "
                             f"counterpart in the new {name} (architectures differ)")
    nnx.update(model, src)
    return model


def run_model_kwargs(config) -> dict:
    """Architecture options of a run's configuration, as :func:`learn.models.build_model` takes them."""
    return {"resnet": {"widths": config.resnet_widths, "blocks": config.resnet_blocks},
            "pyramid": {"widths": config.pyramid_widths, "hidden": config.pyramid_hidden,
                        "skip": config.pyramid_skip}}.get(config.model, {})


# --------------------------------------------------------------------------------------
# training on images in memory
# --------------------------------------------------------------------------------------
def random_dihedral(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each square image turned by a random multiple of 90 degrees and reflected at random.

    Examples
    --------
    >>> x = np.arange(8.0).reshape(2, 2, 2)
    >>> y = random_dihedral(x, np.random.default_rng(0))
    >>> sorted(y[0].ravel().tolist()) == sorted(x[0].ravel().tolist())
    True
    """
    out = np.empty_like(x)
    g = rng.integers(0, 8, len(x))
    for e in range(8):
        sel = g == e
        if sel.any():
            y = np.rot90(x[sel], e % 4, axes=(1, 2))
            out[sel] = y[:, :, ::-1] if e >= 4 else y
    return out


@lru_cache(maxsize=16)
def _adamw(learning_rate: float, weight_decay: float, steps: int) -> optax.GradientTransformation:
    """AdamW with linear warm-up over 5 % of the steps and cosine decay to 0 (one object per setting, so
    fits of equal settings have equal graphs)."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, max(1, steps // 20), max(steps, 2), 0.0)
    return optax.adamw(schedule, weight_decay=weight_decay)


@lru_cache(maxsize=8)
def _train_call(graphdef):
    """One jitted training call per model graph: every fit of an equal graph reuses its compiled program."""
    return make_train_call(graphdef, loss_and_metric("classify", False), donate=True)


def fit_images(model: nnx.Module, images: np.ndarray, labels: np.ndarray, *, trainable=nnx.Param,
               frozen_mode: bool = False, steps: int = 200, batch_size: int = 32, learning_rate: float = 1e-3,
               weight_decay: float = 1e-4, seed: int = 0, augment: bool = True, sharding: Sharding | None = None,
               progress: bool = False, desc: str = "train") -> list[float]:
    """Train a classifier in place on images in memory (softmax cross-entropy, AdamW).

    Parameters
    ----------
    model : nnx.Module
        Trained in place.
    images : ndarray, shape (M, H, W)
        Normalised images.
    labels : ndarray of int, shape (M,)
        Classes 0/1.
    trainable : nnx filter
        The parameters the optimiser updates (e.g. :func:`head_filter` for a probe); the
        others keep their values.
    frozen_mode : bool
        Train with the model in eval mode (no dropout, batch statistics left as they are), as
        a probe of frozen features must; else in training mode.
    steps : int
        Optimiser steps (batches), >= 1.
    batch_size : int
    learning_rate : float
        Peak learning rate (linear warm-up over 5 % of the steps, cosine decay to 0).
    weight_decay : float
        AdamW's decoupled weight decay.
    seed : int
        Batches, augmentation and dropout.
    augment : bool
        Random rotations and reflections of every batch (:func:`random_dihedral`).
    sharding : learn.predict.Sharding, optional
    progress : bool
    desc : str
        Label of the progress bar.

    Returns
    -------
    list of float
        The loss of every step.
    """
    if steps < 1:
        raise ValueError(f"steps = {steps} must be >= 1")
    sharding = sharding or Sharding()
    bs = max(sharding.n, -(-min(batch_size, len(images)) // sharding.n) * sharding.n)
    opt = nnx.Optimizer(model, _adamw(learning_rate, weight_decay, steps), wrt=trainable)
    if frozen_mode:
        model.eval()
    else:
        model.train()
    graphdef, state = nnx.split((model, opt))
    call = _train_call(graphdef)
    state = sharding.put_state(state)
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    labels = np.asarray(labels, np.int32)
    order, pos, losses = rng.permutation(len(images)), 0, []
    for step in progress_bar(range(steps), desc=desc, unit="step", disable=not progress, leave=False, min_time=2):
        if pos + bs > len(order):
            order, pos = rng.permutation(len(images)), 0
        take = order[pos:pos + bs]
        if len(take) < bs:  # fewer images than a batch: draw with replacement
            take = rng.choice(len(images), bs)
        pos += bs
        x = images[take]
        if augment:
            x = random_dihedral(x, rng)
        state, loss, _ = call(state, sharding.put_batch(np.ascontiguousarray(x)[None], 1),
                              sharding.put_batch(labels[take][None], 1), jnp.int32(step), key)
        losses.append(float(loss[0]))
    nnx.update((model, opt), state)
    model.eval()
    return losses


# --------------------------------------------------------------------------------------
# the learning curve
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransferOptions:
    """Settings of :func:`learning_curve`.

    Parameters
    ----------
    sizes : tuple of int
        Training simulations per class, each >= 1 (capped at what the train split holds).
    arms : tuple of str
        Any of :data:`ARMS`.
    epochs : float
        Passes over each arm's training images, > 0 ...
    min_steps : int
        ... but at least this many optimiser steps, >= 1 (small sets need more passes).
    batch_size : int
    learning_rate : float
        Peak learning rate of the scratch and fine-tuned arms.
    probe_learning_rate : float
        Peak learning rate of the probe (one linear layer: it can take a larger one).
    repeats : int
        Independent subsets (and initialisations) per size, >= 1; the curve gives their mean
        and standard deviation.
    seed : int
    """

    sizes: tuple[int, ...] = (10, 30, 100, 400)
    arms: tuple[str, ...] = ARMS
    epochs: float = 10.0
    min_steps: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    probe_learning_rate: float = 1e-2
    repeats: int = 1
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(sorted({int(s) for s in self.sizes})))
        object.__setattr__(self, "arms", tuple(dict.fromkeys(self.arms)))
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"TransferOptions.sizes = {self.sizes} must be non-empty, each >= 1")
        bad = sorted(set(self.arms) - set(ARMS))
        if bad or not self.arms:
            raise ValueError(f"TransferOptions.arms = {self.arms}: choose from {', '.join(ARMS)}")
        for name, low in (("epochs", 0.0), ("learning_rate", 0.0), ("probe_learning_rate", 0.0)):
            if not getattr(self, name) > low:
                raise ValueError(f"TransferOptions.{name} = {getattr(self, name)} must be > {low}")
        for name in ("min_steps", "batch_size", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransferOptions.{name} = {getattr(self, name)} must be >= 1")


def nested_subsets(klass: np.ndarray, sizes, seed: int) -> dict[int, np.ndarray]:
    """Simulations (positions) of ``N`` per class for each size, each subset inside the next.

    Examples
    --------
    >>> sub = nested_subsets(np.array([0, 1] * 10), (2, 5), seed=0)
    >>> [len(sub[2]), len(sub[5])], bool(set(sub[2]) <= set(sub[5]))
    ([4, 10], True)
    """
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(np.flatnonzero(klass == c)) for c in (0, 1)]
    return {n: np.sort(np.concatenate([p[:n] for p in perms])) for n in sizes}


def _score(model: nnx.Module, x: np.ndarray, sidx: np.ndarray, klass: np.ndarray, batch_size: int) -> dict:
    p = softmax(predict(model, x, batch_size=batch_size))[:, 1]
    img = classification_scores(klass[sidx], p)
    sim = classification_scores(klass, per_simulation(p, sidx))
    return {"accuracy_per_image": img["accuracy"], "auc_per_image": img["auc"],
            "accuracy_per_sim": sim["accuracy"], "auc_per_sim": sim["auc"]}


def learning_curve(source: rundir.Run, data, options: TransferOptions = TransferOptions(), *,
                   progress: bool = False) -> dict:
    """Train every arm on nested subsets of a classification ensemble's train split; score on its test split.

    Parameters
    ----------
    source : learn.rundir.Run
        A trained regression run (its features, normaliser and image size).
    data : path-like
        Ensemble with Kolmogorov/Burgers classes (train and test splits).
    options : TransferOptions
    progress : bool

    Returns
    -------
    dict
        ``sizes`` (per class, as trained), ``available`` (training simulations per class in
        the split), ``points``: one record per size, arm and repeat (``size``, ``arm``,
        ``repeat``, ``steps``, ``seconds``, the test scores ``accuracy_per_image``,
        ``auc_per_image``, ``accuracy_per_sim``, ``auc_per_sim``), ``n_test_sims`` and
        ``n_test_images``.

    Raises
    ------
    ValueError
        ``source`` is not a regression run.
    DataError
        ``data`` without classes 0/1 in its train or test split.
    """
    if source.config.task != "regress":
        raise ValueError(f"{source.path}: transfer learning starts from a regression run, this one has task "
                         f"{source.config.task!r}")
    train, test = load_split(data, "train"), load_split(data, "test")
    k_train = targets(train.labels, "classify", train.source).astype(int)
    k_test = targets(test.labels, "classify", test.source).astype(int)
    avail = [int((k_train == c).sum()) for c in (0, 1)]
    sizes = tuple(dict.fromkeys(min(n, min(avail)) for n in options.sizes))
    if sizes != options.sizes:
        log.warning("%s: the train split holds %d and %d simulations of the classes; sizes %s become %s",
                    train.source, *avail, list(options.sizes), list(sizes))
    norm, size, full = source.normaliser, source.image_size, source.full_maps
    x_test, s_test = eval_set(test.maps, norm, size, full)
    x_all, s_all = eval_set(train.maps, norm, size, full)
    per_sim = len(x_all) // len(train.maps)
    cfg = source.config
    build = {"dropout": cfg.dropout, "conv_impl": cfg.conv_impl, "padding": cfg.padding}
    arch = run_model_kwargs(cfg)
    points = []
    total = len(sizes) * len(options.arms) * options.repeats
    bar = progress_bar(total=total, desc="transfer", unit="fit", disable=not progress)
    for rep in range(options.repeats):
        subsets = nested_subsets(k_train, sizes, options.seed + rep)
        for n in sizes:
            sims = subsets[n]
            rows = (sims[:, None] * per_sim + np.arange(per_sim)[None]).ravel()  # eval_set orders by simulation
            x, y = x_all[rows], k_train[s_all[rows]]
            steps = max(options.min_steps, math.ceil(options.epochs * len(x) / options.batch_size))
            for arm in options.arms:
                seed = options.seed + 1000 * rep + 1
                if arm == "scratch":
                    model = build_model(cfg.model, task="classify", input_size=size, seed=seed, **build, **arch)
                else:
                    model = transfer_model(source.model, cfg.model, seed=seed, input_size=size,
                                           config_kwargs=arch, **build)
                probe = arm == "probe"
                t0 = time.perf_counter()
                losses = fit_images(model, x, y, trainable=nnx.All(nnx.Param, head_filter(model)) if probe
                                    else nnx.Param, frozen_mode=probe, steps=steps, batch_size=options.batch_size,
                                    learning_rate=options.probe_learning_rate if probe else options.learning_rate,
                                    seed=seed + n, progress=progress, desc=f"{arm}, {n} per class")
                rec = {"size": n, "arm": arm, "repeat": rep, "steps": steps, "n_images": int(len(x)),
                       "seconds": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-10:])),
                       **_score(model, x_test, s_test, k_test, cfg.eval_batch_size)}
                points.append(rec)
                log.info("transfer %s, %d per class: test accuracy %.3f per image, %.3f per simulation", arm, n,
                         rec["accuracy_per_image"], rec["accuracy_per_sim"])
                bar.update(1)
    bar.close()
    return {"sizes": list(sizes), "available": avail, "points": points, "n_test_sims": int(len(test.maps)),
            "n_test_images": int(len(x_test)),
            "arms": list(options.arms), "source_run": str(source.path), "data": str(data),
            "options": {k: getattr(options, k) for k in options.__dataclass_fields__}}


def summarise(curve: dict, key: str = "accuracy_per_image") -> dict[str, list]:
    """``{arm: [(mean, std) per size]}`` of one score over the repeats."""
    out = {}
    for arm in curve["arms"]:
        vals = []
        for n in curve["sizes"]:
            v = [p[key] for p in curve["points"] if p["arm"] == arm and p["size"] == n and p[key] is not None]
            vals.append((float(np.mean(v)), float(np.std(v))) if v else (None, None))
        out[arm] = vals
    return out


def _reach(sizes, means, target, tol):
    """The smallest size whose mean score is within ``tol`` of ``target`` (None if none)."""
    return next((n for n, m in zip(sizes, means) if m is not None and m >= target - tol), None)


def transfer_section(curve: dict, folder: Path) -> Section:
    """The learning curve as a section: ``learning_curve.png`` into ``folder``, a table and a text."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = curve["sizes"]
    acc = summarise(curve, "accuracy_per_image")
    acc_sim = summarise(curve, "accuracy_per_sim")
    figures.plot_learning_curves(
        sizes, {"accuracy per image (test split)": {ARM_NAMES[a]: [m for m, _ in v] for a, v in acc.items()},
                "accuracy per simulation (test split)": {ARM_NAMES[a]: [m for m, _ in v] for a, v in acc_sim.items()}},
        folder / "learning_curve.png",
        title=f"Kolmogorov or Burgers from a network that learned n first ({curve['n_test_sims']} test simulations)")
    rows = []
    for a in curve["arms"]:
        for i, n in enumerate(sizes):
            m, s = acc[a][i]
            ms, _ = acc_sim[a][i]
            rows.append([ARM_NAMES[a], n, None if m is None else round(m, 4), None if s is None else round(s, 4),
                         None if ms is None else round(ms, 4)])
    first = ", ".join(f"{ARM_NAMES[a]} {acc[a][0][0]:.3f}" for a in curve["arms"])
    text = [f"A classifier of the regression network's architecture, trained on N simulations per class "
            f"(the same images for every arm, {curve['options']['repeats']} subset(s) per N) and scored on "
            f"{curve['n_test_sims']} test simulations. With {sizes[0]} per class, per-image accuracy: {first}."]
    means = {a: [m for m, _ in acc[a]] for a in curve["arms"]}
    best = max(m for v in means.values() for m in v if m is not None)
    n_eff = curve["n_test_sims"]  # one independent draw per simulation: its images are correlated
    noise = 2 * math.sqrt(max(best * (1 - best), 0.25 / n_eff) / n_eff)
    reach = {a: _reach(sizes, v, best, noise) for a, v in means.items()}
    said = "; ".join(f"{ARM_NAMES[a]} {'with ' + str(n) + ' per class' if n else 'not within the sizes tried'}"
                     for a, n in reach.items())
    text.append(f"Differences under {100 * noise:.1f} points are taken for noise (two binomial standard errors of an "
                f"accuracy over the {n_eff} test simulations: the {curve['n_test_images']} images of the test split are "
                f"correlated within a simulation). The best per-image accuracy is {best:.3f}; within that of it: "
                f"{said}.")
    if "scratch" in means and len(curve["arms"]) > 1:
        gaps = {a: [None if m is None or s is None else m - s for m, s in zip(means[a], means["scratch"])]
                for a in curve["arms"] if a != "scratch"}
        ahead = {a: max((g, n) for g, n in zip(v, sizes) if g is not None) for a, v in gaps.items()}
        ahead = {a: gn for a, gn in ahead.items() if gn[0] > noise}
        behind = [a for a, v in gaps.items() if min(g for g in v if g is not None) < -noise]
        if ahead:
            text.append("Learning n first helps here: " + "; ".join(
                f"{ARM_NAMES[a]} beats training from scratch by {100 * g:.1f} points with {n} per class"
                for a, (g, n) in ahead.items()) + ".")
        elif behind:
            text.append(f"Learning n first costs here: {', '.join(ARM_NAMES[a] for a in behind)} falls below "
                        "training from scratch by more than the noise.")
        else:
            text.append(f"No way of training differs from training from scratch by more than the noise at any size "
                        f"(from scratch: {means['scratch'][0]:.3f} with {sizes[0]} per class): on this data, learning "
                        "n first does not measurably reduce the simulations needed.")
    if max(curve["options"]["sizes"]) > min(curve["available"]):
        text.append(f"The train split holds only {min(curve['available'])} simulations of its rarer class: larger "
                    "sizes were capped.")
    text.append(small_split_note(curve["n_test_sims"], "the test split"))
    return Section("Transfer learning from the regression of n", " ".join(t for t in text if t),
                   [Figure("learning_curve.png", "Test accuracy against the number of training simulations per class: "
                           "from scratch, a linear probe on the regression network's frozen features, and the "
                           "regression network fine-tuned.")],
                   [Table("Test accuracy by training set size", ["arm", "simulations per class",
                                                                 "accuracy per image", "std over repeats",
                                                                 "accuracy per simulation"], rows)],
                   curve)


def transfer_run(source_dir, data, *, out_dir=None, options: TransferOptions = TransferOptions(),
                 progress: bool = False) -> Path:
    """Run the learning curve from a regression run and write its section.

    Parameters
    ----------
    source_dir : path-like
        A finished regression run.
    data : path-like
        Classification ensemble (train and test splits with classes).
    out_dir : path-like, optional
        Run directory that receives the section ``transfer/`` (default ``source_dir``).
    options : TransferOptions
    progress : bool

    Returns
    -------
    Path
        The ``section.json`` written.
    """
    source = rundir.load_run(source_dir, readout=False)
    curve = learning_curve(source, data, options, progress=progress)
    out_dir = Path(out_dir or source_dir)
    sec = transfer_section(curve, out_dir / SECTION)
    return write_section(out_dir, SECTION, sec)


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """``python -m learn.transfer`` options."""
    d = TransferOptions()
    p = ArgumentParser(prog="python -m learn.transfer", short_usage="REG_RUN --data BINARY.h5 [options]",
                       description="Transfer learning: train Kolmogorov/Burgers classifiers of a regression run's "
                                   "architecture from scratch, as a linear probe on its frozen features, and "
                                   "fine-tuned from it, on N simulations per class for several N; write the learning "
                                   "curve as the section transfer/ of a run directory.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run_dir", metavar="REG_RUN", help="a finished regression run (task regress)")
    p.add_argument("--data", required=True, metavar="FILE", help="classification ensemble (.h5) with train and test")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory for the section (default REG_RUN)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(d.sizes), metavar="N",
                   help="training simulations per class")
    p.add_argument("--arms", nargs="+", default=list(d.arms), choices=ARMS, help="ways of training")
    p.add_argument("--epochs", type=float, default=d.epochs, metavar="X", help="passes over the training images")
    p.add_argument("--min-steps", type=int, default=d.min_steps, metavar="N", help="least optimiser steps per fit")
    p.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N", help="images per step")
    p.add_argument("--lr", type=float, default=d.learning_rate, metavar="X",
                   help="peak learning rate (scratch and fine-tuned)")
    p.add_argument("--probe-lr", type=float, default=d.probe_learning_rate, metavar="X",
                   help="peak learning rate of the linear probe")
    p.add_argument("--repeats", type=int, default=d.repeats, metavar="N", help="subsets per size")
    p.add_argument("--seed", type=int, default=d.seed, help="subsets, initialisation, batches")
    p.add_output_options(json="print the curve as JSON", verbose="log every fit")
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or data)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        options = TransferOptions(sizes=tuple(args.sizes), arms=tuple(args.arms), epochs=args.epochs,
                                  min_steps=args.min_steps, batch_size=args.batch_size, learning_rate=args.lr,
                                  probe_learning_rate=args.probe_lr, repeats=args.repeats, seed=args.seed)
        path = transfer_run(args.run_dir, args.data, out_dir=args.out, options=options, progress=not args.no_progress)
    except (ValueError, DataError, rundir.RunError) as exc:
        parser.error(str(exc))
    sec = json.loads(path.read_text())
    if args.json:
        print(json.dumps({"section": str(path), **sec["data"]}))
    else:
        print(sec["text"])
        print(f"section: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
