"""Real Airflow runs (`airflow dags test` on SQLite) sending real HTTP to the local receiver."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_se_pagerduty.testing.faults import Fault
from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver
from tests.integration.airflow_env import AirflowEnv, AirflowRun
from tests.payloads import make_payload, row_rule

pytestmark = pytest.mark.integration

ROUTING_KEY = "0123456789abcdefABCDEF0123456789"
DAG_ID = "se_scenario_dag"
FAILURE_KEY_SUFFIX = "/failure"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> AirflowEnv:
    env = AirflowEnv(tmp_path_factory.mktemp("airflow_home"))
    shutil.copy(Path(__file__).parent / "dags" / "se_scenario_dag.py", env.dags)
    env.migrate()
    return env


@pytest.fixture
def receiver() -> Iterator[EventsApiReceiver]:
    with EventsApiReceiver(max_lifetime_seconds=900) as running:
        yield running


def run_scenario(env: AirflowEnv, url: str, scenario: dict[str, Any]) -> AirflowRun:
    scenario_file = env.home / "scenario.json"
    scenario_file.write_text(json.dumps(scenario))
    extra_env = {"SE_TEST_SCENARIO_FILE": str(scenario_file), **env.connection_env(url, ROUTING_KEY)}
    return env.dags_test(DAG_ID, extra_env=extra_env)


def test_failing_dag_twice_one_incident_then_resolved(
    airflow_env: AirflowEnv, receiver: EventsApiReceiver, se_payloads: dict[str, dict[str, Any]]
) -> None:
    failing = {"fail": True, "retries": 1, "payload": se_payloads["row_fail"]}

    first = run_scenario(airflow_env, receiver.url, failing)
    second = run_scenario(airflow_env, receiver.url, failing)

    for run in (first, second):
        assert run.task_states["dq_check"] == ("failed", 2), run.output[-3000:]
        assert "RuntimeError: spark-expectations run failed" in run.output
    triggers = [e for e in receiver.accepted if e.action == "trigger"]
    # Two runs with one retry each: four failure callbacks, all on the same incident.
    assert len(triggers) == 4
    assert {e.dedup_key for e in triggers} == {triggers[0].dedup_key}
    assert triggers[0].dedup_key.endswith(FAILURE_KEY_SUFFIX)
    assert {e.severity for e in triggers} == {"critical"}
    open_incidents = receiver.open_incidents()
    assert len(open_incidents) == 1
    assert open_incidents[0].trigger_count == 4

    # The same DQ target passes later: a real passing run's stats, named as the failing target.
    target = {key: se_payloads["row_fail"][key] for key in ("product_id", "table_name")}
    passing_payload = {**se_payloads["all_pass"], **target}
    passing = run_scenario(airflow_env, receiver.url, {"fail": False, "payload": passing_payload})

    assert passing.task_states["page_on_dq"][0] == "success", passing.output[-3000:]
    assert receiver.open_incidents() == []
    resolved = [i for i in receiver.incidents() if i.status == "resolved"]
    assert [i.dedup_key for i in resolved] == [triggers[0].dedup_key]
    assert passing.xcoms[("page_on_dq", "return_value")] == [
        {"kind": "failure", "action": "resolve", "severity": None, "dedup_key": triggers[0].dedup_key},
        {"kind": "breach", "action": "resolve", "severity": None,
         "dedup_key": triggers[0].dedup_key.replace(FAILURE_KEY_SUFFIX, "/breach")},
    ]


def test_operator_pages_breach_not_ignore(
    airflow_env: AirflowEnv, receiver: EventsApiReceiver, se_payloads: dict[str, dict[str, Any]]
) -> None:
    run = run_scenario(airflow_env, receiver.url, {"fail": False, "payload": se_payloads["row_drop_breach"]})

    assert run.task_states["page_on_dq"][0] == "success", run.output[-3000:]
    triggers = [e for e in receiver.accepted if e.action == "trigger"]
    assert [(e.severity, e.dedup_key.rsplit("/", 1)[-1]) for e in triggers] == [("error", "breach")]
    record = run.xcoms[("page_on_dq", "return_value")][0]
    assert record == {"kind": "breach", "action": "trigger", "severity": "error", "dedup_key": triggers[0].dedup_key}
    details = triggers[0].custom_details or {}
    assert details["dag_id"] == DAG_ID
    assert details["task_id"] == "page_on_dq"
    assert details["try_number"] == 1
    assert triggers[0].event["links"][0]["href"].startswith("http://127.0.0.1:8080/")


def test_ignore_only_failure_sends_no_trigger(
    airflow_env: AirflowEnv, receiver: EventsApiReceiver, se_payloads: dict[str, dict[str, Any]]
) -> None:
    run = run_scenario(airflow_env, receiver.url, {"fail": False, "payload": se_payloads["ignore_only_failure"]})

    assert run.task_states["page_on_dq"][0] == "success", run.output[-3000:]
    assert [e.action for e in receiver.accepted] == ["resolve", "resolve"]
    assert "with action ignore failed" in run.output


def test_failed_task_without_stats_pages(airflow_env: AirflowEnv, receiver: EventsApiReceiver) -> None:
    scenario = {
        "fail": True,
        "payload": None,
        "error": "Py4JJavaError: Java heap space",
        "notifier_options": {"product_id": "flights_product", "table_name": "dq.flights"},
    }
    run = run_scenario(airflow_env, receiver.url, scenario)

    assert run.task_states["dq_check"][0] == "failed"
    [event] = receiver.accepted
    assert event.dedup_key == "se-pagerduty/flights_product/dq.flights/failure"
    assert event.severity == "critical"
    assert event.summary == (
        "[DQ failure] dq.flights (flights_product): task se_scenario_dag.dq_check failed; "
        "RuntimeError: Py4JJavaError: Java heap space"
    )


def test_master_switch_off_sends_nothing(airflow_env: AirflowEnv, receiver: EventsApiReceiver) -> None:
    user_conf = {"spark.expectations.notifications.pagerduty.enabled": False}
    payload = make_payload(rules=[row_rule("dep_time", 300, threshold=1)], run_status="Failed", stages={"row_dq": "Failed"})
    scenario = {
        "fail": True,
        "payload": payload,
        "notifier_options": {"user_conf": user_conf},
        "options": {"user_conf": user_conf},
    }
    run = run_scenario(airflow_env, receiver.url, scenario)

    assert run.task_states["dq_check"][0] == "failed"
    assert receiver.requests_seen == 0
    assert "PagerDuty alerts are switched off" in run.output


def test_undeliverable_callback_keeps_task_error(airflow_env: AirflowEnv, receiver: EventsApiReceiver) -> None:
    scenario = {"fail": True, "payload": None, "error": "the original DQ error"}
    closed_port_url = "http://127.0.0.1:9/v2/enqueue"
    run = run_scenario(airflow_env, closed_port_url, scenario)

    assert run.task_states["dq_check"][0] == "failed"
    assert "RuntimeError: the original DQ error" in run.output
    assert "Could not deliver PagerDuty events" in run.output
    assert "Undelivered PagerDuty event:" in run.output
    assert ROUTING_KEY not in run.output
    assert receiver.requests_seen == 0


def test_notifier_success_callback_resolves(airflow_env: AirflowEnv, receiver: EventsApiReceiver) -> None:
    target = {"product_id": "flights_product", "table_name": "dq.flights"}
    disabled_operator = {"enabled": False}
    failing = {"fail": True, "payload": None, "notifier_options": target, "options": disabled_operator}
    passing = {
        "fail": False,
        "payload": None,
        "notify_on_success": True,
        "notifier_options": target,
        "options": disabled_operator,
    }

    run_scenario(airflow_env, receiver.url, failing)
    assert [i.status for i in receiver.incidents()] == ["open"]
    run = run_scenario(airflow_env, receiver.url, passing)

    assert run.task_states["dq_check"][0] == "success", run.output[-3000:]
    assert [(i.dedup_key, i.status) for i in receiver.incidents()] == [
        ("se-pagerduty/flights_product/dq.flights/failure", "resolved")
    ]


def test_operator_retry_opens_no_duplicate(airflow_env: AirflowEnv, receiver: EventsApiReceiver) -> None:
    payload = make_payload(rules=[row_rule("id_not_null", 4, action="fail")], run_status="Failed", stages={"row_dq": "Failed"})
    options = {
        "retries": 1,
        "delivery_policy": {"max_attempts": 2, "backoff_seconds": 0.05, "max_total_seconds": 10},
    }
    # The first try's two attempts get 503; the retry then gets through.
    receiver.inject(Fault.status(503), Fault.status(503))
    run = run_scenario(airflow_env, receiver.url, {"fail": False, "payload": payload, "options": options})

    assert run.task_states["page_on_dq"] == ("success", 2), run.output[-3000:]
    assert "Could not deliver the event to PagerDuty after 2 attempt(s)" in run.output
    # Two refused attempts, then the retry's failure trigger and its breach resolve.
    assert receiver.requests_seen == 4
    assert [e.action for e in receiver.accepted] == ["trigger", "resolve"]
    assert len(receiver.incidents()) == 1
    assert receiver.incidents()[0].trigger_count == 1
