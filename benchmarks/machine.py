"""The machine line every benchmark prints next to its table (numbers mean little without it)."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe(*extra: str) -> str:
    """Host, CPU, usable cores, RAM, load and Python, plus any ``extra`` fields, ``|``-separated."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        mem = "RAM ?"
    try:
        load = f"load {os.getloadavg()[0]:.2f}"
    except OSError:
        load = "load ?"
    fields = [platform.node(), cpu_model(), f"{usable} usable cores (of {os.cpu_count()})", mem, load,
              f"Python {platform.python_version()}",
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}", *extra]
    return " | ".join(fields)
