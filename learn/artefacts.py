"""Physics or artefact? Nuisance ensembles, "which made this?" discriminators, debiasing and realism.

A *nuisance* is a property of the data that must not decide the answer: the scheme that
made a map, its resolution, the output time, the code. turbsim makes the same initial
conditions under each, so every check is a controlled experiment on maps that differ only
by the nuisance (same seeds, same classes, same splits):

* The data (:mod:`learn.nuisances`): the nuisance ensembles from the same seeds
  (:data:`~learn.nuisances.VARIANTS`, :func:`~learn.nuisances.make_ensembles`), turbsim
  twins of RAMSES map files (:func:`~learn.nuisances.make_ramses_twin`), and the pairs
  (:data:`~learn.nuisances.NUISANCES`): scheme, resolution, time, code, mesh (AMR-lite
  levels 6-7 against the uniform grid of the finest level) and refinement (the same
  AMR-lite runs against the uniform grid of the coarsest level: the study's fear of
  refinement sharpening the dense regions).
* :func:`discriminate`: a classifier of the nuisance (the pyramid network, or the spectrum
  baseline's logistic model) on the science task's images (whole maps at
  :data:`~learn.nuisances.IMAGE_SIZE` px, log10 column density with a global normalisation); accuracy near
  50 % means the two kinds cannot be told apart on those images.
* :func:`planted`: the planted-artefact ensemble, where the nuisance follows the class on
  purpose (Burgers mostly from one variant, Kolmogorov from the other), its reversed twin
  and the one where it is absent (independent of the class);
  :func:`science_across` trains the science model on the planted ensemble, plain and with a
  gradient-reversal head (:mod:`learn.debias`), and scores both on the three.
* :func:`realism` (:mod:`learn.autoencoder`): an autoencoder trained on the "real" side,
  the ROC AUC of its reconstruction error against the other.
* :func:`artefact_study` runs all of it for each nuisance and writes the one table, with
  bootstrap 95 % intervals over simulations (:mod:`learn.bootstrap`), as the section
  ``RUN_DIR/artefacts/`` (:mod:`learn.sections`) that the study report shows.

``python -m learn.artefacts make|twin|discriminate|study`` is the command line.

Examples
--------
>>> NUISANCES["refinement"].what
'uniform 64^3 / AMR-lite levels 6-7'
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path
from turbsim.console import ArgumentParser, configure_logging

# the data side (pair_split and variant_config re-exported: they lived here before)
from .nuisances import (CONVENTIONS, IMAGE_SIZE, NATIVE_FILE, NUISANCES, TWIN_FILE, VARIANTS,  # noqa: F401
                        Domain, Nuisance, Pair, load_domain, log_images, make_ensembles, make_pair,
                        make_ramses_twin, nuisance_paths, pair_split, variant_config)

log = logging.getLogger(__name__)

SECTION = "artefacts"

# --------------------------------------------------------------------------------------
# discriminators
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetOptions:
    """The network every check trains: a pyramid CNN (:class:`learn.models.PyramidCNN`).

    Parameters
    ----------
    widths : tuple of int
    hidden : int
    steps : int
        Optimiser steps (AdamW, warm-up and cosine decay), >= 1.
    batch_size : int
    learning_rate : float
    seed : int
    """

    widths: tuple = (8, 16, 32, 32)
    hidden: int = 32
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0

    def build(self, size: int, seed_offset: int = 0):
        from .models import build_model

        return build_model("pyramid", task="classify", input_size=size, seed=self.seed + seed_offset,
                           widths=tuple(self.widths), hidden=self.hidden, padding="circular")


def _outputs(p: np.ndarray, sim: np.ndarray, label: np.ndarray, margin=None):
    """bootstrap Outputs of per-image scores on some simulations (``label`` per simulation), re-indexed
    to those simulations."""
    from .bootstrap import Outputs

    sims, local = np.unique(sim, return_inverse=True)
    return Outputs(local, label[sims], np.zeros(len(sims)), p=p, margin=margin)


def discriminate(pair: Pair, method: str = "network", options: NetOptions = NetOptions(), *,
                 progress: bool = False):
    """A "which made this?" classifier of the nuisance, trained on the train simulations of both sides.

    Parameters
    ----------
    pair : Pair
    method : {"network", "spectrum"}
        The pyramid network (:class:`NetOptions`) or the spectrum baseline's logistic model
        (:func:`learn.baselines.spectrum_features`, :func:`learn.baselines.make_estimator`).
    options : NetOptions
    progress : bool

    Returns
    -------
    learn.bootstrap.Outputs
        P(side b) of every test image, ``klass`` the nuisance of each test simulation.
    """
    from .metrics import softmax

    xtr, str_ = pair.images(True)
    xte, ste = pair.images(False)
    ytr = pair.nuisance[str_]
    if method == "spectrum":
        from .baselines import features, make_estimator

        est = make_estimator("spectrum", "classify").fit(features("spectrum", xtr), ytr)
        p = est.predict_proba(features("spectrum", xte))[:, 1]
        return _outputs(p, ste, pair.nuisance)
    if method != "network":
        raise ValueError(f"discriminator method = {method!r} is not one of network, spectrum")
    from .predict import predict
    from .transfer import fit_images

    model = options.build(xtr.shape[-1])
    fit_images(model, xtr, ytr, steps=options.steps, batch_size=options.batch_size,
               learning_rate=options.learning_rate, seed=options.seed, progress=progress, desc="discriminator")
    logits = np.asarray(predict(model, xte), np.float64)
    return _outputs(softmax(logits)[:, 1], ste, pair.nuisance, margin=logits[:, 1] - logits[:, 0])


def realism(pair: Pair, real_side: int, options=None, *, progress: bool = False):
    """Autoencoder realism: trained on the train images of side ``real_side``, scored on both test sides.

    Returns
    -------
    learn.bootstrap.Outputs
        The anomaly score as a rank in [0, 1] (``p``; its AUC is the reconstruction error's)
        of every test image; ``klass`` 1 for the other side's simulations, 0 for the real one's.
    """
    from .autoencoder import AutoencoderOptions, reconstruction_error, train_autoencoder

    options = options or AutoencoderOptions()
    xtr, str_ = pair.images(True)
    real_tr = pair.nuisance[str_] == real_side
    model, _ = train_autoencoder(xtr[real_tr], options, progress=progress)
    xte, ste = pair.images(False)
    err = reconstruction_error(model, xte)
    rank = (np.argsort(np.argsort(err, kind="mergesort")) + 0.5) / max(len(err), 1)
    other = (pair.nuisance != real_side).astype(int)
    return _outputs(rank, ste, other, margin=err)


# --------------------------------------------------------------------------------------
# planted artefacts and debiasing
# --------------------------------------------------------------------------------------
MODES = ("planted", "absent", "reversed")


def match(a: Domain, b: Domain) -> tuple[Domain, Domain]:
    """The two domains row by row: the same simulations (equal seeds) where they share seeds, else
    simulations paired in order within each (class, split) cell (e.g. two ensembles of other seeds).

    Raises
    ------
    ValueError
        No pair of the same class and split.
    """
    if np.array_equal(a.key, b.key):
        return a, b
    common, ia, ib = np.intersect1d(a.key, b.key, return_indices=True)
    if len(common):
        return a.take(ia), b.take(ib)
    ia, ib = [], []
    for k in (0, 1):
        for t in (True, False):
            ra = np.flatnonzero((a.klass == k) & (a.train == t))
            rb = np.flatnonzero((b.klass == k) & (b.train == t))
            m = min(len(ra), len(rb))
            ia.append(ra[:m])
            ib.append(rb[:m])
    ia, ib = np.concatenate(ia), np.concatenate(ib)
    if not len(ia):
        raise ValueError(f"{a.name} and {b.name} have no simulations of the same class and split to pair")
    return a.take(ia), b.take(ib)


def planted(a: Domain, b: Domain, mode: str = "planted", correlation: float = 0.9, seed: int = 0
            ) -> tuple[Domain, np.ndarray]:
    """One simulation per seed, from side ``a`` or ``b`` by a rule tied to the class.

    Parameters
    ----------
    a, b : Domain
        The same simulations (equal ``key``) under the two nuisance values, or simulations
        paired by :func:`match`.
    mode : {"planted", "absent", "reversed"}
        ``planted``: a Burgers simulation is taken from ``b`` with probability
        ``correlation``, a Kolmogorov one from ``a`` (the nuisance follows the class);
        ``reversed``: the other way round; ``absent``: from ``b`` with probability 1/2
        whatever the class.
    correlation : float
        In [0.5, 1].
    seed : int

    Returns
    -------
    domain : Domain
    nuisance : ndarray of int, shape (S,)
        0 where the simulation came from ``a``, 1 from ``b``.
    """
    if mode not in MODES:
        raise ValueError(f"mode = {mode!r} is not one of {', '.join(MODES)}")
    if not 0.5 <= correlation <= 1:
        raise ValueError(f"correlation = {correlation!r} must lie in [0.5, 1]")
    a, b = match(a, b)
    if a.maps.shape != b.maps.shape:  # another resolution: both at the coarser grid (block means)
        from .transforms import resample_maps

        size = min(a.maps.shape[-1], b.maps.shape[-1])
        a = replace(a, maps=resample_maps(a.maps, size))
        b = replace(b, maps=resample_maps(b.maps, size))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(MODES.index(mode),)))
    u = rng.random(len(a.key))
    if mode == "absent":
        nz = (u < 0.5).astype(int)
    else:
        follow = (u < correlation).astype(int)
        nz = np.where(follow == 1, a.klass, 1 - a.klass)
        if mode == "reversed":
            nz = 1 - nz
    maps = np.where(nz[:, None, None, None] == 1, b.maps, a.maps)
    return Domain(f"{a.name}/{b.name} {mode}", maps, a.klass, a.n, a.key, a.train), nz


@dataclass(frozen=True)
class ScienceOptions:
    """Settings of :func:`science_across`.

    Parameters
    ----------
    correlation : float
        How often the nuisance follows the class in the planted ensemble.
    weight : float
        Reversal weight of the debiased model (the plain one has 0).
    net : NetOptions
    conditional : bool
        The adversary reads the class too (:mod:`learn.debias`).
    ramp : bool
        Raise the reversal weight from 0 over the training (:func:`learn.debias.weight_at`).
    objective : {"reverse", "confusion"}
        :data:`learn.debias.OBJECTIVES`.
    reweight : bool
        The debiased model's science loss also weighs every (class, nuisance) cell equally
        (:class:`learn.debias.DebiasOptions`); the plain model's never does.
    unbiased : bool
        Also train a third, plain model on the ensemble where the nuisance is *absent*
        (independent of the class): the accuracy a model that has no correlation to learn
        reaches, the level a fully debiased model could keep across the nuisance.
    """

    correlation: float = 0.9
    weight: float = 1.0
    net: NetOptions = field(default_factory=NetOptions)
    conditional: bool = True
    ramp: bool = True
    objective: str = "reverse"
    reweight: bool = False
    unbiased: bool = True


def _probe_nuisance(model, pair: Pair) -> "object":
    """A fresh logistic probe of the nuisance on a model's frozen features (train sims -> test sims)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .predict import predict

    xtr, str_ = pair.images(True)
    xte, ste = pair.images(False)
    ftr, fte = np.asarray(predict(model, xtr, features=True)), np.asarray(predict(model, xte, features=True))
    est = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(ftr, pair.nuisance[str_])
    return _outputs(est.predict_proba(fte)[:, 1], ste, pair.nuisance)


def science_across(a: Domain, b: Domain, options: ScienceOptions = ScienceOptions(), *, size: int = IMAGE_SIZE,
                   progress: bool = False) -> dict:
    """The science classifier trained on the planted ensemble, plain and debiased, scored across the nuisance.

    Both models are :func:`learn.debias.train_debiased` on the train simulations of
    :func:`planted` (``mode="planted"``) with the same batches; the plain one with weight 0.
    With ``options.unbiased`` a third plain model (``"unbiased"``) is trained on the train
    simulations of the ensemble where the nuisance is absent (the reference: no
    correlation to learn). Each is scored on the test simulations of the planted, absent
    and reversed ensembles;
    a fresh logistic probe of the nuisance on each model's frozen features is trained on the
    train simulations of both sides and scored on their test simulations.

    Returns
    -------
    dict
        ``{"plain"|"debiased"|"unbiased": {"planted"|"absent"|"reversed": Outputs, "probe": Outputs,
        "head": Outputs}}`` (``head``: the adversary's own nuisance predictions on the test
        simulations of both sides).
    """
    from .debias import DebiasOptions, nuisance_head_outputs, train_debiased
    from .metrics import softmax
    from .predict import predict
    from .transforms import fit_normaliser

    sets = {m: planted(a, b, m, options.correlation, seed=options.net.seed) for m in MODES}

    arms = [("plain", "planted", 0.0), ("debiased", "planted", options.weight)]
    if options.unbiased:
        arms.append(("unbiased", "absent", 0.0))
    out: dict = {}
    for arm, source, weight in arms:
        train_dom, train_nz = sets[source]
        xs, ss = log_images(train_dom, size)
        sel = train_dom.train[ss]
        norm = fit_normaliser("global", xs[sel])  # each model's normaliser: its own training maps
        xs = norm(xs)
        both = make_pair(a, b, size, normaliser=norm)
        o = options.net
        dopt = DebiasOptions(weight=weight, steps=o.steps, batch_size=o.batch_size, learning_rate=o.learning_rate,
                             conditional=options.conditional, ramp=options.ramp, objective=options.objective,
                             reweight=options.reweight and arm == "debiased", seed=o.seed)
        model, hist = train_debiased(o.build(size, 7), xs[sel], train_dom.klass[ss[sel]], train_nz[ss[sel]], dopt,
                                     progress=progress)
        res = {}
        for m, (dom, _) in sets.items():
            x, s = log_images(dom, size)
            test = ~dom.train[s]
            logits = np.asarray(predict(model.backbone, norm(x[test])), np.float64)
            res[m] = _outputs(softmax(logits)[:, 1], s[test], dom.klass, logits[:, 1] - logits[:, 0])
        res["probe"] = _probe_nuisance(model.backbone, both)
        xte, ste = both.images(False)
        res["head"] = _outputs(nuisance_head_outputs(model, xte, both.klass[ste]), ste, both.nuisance)
        res["history"] = {k: float(np.mean(v[-20:])) for k, v in hist.items()}
        out[arm] = res
    return out


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
def interval(outputs, score: str = "accuracy", n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-image score with its bootstrap 95 % interval over simulations: ``{"point", "lo", "hi", "n_sims"}``."""
    from .bootstrap import bootstrap_scores

    b = bootstrap_scores(outputs, n_boot=n_boot, seed=seed)
    s = b["per_image"][score]
    return {"point": s["point"], "lo": s["lo"], "hi": s["hi"], "n_sims": b["n_sims"]}


def fmt(iv: dict | None, percent: bool = True) -> str:
    """``"97.9 % [95.1, 100]"`` (or an AUC ``"0.51 [0.40, 0.62]"``); ``"–"`` when missing.

    Examples
    --------
    >>> fmt({"point": 0.979, "lo": 0.951, "hi": 1.0})
    '97.9 % [95.1, 100.0]'
    >>> fmt({"point": 0.5, "lo": 0.41, "hi": 0.6}, percent=False)
    '0.50 [0.41, 0.60]'
    """
    if not iv or iv.get("point") is None:
        return "–"
    if percent:
        return f"{100 * iv['point']:.1f} % [{100 * iv['lo']:.1f}, {100 * iv['hi']:.1f}]"
    return f"{iv['point']:.2f} [{iv['lo']:.2f}, {iv['hi']:.2f}]"


COLUMNS = ["nuisance", "discriminator: network", "discriminator: spectrum", "autoencoder AUC",
           "plain: in-domain", "plain: absent", "plain: reversed",
           "debiased: in-domain", "debiased: absent", "debiased: reversed",
           "nuisance probe: plain / debiased features",
           "trained where absent: in-domain / absent / reversed"]


@dataclass(frozen=True)
class StudyOptions:
    """Settings of :func:`artefact_study`.

    Parameters
    ----------
    net : NetOptions
        Discriminator and science networks.
    science : ScienceOptions
        Planted ensemble and debiasing (``None`` skips the science columns).
    autoencoder : learn.autoencoder.AutoencoderOptions or None
        ``None``: the defaults.
    n_boot : int
    size : int
        Image side [pixels].
    """

    net: NetOptions = field(default_factory=NetOptions)
    science: ScienceOptions | None = field(default_factory=ScienceOptions)
    autoencoder: object = None
    n_boot: int = 1000
    size: int = IMAGE_SIZE


def nuisance_row(nuisance: Nuisance, a: Domain, b: Domain, options: StudyOptions = StudyOptions(), *,
                 progress: bool = False) -> dict:
    """Every number of one nuisance: discriminators, autoencoder AUC, science across it (with intervals)."""
    pair = make_pair(a, b, options.size)
    nb = options.n_boot
    res = {"nuisance": nuisance.name, "what": nuisance.what, "a": a.name, "b": b.name,
           "n_sims": {"a": int(len(a.maps)), "b": int(len(b.maps)), "test": int((~pair.train).sum())}}
    res["discriminator_network"] = interval(discriminate(pair, "network", options.net, progress=progress), n_boot=nb)
    res["discriminator_spectrum"] = interval(discriminate(pair, "spectrum"), n_boot=nb)
    real_side = 0 if nuisance.real == nuisance.a else 1
    res["autoencoder_auc"] = interval(realism(pair, real_side, options.autoencoder, progress=progress), "auc",
                                      n_boot=nb)
    if options.science is not None:
        sci = science_across(a, b, replace(options.science, net=options.net), size=options.size, progress=progress)
        for arm, d in sci.items():
            res[arm] = {m: interval(d[m], n_boot=nb) for m in (*MODES, "probe", "head")}
            res[arm]["history"] = d["history"]
    return res


def table_rows(results: list[dict]) -> list[list[str]]:
    """Rows of :data:`COLUMNS` from :func:`nuisance_row` results."""
    rows = []
    for r in results:
        p, d, u = r.get("plain", {}), r.get("debiased", {}), r.get("unbiased", {})
        what = NUISANCES[r["nuisance"]].what if r["nuisance"] in NUISANCES else r["what"]
        rows.append([f"{r['nuisance']} ({what})", fmt(r["discriminator_network"]), fmt(r["discriminator_spectrum"]),
                     fmt(r["autoencoder_auc"], percent=False),
                     fmt(p.get("planted")), fmt(p.get("absent")), fmt(p.get("reversed")),
                     fmt(d.get("planted")), fmt(d.get("absent")), fmt(d.get("reversed")),
                     f"{fmt(p.get('probe'))} / {fmt(d.get('probe'))}",
                     " / ".join(fmt(u.get(m)) for m in MODES) if u else "–"])
    return rows


def section_text(results: list[dict], options: StudyOptions) -> str:
    """The section's paragraph: what the table says, with the numbers."""
    parts = ["For each nuisance, two kinds of maps made from the same seeds that differ only by it. "
             "A discriminator near 50 % and an autoencoder AUC near 0.5 mean the two kinds cannot be "
             "told apart on the science task's images (whole maps, log10 column density, global "
             f"normalisation, {options.size} px)."]
    if options.science is not None:
        parts.append(f"The science model (Kolmogorov or Burgers) is trained on a planted-artefact ensemble where "
                     f"the nuisance follows the class in {100 * options.science.correlation:.0f} % of the simulations, "
                     f"plain and with a gradient-reversal head (weight {options.science.weight:g}), and scored on that "
                     "ensemble (in-domain), on one where the nuisance is independent of the class (absent) and on one "
                     "where the correlation is reversed. The last column is a fresh logistic probe of the nuisance on "
                     "each model's frozen features (50 %: the features do not carry it).")
        if options.science.unbiased:
            parts.append("The last column: a plain model trained where the nuisance is absent (no correlation to "
                         "learn), the level a fully debiased model could keep across the nuisance.")
        if options.science.reweight:
            parts.append("The debiased model's science loss also weighs every (class, nuisance) cell of the "
                         "planted ensemble equally (importance weighting); the plain model's does not.")
    for r in results:
        net, spec = r["discriminator_network"], r["discriminator_spectrum"]
        apart = [name for name, iv in (("the network", net), ("the spectrum", spec)) if not iv["lo"] <= 0.5 <= iv["hi"]]
        verdict = ("are told apart by " + " and ".join(apart)) if apart else "cannot be told apart"
        parts.append(f"{r['nuisance']}: the two kinds {verdict} (network {100 * net['point']:.1f} %, spectrum "
                     f"{100 * spec['point']:.1f} %, autoencoder AUC {r['autoencoder_auc']['point']:.2f}).")
        if "plain" in r:
            pa, da = r["plain"]["absent"]["point"], r["debiased"]["absent"]["point"]
            pi, di = r["plain"]["planted"]["point"], r["debiased"]["planted"]["point"]
            parts.append(f"Absent correlation: plain {100 * pa:.1f} % (in-domain {100 * pi:.1f} %), debiased "
                         f"{100 * da:.1f} % (in-domain {100 * di:.1f} %).")
    parts.append(f"Intervals: bootstrap 95 % over test simulations ({options.n_boot} resamples).")
    n_test = min(r["n_sims"]["test"] for r in results) if results else 0
    from .sections import small_split_note

    note = small_split_note(n_test // 2, "each side's test split")
    return " ".join(parts + ([note] if note else []))


ROWS_DIR = "rows"
"""Each nuisance's numbers, ``RUN_DIR/artefacts/rows/<nuisance>.json``: the table is rebuilt from every
row there, so nuisances measured by separate runs (or rerun alone) share one table."""


def save_row(run_dir, result: dict) -> Path:
    """Write one nuisance's :func:`nuisance_row` result (atomically) beside the section."""
    from .sections import _jsonable, section_dir

    folder = section_dir(run_dir, SECTION) / ROWS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{result['nuisance']}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(result), indent=1, allow_nan=False) + "\n")
    return path


def load_rows(run_dir) -> list[dict]:
    """Every saved row of a run directory, in the order of :data:`NUISANCES`."""
    folder = Path(run_dir) / SECTION / ROWS_DIR
    rows = {}
    for p in sorted(folder.glob("*.json")):
        try:
            rows[p.stem] = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read a nuisance row ({exc})") from None
    order = list(NUISANCES)
    return [rows[k] for k in sorted(rows, key=lambda k: order.index(k) if k in order else len(order))]


def write_artefact_section(run_dir, results: list[dict], options: StudyOptions = StudyOptions()) -> Path:
    """Write the one table as ``RUN_DIR/artefacts/section.json`` (:mod:`learn.sections`)."""
    from .sections import Section, Table, write_section

    sec = Section("Physics or artefact? Nuisance discriminators, autoencoder realism, debiasing",
                  section_text(results, options),
                  tables=[Table("per nuisance: accuracy per image (or AUC) with bootstrap 95 % intervals over "
                                "simulations", list(COLUMNS), table_rows(results))],
                  data={"results": results})
    return write_section(run_dir, SECTION, sec)


def artefact_study(data_dir, run_dir, nuisances=tuple(NUISANCES), *,
                   ramses=None, options: StudyOptions = StudyOptions(), progress: bool = False) -> list[dict]:
    """Every nuisance's row, written as the section ``RUN_DIR/artefacts/`` (after each row).

    Parameters
    ----------
    data_dir : path-like
        Folder of :func:`make_ensembles` (and ``turbsim_twin.npz`` of :func:`make_ramses_twin`).
    run_dir : path-like
        Where the section goes (a run directory, so that its report shows it).
    nuisances : sequence of str
        Keys of :data:`NUISANCES`.
    ramses : path-like, optional
        The RAMSES map file (for ``code``).
    options : StudyOptions
    progress : bool

    Returns
    -------
    list of dict
        :func:`nuisance_row` of each nuisance (also saved as ``RUN_DIR/artefacts/rows/<nuisance>.json``;
        the section's table holds every row saved there, from this run or an earlier one).
    """
    results = []
    for name in nuisances:
        if name not in NUISANCES:
            raise ValueError(f"nuisance = {name!r} is not one of {', '.join(NUISANCES)}")
        nu = NUISANCES[name]
        pa, pb = nuisance_paths(data_dir, nu, ramses)
        a, b = load_domain(pa, nu.a), load_domain(pb, nu.b)
        log.info("nuisance %s: %s (%d sims) against %s (%d sims)", name, pa, len(a.maps), pb, len(b.maps))
        results.append(nuisance_row(nu, a, b, options, progress=progress))
        save_row(run_dir, results[-1])
        write_artefact_section(run_dir, load_rows(run_dir), options)
    return results


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m learn.artefacts", short_usage="{make,twin,discriminate,study} [options]",
                       description="Physics or artefact? Nuisance ensembles from the same seeds, 'which made this?' "
                                   "discriminators, adversarial debiasing and autoencoder realism checks "
                                   "(nuisances: scheme, resolution, time, mesh and refinement (uniform 128^3 or 64^3 / AMR-lite 6-7), code).")
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="generate the nuisance ensembles DIR/<variant>.h5")
    m.add_argument("--out", required=True, help="folder of the ensembles")
    m.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    m.add_argument("--sims", type=int, default=96, help="simulations per ensemble (default 96)")
    m.add_argument("--seed", type=int, default=17, help="ensemble seed (default 17)")
    m.add_argument("--cells", type=int, default=64, help="cells per side of the reference (default 64)")
    m.add_argument("--workers", type=int, default=1, help="worker processes (default 1; 0: this process)")
    t = sub.add_parser("twin", help="turbsim runs of a RAMSES map file's seeds under RAMSES's conventions")
    t.add_argument("ramses", help="RAMSES map file (.npz)")
    t.add_argument("--out", required=True, help=f"folder to write {TWIN_FILE} (or {NATIVE_FILE}) into")
    t.add_argument("--conventions", choices=CONVENTIONS, default="ramses",
                   help="RAMSES's conventions (the same simulations) or turbsim's own (other realisations of "
                        "the same physics); default ramses")
    d = sub.add_parser("discriminate", help="accuracy of a nuisance classifier between two data files")
    d.add_argument("a", help="data of nuisance 0 (.h5 ensemble or .npz map file)")
    d.add_argument("b", help="data of nuisance 1")
    d.add_argument("--method", choices=("network", "spectrum"), default="network")
    s = sub.add_parser("study", help="the table of every nuisance, as the section RUN_DIR/artefacts/")
    s.add_argument("--data-dir", required=True, help="folder of 'make' (and 'twin')")
    s.add_argument("--out", required=True, help="run directory for the section")
    s.add_argument("--nuisances", nargs="+", default=list(NUISANCES), choices=list(NUISANCES))
    s.add_argument("--ramses", help="RAMSES map file (needed by the code nuisance)")
    s.add_argument("--correlation", type=float, default=0.9, help="nuisance-class correlation of the planted "
                   "ensemble (default 0.9)")
    s.add_argument("--weight", type=float, default=1.0, help="gradient-reversal weight (default 1)")
    s.add_argument("--unconditional", action="store_true", help="the adversary does not read the class")
    s.add_argument("--no-ramp", action="store_true", help="the full reversal weight from the first step")
    s.add_argument("--objective", choices=("reverse", "confusion"), default="reverse",
                   help="gradient reversal (default) or the non-saturating confusion loss")
    s.add_argument("--reweight", action="store_true", help="the debiased model's science loss weighs every "
                   "(class, nuisance) cell equally too")
    s.add_argument("--no-unbiased", action="store_true", help="skip the reference model trained where the "
                   "nuisance is absent")
    s.add_argument("--ae-steps", type=int, default=200, help="autoencoder steps (default 200)")
    for q in (d, s):
        q.add_argument("--steps", type=int, default=200, help="network steps (default 200)")
        q.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
        q.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    s.add_argument("--size", type=int, default=IMAGE_SIZE,
                   help=f"image side every check reads, pixels (default {IMAGE_SIZE}; maps are block-averaged "
                        "to it, or Fourier-interpolated when it is not a divisor)")
    for q in (m, t, d, s):
        q.add_output_options(json="print the result as one JSON line")
    return p


