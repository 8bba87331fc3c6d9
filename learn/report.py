"""A one-file HTML report of a run: configuration, metrics tables and every figure (embedded)."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from turbsim.atomic import atomic_path

from .evaluate import EVAL_DIR, METRICS_FILE
from .rundir import CURVES_FILE, RUN_FILE, SUMMARY_FILE

REPORT_FILE = "report.html"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}"><figcaption>{html.escape(path.name)}</figcaption></figure>'


def _metrics_rows(name: str, m: dict) -> list[str]:
    rows = []
    for lvl in ("per_image", "per_sim"):
        if lvl not in m:
            continue
        vals = {k: v for k, v in m[lvl].items() if isinstance(v, (int, float)) and v is not None}
        cov = m[lvl].get("coverage")
        if cov:
            vals.update({f"coverage {k}": v for k, v in cov.items()})
        cells = ", ".join(f"{k} = {v:.4g}" for k, v in vals.items())
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{lvl}</td><td>{html.escape(cells)}</td></tr>")
    return rows


def write_report(run_dir, *, baselines: dict | None = None) -> Path:
    """Write ``run_dir/report.html`` from the run's files.

    Parameters
    ----------
    run_dir : path-like
        A run directory (``run.json``, ``metrics.json``, ``eval/*/metrics.json``, PNGs).
    baselines : dict, optional
        Baseline results ``{kind: {split: metrics}}`` (:func:`learn.baselines.run_baseline`).

    Returns
    -------
    Path
        The report file.
    """
    run_dir = Path(run_dir)
    info = json.loads((run_dir / RUN_FILE).read_text())
    summ_p = run_dir / SUMMARY_FILE
    summary = json.loads(summ_p.read_text()) if summ_p.is_file() else {}
    parts = [f"<h1>Run {html.escape(run_dir.name)}</h1>",
             f"<p>{html.escape(info['config']['model'])}, task {html.escape(info['config']['task'])}, "
             f"{info.get('n_params', '?')} parameters, input {info['image_size']} px.</p>",
             "<h2>Training</h2><pre>" + html.escape(json.dumps(summary, indent=1)) + "</pre>"]
    rows = []
    evals = sorted((run_dir / EVAL_DIR).glob("*/" + METRICS_FILE))
    for p in evals:
        rows += _metrics_rows(p.parent.name, json.loads(p.read_text()))
    for kind, res in (baselines or {}).items():
        for split, m in res.items():
            if isinstance(m, dict) and "per_image" in m:
                rows += _metrics_rows(f"baseline {kind} ({split})", m)
    parts.append("<h2>Metrics</h2><table border=1 cellpadding=4><tr><th>data</th><th>level</th><th>metrics</th></tr>"
                 + "".join(rows) + "</table>")
    for p in evals:
        m = json.loads(p.read_text())
        if "table" in m.get("per_image", {}):
            parts.append(f"<h3>{html.escape(p.parent.name)}: confusion matrix per image</h3><pre>"
                         + html.escape(m["per_image"]["table"]) + "</pre>")
    figs = [run_dir / CURVES_FILE] + [q for p in evals for q in sorted(p.parent.glob("*.png"))]
    parts.append("<h2>Figures</h2>" + "".join(_img(f) for f in figs if f.is_file()))
    parts.append("<h2>Configuration</h2><pre>" + html.escape(json.dumps(info, indent=1)) + "</pre>")
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>turbsim learn report</title>"
           "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}</style></head><body>"
           + "\n".join(parts) + "</body></html>\n")
    out = run_dir / REPORT_FILE
    with atomic_path(out) as tmp:
        tmp.write_text(doc)
    return out
