"""Atomic file writes: write to a temporary name in the same directory, then rename.

A reader never sees a half-written file: either the old file (or none) or the new one,
complete. ``os.replace`` is atomic on POSIX file systems when source and destination are
in the same directory, which is why the temporary file is created next to the target.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator


def _create_temp(path: Path) -> Path:
    """Create an empty, uniquely named file next to ``path`` with umask permissions.

    (``tempfile.mkstemp`` would make it ``0600``, so the renamed result would be private.)
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"could not create a temporary file next to {path}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Parameters
    ----------
    path : str or os.PathLike
        Final file name. Its directory must exist.
    fsync : bool, optional
        Flush the temporary file to disk before the rename (default True), so a power
        cut cannot leave a renamed but empty file.

    Yields
    ------
    pathlib.Path
        A fresh, empty file in the same directory, to be written by the caller (closed
        again before the ``with`` block ends).

    Raises
    ------
    OSError
        Whatever creating, flushing or renaming raised; the temporary file is removed and
        ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    path = Path(path)
    tmp = _create_temp(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
