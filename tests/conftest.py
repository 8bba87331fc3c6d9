"""Shared test fixtures: the shared reference data, and small ensembles and a trained run for learn.

JAX compiles with XLA's backend optimisation level 0 in the test processes (unless
``XLA_FLAGS`` already sets a level): the learn tests run tiny models for a few steps, so
compiling their programs takes far longer than running them, and level 0 compiles several
times faster. It changes how fast the compiled code runs, not what it computes. Set
``XLA_FLAGS=--xla_backend_optimization_level=2`` to test with the default level.

The session fixtures below make small ensembles once (16^3 first-order simulations, a few
hundredths of a second each) and one short training run on them, shared by the learn
tests; a test that changes a run works on a copy (:func:`copy_run`).
"""
import os
import shutil
from pathlib import Path

import pytest

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

TINY_PYRAMID = {"model": "pyramid", "pyramid_widths": (4, 8), "pyramid_hidden": 8}
"""A pyramid CNN of a few hundred parameters: the learn tests' model where any model will do."""
TINY_RUN = {**TINY_PYRAMID, "optimizer": "adamw", "learning_rate": 3e-3, "epochs": 2, "batch_size": 32,
            "patience": 0, "seed": 4, "schedule": "cosine", "warmup_epochs": 0.5, "dropout": 0.3,
            "steps_per_call": 2}
"""The configuration of :func:`tiny_run` (without ``data``): cosine schedule after half an epoch of
warm-up, dropout (randomness in every step) and two steps per jitted call."""


def shared_dir() -> Path:
    """The shared data folder beside the repository (override with TURBSIM_SHARED)."""
    env = os.environ.get("TURBSIM_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared():
    path = shared_dir()
    if not (path / "ramses").is_dir():
        pytest.skip(f"shared reference data not found at {path}")
    return path


def tiny_sim():
    """16^3 cells, first order, 0.1 Myr: about 0.01 s per simulation."""
    from turbsim import SimConfig

    return SimConfig(cells=16, scheme="first", t_end=0.1)


def make_ensemble(path: Path, *, sims: int, seed: int, splits, sim=None, sweep: bool = False) -> Path:
    """An ensemble of two trivially separable classes (n = 2 against n = 5), or a sweep of n in [2, 5]."""
    from turbsim.ensemble_plan import EnsembleConfig
    from turbsim.ensemble import run_ensemble

    kw = ({"labels": "sweep", "n_range": (2.0, 5.0)} if sweep
          else {"class_n": (2.0, 5.0), "class_names": ("kolmogorov", "burgers")})
    cfg = EnsembleConfig(sims=sims, seed=seed, splits=splits, sim=sim or tiny_sim(), **kw)
    run_ensemble(cfg, path, workers=0, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_binary(tmp_path_factory):
    """24 simulations at 16^3, n = 2 against n = 5: 12 train, 6 test, 6 holdout (3 of each class)."""
    return make_ensemble(tmp_path_factory.mktemp("data") / "tiny_binary.h5", sims=24, seed=3,
                         splits=(0.5, 0.25, 0.25))


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """144 simulations at 16^3 with n uniform in [2, 5]: 48 train, 96 test (no holdout)."""
    return make_ensemble(tmp_path_factory.mktemp("data") / "tiny_sweep.h5", sims=144, seed=5,
                         splits=(1 / 3, 2 / 3, 0.0), sweep=True)


@pytest.fixture(scope="session")
def tiny_binary32(tmp_path_factory):
    """24 simulations at 32^3 (first order, 0.1 Myr), n = 2 against n = 5: 12 train, 6 test, 6 holdout.
    Its quadrant images (16 px) fit study_cnn, whose input is a multiple of 16 pixels."""
    from turbsim import SimConfig

    return make_ensemble(tmp_path_factory.mktemp("data") / "tiny_binary32.h5", sims=24, seed=6,
                         splits=(0.5, 0.25, 0.25), sim=SimConfig(cells=32, scheme="first", t_end=0.1))


@pytest.fixture(scope="session")
def tiny_run(tiny_binary, tmp_path_factory):
    """A finished run of :data:`TINY_RUN` on :func:`tiny_binary` (quadrant images of 8 px), fitted
    by :func:`learn.pipeline.fit`: scored on its test and holdout splits, with the spectrum
    baseline and the report. Read-only: copy it (:func:`copy_run`) to change it."""
    pytest.importorskip("flax")
    pytest.importorskip("orbax.checkpoint")
    from learn import pipeline
    from learn.config import TrainConfig

    out = tmp_path_factory.mktemp("runs") / "tiny"
    pipeline.fit(TrainConfig(data=os.fspath(tiny_binary), **TINY_RUN), out, splits=("test", "holdout"),
                 allow_holdout=True, baselines=("spectrum",), progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_regress_run(tiny_sweep, tmp_path_factory):
    """A run of :data:`TINY_RUN` regressing n on :func:`tiny_sweep` for one epoch (training only, no
    evaluation): the regression network that transfer learning starts from. Read-only."""
    pytest.importorskip("flax")
    pytest.importorskip("orbax.checkpoint")
    from learn.config import TrainConfig
    from learn.train import train_and_evaluate

    out = tmp_path_factory.mktemp("runs") / "tiny_regress"
    train_and_evaluate(TrainConfig(data=os.fspath(tiny_sweep), **{**TINY_RUN, "task": "regress", "epochs": 1}), out,
                       progress=False)
    return out


def copy_run(run_dir: Path, dest: Path) -> Path:
    """A copy of a run directory to change (a session run stays as it was)."""
    shutil.copytree(run_dir, dest)
    return dest
