"""Read RAMSES parameter files (Fortran namelists) back.

RAMSES takes its run-time parameters from a namelist file (``namelist.nml``, as
:func:`turbsim.ramses.namelist` writes it) and copies it into every output folder as
``namelist.txt``. This module reads the subset of Fortran namelist syntax such files use:

* blocks ``&NAME ... /`` (or ``&END``); names are case-insensitive and returned in lower
  case (``"amr_params"``);
* assignments ``key=value``, several per line or one value list over several lines,
  separated by commas or blanks;
* values: integers, reals (``1e-10``, ``1d-10``, ``.5``), logicals (``.true.``, ``T``,
  ``.false.``, ``F``), strings in single or double quotes;
* arrays: ``key=v1,v2,...`` (elements 1, 2, ...), ``key(i)=v`` (element ``i``) and the
  repeat count ``n*v`` (``m_refine=7*8.0``: elements 1..7 equal 8.0);
* comments from ``!`` to the end of the line (outside quotes).

Examples
--------
>>> blocks = parse("&AMR_PARAMS\\nlevelmin=5, levelmax=7 ! levels\\nnexpand=3*1\\n/\\n"
...                "&REFINE_PARAMS err_grad_d=1d-1, interpol_var=0 /")
>>> blocks["amr_params"]["levelmax"], blocks["amr_params"]["nexpand"]
(7, {1: 1, 2: 1, 3: 1})
>>> blocks["refine_params"]["err_grad_d"]
0.1
>>> per_level(blocks["amr_params"]["nexpand"], 5, 7, default=1)
{5: 1, 6: 1, 7: 1}
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["parse", "read", "per_level", "NamelistError"]

_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_%]*)\s*(?:\(\s*(\d+)\s*\))?\s*=")
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\s,]+")


class NamelistError(ValueError):
    """A namelist that cannot be read (the message names the file, block and text)."""


def _unquoted(line: str):
    """``(index, character)`` of every character of the line outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        else:
            yield i, ch


def _strip_comment(line: str) -> str:
    """The line up to its first ``!`` outside quotes."""
    return next((line[:i] for i, ch in _unquoted(line) if ch == "!"), line)


def _scalar(text: str):
    """The Python value of one namelist value (int, float, bool or str)."""
    if text[:1] in "'\"":
        q = text[0]
        return text[1:-1].replace(q + q, q)
    low = text.lower()
    if low in (".true.", "t", ".t."):
        return True
    if low in (".false.", "f", ".f."):
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(low.replace("d", "e"))
    except ValueError:
        raise ValueError(f"cannot read the value {text!r}") from None


def _values(text: str) -> list:
    """The values of one assignment, repeat counts expanded."""
    out = []
    for token in _TOKEN.findall(text):
        m = re.fullmatch(r"(\d+)\*(.+)", token)
        if m:
            out.extend([_scalar(m.group(2))] * int(m.group(1)))
        else:
            out.append(_scalar(token))
    return out


def _assign(block: dict, key: str, index: str | None, values: list, where: str) -> None:
    if not values:
        raise NamelistError(f"{where}: {key} has no value")
    if index is None and len(values) == 1:
        block[key] = values[0]
        return
    start = int(index) if index is not None else 1
    current = block.get(key)
    array = dict(current) if isinstance(current, dict) else ({1: current} if key in block else {})
    array.update({start + i: v for i, v in enumerate(values)})
    block[key] = dict(sorted(array.items()))


def parse(text: str, source: str = "namelist") -> dict[str, dict]:
    """The blocks of a namelist text.

    Parameters
    ----------
    text : str
        The file's text.
    source : str
        Name used in error messages (the file).

    Returns
    -------
    dict
        ``{block: {key: value}}``, names in lower case. A scalar assignment gives its
        value (int, float, bool or str); an array (several values, an index or a repeat
        count) gives ``{element (1-based): value}``. A block given twice is merged.

    Raises
    ------
    NamelistError
        An assignment outside a block, an unterminated block, or a value that is neither a
        number, a logical nor a quoted string; the message names ``source``, the block and
        the text.
    """
    blocks: dict[str, dict] = {}
    name, body = None, []

    def close():
        joined = " ".join(body)
        keys = list(_KEY.finditer(joined))
        if keys and joined[:keys[0].start()].strip():
            raise NamelistError(f"{source}: &{name}: cannot read {joined[:keys[0].start()].strip()!r}")
        block = blocks.setdefault(name.lower(), {})
        for m, nxt in zip(keys, keys[1:] + [None]):
            value = joined[m.end(): nxt.start() if nxt else len(joined)]
            where = f"{source}: &{name}: {m.group(0)}{value.strip()}"
            try:
                vals = _values(value)
            except ValueError as exc:
                raise NamelistError(f"{where}: {exc}") from None
            _assign(block, m.group(1).lower(), m.group(2), vals, where)

    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        while line:
            if name is None:
                m = re.match(r"&(\w+)", line)
                if not m:
                    raise NamelistError(f"{source}: text outside a &BLOCK ... / group: {line!r}")
                if m.group(1).lower() == "end":
                    line = line[m.end():].strip()
                    continue
                name, body, line = m.group(1), [], line[m.end():].strip()
                continue
            end = _block_end(line)
            if end is None:
                body.append(line)
                break
            body.append(line[:end])
            close()
            name, line = None, line[end:].lstrip("/").strip()
            if line.lower().startswith("&end"):
                line = line[4:].strip()
    if name is not None:
        raise NamelistError(f"{source}: &{name} is not closed by '/'")
    return blocks


def _block_end(line: str) -> int | None:
    """Index of the ``/`` (or ``&END``) that closes a block on this line, outside quotes."""
    return next((i for i, ch in _unquoted(line)
                 if ch == "/" or (ch == "&" and line[i:i + 4].lower() == "&end")), None)


def read(path) -> dict[str, dict]:
    """The blocks of a namelist file (see :func:`parse`).

    Parameters
    ----------
    path : str or os.PathLike
        ``namelist.txt`` of a RAMSES output, or a ``namelist.nml``.

    Returns
    -------
    dict
        ``{block: {key: value}}``.

    Raises
    ------
    FileNotFoundError
        No such file.
    NamelistError
        Unreadable content (the message names the file).
    """
    path = Path(path)
    return parse(path.read_text(errors="replace"), str(path))


def per_level(value, levelmin: int, levelmax: int, default) -> dict:
    """A per-level RAMSES parameter (``nexpand``, ``nsubcycle``, ``m_refine``, ...) on
    each level of a run.

    RAMSES indexes these arrays from ``levelmin``: element 1 is level ``levelmin``,
    element ``i`` level ``levelmin + i - 1`` (``read_params``, "rearrange level dependent
    arrays"), and a scalar assignment ``key=v`` sets element 1 only.

    Parameters
    ----------
    value : scalar, dict or None
        As :func:`parse` returns it (None: not in the namelist).
    levelmin, levelmax : int
        The run's levels.
    default
        RAMSES's default of the elements the namelist leaves unset.

    Returns
    -------
    dict
        ``{level: value}`` for ``levelmin <= level <= levelmax``.

    Examples
    --------
    >>> per_level({1: 2, 2: 3}, 5, 7, 1)
    {5: 2, 6: 3, 7: 1}
    >>> per_level(2, 5, 6, 1)
    {5: 2, 6: 1}
    """
    array = {} if value is None else value if isinstance(value, dict) else {1: value}
    return {L: array.get(L - levelmin + 1, default) for L in range(levelmin, levelmax + 1)}