def main(argv=None) -> int:
    from .autoencoder import AutoencoderOptions

    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    progress = not args.no_progress
    try:
        if args.command == "make":
            got = {k: str(v) for k, v in make_ensembles(args.out, args.variants, sims=args.sims, seed=args.seed,
                                                         cells=args.cells, workers=args.workers,
                                                         progress=progress).items()}
        elif args.command == "twin":
            name = TWIN_FILE if args.conventions == "ramses" else NATIVE_FILE
            got = {"twin": str(make_ramses_twin(args.ramses, Path(args.out) / name, conventions=args.conventions,
                                                progress=progress))}
        elif args.command == "discriminate":
            net = NetOptions(steps=args.steps, seed=args.seed)
            pair = make_pair(load_domain(args.a), load_domain(args.b))
            got = interval(discriminate(pair, args.method, net, progress=progress), n_boot=args.n_boot)
            print(f"{args.method} discriminator, test images: {fmt(got)}", file=sys.stderr)
        else:
            net = NetOptions(steps=args.steps, seed=args.seed)
            opts = StudyOptions(net=net, science=ScienceOptions(args.correlation, args.weight, net,
                                                                not args.unconditional, not args.no_ramp,
                                                                args.objective, args.reweight,
                                                                not args.no_unbiased),
                                autoencoder=AutoencoderOptions(steps=args.ae_steps, seed=args.seed),
                                n_boot=args.n_boot, size=args.size)
            res = artefact_study(args.data_dir, args.out, args.nuisances, ramses=args.ramses, options=opts,
                                 progress=progress)
            for row in table_rows(res):
                print(" | ".join(row), file=sys.stderr)
            got = {"section": str(Path(args.out) / SECTION), "results": res}
    except (ValueError, OSError, RuntimeError) as exc:  # RuntimeError: turbsim.parallel.RunError
        print(f"learn.artefacts: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        from .sections import _jsonable

        print(json.dumps(_jsonable(got)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
