"""DAG-parse cost: what importing our operator and notifier modules adds to a fresh ``import airflow.sdk``.

Each sample is a fresh interpreter that imports ``airflow.sdk`` first, then the modules under
test, and reports both times from ``time.perf_counter``. The difference is what a DAG file
that uses the modules pays on top of the Task SDK it imports anyway. Airflow's own PagerDuty
notifier module is measured the same way, in interpreters that alternate with ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from benchmarks.common import REPOSITORY_ROOT, Row, format_ratio, format_seconds, median, verdict

AREA = "1 DAG parse"
OUR_MODULES = (
    "airflow_provider_se_pagerduty.operators.pagerduty",
    "airflow_provider_se_pagerduty.notifications.pagerduty",
)
OFFICIAL_MODULES = ("airflow.providers.pagerduty.notifications.pagerduty",)
# Modules that a DAG file must not pull in at parse time.
HEAVY_MODULES = ("pyspark", "pandas")
# Our import overhead may be at most this share of the official notifier's.
MAX_SHARE_OF_OFFICIAL = 1 / 6
SUBPROCESS_TIMEOUT_SECONDS = 120.0

# Runs in the fresh interpreter: argv[1] is a JSON list of modules, argv[2] of heavy modules.
_PROBE = """
import importlib, json, sys, time
modules, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
started = time.perf_counter()
import airflow.sdk
sdk_done = time.perf_counter()
heavy_before = sorted(name for name in heavy if name in sys.modules)
for name in modules:
    importlib.import_module(name)
finished = time.perf_counter()
print(json.dumps({
    "sdk_seconds": sdk_done - started,
    "module_seconds": finished - sdk_done,
    "heavy_before": heavy_before,
    "heavy_after": sorted(name for name in heavy if name in sys.modules),
}))
"""


@dataclass(frozen=True)
class ImportOptions:
    """Number of fresh interpreters per module set."""

    runs: int = 9


@dataclass(frozen=True)
class ImportSample:
    """One fresh interpreter's times and the heavy modules it had loaded."""

    sdk_seconds: float
    module_seconds: float
    heavy_before: list[str]
    heavy_after: list[str]


def probe(modules: tuple[str, ...], airflow_home: str) -> ImportSample:
    """Import ``airflow.sdk`` and then ``modules`` in a fresh interpreter and return its times."""
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(modules)), json.dumps(list(HEAVY_MODULES))],
        cwd=REPOSITORY_ROOT,
        env=_probe_environment(airflow_home),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"importing {', '.join(modules)} failed with exit code {completed.returncode}: "
            f"{completed.stderr.strip()[-2000:]}"
        )
    # Airflow may log to stdout while it starts; the probe's JSON is the last line.
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return ImportSample(**report)


def _probe_environment(airflow_home: str) -> dict[str, str]:
    environment = dict(os.environ)
    # A private AIRFLOW_HOME, so that the probes neither read nor write the user's.
    environment["AIRFLOW_HOME"] = airflow_home
    return environment


def measure(options: ImportOptions) -> list[Row]:
    """Alternate fresh interpreters for our modules and the official notifier; compare medians."""
    ours: list[ImportSample] = []
    official: list[ImportSample] = []
    with tempfile.TemporaryDirectory(prefix="se-pagerduty-bench-airflow-home-") as airflow_home:
        # The first interpreter writes airflow.cfg and any missing bytecode; it is not counted.
        probe(OUR_MODULES + OFFICIAL_MODULES, airflow_home)
        for _ in range(options.runs):
            ours.append(probe(OUR_MODULES, airflow_home))
            official.append(probe(OFFICIAL_MODULES, airflow_home))

    sdk = median([sample.sdk_seconds for sample in ours + official])
    our_overhead = median([sample.module_seconds for sample in ours])
    official_overhead = median([sample.module_seconds for sample in official])
    share = our_overhead / official_overhead
    heavy_loaded = sorted({name for sample in ours for name in sample.heavy_after})
    heavy_from_sdk = sorted({name for sample in ours for name in sample.heavy_before})
    runs = str(options.runs)

    return [
        Row(AREA, "fresh import airflow.sdk (context)", format_seconds(sdk), str(2 * options.runs)),
        Row(
            AREA,
            "our operator + notifier modules, on top of airflow.sdk",
            format_seconds(our_overhead),
            runs,
            f"{format_ratio(share)} the official notifier's",
            verdict(share <= MAX_SHARE_OF_OFFICIAL, "<= 1/6 of the official notifier's"),
        ),
        Row(
            AREA,
            "official PagerDuty notifier module, on top of airflow.sdk",
            format_seconds(official_overhead),
            runs,
            "1x",
        ),
        Row(
            AREA,
            "pyspark or pandas in sys.modules after our imports",
            ", ".join(heavy_loaded) or "neither",
            runs,
            f"already loaded by airflow.sdk: {', '.join(heavy_from_sdk)}" if heavy_from_sdk else "",
            verdict(not heavy_loaded, "neither"),
        ),
    ]
