"""A throwaway Airflow installation: SQLite metadata DB, a DAG folder, and `airflow dags test`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AIRFLOW_COMMAND_TIMEOUT_SECONDS = 600


@dataclass
class AirflowRun:
    """The outcome of one `airflow dags test` run, read back from the metadata DB."""

    returncode: int
    output: str
    run_id: str | None
    task_states: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    xcoms: dict[tuple[str, str], Any] = field(default_factory=dict)


class AirflowEnv:
    """Run the `airflow` CLI of this interpreter against its own AIRFLOW_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        self.env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API__BASE_URL": "http://127.0.0.1:8080/",
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), *sys.path]),
            }
        )

    def airflow(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "airflow", *args]
        return subprocess.run(
            command,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=AIRFLOW_COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def migrate(self) -> None:
        result = self.airflow("db", "migrate")
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")

    def connection_env(self, url: str, routing_key: str, conn_id: str = "se_pagerduty_default") -> dict[str, str]:
        """Return an AIRFLOW_CONN_ variable (JSON form) for an se_pagerduty connection."""
        value = json.dumps({"conn_type": "se_pagerduty", "host": url, "password": routing_key})
        return {f"AIRFLOW_CONN_{conn_id.upper()}": value}

    def dags_test(self, dag_id: str, extra_env: dict[str, str] | None = None) -> AirflowRun:
        result = self.airflow("dags", "test", dag_id, extra_env=extra_env)
        run = AirflowRun(result.returncode, result.stdout + result.stderr, None)
        with sqlite3.connect(self.home / "airflow.db") as db:
            row = db.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
            ).fetchone()
            if row is None:
                return run
            run.run_id = row[0]
            for task_id, state, try_number in db.execute(
                "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (dag_id, run.run_id),
            ):
                run.task_states[task_id] = (state, try_number)
            for task_id, key, value in db.execute(
                "SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = ?", (dag_id, run.run_id)
            ):
                run.xcoms[(task_id, key)] = json.loads(value) if isinstance(value, str | bytes) else value
        return run
