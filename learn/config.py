"""The configuration of a training run: :class:`TrainConfig`, its optimiser, its model, its options.

:class:`TrainConfig` is frozen and validated once, at construction, with the shared field
validators of :mod:`turbsim.validate` (a bad value raises ``ValueError`` naming the field,
the value and what is allowed). Each field carries its validation and its command-line
form as dataclass metadata, and its documentation in the class docstring, so that the
command line of ``python -m learn.fit`` is generated from the fields
(:func:`add_arguments`, :func:`config_from_args`): a new field is a new option, with its
help text, without a list to keep in step.

:func:`learning_rate_schedule` and :func:`make_optimizer` turn a configuration into its
optax optimiser, :func:`model_and_optimizer` into a fresh model and optimiser.

Examples
--------
>>> cfg = TrainConfig(data="binary.h5", model="pyramid", epochs=30.0)
>>> cfg.epochs, cfg.augment
(30, ('flip', 'quadrant'))
>>> TrainConfig.from_dict(cfg.to_dict()) == cfg
True
>>> TrainConfig(data="binary.h5", batch_size=0)
Traceback (most recent call last):
...
ValueError: TrainConfig.batch_size = 0 is outside the allowed range [1, inf]
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import optax
from flax import nnx

from turbsim import validate
from turbsim.config import SCHEMES, SimConfig

from .layers import CONV_IMPLS, PADDINGS
from .models import MODELS, TASKS, build_model
from .transforms import AUGMENTATIONS, NORMALISATIONS, STUDY_AUGMENT, check_augment

OWNER = "TrainConfig"
OPTIMIZERS = ("rmsprop", "adamw")
SCHEDULES = ("cosine", "constant")
DATA, MODEL, LIVE = "data", "model and optimisation", "live simulations"
"""Groups of the command-line options."""


# --------------------------------------------------------------------------------------
# field checks (each ``check(owner, name, value) -> canonical value``)
# --------------------------------------------------------------------------------------
def _optional(check: Callable) -> Callable:
    """``check`` that lets None through."""
    return lambda owner, name, value: None if value is None else check(owner, name, value)


def _positive_ints(owner: str, name: str, value: Any, *, empty_ok: bool = True) -> tuple[int, ...]:
    """A sequence of integers >= 1."""
    seq = validate.sequence(owner, name, value, kind=lambda v: v)
    if not seq and not empty_ok:
        raise ValueError(f"{owner}.{name} must not be empty")
    return tuple(validate.integer(owner, f"{name}[{i}]", v, 1) for i, v in enumerate(seq))


def _augment(owner: str, name: str, value: Any) -> tuple[str, ...]:
    return check_augment(validate.sequence(owner, name, value, kind=str))


def _n_range(owner: str, name: str, value: Any) -> tuple[float, float]:
    lo, hi = validate.sequence(owner, name, value, kind=float, length=2)
    validate.real(owner, f"{name}[0]", lo)
    validate.real(owner, f"{name}[1]", hi, lo, lo_open=True)
    return lo, hi


def _path(owner: str, name: str, value: Any) -> str:
    try:
        return os.fspath(value)
    except TypeError:
        raise ValueError(f"{owner}.{name} must be a path, got {value!r}") from None


def _live_sim(owner: str, name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """(SimConfig field, value) pairs, checked by building the SimConfig they describe.

    The values come back in SimConfig's canonical types (``cells=16.0`` gives 16); ``n``
    and ``seed`` are refused, since the stream sets them per simulation.
    """
    try:
        pairs = {str(k): v for k, v in dict(value).items()}
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{name} must be (SimConfig field, value) pairs, got {value!r}") from None
    fields = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(pairs) - fields)
    if unknown:
        raise ValueError(f"{owner}.{name}: unknown SimConfig field(s) {unknown}")
    per_sim = sorted(set(pairs) & {"n", "seed"})
    if per_sim:
        raise ValueError(f"{owner}.{name} sets {per_sim}, which the live stream sets per simulation")
    try:
        sim = SimConfig(**pairs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.{name}: {exc}") from None
    return tuple((k, getattr(sim, k)) for k in pairs)


def _option(default: Any, group: str, check: Callable | None = None, *, choices: tuple | None = None,
            item_choices: tuple | None = None, type: Callable | None = None, nargs: int | str | None = None,
            flags: tuple[str, ...] = (), metavar: str | tuple | None = None, cli: bool = True):
    """A TrainConfig field with its check and its command-line form (as dataclass metadata).

    ``choices`` also makes the check; ``item_choices`` are those of each item of a list
    option; ``type`` and ``nargs`` are argparse's (the type of the default when omitted);
    ``flags`` replace the generated ``--field-name``; ``cli=False`` keeps the field off the
    command line.
    """
    if choices is not None:
        check = partial(validate.choice, choices=choices)
    meta = {"group": group, "check": check, "choices": choices or item_choices, "type": type, "nargs": nargs,
            "flags": flags, "metavar": metavar, "cli": cli}
    return field(default=default, metadata=meta)


_INT1 = partial(validate.integer, lo=1)
_INT0 = partial(validate.integer, lo=0)
SEED_MAX = 2**63 - 1
"""Largest seed: ``jax.random.key`` takes a signed 64-bit integer (as ``SimConfig.seed``)."""
_SEED = partial(validate.integer, lo=0, hi=SEED_MAX)
_REAL0 = partial(validate.real, lo=0.0, hi_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (validated at construction).

    Parameters
    ----------
    data : str or None
        Ensemble file (.h5): its train split trains, its test split validates. With live
        simulations it is optional and only validates.
    task : {"classify", "regress"}
        classify: Kolmogorov/Burgers classes (needs class labels); regress: the spectral
        index n (needs the label n).
    model : {"study_cnn", "resnet", "pyramid"}
        study_cnn: the study's network (fixed input size, a multiple of 16 pixels); resnet: a
        small residual network; pyramid: a multi-scale CNN with log-energy pooling (cheap,
        any input size).
    uncertainty : bool
        Regression with a predicted log-variance (Gaussian negative log-likelihood).
    epochs : int
        Maximum number of epochs, >= 1.
    batch_size : int
        Images per step (global, over all devices; divisible by their number), >= 1.
    optimizer : {"rmsprop", "adamw"}
        RMSprop as in the study (Keras' defaults: decay 0.9, eps 1e-7), or AdamW.
    learning_rate : float
        Peak learning rate, > 0.
    weight_decay : float
        AdamW's decoupled weight decay, >= 0 (ignored by RMSprop).
    schedule : {"cosine", "constant"}
        Learning rate after the warm-up: constant, or cosine decay to zero at the last epoch.
    warmup_epochs : float
        Epochs of linear warm-up from zero, >= 0 (may be fractional; 0 for none).
    patience : int
        Stop after this many epochs without a lower validation loss, >= 0 (0: never stop
        early).
    seed : int
        The one seed of the run, in [0, 2^63 - 1] (parameters, image order, augmentations,
        dropout).
    normalisation : {"global", "per_image"}
        global: log10 column density minus the training mean over its standard deviation
        (keeps each image's level and amplitude); per_image: every image standardised on its
        own (shape only, more robust across codes and resolutions).
    augment : tuple of str
        Augmentations, any of flip, quadrant, crop, rot90, zoom (quadrant and crop exclude
        each other). flip + quadrant are the study's 48 images per simulation; crop: a random
        periodic N/2 window instead of the quadrants; rot90: random quarter turns; zoom: each
        window replaced by one of 0.5-2 times its side (log-uniform), resampled to the input
        size with anti-aliasing (learn.transforms.ZOOM_RANGE).
    steps_per_call : int
        Training steps (micro-batches) per jitted call, unrolled in one XLA program, >= 1
        (fewer dispatches).
    conv_impl : {"auto", "gemm", "xla", "winograd"}
        Convolution implementation (learn.layers). auto: gemm on a CPU, xla on an
        accelerator; gemm: im2col and one matrix product (fast on a CPU); xla: XLA's
        convolution; winograd: Winograd F(2x2, 3x3) where it applies. All compute the same
        function of the same parameters, so a run trained with one is scored with another.
    padding : {"zeros", "circular"}
        How convolutions extend an image: zeros, or wrapped around (exact for whole maps of
        the periodic box; refused with quadrant or crop cuts, which are not periodic).
    dropout : float or None
        Dropout rate in [0, 1) (None: the model's default, 0.5 for study_cnn, 0 otherwise).
    memory_budget_mb : float
        Hold the training maps in memory up to this size [MiB], >= 0; larger sets are
        streamed from the file chunk by chunk (same batches either way).
    resnet_widths : tuple of int
        Channels of each ResNet stage, each >= 1.
    resnet_blocks : tuple of int
        Residual blocks per ResNet stage, each >= 1 (one per width).
    pyramid_widths : tuple of int
        Channels of each stage (scale) of the pyramid model, each >= 1, at least one.
    pyramid_hidden : int
        Units of the pyramid model's hidden dense layer, >= 0 (0: the outputs are a linear
        function of the pooled log energies).
    pyramid_skip : bool
        Give the pyramid model a linear path from its log energies to the outputs (the form
        of the power-spectrum ridge), in parallel with the dense head.
    refit_readout : bool
        After training, refit the pyramid model's readout in closed form on its log energies
        (learn.readout: ridge or logistic regression on the training split's evaluation
        images, the penalty chosen on the test split by the per-simulation score) and use it
        in place of the trained head. Needs a test split and a fixed (not live) training set.
    symmetrize : bool
        Evaluate the network averaged over the 8 rotations and reflections of each image
        (the dihedral group D4; test-time augmentation, 8x the evaluation cost), in
        evaluation and in the readout's features, not in the training loop's validation.
    eval_batch_size : int
        Images per evaluation call, >= 1.
    live : bool
        Train on freshly simulated maps (turbsim.stream), never the same simulation twice.
    live_sims_per_epoch : int
        Simulations per epoch in live mode, >= 1.
    live_seed : int
        Seed of the live stream, in [0, 2^63 - 1] (pick one that no stored ensemble uses).
    live_sim : tuple of (str, value) pairs
        SimConfig fields of the live simulations (e.g. ``(("cells", 64), ("t_end", 0.5))``),
        checked as a SimConfig; not ``n`` or ``seed``, which the stream sets per simulation.
    live_n_range : (float, float)
        Interval of n for live regression (LO < HI; n drawn uniformly).
    live_workers : int or None
        Simulation worker processes in live mode, >= 0 (None: all cores but one; 0: in the
        training process).
    """

    data: str | None = _option(None, DATA, _optional(_path), type=str, metavar="FILE")
    task: str = _option("classify", DATA, choices=TASKS)
    model: str = _option("study_cnn", MODEL, choices=MODELS)
    uncertainty: bool = _option(False, MODEL, validate.flag)
    epochs: int = _option(20, MODEL, _INT1)
    batch_size: int = _option(64, MODEL, _INT1)
    optimizer: str = _option("rmsprop", MODEL, choices=OPTIMIZERS)
    learning_rate: float = _option(1e-3, MODEL, partial(validate.real, lo=0.0, lo_open=True, hi_open=True),
                                   flags=("--lr", "--learning-rate"))
    weight_decay: float = _option(1e-4, MODEL, _REAL0)
    schedule: str = _option("cosine", MODEL, choices=SCHEDULES)
    warmup_epochs: float = _option(0.0, MODEL, _REAL0)
    patience: int = _option(5, MODEL, _INT0)
    seed: int = _option(0, MODEL, _SEED)
    normalisation: str = _option("global", DATA, choices=NORMALISATIONS)
    augment: tuple[str, ...] = _option(STUDY_AUGMENT, DATA, _augment, item_choices=AUGMENTATIONS, type=str,
                                             nargs="*")
    steps_per_call: int = _option(1, MODEL, _INT1)
    conv_impl: str = _option("auto", MODEL, choices=CONV_IMPLS)
    padding: str = _option("zeros", MODEL, choices=PADDINGS)
    dropout: float | None = _option(None, MODEL, _optional(partial(validate.real, lo=0.0, hi=1.0, hi_open=True)),
                                    type=float)
    memory_budget_mb: float = _option(2048.0, DATA, _REAL0)
    resnet_widths: tuple[int, ...] = _option((32, 64, 128), MODEL, _positive_ints, type=int, nargs="+")
    resnet_blocks: tuple[int, ...] = _option((1, 1, 1), MODEL, _positive_ints, type=int, nargs="+")
    pyramid_widths: tuple[int, ...] = _option((8, 16, 32, 48, 64), MODEL, partial(_positive_ints, empty_ok=False),
                                              type=int, nargs="+")
    pyramid_hidden: int = _option(64, MODEL, _INT0)
    pyramid_skip: bool = _option(False, MODEL, validate.flag)
    refit_readout: bool = _option(False, MODEL, validate.flag)
    symmetrize: bool = _option(False, MODEL, validate.flag)
    eval_batch_size: int = _option(256, MODEL, _INT1)
    live: bool = _option(False, LIVE, validate.flag)
    live_sims_per_epoch: int = _option(32, LIVE, _INT1)
    live_seed: int = _option(987654321, LIVE, _SEED)
    live_sim: tuple[tuple[str, Any], ...] = _option((), LIVE, _live_sim, cli=False)
    live_n_range: tuple[float, float] = _option((3.0, 4.5), LIVE, _n_range, type=float, nargs=2,
                                                metavar=("LO", "HI"))
    live_workers: int | None = _option(None, LIVE, _optional(_INT0), type=int)

    def __post_init__(self):
        set_ = partial(object.__setattr__, self)
        for f in dataclasses.fields(self):
            if f.metadata["check"] is not None:
                set_(f.name, f.metadata["check"](OWNER, f.name, getattr(self, f.name)))
        if self.uncertainty and self.task != "regress":
            raise ValueError("TrainConfig.uncertainty needs task='regress'")
        if self.padding == "circular" and set(self.augment) & {"quadrant", "crop", "zoom"}:
            raise ValueError("TrainConfig.padding = 'circular' needs whole (periodic) maps; augmentations "
                             f"{sorted(set(self.augment) & {'quadrant', 'crop', 'zoom'})} cut non-periodic windows")
        if len(self.resnet_widths) != len(self.resnet_blocks) or not self.resnet_widths:
            raise ValueError(f"TrainConfig.resnet_widths {self.resnet_widths} and resnet_blocks "
                             f"{self.resnet_blocks} must be non-empty and of equal length")
        if self.pyramid_skip and not self.pyramid_hidden:
            raise ValueError("TrainConfig.pyramid_skip needs pyramid_hidden > 0 (with 0 the readout is already linear)")
        if self.refit_readout and self.model != "pyramid":
            raise ValueError(f"TrainConfig.refit_readout needs model='pyramid' (its log energies are the readout's "
                             f"features), got model={self.model!r}")
        if self.refit_readout and self.live:
            raise ValueError("TrainConfig.refit_readout needs a fixed training split, not live simulations")
        if self.pyramid_skip and self.model != "pyramid":
            raise ValueError(f"TrainConfig.pyramid_skip needs model='pyramid', got model={self.model!r}")
        if not self.live and self.data is None:
            raise ValueError("TrainConfig.data is required unless live=True")

    def to_dict(self) -> dict:
        """Plain JSON types (``live_sim`` as a dict, tuples as lists), as ``run.json`` stores it."""
        d = dataclasses.asdict(self)
        d["live_sim"] = dict(self.live_sim)
        return json.loads(json.dumps(d))

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The configuration of a :meth:`to_dict` record (unknown fields are refused)."""
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------
# optimiser and model of a configuration
# --------------------------------------------------------------------------------------
def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning rate as a function of the global (micro-batch) step.

    Parameters
    ----------
    config : TrainConfig
        ``learning_rate``, ``schedule``, ``warmup_epochs`` and ``epochs``.
    steps_per_epoch : int
        Micro-batch steps per epoch.

    Returns
    -------
    callable
        ``lr(step)``: linear from 0 over the warm-up steps, then constant or cosine-decayed
        to 0 at step ``epochs * steps_per_epoch``.

    Examples
    --------
    >>> lr = learning_rate_schedule(TrainConfig(data="x.h5", epochs=2, warmup_epochs=0.5), 10)
    >>> [round(float(lr(t)), 6) for t in (0, 5, 20)]
    [0.0, 0.001, 0.0]
    """
    total = max(1, config.epochs * steps_per_epoch)
    warm = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, warm, max(total, warm + 1), 0.0)
    if warm:
        return optax.linear_schedule(0.0, config.learning_rate, warm)
    return optax.constant_schedule(config.learning_rate)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax optimiser with its learning-rate schedule (steps are micro-batch steps)."""
    lr = learning_rate_schedule(config, steps_per_epoch)
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr, decay=0.9, eps=1e-7)  # Keras' RMSprop defaults
    return optax.adamw(lr, weight_decay=config.weight_decay)


def model_and_optimizer(config: TrainConfig, image_size: int, steps_per_epoch: int):
    """A freshly initialised model of a configuration and its optimiser.

    Parameters
    ----------
    config : TrainConfig
    image_size : int
        Input side [pixels].
    steps_per_epoch : int
        Micro-batch steps per epoch (for the learning-rate schedule).

    Returns
    -------
    model : nnx.Module
        In training mode, parameters from ``config.seed``.
    optimizer : nnx.Optimizer
        Updating the model's ``nnx.Param`` entries only.
    """
    extra = {"resnet": {"widths": config.resnet_widths, "blocks": config.resnet_blocks},
             "pyramid": {"widths": config.pyramid_widths, "hidden": config.pyramid_hidden,
                         "skip": config.pyramid_skip, "readout": config.refit_readout}}.get(config.model, {})
    model = build_model(config.model, task=config.task, input_size=image_size, uncertainty=config.uncertainty,
                        seed=config.seed, dropout=config.dropout, conv_impl=config.conv_impl,
                        padding=config.padding, **extra)
    return model, nnx.Optimizer(model, make_optimizer(config, steps_per_epoch), wrt=nnx.Param)


# --------------------------------------------------------------------------------------
# the command-line form of the fields
# --------------------------------------------------------------------------------------
LIVE_SIM_OPTIONS = {
    "cells": (64, "Cells per side of every live simulation's grid (even, 4 to 4096)."),
    "t_end": (0.5, "End time of every live simulation [Myr], > 0."),
    "scheme": ("muscl", "Hydrodynamics scheme of the live simulations: first order, or MUSCL (second order)."),
}
"""SimConfig fields of the live simulations given on the command line: default and help."""

_SIM_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SimConfig)}
_SIM_CHOICES = {"scheme": SCHEMES}
_METAVARS = {int: "N", float: "X", str: "TEXT"}


def field_help(cls: type = TrainConfig) -> dict[str, str]:
    """One line of help per field, from the ``Parameters`` section of the class docstring.

    Returns
    -------
    dict
        ``{field name: description}``, reST roles and literals reduced to their text.

    Examples
    --------
    >>> field_help()["patience"]
    'Stop after this many epochs without a lower validation loss, >= 0 (0: never stop early).'
    """
    doc = inspect.cleandoc(cls.__doc__ or "")
    section = re.search(r"^Parameters\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    out: dict[str, str] = {}
    names: list[str] = []
    for line in (section.group(1) if section else "").splitlines():
        if line and not line[0].isspace():
            names = [n.strip() for n in line.split(" : ")[0].split(",")]
            for n in names:
                out[n] = ""
        elif line.strip():
            for n in names:
                out[n] = f"{out[n]} {line.strip()}".strip()
    return {k: re.sub(r"(?::\w+:)?`+~?([^`]+)`+", r"\1", v) for k, v in out.items()}


def _cli_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(TrainConfig) if f.metadata["cli"]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per TrainConfig field (and the live simulations' SimConfig fields).

    ``--field-name`` (or the field's own flags), its type, choices and default from the
    field, its help from the class docstring; booleans are switches. The options are
    grouped as data, model and optimisation, live simulations.
    """
    helps = field_help()
    groups = {name: parser.add_argument_group(name) for name in (DATA, MODEL, LIVE)}
    for f in _cli_fields():
        m = f.metadata
        flags = m["flags"] or ("--" + f.name.replace("_", "-"),)
        kw: dict[str, Any] = {"dest": f.name, "help": helps.get(f.name, "")}
        if isinstance(f.default, bool):  # --x and --no-x: a value from a --config file can be turned off
            kw["action"] = argparse.BooleanOptionalAction
            kw["default"] = f.default
        else:
            kw["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
            kw["type"] = m["type"] or type(f.default)
            for key in ("choices", "nargs", "metavar"):
                if m[key] is not None:
                    kw[key] = m[key]
            if "choices" not in kw:
                kw.setdefault("metavar", _METAVARS.get(kw["type"]))
        groups[m["group"]].add_argument(*flags, **kw)
    for name, (default, text) in LIVE_SIM_OPTIONS.items():
        groups[LIVE].add_argument("--live-" + name.replace("_", "-"), dest="live_" + name, default=default,
                                  type=type(_SIM_DEFAULTS[name]), choices=_SIM_CHOICES.get(name),
                                  metavar=None if name in _SIM_CHOICES else _METAVARS[type(_SIM_DEFAULTS[name])],
                                  help=f"{text} SimConfig.{name}, with --live.")


# --------------------------------------------------------------------------------------
# configuration files (learn.fit --config FILE; learn.tune writes its best one)
# --------------------------------------------------------------------------------------
CONFIG_SUFFIXES = (".toml", ".json")


def read_config_file(path) -> dict:
    """TrainConfig fields from a TOML or JSON file (``learn.fit --config FILE``).

    The file holds field names at top level (``learning_rate = 0.002``, ``augment =
    ["flip", "rot90"]``); fields it leaves out keep their defaults (or the command line's
    values). ``live_sim`` is a table of SimConfig fields.

    Parameters
    ----------
    path : path-like
        ``.toml`` or ``.json`` file.

    Returns
    -------
    dict
        ``{field: value}``, values as the file gives them (checked when the TrainConfig is
        built).

    Raises
    ------
    ValueError
        The file is missing, unreadable, of another suffix, not a table of fields, or names
        a field TrainConfig does not have (the file and the field are named).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "best.toml"
    >>> _ = write_config_file(p, TrainConfig(data="x.h5", model="pyramid", learning_rate=2e-3))
    >>> TrainConfig.from_dict(read_config_file(p)) == TrainConfig(data="x.h5", model="pyramid", learning_rate=2e-3)
    True
    """
    import tomllib

    path = Path(path)
    if path.suffix not in CONFIG_SUFFIXES:
        raise ValueError(f"{path}: a configuration file is {' or '.join(CONFIG_SUFFIXES)}, got suffix {path.suffix!r}")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    try:
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a configuration file holds a table of TrainConfig fields, got "
                         f"{type(values).__name__}")
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"{path}: unknown TrainConfig field(s) {unknown}")
    return values


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # TOML reads 1e-05, inf and nan as Python writes them
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def write_config_file(path, config: TrainConfig, *, header: str = "") -> Path:
    """Write a configuration as TOML or JSON (by suffix) that :func:`read_config_file` reads back.

    Every field is written (None-valued fields, which TOML cannot hold, as comments that
    leave the default None), atomically.

    Parameters
    ----------
    path : path-like
        ``.toml`` or ``.json`` file.
    config : TrainConfig
    header : str
        Comment lines at the top of a TOML file (e.g. where the configuration comes from).

    Returns
    -------
    Path
    """
    from turbsim.atomic import atomic_path

    path = Path(path)
    if path.suffix not in CONFIG_SUFFIXES:
        raise ValueError(f"{path}: a configuration file is {' or '.join(CONFIG_SUFFIXES)}, got suffix {path.suffix!r}")
    d = config.to_dict()
    if path.suffix == ".json":
        text = json.dumps(d, indent=2) + "\n"
    else:
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        for k, v in d.items():
            lines.append(f"# {k}: None (the default)" if v is None else f"{k} = {_toml_value(v)}")
        text = "\n".join(lines) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def file_defaults(values: dict) -> dict:
    """Parser defaults (``argparse`` destinations) of a configuration file's fields.

    Given to ``parser.set_defaults`` before parsing, they make the file's values the
    defaults that command-line options override. ``live_sim`` becomes the ``--live-*``
    options' defaults (only :data:`LIVE_SIM_OPTIONS` fields can be given this way).

    Raises
    ------
    ValueError
        A ``live_sim`` field that has no command-line option.
    """
    out = {}
    for k, v in values.items():
        if k == "live_sim":
            sim = dict(v)
            extra = sorted(set(sim) - set(LIVE_SIM_OPTIONS))
            if extra:
                raise ValueError(f"live_sim field(s) {extra} cannot come from a configuration file; only "
                                 f"{sorted(LIVE_SIM_OPTIONS)}")
            out.update({"live_" + name: val for name, val in sim.items()})
        else:
            out[k] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def parse_with_config_file(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse a command line whose ``--config FILE`` gives defaults that its options override.

    The file's fields (:func:`read_config_file`) become the parser's defaults
    (:func:`file_defaults`), then the command line is parsed. A bad file exits with status
    2 (``parser.error``), naming the file and the field.
    """
    import sys

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.config:
        try:
            parser.set_defaults(**file_defaults(read_config_file(known.config)))
        except ValueError as exc:
            parser.error(str(exc))
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed options (:func:`add_arguments`).

    Raises
    ------
    ValueError
        An invalid value (the message names the field).
    """
    kw = {f.name: getattr(args, f.name) for f in _cli_fields()}
    if args.live:
        kw["live_sim"] = tuple((name, getattr(args, "live_" + name)) for name in LIVE_SIM_OPTIONS)
    return TrainConfig(**kw)
