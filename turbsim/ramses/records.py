"""Fortran unformatted sequential records, read with their length markers checked.

gfortran frames every record with a 4-byte little-endian length before and after the
payload. :class:`RecordFile` holds a whole file in memory (one ``numpy.fromfile``) and
reads records either one at a time (headers) or as a run of records whose payload
sizes are known in advance (:meth:`RecordFile.run`): the offsets of the run are then
computed with one cumulative sum and all its markers are compared in one vectorised
step, so the cost does not depend on the number of octs. Every mismatch raises
:class:`~turbsim.ramses.format.RamsesFormatError` naming the file, the record and the
byte offset.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .format import RamsesFormatError

__all__ = ["RecordFile", "write_record"]

_MARKER = np.dtype("<i4")


def _gather_markers(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """4-byte little-endian integers at arbitrary (unaligned) byte offsets of ``buf``."""
    idx = offsets[:, None] + np.arange(4)
    return np.ascontiguousarray(buf[idx]).view(_MARKER).ravel().astype(np.int64)


class RecordFile:
    """A Fortran sequential file read into memory, with a read position.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Raises
    ------
    RamsesFormatError
        If the file cannot be read.
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.buf = np.fromfile(self.path, dtype=np.uint8)
        except OSError as exc:
            raise RamsesFormatError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        self.pos = 0
        self.nrec = 0

    @property
    def size(self) -> int:
        """File size [bytes]."""
        return int(self.buf.size)

    def _fail(self, msg: str):
        raise RamsesFormatError(f"{self.path}: {msg}")

    def read(self, what: str, dtype, count: int | None = None) -> np.ndarray:
        """Read the next record as an array.

        Parameters
        ----------
        what : str
            Name of the record, for error messages.
        dtype : numpy dtype
            Element type of the payload.
        count : int, optional
            Expected number of elements; checked against the record length when given.

        Returns
        -------
        numpy.ndarray
            A copy of the payload (1-D).
        """
        dtype = np.dtype(dtype)
        pos = self.pos
        if pos + 4 > self.size:
            self._fail(f"truncated: record {self.nrec + 1} ({what}) expected at byte {pos}, "
                       f"but the file ends at byte {self.size}")
        nbytes = int(_gather_markers(self.buf, np.array([pos]))[0])
        if count is not None and nbytes != count * dtype.itemsize:
            self._fail(f"record {self.nrec + 1} ({what}) at byte {pos}: header marker says "
                       f"{nbytes} bytes, expected {count * dtype.itemsize} "
                       f"({count} x {dtype.itemsize}-byte values)")
        if nbytes < 0 or nbytes % dtype.itemsize:
            self._fail(f"record {self.nrec + 1} ({what}) at byte {pos}: header marker {nbytes} "
                       f"is not a whole number of {dtype.itemsize}-byte values")
        end = pos + 4 + nbytes
        if end + 4 > self.size:
            self._fail(f"truncated: record {self.nrec + 1} ({what}) at byte {pos} needs "
                       f"{nbytes + 8} bytes, the file ends at byte {self.size}")
        footer = int(_gather_markers(self.buf, np.array([end]))[0])
        if footer != nbytes:
            self._fail(f"record {self.nrec + 1} ({what}) at byte {pos}: footer marker {footer} "
                       f"!= header marker {nbytes}")
        self.pos = end + 4
        self.nrec += 1
        return self.buf[pos + 4:end].view(dtype).copy() if nbytes else np.empty(0, dtype)

    def peek_size(self) -> int:
        """Payload size [bytes] announced by the next record's header marker (no checks)."""
        if self.pos + 4 > self.size:
            self._fail(f"truncated: record {self.nrec + 1} expected at byte {self.pos}, "
                       f"but the file ends at byte {self.size}")
        return int(_gather_markers(self.buf, np.array([self.pos]))[0])

    def run(self, sizes: np.ndarray, describe: Callable[[int], str]) -> np.ndarray:
        """Check a run of consecutive records of known payload sizes and step over it.

        Parameters
        ----------
        sizes : array of int
            Expected payload size [bytes] of each record of the run, in file order.
        describe : callable
            ``describe(i)`` names record ``i`` of the run (only called to report an error).

        Returns
        -------
        numpy.ndarray
            Byte offset of each record's payload (int64), for :meth:`view`.

        Raises
        ------
        RamsesFormatError
            If the file ends inside the run or a header/footer marker differs from the
            expected size.
        """
        sizes = np.asarray(sizes, dtype=np.int64)
        if sizes.size == 0:
            return np.empty(0, np.int64)
        starts = self.pos + np.concatenate(([0], np.cumsum(sizes[:-1] + 8)))
        ends = starts + sizes + 8
        if ends[-1] > self.size:
            i = int(np.argmax(ends > self.size))
            self._fail(f"truncated: record {self.nrec + i + 1} ({describe(i)}) at byte {starts[i]} "
                       f"needs {sizes[i] + 8} bytes, the file ends at byte {self.size}")
        heads = _gather_markers(self.buf, starts)
        tails = _gather_markers(self.buf, starts + 4 + sizes)
        bad = (heads != sizes) | (tails != sizes)
        if bad.any():
            i = int(np.argmax(bad))
            self._fail(f"record {self.nrec + i + 1} ({describe(i)}) at byte {starts[i]}: markers "
                       f"{heads[i]}/{tails[i]} (header/footer), expected {sizes[i]} bytes")
        self.pos = int(ends[-1])
        self.nrec += sizes.size
        return starts + 4

    def view(self, offset: int, dtype, shape, record_stride: int | None = None) -> np.ndarray:
        """Array view on payload data already checked by :meth:`run`.

        Parameters
        ----------
        offset : int
            Byte offset of the first value.
        dtype : numpy dtype
            Element type.
        shape : tuple of int
            ``(n,)`` for one record, or ``(k, n)`` for ``k`` consecutive records of ``n``
            values each.
        record_stride : int, optional
            Bytes from one record's payload to the next (payload + 8 marker bytes);
            needed when ``len(shape) == 2``.

        Returns
        -------
        numpy.ndarray
            A read-only view into the file buffer (copy it to keep it).
        """
        dtype = np.dtype(dtype)
        if len(shape) == 1:
            strides = (dtype.itemsize,)
        else:
            strides = (record_stride, dtype.itemsize)
        arr = np.ndarray(shape, dtype=dtype, buffer=self.buf, offset=int(offset), strides=strides)
        arr.flags.writeable = False
        return arr

    def expect_end(self):
        """Raise if bytes remain after the last record read."""
        if self.pos != self.size:
            self._fail(f"{self.size - self.pos} unexpected bytes after the last record "
                       f"(byte {self.pos} of {self.size})")


def write_record(fh, array) -> None:
    """Write one Fortran sequential record (little-endian markers) to an open binary file.

    Parameters
    ----------
    fh : binary file object
        Destination.
    array : numpy.ndarray
        Payload; written in C order with its own dtype.
    """
    payload = np.ascontiguousarray(array).tobytes()
    marker = np.array([len(payload)], dtype=_MARKER).tobytes()
    fh.write(marker)
    fh.write(payload)
    fh.write(marker)
