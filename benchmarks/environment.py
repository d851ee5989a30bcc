"""The machine and package versions that a benchmark run measured on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

from benchmarks.common import Row

# Distribution names whose versions matter for the figures, with the label shown in the table.
VERSIONED_DISTRIBUTIONS = (
    ("apache-airflow", "Airflow"),
    ("apache-airflow-providers-http", "apache-airflow-providers-http"),
    ("apache-airflow-providers-pagerduty", "apache-airflow-providers-pagerduty"),
    ("pyspark", "pyspark"),
    ("spark-expectations", "spark-expectations"),
    ("requests", "requests"),
    ("pagerduty", "pagerduty (python-pagerduty client)"),
    ("airflow-provider-se-pagerduty", "airflow-provider-se-pagerduty"),
)


def cpu_model() -> str:
    """Read the CPU model name from ``/proc/cpuinfo``, else from ``platform``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def memory_gib() -> float | None:
    """Read the total memory in GiB from ``/proc/meminfo``; None where that file is missing."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            kibibytes = int(line.split()[1])
            return kibibytes / 1024**2
    return None


def load_average() -> str:
    """Return the 1-minute load average as text, or ``unknown`` where the OS does not report it."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def package_version(distribution: str) -> str:
    """Return the installed version of ``distribution``, or ``not installed``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_rows() -> list[Row]:
    """List the machine (CPU model, cores, memory, OS) and the versions as table rows."""
    memory = memory_gib()
    rows = [
        Row("machine", "CPU", f"{cpu_model()}, {os.cpu_count()} cores"),
        Row("machine", "memory", f"{memory:.1f} GiB" if memory is not None else "unknown"),
        Row("machine", "OS", f"{platform.system()} {platform.release()}"),
        Row("machine", "load average (1 min) at start", load_average()),
        Row("versions", "Python", platform.python_version()),
    ]
    rows.extend(Row("versions", label, package_version(name)) for name, label in VERSIONED_DISTRIBUTIONS)
    return rows
