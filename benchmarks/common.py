"""Rows of the results table, timing helpers and temporary process settings shared by the benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent

# A 32-character integration key, sent only to the loopback receiver.
BENCH_ROUTING_KEY = "benchmarkroutingkey0123456789abc"

PASS = "PASS"
FAIL = "FAIL"


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    :param area: the measurement the row belongs to, e.g. ``2 decision``.
    :param case: what was measured.
    :param median: the figure, usually the median of ``runs`` samples.
    :param runs: how many samples the median is taken over; empty for facts.
    :param compared: ratios and derived figures, measured in the same run.
    :param check: ``PASS``/``FAIL`` with the target, or empty when the row has no target.
    """

    area: str
    case: str
    median: str
    runs: str = ""
    compared: str = ""
    check: str = ""


def verdict(passed: bool, target: str) -> str:
    """Format a check cell, e.g. ``PASS (<= 1.5x)``."""
    return f"{PASS if passed else FAIL} ({target})"


def median(samples: list[float]) -> float:
    """Return the median of a non-empty list of samples."""
    if not samples:
        raise ValueError("median() needs at least one sample")
    return statistics.median(samples)


def format_seconds(seconds: float) -> str:
    """Format a duration with a unit that keeps three significant digits (ns, µs, ms or s)."""
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e9:.3g} ns"


def format_ratio(ratio: float) -> str:
    """Format a ratio as ``1.23x``."""
    return f"{ratio:.3g}x"


def time_per_call(call: Callable[[], Any], samples: int, min_sample_seconds: float) -> list[float]:
    """Time ``call`` and return ``samples`` figures of seconds per call.

    Each sample repeats the call enough times to last at least ``min_sample_seconds``, so that
    timer resolution and one-off pauses weigh little on fast calls. The number of calls per
    sample is chosen from one untimed warm-up call and one timed call.
    """
    call()
    started = time.perf_counter()
    call()
    single = max(time.perf_counter() - started, 1e-9)
    calls_per_sample = max(1, int(min_sample_seconds / single))

    figures = []
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(calls_per_sample):
            call()
        figures.append((time.perf_counter() - started) / calls_per_sample)
    return figures


@contextlib.contextmanager
def environment_variables(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore the previous values."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def airflow_connection_variable(
    conn_id: str, url: str, extra: dict[str, Any] | None = None
) -> dict[str, str]:
    """Return the ``AIRFLOW_CONN_*`` variable that defines an ``se_pagerduty`` connection to ``url``."""
    connection = {
        "conn_type": "se_pagerduty",
        "host": url,
        "password": BENCH_ROUTING_KEY,
        "extra": extra or {},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    """Point file descriptor 1 at ``os.devnull`` during the block, then restore it.

    Airflow's structlog loggers write task and hook log lines straight to stdout. With this
    block the lines are still built and written, as in a task whose log goes to a file, and
    the console stays readable while thousands of events are sent.
    """
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
        os.close(devnull)
