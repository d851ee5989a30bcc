"""The integration key never leaks: not in logs, exception messages, XCom values or template fields.

Each test sends real HTTP to the local receiver, which misbehaves in one way, and then
searches everything the hook, operator or notifier left behind for the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_se_pagerduty.delivery import DeliveryPolicy
from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook
from airflow_provider_se_pagerduty.notifications.pagerduty import SparkExpectationsPagerDutyNotifier
from airflow_provider_se_pagerduty.operators.pagerduty import SparkExpectationsPagerDutyOperator
from airflow_provider_se_pagerduty.testing import EventsApiReceiver, Fault
from tests.unit.conftest import ROUTING_KEY, FakeTaskInstance, task_context

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.timeout(60)

POLICY = DeliveryPolicy(
    max_attempts=3, max_total_seconds=3.0, timeout_seconds=0.3, backoff_seconds=0.01, max_backoff_seconds=0.05
)
# The receiver logs the faults it serves, bodies included. Those lines are test output,
# not the provider's.
RECEIVER_LOGGER = "airflow_provider_se_pagerduty.testing.receiver"

FAILED_STATS = {
    "product_id": "sales",
    "table_name": "orders",
    "input_count": 100,
    "output_count": 0,
    "error_count": 100,
    "dq_status": {"run_status": "Failed", "row_dq": "Failed"},
    "meta_dq_run_id": "run-1",
}

# Responses to serve, several of which quote the key back, as a misconfigured proxy or a
# future API version might.
FAULTS: dict[str, list[Fault]] = {
    "accepted": [],
    "plain-text 400 quoting the key": [
        Fault(
            kind="response",
            status_code=400,
            body=f"Invalid routing key {ROUTING_KEY}".encode(),
            content_type="text/plain",
        )
    ],
    "400 errors quoting the key": [Fault.invalid_event(f"routing_key {ROUTING_KEY} is not enabled")],
    "403 message quoting the key": [
        Fault(
            kind="response",
            status_code=403,
            body=json.dumps({"status": "forbidden", "message": f"key {ROUTING_KEY} disabled"}).encode(),
        )
    ],
    "500 forever": [Fault.status(500)] * 10,
    "resets": [Fault.reset()] * 10,
    "timeouts": [Fault.delay(1.0)] * 10,
}


class Outputs:
    """Everything a run left behind that a person or another system could read."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def add_error(self, error: BaseException | None) -> None:
        if error is None:
            return
        self.add("exception message", str(error))
        self.add("exception repr", repr(error))
        self.add("exception args", repr(error.args))
        self.add("traceback", "".join(traceback.format_exception(error)))

    def add_logs(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        out, err = capfd.readouterr()
        for line in (out + err).splitlines():
            if RECEIVER_LOGGER not in line:
                self.add("log output", line)
        for record in caplog.records:
            if record.name != RECEIVER_LOGGER:
                self.add(f"log record of {record.name}", record.getMessage() + (record.exc_text or ""))

    def leaks(self, secret: str) -> list[str]:
        return [f"{where}: {text[:300]}" for where, text in self.texts if secret in text]


@pytest.fixture
def outputs(caplog: pytest.LogCaptureFixture) -> Outputs:
    caplog.set_level(logging.DEBUG)
    return Outputs()


def failed_context() -> dict[str, Any]:
    ti = FakeTaskInstance(xcom={("check_orders", "return_value"): FAILED_STATS}, state="failed")
    return task_context(ti, exception=RuntimeError("row_dq failed"))


def run_hook(conn_id: str, outputs: Outputs) -> None:
    hook = SparkExpectationsPagerDutyHook(conn_id, delivery_policy=POLICY)
    body = {
        "event_action": "trigger",
        "dedup_key": "se-pagerduty/sales/orders/failure",
        "payload": {"summary": "orders failed", "source": "airflow", "severity": "critical"},
    }
    try:
        result = hook.send_event(body)
    except Exception as error:
        outputs.add_error(error)
    else:
        outputs.add("hook result", repr(result))


def run_operator(conn_id: str, outputs: Outputs) -> None:
    operator = SparkExpectationsPagerDutyOperator(
        task_id="page_on_call",
        stats_task_id="check_orders",
        pagerduty_conn_id=conn_id,
        delivery_policy=POLICY,
    )
    context = failed_context()
    operator.render_template_fields(context)
    for name in operator.template_fields:
        outputs.add(f"rendered template field {name}", repr(getattr(operator, name)))
    try:
        records = operator.execute(context)  # type: ignore[arg-type]
    except Exception as error:
        outputs.add_error(error)
    else:
        outputs.add("XCom return value", json.dumps(records))


def run_notifier(conn_id: str, outputs: Outputs) -> None:
    notifier = SparkExpectationsPagerDutyNotifier(pagerduty_conn_id=conn_id, delivery_policy=POLICY)
    context = failed_context()
    notifier.render_template_fields(context)  # type: ignore[arg-type]
    for name in notifier.template_fields:
        outputs.add(f"rendered template field {name}", repr(getattr(notifier, name)))
    notifier.notify(context)  # type: ignore[arg-type]


def run_async_notifier(conn_id: str, outputs: Outputs) -> None:
    notifier = SparkExpectationsPagerDutyNotifier(pagerduty_conn_id=conn_id, delivery_policy=POLICY)
    asyncio.run(notifier.async_notify(failed_context()))  # type: ignore[arg-type]


RUNNERS: dict[str, Callable[[str, Outputs], None]] = {
    "hook": run_hook,
    "operator": run_operator,
    "notifier": run_notifier,
    "async notifier": run_async_notifier,
}


def test_search_finds_key_when_logged(
    se_connection: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    outputs: Outputs,
) -> None:
    # Proves that the searches below would see the key, had the provider logged it.
    hook = SparkExpectationsPagerDutyHook(se_connection("http://127.0.0.1:9"))
    hook.log.error("the key is %s", ROUTING_KEY)
    logging.getLogger("urllib3.connectionpool").warning("the key is %s", ROUTING_KEY)

    outputs.add_logs(capfd, caplog)

    assert len(outputs.leaks(ROUTING_KEY)) == 2


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("fault_name", FAULTS)
def test_key_absent_after_response(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    outputs: Outputs,
    runner: str,
    fault_name: str,
) -> None:
    events_receiver.inject(*FAULTS[fault_name])

    RUNNERS[runner](se_connection(events_receiver.url), outputs)

    outputs.add_logs(capfd, caplog)
    assert events_receiver.requests_seen >= 1
    assert outputs.leaks(ROUTING_KEY) == []
    if "quoting the key" in fault_name:
        # The response reached the error or the logs, with the key replaced.
        assert any("<integration key>" in text for _, text in outputs.texts)


@pytest.mark.parametrize("runner", RUNNERS)
def test_key_absent_when_port_closed(
    closed_port_url: str,
    se_connection: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    outputs: Outputs,
    runner: str,
) -> None:
    RUNNERS[runner](se_connection(closed_port_url), outputs)

    outputs.add_logs(capfd, caplog)
    assert any("connection failed" in text for _, text in outputs.texts)
    assert outputs.leaks(ROUTING_KEY) == []


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize(
    ("host", "password"),
    [
        ("http://127.0.0.1:9/v2/enqueue", ROUTING_KEY + "x"),
        ("http://127.0.0.1:9/v2/enqueue", ROUTING_KEY[:31] + "!"),
        ("http://events.invalid/v2/enqueue", ROUTING_KEY),
    ],
    ids=["33-chars", "symbol", "plain-http-remote"],
)
def test_key_absent_from_configuration_errors(
    se_connection: Callable[..., str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    outputs: Outputs,
    runner: str,
    host: str,
    password: str,
) -> None:
    RUNNERS[runner](se_connection(host, password=password), outputs)

    outputs.add_logs(capfd, caplog)
    assert any("Connection 'se_pd_test'" in text for _, text in outputs.texts)
    assert outputs.leaks(password) == []
    assert outputs.leaks(ROUTING_KEY[:31]) == []
