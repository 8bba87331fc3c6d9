"""What every command line of the project shares: its parser and its progress bars.

:class:`ArgumentParser` prints one short usage line and the message on a bad argument
(exit status 2), not argparse's full usage block. :func:`progress` draws a tqdm bar on a
terminal; when standard error is redirected to a file it writes plain lines instead (one
every ``interval`` seconds and one at the end), so logs never fill with ``\\r`` frames.

Examples
--------
>>> bar = progress(total=3, desc="sims", unit="sim", disable=True)
>>> for _ in range(3):
...     bar.update(1)
>>> bar.n
3
>>> bar.close()
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import IO, Any, Iterable, Iterator, NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are two lines: a short usage and the message.

    Parameters
    ----------
    *args, **kwargs
        As :class:`argparse.ArgumentParser`.
    short_usage : str, optional
        What follows the program name on the usage line of an error (default
        ``"[options]"``); ``--help`` still prints the full usage.
    """

    def __init__(self, *args: Any, short_usage: str = "[options]", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.short_usage = short_usage

    def error(self, message: str) -> NoReturn:
        """Print ``usage: PROG SHORT (see --help)`` and ``PROG: error: MESSAGE``; exit 2."""
        self.exit(2, f"usage: {self.prog} {self.short_usage} (see --help)\n{self.prog}: error: {message}\n")

    def add_output_options(self, group: Any = None, *, json: str | None = "print a JSON summary line",
                           progress: bool = True, verbose: str = "log progress") -> None:
        """Add the options every command shares: ``--json``, ``--no-progress``, ``-v/--verbose``.

        Parameters
        ----------
        group : argparse argument group, optional
            Where the options go (default: the parser itself).
        json : str or None, optional
            Help text of ``--json``; None leaves the option out.
        progress : bool, optional
            Whether the command has progress bars (``--no-progress``).
        verbose : str, optional
            Help text of ``-v/--verbose``.

        Examples
        --------
        >>> p = ArgumentParser(prog="demo")
        >>> p.add_output_options(json=None, progress=False, verbose="log every step")
        >>> p.parse_args(["-v"])
        Namespace(verbose=True)
        """
        g = self if group is None else group
        if json is not None:
            g.add_argument("--json", action="store_true", help=json)
        if progress:
            g.add_argument("--no-progress", action="store_true", help="no progress bars")
        g.add_argument("-v", "--verbose", action="store_true", help=verbose)


def configure_logging(verbose: bool, *, names: bool = False) -> None:
    """Set up the root logger of a command: INFO with ``-v``, WARNING otherwise.

    Parameters
    ----------
    verbose : bool
        ``-v/--verbose`` given.
    names : bool, optional
        Prefix each message with the logger's name (module) as well as its level.
    """
    fmt = "%(levelname)s %(name)s: %(message)s" if names else "%(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=fmt)


def _is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class LineProgress:
    """Progress as plain lines (for redirected output): ``DESC: 12/24 sim (50%), 30 s, ~30 s left``.

    The same methods as the part of tqdm's interface the project uses (``update``,
    ``set_postfix_str``, ``close``, ``n``, ``total``, context manager, iteration). A line
    is written every ``interval`` seconds and at the end; work that ends within
    ``min_time`` seconds without having written a line writes none.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: float = 0, interval: float = 10.0, disable: bool = False,
                 fmt: str = "{:g}", file: IO | None = None, min_time: float = 0.0):
        self.iterable = iterable
        self.min_time = min_time
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.interval, self.disable, self.fmt = interval, disable, fmt
        self.file = file if file is not None else sys.stderr
        self._start = self._last = time.monotonic()
        self._initial = initial
        self._postfix = ""
        self._closed = False
        self._wrote = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Text appended to each line (e.g. the current loss)."""
        self._postfix = text

    def update(self, n: float = 1) -> None:
        """Advance by ``n`` units; write a line if ``interval`` seconds have passed."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._write()

    def line(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self._start
        done = self.fmt.format(self.n)
        text = f"{self.desc}: {done}"
        if self.total:
            text += f"/{self.fmt.format(self.total)} {self.unit} ({100.0 * self.n / self.total:.0f}%)"
            rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
            left = (self.total - self.n) / rate if rate > 0 else float("nan")
            text += f", {_duration(elapsed)}"
            if self.n < self.total:
                text += f", ~{_duration(left)} left"
        else:
            text += f" {self.unit}, {_duration(elapsed)}"
        return text + (f", {self._postfix}" if self._postfix else "")

    def _write(self) -> None:
        self._wrote = True
        if not self.disable:
            print(self.line(), file=self.file, flush=True)

    def close(self) -> None:
        """Write the final line (once), unless the work took under ``min_time`` seconds and
        wrote no line before (short stages leave no trace in a log)."""
        if not self._closed:
            self._closed = True
            if self._wrote or time.monotonic() - self._start >= self.min_time:
                self._write()


def progress(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
             unit: str = "it", initial: float = 0, disable: bool = False, leave: bool = True,
             interval: float = 10.0, fmt: str = "{:g}", file: IO | None = None, min_time: float = 0.0):
    """A progress bar: tqdm on a terminal, :class:`LineProgress` lines otherwise.

    Parameters
    ----------
    iterable : iterable, optional
        Wrap this iterable (as ``tqdm(iterable)``).
    total : float, optional
        Total amount of work, in ``unit`` (may be fractional, e.g. Myr of simulated time).
    desc : str
        Label of the bar.
    unit : str
        Unit of ``total`` (``"sim"``, ``"Myr"``, ``"batch"``...).
    initial : float
        Work already done (a resumed run).
    disable : bool
        No output at all.
    leave : bool
        Keep the finished bar on a terminal.
    interval : float
        Seconds between lines when the output is not a terminal [s].
    fmt : str
        Format of amounts in the line output (``"{:.3f}"`` for Myr).
    file : file object, optional
        Where to write (default standard error).
    min_time : float
        When the output is not a terminal: write no closing line for work that ended
        within this many seconds without having written a line [s] (default 0: always).

    Returns
    -------
    tqdm.tqdm or LineProgress
    """
    stream = file if file is not None else sys.stderr
    if not disable and _is_terminal(stream):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave, file=stream,
                    smoothing=0.05, dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial, interval=interval,
                        disable=disable, fmt=fmt, file=stream, min_time=min_time)
