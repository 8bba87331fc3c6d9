"""Facts of the machine a run lands on (ground: the standard library only).

Examples
--------
>>> avail = available_memory()
>>> avail is None or avail > 0
True
"""
from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes of memory a new allocation can use without swapping, or None when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo``; elsewhere the free physical pages
    (``os.sysconf``), or None.
    """
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
