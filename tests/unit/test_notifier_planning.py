"""The notifier when it cannot even plan: bad stats in a success callback, and severity case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_se_pagerduty.notifications.pagerduty import SparkExpectationsPagerDutyNotifier
from airflow_provider_se_pagerduty.settings import AlertSettings
from airflow_provider_se_pagerduty.testing import EventsApiReceiver
from tests.payloads import make_payload
from tests.unit.conftest import FakeTaskInstance, log_lines, task_context


def test_bad_stats_on_success_sends_nothing(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], task_logs: list[dict[str, Any]]
) -> None:
    payload = make_payload()
    payload["error_count"] = -3
    ti = FakeTaskInstance(xcom={("check_orders", "return_value"): payload}, state="success")
    notifier = SparkExpectationsPagerDutyNotifier(pagerduty_conn_id=se_connection(events_receiver.url))

    notifier.notify(task_context(ti))

    errors = log_lines(task_logs, "error")
    assert errors == [
        "Not sending PagerDuty events for check_orders: Invalid DQ stats payload: "
        "field 'error_count' must not be negative, got -3"
    ]
    assert events_receiver.requests_seen == 0


def test_bad_stats_on_failure_still_pages(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], task_logs: list[dict[str, Any]]
) -> None:
    payload = make_payload()
    payload["error_count"] = -3
    ti = FakeTaskInstance(xcom={("check_orders", "return_value"): payload}, state="failed")
    notifier = SparkExpectationsPagerDutyNotifier(pagerduty_conn_id=se_connection(events_receiver.url))

    notifier.notify(task_context(ti, RuntimeError("DQ job failed")))

    [event] = events_receiver.accepted
    assert (event.action, event.severity) == ("trigger", "critical")
    assert event.dedup_key == "se-pagerduty/airflow/dq_orders.check_orders/failure"
    assert any("Ignoring the DQ stats of task check_orders" in line for line in log_lines(task_logs, "error"))


def test_severity_any_letter_case() -> None:
    settings = AlertSettings.resolve(failure_severity="Critical", breach_severity=" WARNING ")
    assert settings.failure_severity == "critical"
    assert settings.breach_severity == "warning"
