"""The local Events API v2 receiver, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import copy
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_se_pagerduty.testing import EventsApiReceiver, Fault

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.timeout(60)

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
OTHER_ROUTING_KEY = "0" * 32


def trigger(dedup_key: str | None = "orders-failed", **payload_fields: Any) -> dict[str, Any]:
    payload = {"summary": "orders: 3 rules failed", "source": "airflow-dq", "severity": "critical"}
    payload.update(payload_fields)
    event: dict[str, Any] = {"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": payload}
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


def follow_up(action: str, dedup_key: str = "orders-failed") -> dict[str, Any]:
    return {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": dedup_key}


@pytest.fixture
def receiver() -> Iterator[EventsApiReceiver]:
    with EventsApiReceiver(max_lifetime_seconds=120) as started:
        yield started


# Lifecycle of incidents


def test_trigger_acknowledge_resolve_lifecycle(receiver: EventsApiReceiver) -> None:
    details = {"failed_rules": ["col_not_null"], "error_percentage": 12.5}
    response = requests.post(receiver.url, json=trigger(custom_details=details), timeout=5)

    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "orders-failed",
    }
    [incident] = receiver.open_incidents()
    assert incident.status == "open"
    assert incident.trigger_count == 1
    assert incident.severity == "critical"

    requests.post(receiver.url, json=trigger(summary="orders: 4 rules failed", severity="error"), timeout=5)
    [incident] = receiver.open_incidents()
    assert incident.trigger_count == 2
    assert incident.summary == "orders: 4 rules failed"
    assert incident.severity == "error"

    assert requests.post(receiver.url, json=follow_up("acknowledge"), timeout=5).status_code == 202
    assert receiver.open_incidents()[0].status == "acknowledged"

    response = requests.post(receiver.url, json=follow_up("resolve"), timeout=5)
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "orders-failed"
    assert receiver.open_incidents() == []
    assert [incident.status for incident in receiver.incidents()] == ["resolved"]

    records = receiver.accepted
    assert [record.action for record in records] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert records[0].custom_details == details
    assert records[0].payload is not None
    assert records[0].payload["source"] == "airflow-dq"
    assert records[3].severity is None
    assert all(record.matched_incident for record in records)


def test_records_never_store_routing_key(receiver: EventsApiReceiver) -> None:
    requests.post(receiver.url, json=trigger(), timeout=5)
    requests.post(receiver.url, json=trigger(severity="fatal"), timeout=5)

    [accepted] = receiver.accepted
    [rejected] = receiver.rejected
    assert "routing_key" not in accepted.event
    assert ROUTING_KEY not in repr(accepted)
    assert ROUTING_KEY not in repr(rejected)
    assert ROUTING_KEY not in repr(receiver.incidents())
    assert accepted.routing_key_fingerprint


def test_trigger_without_dedup_key_gets_one(receiver: EventsApiReceiver) -> None:
    first = requests.post(receiver.url, json=trigger(dedup_key=None), timeout=5).json()
    second = requests.post(receiver.url, json=trigger(dedup_key=None), timeout=5).json()

    assert first["status"] == "success"
    assert len(first["dedup_key"]) == 32
    assert first["dedup_key"] != second["dedup_key"]
    assert [incident.dedup_key for incident in receiver.open_incidents()] == [
        first["dedup_key"],
        second["dedup_key"],
    ]


def test_trigger_after_resolve_opens_new_incident(receiver: EventsApiReceiver) -> None:
    requests.post(receiver.url, json=trigger(), timeout=5)
    requests.post(receiver.url, json=follow_up("resolve"), timeout=5)
    requests.post(receiver.url, json=trigger(), timeout=5)

    assert [incident.status for incident in receiver.incidents()] == ["resolved", "open"]
    assert receiver.open_incidents()[0].trigger_count == 1


def test_resolve_unknown_key_is_dropped(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url, json=follow_up("resolve", "never-triggered"), timeout=5)

    assert response.status_code == 202
    assert receiver.accepted[0].matched_incident is False
    assert receiver.incidents() == []


def test_incidents_separated_by_routing_key(receiver: EventsApiReceiver) -> None:
    requests.post(receiver.url, json=trigger(), timeout=5)
    other_resolve = follow_up("resolve") | {"routing_key": OTHER_ROUTING_KEY}
    requests.post(receiver.url, json=other_resolve, timeout=5)

    assert [incident.status for incident in receiver.incidents()] == ["open"]
    assert receiver.accepted[1].matched_incident is False


def test_wait_for_accepted_returns_events(receiver: EventsApiReceiver) -> None:
    requests.post(receiver.url, json=trigger(), timeout=5)

    assert [record.dedup_key for record in receiver.wait_for_accepted(1, timeout=1)] == ["orders-failed"]
    with pytest.raises(TimeoutError, match="expected 2 accepted events"):
        receiver.wait_for_accepted(2, timeout=0.2)


def test_reset_forgets_everything(receiver: EventsApiReceiver) -> None:
    requests.post(receiver.url, json=trigger(), timeout=5)
    requests.post(receiver.url, json={}, timeout=5)
    receiver.inject(Fault.status(500))

    receiver.reset()

    assert receiver.accepted == []
    assert receiver.rejected == []
    assert receiver.incidents() == []
    assert receiver.requests_seen == 0
    assert receiver.pending_faults == 0
    assert requests.post(receiver.url, json=trigger(), timeout=5).status_code == 202


# Validation: one case per rule, each with the message it must produce


def _without(path: str) -> Callable[[dict[str, Any]], None]:
    def remove(event: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        target = event
        for parent in parents:
            target = target[parent]
        del target[name]

    return remove


def _setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def assign(event: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        target = event
        for parent in parents:
            target = target[parent]
        target[name] = value

    return assign


INVALID_EVENT_CASES = [
    ("routing_key_missing", _without("routing_key"), "routing_key is missing"),
    (
        "routing_key_short",
        _setting("routing_key", "abc123"),
        "routing_key must be exactly 32 letters and digits, but the value's length is 6",
    ),
    (
        "routing_key_symbols",
        _setting("routing_key", "-" * 32),
        "routing_key must be exactly 32 letters and digits, but the value contains other characters",
    ),
    ("routing_key_number", _setting("routing_key", 12), "routing_key must be a string, not a number"),
    ("event_action_missing", _without("event_action"), "event_action is missing"),
    (
        "event_action_unknown",
        _setting("event_action", "escalate"),
        'event_action must be trigger, acknowledge or resolve, not "escalate"',
    ),
    (
        "dedup_key_too_long",
        _setting("dedup_key", "k" * 256),
        "dedup_key must be at most 255 characters, got 256",
    ),
    ("dedup_key_number", _setting("dedup_key", 7), "dedup_key must be a string, not a number"),
    ("payload_missing", _without("payload"), "payload is required for event_action trigger"),
    ("payload_string", _setting("payload", "down"), "payload must be a JSON object, not a string"),
    ("summary_missing", _without("payload.summary"), "payload.summary is missing or blank"),
    ("summary_blank", _setting("payload.summary", "   "), "payload.summary is missing or blank"),
    (
        "summary_too_long",
        _setting("payload.summary", "s" * 1025),
        "payload.summary must be at most 1024 characters, got 1025",
    ),
    ("source_missing", _without("payload.source"), "payload.source is missing or blank"),
    ("source_empty", _setting("payload.source", ""), "payload.source is missing or blank"),
    ("severity_missing", _without("payload.severity"), "payload.severity is missing"),
    (
        "severity_unknown",
        _setting("payload.severity", "fatal"),
        'payload.severity must be critical, error, warning or info, not "fatal"',
    ),
    (
        "timestamp_not_iso",
        _setting("payload.timestamp", "yesterday"),
        'payload.timestamp must be an ISO 8601 date and time, not "yesterday"',
    ),
    (
        "component_number",
        _setting("payload.component", 3),
        "payload.component must be a string, not a number",
    ),
    ("group_list", _setting("payload.group", ["a"]), "payload.group must be a string, not an array"),
    ("class_boolean", _setting("payload.class", True), "payload.class must be a string, not a boolean"),
    (
        "custom_details_list",
        _setting("payload.custom_details", [1, 2]),
        "payload.custom_details must be a JSON object, not an array",
    ),
    ("links_object", _setting("links", {"href": "x"}), "links must be a list of objects, not an object"),
    ("links_without_href", _setting("links", [{"text": "log"}]), "links[0].href is missing or not a string"),
    ("images_without_src", _setting("images", [{"href": "x"}]), "images[0].src is missing or not a string"),
    ("images_item_string", _setting("images", ["x.png"]), "images[0] must be a JSON object, not a string"),
    ("client_number", _setting("client", 1), "client must be a string, not a number"),
    ("client_url_list", _setting("client_url", []), "client_url must be a string, not an array"),
]


@pytest.mark.parametrize(
    ("change", "expected_error"),
    [(change, error) for _, change, error in INVALID_EVENT_CASES],
    ids=[case_id for case_id, _, _ in INVALID_EVENT_CASES],
)
def test_invalid_trigger_rejected_with_message(
    receiver: EventsApiReceiver, change: Callable[[dict[str, Any]], None], expected_error: str
) -> None:
    event = copy.deepcopy(trigger())
    change(event)

    response = requests.post(receiver.url, json=event, timeout=5)

    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [expected_error],
    }
    assert receiver.rejected[0].errors == (expected_error,)
    assert receiver.accepted == []


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_follow_up_without_dedup_key_rejected(receiver: EventsApiReceiver, action: str) -> None:
    event = {"routing_key": ROUTING_KEY, "event_action": action}

    response = requests.post(receiver.url, json=event, timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"] == [f"dedup_key is required for event_action {action}"]
    assert receiver.rejected[0].action == action


def test_optional_fields_accepted(receiver: EventsApiReceiver) -> None:
    event = trigger(
        timestamp="2015-07-17T08:42:58.315+0000",
        component="orders",
        group="sales",
        custom_details={"input_count": 10},
        **{"class": "dq_failure"},
    )
    event["links"] = [{"href": "http://localhost:8080/log", "text": "Task log"}]
    event["images"] = [{"src": "https://example.invalid/chart.png"}]
    event["client"] = "Airflow"
    event["client_url"] = "http://localhost:8080"

    response = requests.post(receiver.url, json=event, timeout=5)

    assert response.status_code == 202
    assert receiver.accepted[0].event["links"] == event["links"]


def test_body_not_json_rejected(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url, data=b"{not json", timeout=5)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error.startswith("Request body is not valid JSON")


def test_body_json_array_rejected(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url, json=[trigger()], timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"] == ["Request body must be a JSON object, not an array"]


def test_empty_body_rejected(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url, data=b"", timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("Request body is not valid JSON")


def test_invalid_event_lists_every_problem(receiver: EventsApiReceiver) -> None:
    event = {"routing_key": "short", "event_action": "trigger", "payload": {"severity": "fatal"}}

    errors = requests.post(receiver.url, json=event, timeout=5).json()["errors"]

    assert errors == [
        "routing_key must be exactly 32 letters and digits, but the value's length is 5",
        "payload.summary is missing or blank",
        "payload.source is missing or blank",
        'payload.severity must be critical, error, warning or info, not "fatal"',
    ]


def test_body_over_512_kb_rejected(receiver: EventsApiReceiver) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    oversized = json.dumps(trigger(custom_details={"blob": "x" * (512 * 1024)})).encode()
    fitting = json.dumps(trigger(custom_details={"blob": "x" * (500 * 1024)})).encode()

    connection.request("POST", "/v2/enqueue", body=oversized, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 400
    assert body["errors"] == ["Request body is larger than the limit of 524288 bytes (512 KB)"]

    # The oversized body was read to its end, so the same connection still works.
    connection.request("POST", "/v2/enqueue", body=fitting, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    assert response.status == 202
    connection.close()


def test_chunked_body_accepted(receiver: EventsApiReceiver) -> None:
    body = json.dumps(trigger()).encode()

    response = requests.post(receiver.url, data=iter([body[:10], body[10:]]), timeout=5)

    assert response.status_code == 202
    assert receiver.accepted[0].dedup_key == "orders-failed"


def test_unknown_path_returns_404(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url.replace("/v2/enqueue", "/v1/enqueue"), json=trigger(), timeout=5)

    assert response.status_code == 404
    assert response.json()["status"] == "not found"
    assert receiver.accepted == []


def test_get_returns_405(receiver: EventsApiReceiver) -> None:
    response = requests.get(receiver.url, timeout=5)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


# Faults


def test_plain_text_400_fault(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.plain_text_400())

    response = requests.post(receiver.url, json=trigger(), timeout=5)

    assert response.status_code == 400
    assert response.text == "Invalid routing key"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert receiver.accepted == []
    assert receiver.rejected == []


def test_invalid_event_fault_lists_errors(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.invalid_event("payload.summary is missing or blank"))

    response = requests.post(receiver.url, json=trigger(), timeout=5)

    assert response.status_code == 400
    assert response.json()["errors"] == ["payload.summary is missing or blank"]


@pytest.mark.parametrize(
    ("code", "expected_status_field"),
    [(429, "throttle event"), (500, "error"), (502, "error"), (503, "error")],
)
def test_status_fault_then_normal(receiver: EventsApiReceiver, code: int, expected_status_field: str) -> None:
    receiver.inject(Fault.status(code))

    with requests.Session() as session:
        faulted = session.post(receiver.url, json=trigger(), timeout=5)
        normal = session.post(receiver.url, json=trigger(), timeout=5)

    assert faulted.status_code == code
    assert faulted.json()["status"] == expected_status_field
    assert normal.status_code == 202
    assert len(receiver.accepted) == 1
    assert receiver.requests_seen == 2


def test_faults_served_in_order(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.status(503), Fault.status(429))

    codes = [requests.post(receiver.url, json=trigger(), timeout=5).status_code for _ in range(3)]

    assert codes == [503, 429, 202]
    assert receiver.pending_faults == 0


def test_reset_fault_raises_connection_error(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.reset())

    with pytest.raises(requests.ConnectionError) as raised:
        requests.post(receiver.url, json=trigger(), timeout=5)

    assert "reset" in str(raised.value).lower()
    assert receiver.accepted == []
    assert receiver.requests_seen == 1
    assert requests.post(receiver.url, json=trigger(), timeout=5).status_code == 202


def test_delay_fault_times_out_client(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.delay(1.0))

    with pytest.raises(requests.ReadTimeout):
        requests.post(receiver.url, json=trigger(), timeout=(5, 0.3))

    # The receiver still processes the event after the delay, as PagerDuty would.
    [record] = receiver.wait_for_accepted(1, timeout=5)
    assert record.dedup_key == "orders-failed"


def test_delay_fault_answers_after_delay(receiver: EventsApiReceiver) -> None:
    receiver.inject(Fault.delay(0.3))

    started = time.monotonic()
    response = requests.post(receiver.url, json=trigger(), timeout=5)

    assert response.status_code == 202
    assert time.monotonic() - started >= 0.3


def test_fault_constructors_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault.status(200)
    with pytest.raises(ValueError, match="positive"):
        Fault.delay(0)


def test_inject_rejects_non_fault(receiver: EventsApiReceiver) -> None:
    with pytest.raises(TypeError, match="Fault values"):
        receiver.inject(503)  # type: ignore[arg-type]


# Rate limit


def test_rate_limit_returns_429_beyond_max() -> None:
    with EventsApiReceiver(rate_limit=(3, 60.0), max_lifetime_seconds=60) as limited:
        codes = [requests.post(limited.url, json=trigger(), timeout=5).status_code for _ in range(5)]
        other_key = trigger() | {"routing_key": OTHER_ROUTING_KEY}
        other_code = requests.post(limited.url, json=other_key, timeout=5).status_code
        throttled = requests.post(limited.url, json=trigger(), timeout=5)

        assert codes == [202, 202, 202, 429, 429]
        assert other_code == 202
        assert throttled.json()["status"] == "throttle event"
        assert len(limited.accepted) == 4
        assert limited.throttled_count == 3
        assert limited.incidents()[0].trigger_count == 3


def test_rate_limit_window_slides() -> None:
    with EventsApiReceiver(rate_limit=(1, 1.0), max_lifetime_seconds=60) as limited:
        first = requests.post(limited.url, json=trigger(), timeout=5).status_code
        second = requests.post(limited.url, json=trigger(), timeout=5).status_code
        time.sleep(1.05)
        third = requests.post(limited.url, json=trigger(), timeout=5).status_code

    assert [first, second, third] == [202, 429, 202]


# Connections, TLS and lifetime


def test_keep_alive_serves_many_requests(receiver: EventsApiReceiver) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    body = json.dumps(trigger()).encode()
    statuses = []
    first_socket = None

    for _ in range(200):
        connection.request("POST", "/v2/enqueue", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
        assert response.getheader("Connection") is None
        first_socket = first_socket or connection.sock

    assert statuses == [202] * 200
    assert connection.sock is first_socket
    assert receiver.open_incidents()[0].trigger_count == 200
    connection.close()


def test_connection_close_header_honoured(receiver: EventsApiReceiver) -> None:
    response = requests.post(receiver.url, json=trigger(), headers={"Connection": "close"}, timeout=5)

    assert response.status_code == 202
    assert response.headers["Connection"] == "close"


def test_tls_verified_against_ca_file() -> None:
    with EventsApiReceiver(tls=True, max_lifetime_seconds=60) as secure:
        ca_file = secure.ca_file
        response = requests.post(secure.url, json=trigger(), timeout=5, verify=ca_file)
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(secure.url, json=trigger(), timeout=5, verify=True)

        assert secure.url.startswith("https://127.0.0.1:")
        assert response.status_code == 202
        assert len(secure.accepted) == 1

    assert not Path(ca_file).exists()


def test_ca_file_requires_tls(receiver: EventsApiReceiver) -> None:
    with pytest.raises(RuntimeError, match="tls=True"):
        _ = receiver.ca_file


def test_lifetime_ends_receiver() -> None:
    receiver = EventsApiReceiver(max_lifetime_seconds=0.3).start()
    url = receiver.url

    assert receiver.wait_until_stopped(timeout=5)
    assert not receiver.is_running
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=trigger(), timeout=2)


def test_stop_closes_idle_connections(receiver: EventsApiReceiver) -> None:
    session = requests.Session()
    session.post(receiver.url, json=trigger(), timeout=5)

    started = time.monotonic()
    receiver.stop()
    receiver.stop()

    assert time.monotonic() - started < 2.0
    with pytest.raises(requests.ConnectionError):
        session.post(receiver.url, json=trigger(), timeout=2)
    session.close()


def test_given_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with EventsApiReceiver(port=free_port, max_lifetime_seconds=60) as fixed:
        assert fixed.url == f"http://127.0.0.1:{free_port}/v2/enqueue"
        assert requests.post(fixed.url, json=trigger(), timeout=5).status_code == 202


def test_receiver_starts_only_once(receiver: EventsApiReceiver) -> None:
    with pytest.raises(RuntimeError, match="starts only once"):
        receiver.start()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"port": 70000}, "port must be between"),
        ({"max_lifetime_seconds": 0}, "max_lifetime_seconds must be positive"),
        ({"rate_limit": (0, 1.0)}, "rate_limit must be"),
        ({"rate_limit": (5, 0.0)}, "rate_limit must be"),
    ],
)
def test_constructor_rejects_bad_arguments(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventsApiReceiver(**arguments)


def test_cli_prints_url_and_logs_events() -> None:
    command = [sys.executable, "-m", "airflow_provider_se_pagerduty.testing.receiver", "--lifetime", "30"]
    environment = os.environ | {"PYTHONWARNINGS": "default"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    ) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        accepted = requests.post(url, json=trigger(), timeout=5).status_code
        rejected = requests.post(url, json=trigger(severity="fatal"), timeout=5).status_code
        process.send_signal(signal.SIGINT)
        _, log_output = process.communicate(timeout=10)

    assert url.startswith("http://127.0.0.1:")
    assert [accepted, rejected] == [202, 400]
    assert process.returncode == 0
    assert (
        "Accepted trigger severity=critical dedup_key=orders-failed summary='orders: 3 rules failed'"
        in log_output
    )
    assert 'payload.severity must be critical, error, warning or info, not "fatal"' in log_output
    assert ROUTING_KEY not in log_output
    assert "RuntimeWarning" not in log_output


def test_cli_stops_after_lifetime() -> None:
    command = [sys.executable, "-m", "airflow_provider_se_pagerduty.testing.receiver", "--lifetime", "0.5"]

    completed = subprocess.run(command, capture_output=True, text=True, timeout=20)

    assert completed.returncode == 0
    assert completed.stdout.startswith("http://127.0.0.1:")
    assert "max lifetime" in completed.stderr
