"""Test connection against a local receiver: what it sends, how long it takes, what it reports."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import pytest
from airflow.models.connection import Connection

from airflow_provider_se_pagerduty.connection_check import MAX_CONNECTION_TEST_SECONDS
from airflow_provider_se_pagerduty.delivery import DeliveryPolicy
from airflow_provider_se_pagerduty.hooks.pagerduty import (
    CONNECTION_TEST_DEDUP_PREFIX,
    SparkExpectationsPagerDutyHook,
)
from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver, Fault
from airflow_provider_se_pagerduty.testing.state import fingerprint_routing_key

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

ROUTING_KEY = "ConnectionCheckKey00000000000000"
CONN_ID = "se_pd_connection_check"


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[EventsApiReceiver]:
    with EventsApiReceiver(max_lifetime_seconds=600.0) as receiver:
        yield receiver


@pytest.fixture
def receiver(module_receiver: EventsApiReceiver, monkeypatch: pytest.MonkeyPatch) -> EventsApiReceiver:
    """The shared receiver, emptied, with CONN_ID pointing at it."""
    module_receiver.reset()
    set_connection(monkeypatch, host=module_receiver.url, password=ROUTING_KEY)
    return module_receiver


def set_connection(monkeypatch: pytest.MonkeyPatch, *, host: str, password: str | None) -> None:
    value = json.dumps({"conn_type": "se_pagerduty", "host": host, "password": password})
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", value)


def test_success_sends_one_resolve(receiver: EventsApiReceiver) -> None:
    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is True
    assert message == (
        f"PagerDuty accepted the test event at {receiver.url} (HTTP 202 'Event processed'). "
        "It was a resolve for a new dedup key, so no incident was opened or changed."
    )
    events = receiver.accepted
    assert [event.action for event in events] == ["resolve"]
    assert events[0].dedup_key.startswith(CONNECTION_TEST_DEDUP_PREFIX)
    assert events[0].routing_key_fingerprint == fingerprint_routing_key(ROUTING_KEY)
    assert events[0].matched_incident is False
    assert receiver.incidents() == []


def test_each_run_uses_new_dedup_key(receiver: EventsApiReceiver) -> None:
    hook = SparkExpectationsPagerDutyHook(CONN_ID)

    hook.test_connection()
    hook.test_connection()

    keys = [event.dedup_key for event in receiver.accepted]
    assert len(keys) == 2
    assert keys[0] != keys[1]


def test_plain_text_400_names_key(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.plain_text_400())

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert message.startswith(
        f"PagerDuty rejected the test event at {receiver.url} with HTTP 400: Invalid routing key. "
    )
    assert "Check the integration key" in message
    assert receiver.requests_seen == 1


def test_json_400_lists_pagerduty_errors(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.invalid_event("first problem", "second problem"))

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert "with HTTP 400: first problem; second problem." in message


def test_404_points_at_url(receiver: EventsApiReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_url = receiver.url.replace("/v2/enqueue", "/v2/wrong")
    set_connection(monkeypatch, host=wrong_url, password=ROUTING_KEY)

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert f"at {wrong_url} with HTTP 404" in message
    assert message.endswith("Check the Events API URL: it ends in /v2/enqueue.")


def test_503_gives_up_after_two_attempts(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.status(503), Fault.status(503), Fault.status(503))

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert message.startswith(
        f"The test event to {receiver.url} was not delivered: PagerDuty unavailable (HTTP 503), "
        "after 2 attempt(s) in "
    )
    assert receiver.requests_seen == 2
    assert receiver.pending_faults == 1


def test_retry_then_success_reports_success(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.status(502))

    status, _ = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is True
    assert receiver.requests_seen == 2
    assert len(receiver.accepted) == 1


def test_timeout_bounded_for_button(receiver: EventsApiReceiver) -> None:
    """A receiver that never responds in time costs at most MAX_CONNECTION_TEST_SECONDS, not 60 s."""
    receiver.inject(Fault.delay(30.0), Fault.delay(30.0))
    hook = SparkExpectationsPagerDutyHook(CONN_ID, delivery_policy=DeliveryPolicy(timeout_seconds=2.0))

    started = time.monotonic()
    status, message = hook.test_connection()
    elapsed = time.monotonic() - started

    assert status is False
    assert "was not delivered: no answer within" in message
    assert elapsed < MAX_CONNECTION_TEST_SECONDS


def test_refused_port_reports_not_delivered(
    receiver: EventsApiReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) has no listener on a test machine, so the connection is refused at once.
    set_connection(monkeypatch, host="http://127.0.0.1:9/v2/enqueue", password=ROUTING_KEY)

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert message.startswith(
        "The test event to http://127.0.0.1:9/v2/enqueue was not delivered: connection failed"
    )
    assert message.endswith(
        "Check the Events API URL and that this Airflow component can reach it (proxy, firewall)."
    )


@pytest.mark.parametrize(
    ("host", "password", "expected"),
    [
        (None, None, "Nothing was sent: the integration key (password field) is missing."),
        (None, "short", "Nothing was sent: the integration key must be 32 letters and digits"),
        ("ftp://127.0.0.1/v2/enqueue", ROUTING_KEY, "Nothing was sent: invalid Events API URL 'ftp://"),
        ("http://example.com/v2/enqueue", ROUTING_KEY, "Nothing was sent: invalid Events API URL 'http://ex"),
    ],
    ids=["missing_key", "short_key", "ftp_url", "plain_http_remote"],
)
def test_invalid_connection_sends_nothing(
    host: str | None,
    password: str | None,
    expected: str,
    receiver: EventsApiReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, host=host or receiver.url, password=password)

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert message.startswith(expected)
    assert CONN_ID not in message
    assert receiver.requests_seen == 0


def test_messages_never_contain_key(receiver: EventsApiReceiver) -> None:
    # PagerDuty's error text may quote the key back; the message must not.
    receiver.inject(Fault.invalid_event(f"routing key {ROUTING_KEY} is not enabled"))

    status, message = SparkExpectationsPagerDutyHook(CONN_ID).test_connection()

    assert status is False
    assert ROUTING_KEY not in message
    assert "<integration key>" in message


def test_keeps_hook_policy(receiver: EventsApiReceiver) -> None:
    """The cap applies to the test only, and a stricter policy of the hook still applies."""
    policy = DeliveryPolicy(max_attempts=1)
    hook = SparkExpectationsPagerDutyHook(CONN_ID, delivery_policy=policy)
    receiver.inject(Fault.status(503))

    status, message = hook.test_connection()

    assert status is False
    assert "after 1 attempt(s)" in message
    assert hook.delivery_policy is policy


def test_api_server_transient_connection(
    receiver: EventsApiReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the path of Airflow 3.3's POST /api/v2/connections/test without the server.

    The API builds a Connection from the form, exports its URI under a random id and calls
    ``Connection.test_connection()``, which builds our hook for that id.
    """
    connection = Connection(
        conn_id="transientid0123",
        conn_type="se_pagerduty",
        host=receiver.url,
        port=receiver.port,
        password=ROUTING_KEY,
        extra="{}",
        description="",
        login="",
        schema="",
    )
    monkeypatch.setenv("AIRFLOW_CONN_TRANSIENTID0123", connection.get_uri())

    status, message = connection.test_connection()

    assert status is True, message
    assert message.startswith(f"PagerDuty accepted the test event at {receiver.url} (HTTP 202")
    assert [event.action for event in receiver.accepted] == ["resolve"]
    assert receiver.accepted[0].routing_key_fingerprint == fingerprint_routing_key(ROUTING_KEY)
