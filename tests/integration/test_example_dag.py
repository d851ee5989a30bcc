"""The example DAG end to end: real Airflow, real Spark on the flights table, real HTTP.

Besides what paged, this checks that the integration key appears nowhere Airflow keeps
text: task logs, command output, XCom values and rendered template fields.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver
from tests.integration.airflow_env import AirflowEnv

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "se_flights_dq"
# A key no other text contains, so that any occurrence is a leak.
SECRET_KEY = "LeakCheck7Q9z4Xw2Vb8Nm3Kp6Jr1Ts5"


def texts_in_metadata_db(db_path: Path) -> dict[str, list[str]]:
    """Return every XCom value and rendered template field as text, by table."""
    with sqlite3.connect(db_path) as db:
        return {
            "xcom": [str(value) for (value,) in db.execute("SELECT value FROM xcom")],
            "rendered_task_instance_fields": [
                str(fields) for (fields,) in db.execute("SELECT rendered_fields FROM rendered_task_instance_fields")
            ],
        }


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[AirflowEnv, EventsApiReceiver, str]:
    pytest.importorskip("pyspark", reason="needs the [spark] extra")
    env = AirflowEnv(tmp_path_factory.mktemp("airflow_home"))
    shutil.copy(REPO / "example_dags" / "se_flights_dq.py", env.dags)
    env.migrate()
    with EventsApiReceiver(max_lifetime_seconds=1800) as receiver:
        run = env.dags_test(DAG_ID, extra_env=env.connection_env(receiver.url, SECRET_KEY))
    return env, receiver, run.output


def test_example_dag_pages_as_designed(example_run: tuple[AirflowEnv, EventsApiReceiver, str]) -> None:
    _, receiver, output = example_run
    triggers = {(e.severity, e.dedup_key) for e in receiver.accepted if e.action == "trigger"}

    assert triggers == {
        ("critical", "se-pagerduty/nycflights13/flights_arrivals/failure"),
        ("error", "se-pagerduty/nycflights13/flights_departures/breach"),
    }, output[-4000:]
    assert receiver.rejected == []
    breach = next(e for e in receiver.accepted if e.dedup_key.endswith("/breach"))
    assert "dep_time_present failed 8,255 rows (2.45% >= threshold 2%)" in (breach.summary or "")
    ignored = (breach.custom_details or {})["ignored_rule_failures"]
    assert [(r["rule"], r["failed_row_count"]) for r in ignored] == [("tailnum_present", 2512)]
    assert not any("tailnum" in (e.summary or "") for e in receiver.accepted)


def test_integration_key_in_no_log_or_xcom(example_run: tuple[AirflowEnv, EventsApiReceiver, str]) -> None:
    env, receiver, output = example_run
    log_files = [path for path in (env.home / "logs").rglob("*") if path.is_file()]
    stored = texts_in_metadata_db(env.home / "airflow.db")

    assert receiver.accepted, "the run sent no event, so the search below would prove nothing"
    # airflow dags test prints the task logs; files under logs/ are searched too when present.
    assert "PagerDuty accepted trigger event" in output, "the output holds no task log lines"
    assert stored["xcom"], "the run pushed no XCom"
    assert SECRET_KEY not in output
    for path in log_files:
        assert SECRET_KEY not in path.read_text(errors="replace"), path
    for table, values in stored.items():
        for value in values:
            assert SECRET_KEY not in value, table
