"""The study report: one self-contained HTML page that reads as the study's answer.

``python -m learn.report RUN_DIR [RUN_DIR ...] -o study.html`` gathers one or more run
directories (:func:`learn.pipeline.fit`) and folders of other analyses (a tuning folder of
``python -m learn.tune``) into one page, every image embedded:

* the answer, in a few generated sentences, beside the study's 77 % and the follow-up's
  RMSE of 0.155;
* what was done: the ensemble (classes and n, grid, time, split sizes per class, the
  simulations' time), every run (model, images, training), every command line, the
  versions and the date;
* example maps of each class (axes in pc, a labelled colour bar) and the classes' mean
  power spectra;
* one table of every method (each network, each baseline) with accuracy and AUC, or RMSE,
  per image and per simulation, with 95 % intervals from a bootstrap over simulations
  (:mod:`learn.bootstrap`);
* every ROC curve on one plot, the confusion matrices, the learning curves (named as the
  splits are), the regression scatter, P(Burgers) against n on a sweep, scores on other
  data (RAMSES maps) against the run's own;
* every section of the runs (``RUN_DIR/<name>/section.json``, :mod:`learn.sections`:
  saliency, band occlusion, t-SNE, HOG + SVM, transfer, tuning).

Under every figure a generated sentence says what it shows, and a warning where a split
holds too few simulations for its numbers to mean much. :func:`write_report` writes the page
of one run as its ``report.html``. What the page reads is gathered by
:mod:`learn.report_data`, its figures drawn by :mod:`learn.report_plots`.
"""
from __future__ import annotations

import argparse
import base64
import datetime
import html
import logging
import platform
import re
import sys
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path
from turbsim.console import ArgumentParser, configure_logging

from . import report_plots as plots
from .metrics import per_simulation, ranking_score
from .report_data import (N_BOOT, ReportError, RunData, Scored, add_intervals, class_maps, ensemble_facts,
                          generate_command, images_label, load_run_data, unique_names)
from .rundir import RUN_FILE
from .sections import FEW_SIMS, SectionError, read_sections

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
STUDY_ACCURACY = 0.77
"""The study's accuracy, Kolmogorov against Burgers (its CNN on quadrant images, 128^3)."""
FOLLOWUP_RMSE = 0.155
"""The follow-up's RMSE of n (its CNN)."""
STUDY_CNN_FULL = ("trained on the binary preset's 400 simulations per class at 128^3 for 6 epochs, it classifies "
                  "98.5 % of the holdout images")
