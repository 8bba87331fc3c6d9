"""Sections of a run directory: one analysis, its figures, tables, text and numbers, for the report.

Every analysis of a trained run (saliency, band occlusion, t-SNE, HOG + SVM/SVR, transfer
learning...) writes its results into a folder of the run directory, ``RUN_DIR/<name>/``,
with a ``section.json`` (:data:`SECTION_FILE`)::

    {"title": str,
     "text": str,            # a short generated paragraph: what the figures show, with the
                             # numbers, and a warning when a split is too small to mean anything
     "figures": [{"file": "relative.png", "caption": str}],   # relative to RUN_DIR/<name>/
     "tables": [{"caption": str, "columns": [str], "rows": [[...]]}],
     "data": {...}}          # machine-readable numbers

:func:`write_section` writes one (atomically, after checking that every figure file exists
and every table row has one cell per column); :func:`read_sections` gives all those of a run
directory, so that a report renders each one it finds without knowing the analyses.

Examples
--------
>>> import tempfile
>>> run_dir = Path(tempfile.mkdtemp())
>>> sec = Section("Band occlusion", "Removing k = 4-8 costs 12 points of accuracy.",
...               tables=[Table("accuracy per band", ["band", "accuracy"], [["4-8", 0.81]])],
...               data={"drop": [0.12]})
>>> write_section(run_dir, "occlusion", sec).name
'section.json'
>>> got = read_sections(run_dir)
>>> list(got), got["occlusion"].tables[0].rows
(['occlusion'], [['4-8', 0.81]])
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from turbsim.atomic import atomic_path

SECTION_FILE = "section.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""Allowed section (folder) names: one path component, no spaces."""
FEW_SIMS = 10
"""Fewer simulations than this in a scored split make its numbers anecdotes (:func:`small_split_note`)."""


class SectionError(ValueError):
    """A section cannot be written or read as asked (names the file, the field and the value)."""


@dataclass
class Figure:
    """A figure of a section: a PNG file in the section's folder and its caption."""

    file: str
    caption: str

    def to_dict(self) -> dict:
        return {"file": self.file, "caption": self.caption}


@dataclass
class Table:
    """A table of a section: a caption, column names and rows of cells (numbers or text)."""

    caption: str
    columns: list[str]
    rows: list[list]

    def to_dict(self) -> dict:
        return {"caption": self.caption, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class Section:
    """One analysis of a run, as the report shows it.

    Attributes
    ----------
    title : str
        Heading.
    text : str
        A short generated paragraph stating what the figures show, with the numbers.
    figures : list of Figure
        Files relative to the section's folder.
    tables : list of Table
    data : dict
        Machine-readable numbers (JSON-serialisable; numpy scalars and arrays are converted).
    folder : Path or None
        Where the section was read from (set by :func:`read_section`; not written).
    """

    title: str
    text: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    folder: Path | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        """The ``section.json`` form."""
        return {"title": self.title, "text": self.text, "figures": [f.to_dict() for f in self.figures],
                "tables": [t.to_dict() for t in self.tables], "data": self.data}

    @classmethod
    def from_dict(cls, d: dict, source: str = "section") -> "Section":
        """A section from its ``section.json`` form; ``source`` names it in errors."""
        for key, kind in (("title", str), ("text", str)):
            if not isinstance(d.get(key), kind):
                raise SectionError(f"{source}: field {key!r} must be a string, got {d.get(key)!r}")
        try:
            figures = [Figure(str(f["file"]), str(f["caption"])) for f in d.get("figures", [])]
            tables = [Table(str(t["caption"]), list(t["columns"]), [list(r) for r in t["rows"]])
                      for t in d.get("tables", [])]
        except (KeyError, TypeError) as exc:
            raise SectionError(f"{source}: a figure or table lacks field {exc}") from None
        return cls(d["title"], d["text"], figures, tables, dict(d.get("data", {})))

    def figure_path(self, figure: Figure) -> Path:
        """Absolute path of one of the section's figures (needs ``folder``)."""
        if self.folder is None:
            raise SectionError(f"section {self.title!r} was not read from a folder; figure {figure.file!r} "
                               "has no location")
        return self.folder / figure.file


def _jsonable(o):
    """JSON form of numpy scalars and arrays (NaN and infinities become null)."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return _jsonable(float(o))
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    return o


def _check(section: Section, folder: Path) -> None:
    for f in section.figures:
        if Path(f.file).is_absolute() or ".." in Path(f.file).parts:
            raise SectionError(f"{folder}: figure file {f.file!r} must be relative to the section's folder")
        if not (folder / f.file).is_file():
            raise SectionError(f"{folder}: figure file {f.file!r} does not exist")
    for t in section.tables:
        for i, row in enumerate(t.rows):
            if len(row) != len(t.columns):
                raise SectionError(f"{folder}: table {t.caption!r} row {i} has {len(row)} cells for "
                                   f"{len(t.columns)} columns {t.columns}")


def section_dir(run_dir, name: str) -> Path:
    """The folder of section ``name`` in a run directory (created)."""
    if not NAME_RE.match(name):
        raise SectionError(f"section name {name!r} must be one folder name of letters, digits, '_', '.' or '-'")
    folder = Path(run_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_section(run_dir, name: str, section: Section) -> Path:
    """Write ``RUN_DIR/<name>/section.json`` atomically.

    Parameters
    ----------
    run_dir : path-like
        The run directory.
    name : str
        The section's folder (one name: letters, digits, ``_``, ``.``, ``-``), created if
        needed; its figures must already be in it.
    section : Section

    Returns
    -------
    Path
        The ``section.json`` written.

    Raises
    ------
    SectionError
        A bad name, a figure file that is missing or not relative, a table row of the
        wrong length.
    """
    folder = section_dir(run_dir, name)
    _check(section, folder)
    out = folder / SECTION_FILE
    text = json.dumps(_jsonable(section.to_dict()), indent=1, allow_nan=False) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out


def read_section(path) -> Section:
    """One section from its ``section.json`` (its ``folder`` set to the file's folder)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SectionError(f"{path}: cannot read the section ({exc})") from None
    if not isinstance(d, dict):
        raise SectionError(f"{path}: a section is a JSON object, got {type(d).__name__}")
    sec = Section.from_dict(d, str(path))
    sec.folder = path.parent
    return sec


def read_sections(run_dir) -> dict[str, Section]:
    """Every section of a run directory, ``{folder name: Section}`` in name order.

    Only folders directly inside ``run_dir`` that hold a ``section.json`` count.
    """
    run_dir = Path(run_dir)
    return {p.parent.name: read_section(p) for p in sorted(run_dir.glob(f"*/{SECTION_FILE}"))}


def small_split_note(n_sims: int, what: str = "the scored split", few: int = FEW_SIMS) -> str:
    """A sentence warning that a split is too small for its numbers to mean much ('' if not).

    Examples
    --------
    >>> print(small_split_note(4))  # doctest: +NORMALIZE_WHITESPACE
    Only 4 simulations in the scored split: one simulation moves a per-simulation score by 25 %,
    so read these numbers as anecdotes.
    >>> small_split_note(40)
    ''
    """
    if n_sims >= few:
        return ""
    return (f"Only {n_sims} simulation{'s' * (n_sims != 1)} in {what}: one simulation moves a per-simulation "
            f"score by {100 / max(n_sims, 1):.0f} %, so read these numbers as anecdotes.")
