"""Run the example DAG on real data against a local Events API v2 receiver, then show what paged.

Steps: start the receiver on a free 127.0.0.1 port, make a throwaway AIRFLOW_HOME with SQLite,
point the ``se_pagerduty_default`` connection at the receiver through an AIRFLOW_CONN_
variable, run ``airflow dags test`` on the example DAG, and print the accepted events.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "se_flights_dq"
# A made-up integration key: the receiver checks its shape, nothing else.
DEMO_ROUTING_KEY = "demo0000000000000000000000000000"
RECEIVER_LIFETIME_SECONDS = 3600
COMMAND_TIMEOUT_SECONDS = 1800
PROGRESS_MARKERS = (
    "Spark Expectations run id",
    "DQ target",
    "Planned ",
    "PagerDuty accepted",
    "with action ignore failed",
    "Task failed with exception",
    "Marking task as",
    "Pushed DQ stats",
)


def run_step(title: str, command: list[str], env: dict[str, str], log_path: Path) -> int:
    """Run one command, keep its whole output in ``log_path``, and echo the lines that matter."""
    print(f"\n== {title}", flush=True)
    started = time.monotonic()
    with log_path.open("w") as log, subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if any(marker in line for marker in PROGRESS_MARKERS):
                print("   " + line.rstrip()[:220], flush=True)
        returncode = process.wait(timeout=COMMAND_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    print(f"   exit code {returncode} after {elapsed:.0f} s; full log: {log_path}", flush=True)
    return returncode


def print_events(receiver: EventsApiReceiver) -> None:
    rows = [("action", "severity", "dedup key", "summary")]
    rows += [(e.action, e.severity or "-", e.dedup_key, e.summary or "-") for e in receiver.accepted]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print("\n== Events accepted by the local Events API v2 receiver")
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
        if index == 0:
            print("  ".join("-" * width for width in widths) + "  " + "-" * 7)
    for rejected in receiver.rejected:
        print(f"REJECTED: {rejected.errors}")


def check_events(receiver: EventsApiReceiver) -> list[str]:
    """Return what is wrong with the demo's outcome; empty when it went as designed."""
    triggers = [e for e in receiver.accepted if e.action == "trigger"]
    problems = []
    if not any(e.severity == "critical" and e.dedup_key.endswith("/failure") for e in triggers):
        problems.append("no critical failure incident for the failing DQ task")
    if not any(e.severity == "error" and e.dedup_key.endswith("/breach") for e in triggers):
        problems.append("no error incident for the breached drop-rule threshold")
    if any("tailnum" in (e.summary or "") for e in triggers):
        problems.append("an incident names the ignore rule on tailnum")
    if receiver.rejected:
        problems.append(f"{len(receiver.rejected)} event(s) were rejected")
    return problems


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()

    # The home is kept, so that its logs can be read after the demo.
    home = Path(tempfile.mkdtemp(prefix="se-pagerduty-demo-"))
    with EventsApiReceiver(max_lifetime_seconds=RECEIVER_LIFETIME_SECONDS) as receiver:
        print(f"Local Events API v2 receiver: {receiver.url}")
        print(f"AIRFLOW_HOME: {home}")
        connection = {"conn_type": "se_pagerduty", "host": receiver.url, "password": DEMO_ROUTING_KEY}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_SE_PAGERDUTY_DEFAULT": json.dumps(connection),
            }
        )
        airflow = [sys.executable, "-m", "airflow"]
        if run_step("airflow db migrate (SQLite)", [*airflow, "db", "migrate"], env, home / "migrate.log"):
            print("airflow db migrate failed; see the log above")
            return 1
        # The DAG run ends failed on purpose: its second DQ task has a fail rule that real data breaks.
        dags_test = [*airflow, "dags", "test", DAG_ID]
        run_step(f"airflow dags test {DAG_ID}", dags_test, env, home / "dags-test.log")

        print_events(receiver)
        events_file = home / "events.json"
        events_file.write_text(json.dumps([e.event for e in receiver.accepted], indent=2))
        print(f"Full event bodies (without the integration key): {events_file}")
        problems = check_events(receiver)

    if problems:
        print("\nThe demo did not page as designed: " + "; ".join(problems))
        return 1
    print("\nAs designed: the failed DQ job paged critical, the breached threshold paged error, "
          "and the ignore rule paged nothing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