"""What study_cnn reaches with the study's amount of data (docs/results.md)."""
# --------------------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------------------
class Page:
    """An HTML page assembled from escaped pieces, with unique ids and a table of contents."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self._ids: set[str] = set()
        self.n_figures = 0

    def new_id(self, text: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "s"
        i, new = 1, base
        while new in self._ids:
            i += 1
            new = f"{base}-{i}"
        self._ids.add(new)
        return new

    def h2(self, text: str) -> None:
        sid = self.new_id(text)
        self.toc.append((sid, text))
        self.parts.append(f'<h2 id="{sid}">{esc(text)}</h2>')

    def h3(self, text: str) -> None:
        self.parts.append(f'<h3 id="{self.new_id(text)}">{esc(text)}</h3>')

    def p(self, text: str, cls: str | None = None) -> None:
        if text:
            c = f' class="{cls}"' if cls else ""
            self.parts.append(f"<p{c}>{esc(text)}</p>")

    def note(self, text: str) -> None:
        self.p(text, "note")

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def figure(self, png: bytes, caption: str, text: str = "") -> None:
        """An embedded PNG with its caption (also its alt text) and a sentence under it."""
        self.n_figures += 1
        data = base64.b64encode(png).decode()
        fid = self.new_id(f"figure-{self.n_figures}")
        self.parts.append(f'<figure id="{fid}"><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                          f"<figcaption>Figure {self.n_figures}. {esc(caption)}</figcaption></figure>")
        self.p(text, "says")

    def plot(self, make, caption: str, text: str = "") -> None:
        """Draw a figure (``make()``), embed it, or say why it is missing."""
        try:
            fig = make()
        except Exception as exc:  # noqa: BLE001 (a failed figure is reported on the page, not fatal)
            log.warning("figure %r not drawn: %s", caption, exc)
            self.note(f"{caption}: not drawn ({type(exc).__name__}: {exc}).")
            return
        self.figure(plots.png_bytes(fig), caption, text)

    def table(self, columns: list[str], rows: list[list], caption: str = "", cls: str = "") -> None:
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
        cap = f"<caption>{esc(caption)}</caption>" if caption else ""
        c = f' class="{cls}"' if cls else ""
        self.parts.append(f"<table{c}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def html(self) -> str:
        toc = "".join(f'<li><a href="#{i}">{esc(t)}</a></li>' for i, t in self.toc)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>"
                f"<h1>{esc(self.title)}</h1><nav><ul>{toc}</ul></nav>\n" + "\n".join(self.parts)
                + "\n</body></html>\n")


CSS = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:0 1em;line-height:1.4}"
       "img{max-width:100%}figure{margin:1em 0}figcaption{font-size:90%;color:#333}"
       "table{border-collapse:collapse;margin:0.6em 0;font-size:90%}td,th{border:1px solid #aaa;padding:3px 6px;"
       "text-align:left;vertical-align:top}caption{text-align:left;font-weight:bold;padding:4px 0}"
       ".note{background:#fff4d6;border-left:4px solid #e0a800;padding:4px 8px}.says{color:#222}"
       ".answer{font-size:110%;background:#eef5ff;padding:8px}pre{white-space:pre-wrap;background:#f4f4f4;"
       "padding:6px;font-size:85%}.cm td{text-align:right}nav ul{columns:2}")


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _interval(sc: Scored, level: str, score: str, as_pct: bool) -> str:
    """``value [lo, hi]`` of a score, or the value alone without outputs to resample."""
    val = sc.metrics.get(level, {}).get(score)
    fmt = pct if as_pct else (lambda x: "–" if x is None else f"{x:.3f}")
    if sc.boot is None or val is None:
        return fmt(val)
    iv = sc.boot[level][score]
    lo, hi = iv["lo"], iv["hi"]
    if as_pct:
        return f"{100 * val:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{val:.3f} [{lo:.3f}, {hi:.3f}]"


# --------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------
def _set_names(runs: list[RunData]) -> list[str]:
    """Every scored set: the test split, the holdout, then other data in name order."""
    names = sorted({s for r in runs for m in r.methods for s in m.scored})
    return sorted(names, key=lambda s: ("test", "holdout").index(s) if s in ("test", "holdout") else 2)


def _main_set(runs: list[RunData]) -> str | None:
    names = _set_names(runs)
    return names[0] if names else None


def _task(runs: list[RunData]) -> str:
    return runs[0].config["task"] if runs else "classify"


def _scored_rows(runs, name, mode):
    """``(method, Scored)`` of every method scored on set ``name`` in ``mode``."""
    return [(m, m.scored[name]) for r in runs for m in r.methods
            if name in m.scored and m.scored[name].metrics.get("mode") == mode]


def _per_class(sc: Scored) -> str:
    o = sc.outputs
    n = sc.metrics.get("per_sim", {}).get("n", sc.metrics.get("n_sims"))
    if o is not None and o.labelled:
        counts = np.bincount(o.klass, minlength=2)
        return f"{n} ({counts[0]} + {counts[1]})"
    return str(n)


def _sims_text(sc: Scored) -> str:
    """``30 simulations, 15 per class`` (or ``30 simulations``)."""
    o = sc.outputs
    n = sc.metrics.get("n_sims") or sc.metrics.get("per_sim", {}).get("n")
    if o is not None and o.labelled:
        a, b = np.bincount(o.klass, minlength=2)[:2]
        return f"{n} simulations, {a} Kolmogorov and {b} Burgers" if a != b else f"{n} simulations, {a} per class"
    return f"{n} simulations"


def _small_note(sc: Scored, what: str) -> str:
    """A warning when a scored set holds fewer than FEW_SIMS simulations (per class for a classifier)."""
    o = sc.outputs
    n_sims = sc.metrics.get("n_sims") or sc.metrics.get("per_sim", {}).get("n") or 0
    if o is not None and o.task == "classify" and o.labelled:
        few = int(np.bincount(o.klass, minlength=2).min())
        unit = "simulations per class"
    else:
        few, unit = int(n_sims), "simulations"
    if few >= FEW_SIMS:
        return ""
    width = ""
    if sc.boot is not None:
        key = "accuracy" if o.task == "classify" else "rmse"
        iv = sc.boot["per_image"][key]
        width = (f" (the 95 % interval of the per-image {key} spans {iv['lo']:.3f} to {iv['hi']:.3f})")
    return (f"Only {few} {unit} in {what}: its scores move by whole simulations and mean little{width}; "
            f"generate more simulations (at least {FEW_SIMS} {unit}) before reading them as results.")


def _answer(page: Page, runs: list[RunData], main: str | None) -> None:
    task = _task(runs)
    page.h2("The answer")
    if main is None:
        page.note("No run has been scored yet: nothing to answer (python -m learn.evaluate RUN_DIR).")
        return
    mode = "classify" if task == "classify" else "regress"
    rows = _scored_rows(runs, main, mode)
    if not rows:
        page.note(f"No method was scored on the {main} split.")
        return
    key = "accuracy" if mode == "classify" else "rmse"
    better = max if mode == "classify" else min
    nets = [(m, sc) for m, sc in rows if m.kind == "network"]
    bases = [(m, sc) for m, sc in rows if m.kind == "baseline"]
    sentences = []
    what = f"the {main} split" if main in ("test", "holdout") else main
    if nets:
        m, sc = better(nets, key=lambda t: t[1].metrics["per_image"][key])
        if mode == "classify":
            sentences.append(
                f"Kolmogorov or Burgers? On {what} ({_sims_text(sc)}), the best network, {m.name}, "
                f"reading {m.images}, classifies {_interval(sc, 'per_image', 'accuracy', True)} of the images and "
                f"{_interval(sc, 'per_sim', 'accuracy', True)} of the simulations (95 % intervals from a bootstrap "
                f"over simulations); the study reached {pct(STUDY_ACCURACY)}.")
        else:
            sentences.append(
                f"How precisely can n be read? On {what} ({_sims_text(sc)}), the best network, {m.name}, "
                f"reads n with an RMSE of {_interval(sc, 'per_image', 'rmse', False)} per image and "
                f"{_interval(sc, 'per_sim', 'rmse', False)} per simulation; the follow-up study reached "
                f"{FOLLOWUP_RMSE}.")
        for other, osc in nets:
            if other is not m:
                sentences.append(f"{other.name} ({other.images}): {_fmt_key(osc, key)} per image.")
    if bases:
        b, bsc = better(bases, key=lambda t: t[1].metrics["per_image"][key])
        sentences.append(f"The best baseline, {b.name}, scores {_fmt_key(bsc, key)} per image.")
    if nets and main == "test":
        hold = [(n, n.scored["holdout"]) for n, _ in nets if "holdout" in n.scored]
        if hold:
            sentences.append("On the holdout split, never used to choose anything: " + "; ".join(
                f"{n.name} {_fmt_key(h, key)} per image" for n, h in hold) + ".")
    page.p(" ".join(sentences), "answer")
    first = rows[0][1]
    page.note(_small_note(first, what))
    _explain_study_cnn(page, runs, main, mode)


def _fmt_key(sc: Scored, key: str) -> str:
    return _interval(sc, "per_image", key, key == "accuracy")


def _explain_study_cnn(page: Page, runs: list[RunData], main: str, mode: str) -> None:
    """Why the study's CNN scores lower than the best network, from its run's own facts."""
    if mode != "classify":
        return
    rows = [(r, m, m.scored[main]) for r in runs for m in r.methods[:1] if main in m.scored
            and m.scored[main].metrics.get("mode") == "classify"]
    best = max((sc.metrics["per_image"]["accuracy"] for _, _, sc in rows), default=None)
    for r, m, sc in rows:
        acc = sc.metrics["per_image"]["accuracy"]
        if r.config["model"] != "study_cnn" or best is None or acc >= best - 0.03:
            continue
        s = r.summary
        n_train = r.info.get("data", {}).get("n_train")
        epochs, best_ep = s.get("epochs_run"), s.get("best_epoch")
        rising = ""
        if r.history and len(r.history) >= 2:
            a, b = r.history[-2].get("val_metric"), r.history[-1].get("val_metric")
            t0, t1 = r.history[0].get("train_metric"), r.history[-1].get("train_metric")
            if best_ep == epochs:
                rising = (f" Its test-split accuracy was still best at the last epoch ({pct(b)}, after {pct(a)}) and "
                          f"its training accuracy rose from {pct(t0)} to {pct(t1)}: it stopped learning because the "
                          "epochs ran out, not because it had learned what it can.")
        page.p(f"Why is the study's CNN lower? {m.name} scores {pct(acc)} per image against the best network's "
               f"{pct(best)}. It is the study's network ({r.info.get('n_params', '?')} parameters) reading "
               f"{m.images}, trained here for {epochs} epochs on {n_train} simulations; {STUDY_CNN_FULL} "
               f"(docs/results.md).{rising} A demo gives it far less data and far fewer epochs than it needs; "
               "the multi-scale network, which pools log band energies over whole periodic maps, needs much less.",
               "says")


def _what_was_done(page: Page, runs: list[RunData], facts: dict | None) -> None:
    page.h2("What was done")
    if facts:
        cfg = facts["config"]
        sim = cfg.get("sim", {})
        names = facts["class_names"]
        if cfg.get("labels") == "sweep":
            labels = f"n uniform in [{cfg['n_range'][0]}, {cfg['n_range'][1]})"
        else:
            labels = ", ".join(f"{nm} (n = {v:.4g})" for nm, v in zip(names, cfg.get("class_n", [])))
        split_rows = []
        for split, counts in facts["counts"].items():
            per = ", ".join(f"{names[k] if 0 <= k < len(names) else k}: {v}" for k, v in sorted(counts.items()))
            split_rows.append([split, sum(counts.values()), per])
        page.table(["what", "value"], [
            ["ensemble file", Path(facts["path"]).name],
            ["preset", facts["preset"] or "custom"],
            ["simulations", cfg.get("sims")],
            ["labels", labels],
            ["grid", f"{sim.get('cells')}^3 cells, periodic box of {sim.get('box')} pc"],
            ["physics", f"isothermal, {sim.get('temperature')} K, rms Mach {sim.get('mach')}, initial condition "
                        f"{sim.get('ic')}, scheme {sim.get('scheme')}"],
            ["time", f"{sim.get('t_end')} Myr (median time reached {facts['time_myr']:.3g} Myr)"],
            ["maps", f"log10 column density along x, y and z, {facts['map_size']} px each"],
            ["simulation time", f"{facts['sim_core_s']:.3g} core-seconds in all "
                                f"({facts['sim_core_s'] / max(cfg.get('sims', 1), 1):.2g} s per simulation)"],
            ["turbsim version (file)", facts["version"]],
        ], "The ensemble")
        page.table(["split", "simulations", "per class"], split_rows,
                   "Split sizes (by simulation: the images of one simulation are never in two splits)")
    else:
        page.note("The runs' ensemble file could not be read here: its description is left out.")
    rows = []
    for r in runs:
        c, s = r.config, r.summary
        rows.append([r.name, c["model"], c["task"], r.info.get("n_params"), images_label(r.info),
                     c["normalisation"], " ".join(c["augment"]) or "none",
                     f"{c['optimizer']}, lr {c['learning_rate']:g}, batch {c['batch_size']}",
                     f"{s.get('epochs_run', '?')} (best {s.get('best_epoch', '?')})",
                     f"{s.get('train_wall_s', 0):.0f} s, {s.get('images_per_s', 0):.0f} img/s",
                     r.info.get("data", {}).get("n_train")])
    page.table(["run", "model", "task", "parameters", "images", "normalisation", "augmentation", "optimiser",
                "epochs", "training", "train simulations"], rows, "The networks")
    page.h3("Command lines")
    lines = []
    if facts:
        command = generate_command(facts["config"], Path(facts["path"]).name)
        lines.append(f"# the ensemble (an equivalent command)\n{command}")
    for r in runs:
        for c in r.commands:
            lines.append(f"# {r.name}, {c.get('date', '')}\n{c.get('command', '')}")
        if not r.commands:
            lines.append(f"# {r.name}: no command line recorded (trained through the library)")
    page.raw("<pre>" + esc("\n".join(lines)) + "</pre>")
    versions = dict(runs[0].info.get("versions", {})) if runs else {}
    versions["python"] = platform.python_version()
    for pkg in ("scikit-learn", "scikit-image", "matplotlib", "optuna"):
        try:
            import importlib.metadata as md

            versions[pkg] = md.version(pkg)
        except Exception:  # noqa: BLE001
            pass
    page.table(["package", "version"], sorted(versions.items()), "Versions")
    dates = [c.get("date", "") for r in runs for c in r.commands]
    page.p(f"Page written {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
           + (f"; runs made between {min(dates)} and {max(dates)}." if dates else "."))


def _data_figures(page: Page, facts: dict | None) -> None:
    if not facts:
        return
    try:
        groups = class_maps(facts)
    except Exception as exc:  # noqa: BLE001 (said on the page)
        page.h2("The maps")
        page.note(f"{facts['path']}: maps not read ({exc}).")
        return
    page.h2("The maps")
    box = facts["box_pc"]
    page.plot(lambda: plots.example_maps([(label.capitalize(), maps[2], n) for label, n, maps in groups], box,
                                         axis=2),
              f"One log column-density map of each class at {facts['time_myr']:.3g} Myr (the first simulation of "
              "the train split, along z).",
              f"What the networks read: log10 of the column density [g/cm^2] over the {box:g} pc box, one colour "
              "scale for all panels. The classes differ in the slope of their initial velocity spectrum, not in "
              "anything the eye picks out at once.")
    page.plot(lambda: plots.class_spectra([(f"{label} (n = {n:.3g})", maps) for label, n, maps in groups], box),
              "Mean power spectrum of log10 column density per class (train split), with the spread over maps.",
              "The classes' spectra differ by a slight change of slope; the band around each line is the standard "
              "deviation over maps: the class difference is small against the scatter of single maps, which is "
              "why a single image is harder to classify than a whole simulation.")


def _methods_table(page: Page, runs: list[RunData], task: str) -> None:
    page.h2("Every method")
    sets = _set_names(runs)
    mode = "classify" if task == "classify" else "regress"
    rows = []
    notes = []
    for name in sets:
        for m, sc in _scored_rows(runs, name, mode):
            if mode == "classify":
                rows.append([m.name, m.images, name, _per_class(sc),
                             _interval(sc, "per_image", "accuracy", True), _interval(sc, "per_image", "auc", False),
                             _interval(sc, "per_sim", "accuracy", True), _interval(sc, "per_sim", "auc", False)])
            else:
                rows.append([m.name, m.images, name, _per_class(sc), _interval(sc, "per_image", "rmse", False),
                             _interval(sc, "per_sim", "rmse", False),
                             f"{sc.metrics['per_image'].get('bias', 0):+.3f}"])
        sc0 = next((sc for _, sc in _scored_rows(runs, name, mode)), None)
        if sc0 is not None:
            notes.append(_small_note(sc0, f"the {name} set"))
    if mode == "classify":
        rows.append(["the study (CNN)", "quadrants of 128^3 maps", "its test set", "–", pct(STUDY_ACCURACY), "–",
                     "–", "–"])
        cols = ["method", "images", "scored set", "simulations (Kolmogorov + Burgers)", "accuracy per image [95 %]",
                "AUC per image [95 %]", "accuracy per simulation [95 %]", "AUC per simulation [95 %]"]
    else:
        rows.append(["the follow-up study (CNN)", "–", "its test set", "–", f"{FOLLOWUP_RMSE:.3f}", "–", "–"])
        cols = ["method", "images", "scored set", "simulations", "RMSE of n per image [95 %]",
                "RMSE of n per simulation [95 %]", "bias per image"]
    page.table(cols, rows, "Scores of every method; brackets: 95 % interval from a bootstrap over simulations "
                           f"({N_BOOT} resamples, within each class)")
    page.p("Each row is a method on one scored set: the networks, and the classical baselines fitted on exactly "
           "the images of the network they stand beside (spectrum: a linear model on the binned power spectrum; "
           "stats: the same on the spectrum and non-Gaussian statistics; hog: HOG features and an RBF SVM or SVR). "
           "Intervals resample simulations, not images: the images "
           "of one simulation share its random realisation, and resampling them alone would understate the "
           "uncertainty. A score without an interval has no stored per-image outputs (a run scored by an older "
           "version).", "says")
    for n in dict.fromkeys(notes):
        page.note(n)


def _roc_and_confusion(page: Page, runs: list[RunData], task: str) -> None:
    if task != "classify":
        return
    sets = _set_names(runs)
    for name in sets:
        rows = [(m, sc) for m, sc in _scored_rows(runs, name, "classify")]
        curves = []
        for m, sc in rows:
            o = sc.outputs
            if o is None or not o.labelled:
                continue
            p_sim = per_simulation(o.p, o.sim_index)
            curves.append((m.name, {"per image": (o.klass[o.sim_index], ranking_score(o.p, o.margin)),
                                    "per simulation": (o.klass, ranking_score(p_sim, per_simulation(o.margin,
                                                                                                    o.sim_index)))}))
        if not rows:
            continue
        page.h2(f"ROC curves and confusion matrices: {name}")
        if curves:
            best = max(rows, key=lambda t: t[1].metrics["per_image"].get("auc") or 0)
            page.plot(lambda c=curves: plots.roc_figure(c, f"scored set: {name}"),
                      f"ROC curves of every method on the {name} set, per image and per simulation.",
                      f"Each curve ranks the images (or simulations) by the method's evidence for Burgers; the "
                      f"closer to the upper left corner, the better, whatever the threshold. Highest per-image AUC: "
                      f"{best[0].name}, {best[1].metrics['per_image'].get('auc') or 0:.3f}. "
                      + _small_note(rows[0][1], f"the {name} set"))
        else:
            page.note(f"No per-image outputs stored for the {name} set: ROC curves not drawn.")
        cells = []
        for m, sc in rows:
            cm = np.asarray(sc.metrics["per_image"]["confusion"])
            cells.append(_confusion_html(m.name, cm))
        page.raw('<div class="cms">' + "".join(cells) + "</div>")
        page.p("Confusion matrices per image: rows are the true class, columns the predicted one, with the share of "
               "each row; the diagonal holds the right answers.", "says")


def _confusion_html(name: str, cm: np.ndarray) -> str:
    labels = ("Kolmogorov", "Burgers")
    head = "<tr><th>true \u2193 / predicted \u2192</th>" + "".join(f"<th>{lab}</th>" for lab in labels) + "</tr>"
    body = ""
    for i, lab in enumerate(labels):
        tot = max(int(cm[i].sum()), 1)
        body += ("<tr><th>" + lab + "</th>" + "".join(f"<td>{int(v)} ({100 * v / tot:.0f} %)</td>" for v in cm[i])
                 + "</tr>")
    return (f'<table class="cm"><caption>{esc(name)}</caption><thead>{head}</thead><tbody>{body}</tbody></table>')


def _curves(page: Page, runs: list[RunData]) -> None:
    rows = [r for r in runs if r.history]
    if not rows:
        return
    page.h2("Learning curves")
    for r in rows:
        s = r.summary
        last = r.history[-1]
        metric = "accuracy" if r.config["task"] == "classify" else "RMSE of n"
        name = r.name if r.name == r.config["model"] else f"{r.name} ({r.config['model']})"
        gap = ""
        if last.get("val_metric") is not None and last.get("train_metric") is not None:
            gap = (f" At the last epoch the {metric} was {last['train_metric']:.3f} on the train split (augmented "
                   f"images, with dropout) and {last['val_metric']:.3f} on the test split.")
        best = s.get("best_epoch")
        val = [h.get("val_loss") for h in r.history]
        if best and best < len(val) and val[best - 1] and val[-1] and val[-1] > 1.2 * val[best - 1]:
            gap += (f" The test-split loss rose after epoch {best} while the training loss went on falling: the "
                    "network began to fit its training maps, and the checkpoint of epoch "
                    f"{best} is the one scored.")
        page.plot(lambda r=r, t=name: plots.learning_curves(r.history, r.config["task"], t),
                  f"Learning curves of {name}: loss and {metric} per epoch on the train split and the test split.",
                  f"Trained {s.get('epochs_run', len(r.history))} epochs; the checkpoint kept is the one of the lowest "
                  f"test-split loss (epoch {best or '?'}).{gap} The test split chose that epoch, so its "
                  "score is slightly optimistic; the holdout split, when scored, is not.")


def _regression(page: Page, runs: list[RunData], task: str) -> None:
    if task != "regress":
        return
    sets = _set_names(runs)
    for name in sets:
        panels = []
        for m, sc in _scored_rows(runs, name, "regress"):
            o = sc.outputs
            if o is not None:
                panels.append((m.name, o.n_true[o.sim_index], o.n_pred, o.n_true,
                               per_simulation(o.n_pred, o.sim_index)))
        if panels:
            page.h2(f"Predicted against true n: {name}")
            page.plot(lambda p=panels[:6]: plots.regression_scatter(p),
                      f"Predicted against true n on the {name} set: images (dots) and simulations (circles).",
                      "On the dotted line the prediction is exact; the spread of the circles around it is the "
                      "per-simulation RMSE of the table above.")


def _sweeps(page: Page, runs: list[RunData]) -> None:
    curves = []
    for r in runs:
        for m in r.methods:
            for name, sc in m.scored.items():
                if sc.metrics.get("mode") == "sweep":
                    sw = sc.metrics["sweep"]
                    curves.append((f"{m.name} on {name}", np.asarray(sw["n"]), np.asarray(sw["p_burgers_sim"])))
    if not curves:
        return
    page.h2("The classifier on a sweep of n")
    page.plot(lambda: plots.sweep_figure(curves),
              "P(Burgers) per simulation against the simulation's n, the binary classifier applied to a sweep.",
              "A classifier that read the spectral slope would rise from 0 at the Kolmogorov n to 1 at the Burgers n "
              "and keep going beyond; a flat or noisy curve says it learned something else.")


def _other_data(page: Page, runs: list[RunData]) -> None:
    rows = []
    for r in runs:
        net = r.methods[0]
        for name, sc in net.scored.items():
            m = sc.metrics
            if "reference" not in m or m.get("mode") not in ("classify", "regress"):
                continue
            ref = m.get("reference") or {}
            key = "accuracy" if m["mode"] == "classify" else "rmse"
            own = ref.get(f"per_image.{key}")
            rows.append([net.name, name, m.get("data", ""), m.get("n_sims"), _fmt_key(sc, key),
                         _interval(sc, "per_sim", key, key == "accuracy"),
                         f"{ref.get('split', '–')}: {own:.3f}" if own is not None else "–"])
    if not rows:
        return
    page.h2("Other data: other codes, other resolutions")
    page.table(["network", "scored set", "data", "simulations", "per image [95 %]", "per simulation [95 %]",
                "its own score per image"], rows,
               "Networks scored on data they were not trained on (e.g. RAMSES runs), against their own score")
    page.p("A drop against the network's own score measures what it learned of the code or the resolution rather "
           "than of the turbulence.", "says")


def _sections(page: Page, runs: list[RunData], others: list[tuple[Path, dict]]) -> None:
    groups = [(r.name, r.sections) for r in runs] + [(p.name, secs) for p, secs in others]
    if not any(secs for _, secs in groups):
        return
    page.h2("What the networks see, and other analyses")
    for owner, secs in groups:
        for name, sec in secs.items():
            page.h3(f"{sec.title} ({owner})")
            page.p(sec.text, "says")
            for t in sec.tables:
                page.table(list(t.columns), [list(r) for r in t.rows], t.caption)
            for f in sec.figures:
                path = sec.figure_path(f)
                if path.is_file():
                    page.figure(path.read_bytes(), f.caption)
                else:
                    page.note(f"{path}: figure missing.")


def study_page(run_dirs, *, others=(), title: str | None = None, n_boot: int = N_BOOT) -> str:
    """The study report of some run directories, as one HTML document.

    Parameters
    ----------
    run_dirs : sequence of path-like
        Run directories (:func:`learn.pipeline.fit`), at least one.
    others : sequence of path-like
        Folders of other analyses holding sections (``<name>/section.json``), e.g. a tuning
        folder of ``python -m learn.tune``.
    title : str, optional
        Page title (default from the task and the ensemble).
    n_boot : int
        Bootstrap resamples of the intervals.

    Returns
    -------
    str
        The page: self-contained (images embedded as data URIs).

    Raises
    ------
    ReportError
        No run, or a folder that is not a run directory (named).
    """
    runs = [load_run_data(d) for d in run_dirs]
    if not runs:
        raise ReportError("the report needs at least one run directory")
    unique_names(runs)
    other = [(Path(p), read_sections(p)) for p in others]
    add_intervals(runs, n_boot=n_boot)
    task = _task(runs)
    facts = ensemble_facts(runs[0].config.get("data"))
    question = "Kolmogorov or Burgers?" if task == "classify" else "How precisely can n be read?"
    data_name = Path(facts["path"]).name if facts else "the maps"
    page = Page(title or f"turbsim study: {question} ({data_name})")
    main = _main_set(runs)
    _answer(page, runs, main)
    _what_was_done(page, runs, facts)
    _data_figures(page, facts)
    _methods_table(page, runs, task)
    _roc_and_confusion(page, runs, task)
    _regression(page, runs, task)
    _sweeps(page, runs)
    _curves(page, runs)
    _other_data(page, runs)
    _sections(page, runs, other)
    return page.html()


def write_study_report(run_dirs, out, *, others=(), title: str | None = None, n_boot: int = N_BOOT) -> Path:
    """Write the study report of some runs to ``out`` (atomically); see :func:`study_page`."""
    out = Path(out)
    doc = study_page(run_dirs, others=others, title=title, n_boot=n_boot)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return out


def write_report(run_dir, **kw) -> Path:
    """Write ``run_dir/report.html``: the study report of this one run (keywords as :func:`study_page`)."""
    return write_study_report([run_dir], Path(run_dir) / REPORT_FILE, **kw)


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m learn.report``."""
    p = ArgumentParser(
        prog="python -m learn.report", short_usage="RUN_DIR [RUN_DIR ...] -o study.html",
        description="Write the study report: one self-contained HTML page (images embedded) of one or more run "
                    "directories of python -m learn.fit, with every method's scores and 95 % intervals from a "
                    "bootstrap over simulations, ROC curves, confusion matrices, learning curves, example maps, "
                    "spectra, and every analysis section (explain, tuning) found in the folders.")
    p.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run directories; folders that hold only analysis sections (e.g. a learn.tune folder) are "
                        "shown as analyses")
    p.add_argument("-o", "--output", default="study.html", metavar="FILE", help="HTML file to write")
    p.add_argument("--title", help="page title")
    p.add_argument("--n-boot", type=int, default=N_BOOT, metavar="N", help="bootstrap resamples, >= 1")
    p.add_output_options(json=None, progress=False)
    return p


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if args.n_boot < 1:
        parser.error(f"--n-boot must be >= 1, got {args.n_boot}")
    runs, others = [], []
    for d in map(Path, args.dirs):
        if (d / RUN_FILE).is_file():
            runs.append(d)
        elif d.is_dir() and read_sections(d):
            others.append(d)
        else:
            parser.error(f"{d}: neither a run directory (no {RUN_FILE}) nor a folder of analysis sections")
    if not runs:
        parser.error("give at least one run directory (written by python -m learn.fit)")
    try:
        out = write_study_report(runs, args.output, others=others, title=args.title, n_boot=args.n_boot)
    except (ReportError, SectionError) as exc:
        parser.error(str(exc))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
