"""Delivery through the hook against the local receiver while it misbehaves like a bad PagerDuty day.

Every test sends real HTTP to 127.0.0.1 and counts attempts with the receiver's request
counter. Backoff values are small so that the tests are quick. Time is only checked against
the upper bound that the delivery policy promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import requests

from airflow_provider_se_pagerduty import EU_EVENTS_API_URL
from airflow_provider_se_pagerduty.delivery import DeliveryPolicy, EventResult
from airflow_provider_se_pagerduty.exceptions import (
    DeliveryFailedError,
    EventRejectedError,
    InvalidConfigurationError,
)
from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook
from airflow_provider_se_pagerduty.notifications.pagerduty import SparkExpectationsPagerDutyNotifier
from airflow_provider_se_pagerduty.testing import EventsApiReceiver, Fault
from tests.unit.conftest import ROUTING_KEY, FakeTaskInstance, log_lines, task_context

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.timeout(60)

MODES = ("sync", "async")

# Waits of 10 to 50 ms between attempts keep each test well under a second.
FAST_POLICY = DeliveryPolicy(
    max_attempts=6,
    max_total_seconds=10.0,
    timeout_seconds=2.0,
    backoff_seconds=0.01,
    max_backoff_seconds=0.05,
)
# Allowance over max_total_seconds for the work after the last check of the clock: reading
# the last response and raising. Generous, because the machine may be busy with other tests.
TIME_MARGIN_SECONDS = 1.0


def trigger_body(dedup_key: str = "se-pagerduty/sales/orders/failure", **payload: Any) -> dict[str, Any]:
    """Return a valid trigger event without routing key, as the events module builds them."""
    return {
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": "[DQ failure] orders (sales): DQ job failed at row_dq",
            "source": "airflow:dq_orders",
            "severity": "critical",
            **payload,
        },
    }


def make_hook(conn_id: str, policy: DeliveryPolicy = FAST_POLICY) -> SparkExpectationsPagerDutyHook:
    return SparkExpectationsPagerDutyHook(conn_id, delivery_policy=policy)


async def _send_all(hook: SparkExpectationsPagerDutyHook, events: list[dict[str, Any]]) -> list[EventResult]:
    try:
        return [await hook.asend_event(event) for event in events]
    finally:
        await hook.aclose()


def send(hook: SparkExpectationsPagerDutyHook, mode: str, *events: dict[str, Any]) -> list[EventResult]:
    """Send the events in order with ``send_event`` or, in one event loop, with ``asend_event``."""
    if mode == "sync":
        return [hook.send_event(event) for event in events]
    return asyncio.run(_send_all(hook, list(events)))


def timed_send(
    hook: SparkExpectationsPagerDutyHook, mode: str, *events: dict[str, Any]
) -> tuple[list[EventResult] | BaseException, float]:
    """Send and return the results or the raised error, with the seconds it took."""
    started = time.monotonic()
    try:
        outcome: list[EventResult] | BaseException = send(hook, mode, *events)
    except Exception as error:
        outcome = error
    return outcome, time.monotonic() - started


# Retried responses: 429, 5xx, resets and timeouts


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "codes",
    [(429, 429, 429), (500, 502, 503), (503, 503, 503, 503, 503)],
    ids=["429-burst", "500-502-503", "503-burst"],
)
def test_retryable_statuses_then_accepted(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
    codes: tuple[int, ...],
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    events_receiver.inject(*(Fault.status(code) for code in codes))

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, list), outcome
    [result] = outcome
    assert result.attempts == len(codes) + 1
    assert result.status_code == 202
    assert events_receiver.requests_seen == len(codes) + 1
    [incident] = events_receiver.incidents()
    assert incident.status == "open"
    assert incident.trigger_count == 1
    assert elapsed <= FAST_POLICY.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_connection_resets_then_accepted(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    events_receiver.inject(Fault.reset(), Fault.reset(), Fault.reset())

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, list), outcome
    assert outcome[0].attempts == 4
    assert events_receiver.requests_seen == 4
    assert len(events_receiver.incidents()) == 1
    assert elapsed <= FAST_POLICY.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_slow_answer_retried_same_incident(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    policy = DeliveryPolicy(
        max_attempts=3,
        max_total_seconds=5.0,
        timeout_seconds=0.3,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )
    hook = make_hook(se_connection(events_receiver.url), policy)
    events_receiver.inject(Fault.delay(1.0))

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, list), outcome
    assert outcome[0].attempts == 2
    assert events_receiver.requests_seen == 2
    # The receiver processes the slow request after its delay, as PagerDuty would: the
    # retry then updates the same incident instead of opening a second one.
    events_receiver.wait_for_accepted(2, timeout=5)
    [incident] = events_receiver.incidents()
    assert incident.trigger_count == 2
    assert elapsed <= policy.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_mixed_faults_each_event_one_incident(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    faults = [Fault.status(429), Fault.reset(), Fault.status(503), Fault.status(500), Fault.reset()]
    events_receiver.inject(*faults)
    events = [trigger_body(f"se-pagerduty/sales/table_{index}/failure") for index in range(10)]

    outcome, elapsed = timed_send(hook, mode, *events)

    assert isinstance(outcome, list), outcome
    assert sum(result.attempts for result in outcome) == len(events) + len(faults)
    assert events_receiver.requests_seen == len(events) + len(faults)
    incidents = events_receiver.incidents()
    assert sorted(incident.dedup_key for incident in incidents) == sorted(e["dedup_key"] for e in events)
    assert all(incident.trigger_count == 1 for incident in incidents)
    assert elapsed <= len(events) * (FAST_POLICY.max_total_seconds + TIME_MARGIN_SECONDS)


@pytest.mark.parametrize("mode", MODES)
def test_rate_limited_events_all_delivered(se_connection: Callable[..., str], mode: str) -> None:
    policy = DeliveryPolicy(
        max_attempts=12,
        max_total_seconds=20.0,
        timeout_seconds=2.0,
        backoff_seconds=0.1,
        max_backoff_seconds=0.5,
    )
    events = [trigger_body(f"se-pagerduty/sales/table_{index}/breach") for index in range(8)]

    with EventsApiReceiver(max_lifetime_seconds=120, rate_limit=(3, 0.5)) as receiver:
        hook = make_hook(se_connection(receiver.url), policy)
        outcome, elapsed = timed_send(hook, mode, *events)

        assert isinstance(outcome, list), outcome
        assert receiver.throttled_count >= 1
        assert receiver.requests_seen == len(events) + receiver.throttled_count
        assert len(receiver.open_incidents()) == len(events)
        assert all(result.attempts <= policy.max_attempts for result in outcome)
        assert elapsed <= len(events) * (policy.max_total_seconds + TIME_MARGIN_SECONDS)


# Final responses: 400 and other 4xx are never retried


@pytest.mark.parametrize("mode", MODES)
def test_400_with_errors_not_retried(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    errors = [
        "payload.summary is missing or blank",
        "payload.severity must be critical, error, warning or info",
    ]
    events_receiver.inject(Fault.invalid_event(*errors))

    with pytest.raises(EventRejectedError) as raised:
        send(hook, mode, trigger_body())

    assert raised.value.http_status == 400
    assert raised.value.errors == errors
    assert raised.value.message == "Event object is invalid"
    assert "payload.summary is missing or blank" in str(raised.value)
    assert events_receiver.requests_seen == 1
    assert events_receiver.incidents() == []


@pytest.mark.parametrize("mode", MODES)
def test_receiver_validation_400_carries_errors(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))

    with pytest.raises(EventRejectedError) as raised:
        send(hook, mode, trigger_body(timestamp="yesterday"))

    [error] = raised.value.errors
    assert error.startswith("payload.timestamp must be an ISO 8601 date and time")
    assert events_receiver.requests_seen == 1


@pytest.mark.parametrize("mode", MODES)
def test_plain_text_400_not_retried(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    events_receiver.inject(Fault.plain_text_400())

    with pytest.raises(EventRejectedError) as raised:
        send(hook, mode, trigger_body())

    assert raised.value.http_status == 400
    assert raised.value.errors == ["Invalid routing key"]
    assert "Invalid routing key" in str(raised.value)
    assert events_receiver.requests_seen == 1


@pytest.mark.parametrize("mode", MODES)
def test_undecodable_400_body_still_rejected(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    broken = Fault(kind="response", status_code=400, body=b"Invalid \xff\xfe key", content_type="text/plain")
    events_receiver.inject(broken)

    with pytest.raises(EventRejectedError) as raised:
        send(hook, mode, trigger_body())

    assert raised.value.http_status == 400
    assert raised.value.errors[0].startswith("Invalid ")
    assert events_receiver.requests_seen == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("code", [401, 403, 404, 413, 422])
def test_other_4xx_not_retried(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str, code: int
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    events_receiver.inject(Fault.status(code))

    with pytest.raises(EventRejectedError) as raised:
        send(hook, mode, trigger_body())

    assert raised.value.http_status == code
    assert f"HTTP {code}" in str(raised.value)
    assert events_receiver.requests_seen == 1


# Bounds: attempts and total seconds


@pytest.mark.parametrize("mode", MODES)
def test_attempts_never_exceed_max(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    policy = DeliveryPolicy(
        max_attempts=4,
        max_total_seconds=10.0,
        timeout_seconds=2.0,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )
    hook = make_hook(se_connection(events_receiver.url), policy)
    events_receiver.inject(*[Fault.status(503)] * 20)

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, DeliveryFailedError), outcome
    assert outcome.attempts == 4
    assert events_receiver.requests_seen == 4
    assert "after 4 attempt(s)" in str(outcome)
    assert "HTTP 503" in outcome.last_problem
    assert events_receiver.incidents() == []
    assert elapsed <= policy.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_total_seconds_bound_ends_retries(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    policy = DeliveryPolicy(
        max_attempts=1000,
        max_total_seconds=1.5,
        timeout_seconds=1.0,
        backoff_seconds=0.05,
        max_backoff_seconds=0.2,
    )
    hook = make_hook(se_connection(events_receiver.url), policy)
    events_receiver.inject(*[Fault.status(500)] * 1000)

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, DeliveryFailedError), outcome
    assert 1 < outcome.attempts < policy.max_attempts
    assert events_receiver.requests_seen == outcome.attempts
    # A backoff wait can end a little late on a busy machine, so the error may report a
    # few milliseconds over the bound.
    assert outcome.elapsed_seconds <= policy.max_total_seconds + TIME_MARGIN_SECONDS
    assert elapsed <= policy.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_timeouts_bounded_by_total_seconds(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    policy = DeliveryPolicy(
        max_attempts=10,
        max_total_seconds=1.2,
        timeout_seconds=0.4,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )
    hook = make_hook(se_connection(events_receiver.url), policy)
    events_receiver.inject(*[Fault.delay(3.0)] * 10)

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, DeliveryFailedError), outcome
    assert outcome.last_problem.startswith("no answer within")
    assert 2 <= outcome.attempts <= 4
    assert events_receiver.requests_seen == outcome.attempts
    assert elapsed <= policy.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.mark.parametrize("mode", MODES)
def test_wait_overrunning_deadline_ends_delivery(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    # A busy worker can wake up late from a backoff wait. The next attempt then has no
    # time left and must not be sent with a negative timeout.
    class FullWaitPolicy(DeliveryPolicy):
        def backoff(self, attempt: int, rng: Any = None) -> float:
            return self.max_total_seconds - 0.05

    policy = FullWaitPolicy(max_attempts=5, max_total_seconds=0.5, timeout_seconds=0.4)
    hook = make_hook(se_connection(events_receiver.url), policy)
    events_receiver.inject(Fault.status(503))
    real_sleep, real_async_sleep = time.sleep, asyncio.sleep

    async def late_async_sleep(seconds: float) -> None:
        await real_async_sleep(seconds + 0.1)

    monkeypatch.setattr(
        "airflow_provider_se_pagerduty.hooks.pagerduty.time.sleep", lambda s: real_sleep(s + 0.1)
    )
    monkeypatch.setattr("airflow_provider_se_pagerduty.hooks.pagerduty.asyncio.sleep", late_async_sleep)

    with pytest.raises(DeliveryFailedError) as raised:
        send(hook, mode, trigger_body())

    assert raised.value.attempts == 1
    assert "HTTP 503" in raised.value.last_problem
    assert events_receiver.requests_seen == 1


@pytest.mark.parametrize("mode", MODES)
def test_closed_port_fails_after_max_attempts(
    closed_port_url: str,
    se_connection: Callable[..., str],
    mode: str,
) -> None:
    hook = make_hook(se_connection(closed_port_url))

    outcome, elapsed = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, DeliveryFailedError), outcome
    assert outcome.attempts == FAST_POLICY.max_attempts
    assert outcome.last_problem.startswith("connection failed")
    assert elapsed <= FAST_POLICY.max_total_seconds + TIME_MARGIN_SECONDS


@pytest.fixture
def truncating_server() -> Iterator[str]:
    """Serve on 127.0.0.1 a 202 whose body ends early, as when a connection drops mid-response."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    connection.recv(65536)
                    connection.sendall(
                        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                        b'Content-Length: 100\r\n\r\n{"status": "succ'
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v2/enqueue"
    finally:
        stopping.set()
        listener.close()
        thread.join(5)


@pytest.mark.parametrize("mode", MODES)
def test_response_cut_mid_body_retried(
    truncating_server: str, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(truncating_server))

    outcome, _ = timed_send(hook, mode, trigger_body())

    assert isinstance(outcome, DeliveryFailedError), outcome
    assert outcome.attempts == FAST_POLICY.max_attempts
    assert outcome.last_problem.startswith("connection failed")


# TLS and proxies from the connection's extra, on both paths


@pytest.mark.parametrize("mode", MODES)
def test_tls_verified_with_ca_from_extra(se_connection: Callable[..., str], mode: str) -> None:
    with EventsApiReceiver(max_lifetime_seconds=120, tls=True) as receiver:
        hook = make_hook(se_connection(receiver.url, extra={"verify": receiver.ca_file}))

        [result] = send(hook, mode, trigger_body())

        assert hook.url.startswith("https://127.0.0.1:")
        assert result.status_code == 202
        assert len(receiver.open_incidents()) == 1


@pytest.mark.parametrize("mode", MODES)
def test_tls_verified_with_ca_bundle_variable(
    se_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    with EventsApiReceiver(max_lifetime_seconds=120, tls=True) as receiver:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", receiver.ca_file)
        hook = make_hook(se_connection(receiver.url))

        [result] = send(hook, mode, trigger_body())

        assert result.status_code == 202
        assert len(receiver.open_incidents()) == 1


@pytest.mark.parametrize("mode", MODES)
def test_tls_unknown_ca_not_delivered(se_connection: Callable[..., str], mode: str) -> None:
    with EventsApiReceiver(max_lifetime_seconds=120, tls=True) as receiver:
        hook = make_hook(se_connection(receiver.url))

        outcome, _ = timed_send(hook, mode, trigger_body())

        assert isinstance(outcome, DeliveryFailedError), outcome
        assert outcome.last_problem.startswith("connection failed")
        assert receiver.accepted == []


@pytest.mark.parametrize("mode", MODES)
def test_proxy_from_extra_used(
    events_receiver: EventsApiReceiver, closed_port_url: str, se_connection: Callable[..., str], mode: str
) -> None:
    # The receiver reads the path of an absolute-form request line, so it can stand in for
    # a forwarding proxy: the event reaches it only when the client goes through the proxy.
    proxy = f"http://127.0.0.1:{events_receiver.port}"
    hook = make_hook(se_connection(closed_port_url, extra={"proxies": {"http": proxy}}))

    [result] = send(hook, mode, trigger_body())

    assert result.status_code == 202
    assert events_receiver.requests_seen == 1
    assert len(events_receiver.open_incidents()) == 1


# One keep-alive connection for many events


def test_sync_session_reused_for_many_events(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str]
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    session = hook.session
    events = [trigger_body(f"se-pagerduty/sales/table_{index}/failure") for index in range(25)]

    results = send(hook, "sync", *events)

    assert [result.status_code for result in results] == [202] * 25
    assert hook.session is session
    pools = session.get_adapter(hook.url).poolmanager.pools
    [pool_key] = pools.keys()
    assert pools[pool_key].num_connections == 1
    assert len(events_receiver.open_incidents()) == 25


def test_async_session_reused_for_many_events(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = make_hook(se_connection(events_receiver.url))
    events = [trigger_body(f"se-pagerduty/sales/table_{index}/failure") for index in range(25)]
    # aiohttp has no public counter of opened connections, so count calls of the method
    # that opens one.
    opened: list[object] = []
    create_connection = aiohttp.TCPConnector._create_connection

    async def counting_create_connection(self: aiohttp.TCPConnector, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return await create_connection(self, *args, **kwargs)

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_connection", counting_create_connection)

    results = send(hook, "async", *events)

    assert [result.status_code for result in results] == [202] * 25
    assert len(opened) == 1
    assert len(events_receiver.open_incidents()) == 25


# Validation before sending


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("password", "problem"),
    [
        (ROUTING_KEY[:31], "but it is 31 characters long"),
        (ROUTING_KEY + "0", "but it is 33 characters long"),
        (ROUTING_KEY[:31] + "-", "but it contains a non-alphanumeric character"),
        (ROUTING_KEY[:16] + " " + ROUTING_KEY[17:], "but it contains a space"),
    ],
    ids=["31-chars", "33-chars", "dash", "inner-space"],
)
def test_malformed_routing_key_rejected_before_sending(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    mode: str,
    password: str,
    problem: str,
) -> None:
    hook = make_hook(se_connection(events_receiver.url, password=password, conn_id="pd_bad_key"))

    with pytest.raises(InvalidConfigurationError) as raised:
        send(hook, mode, trigger_body())

    message = str(raised.value)
    assert "Connection 'pd_bad_key'" in message
    assert problem in message
    assert password.strip() not in message
    assert events_receiver.requests_seen == 0


@pytest.mark.parametrize("mode", MODES)
def test_missing_routing_key_rejected(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url, password=None, conn_id="pd_no_key"))

    with pytest.raises(InvalidConfigurationError, match=r"'pd_no_key': the integration key .* is missing"):
        send(hook, mode, trigger_body())

    assert events_receiver.requests_seen == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("severity", ["urgent", "CRITICAL", None])
def test_bad_severity_rejected_before_sending(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str, severity: str | None
) -> None:
    hook = make_hook(se_connection(events_receiver.url))

    with pytest.raises(InvalidConfigurationError) as raised:
        send(hook, mode, trigger_body(severity=severity))

    assert f"Invalid severity {severity!r}" in str(raised.value)
    assert events_receiver.requests_seen == 0


@pytest.mark.parametrize("mode", MODES)
def test_non_json_number_rejected_before_sending(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))

    with pytest.raises(InvalidConfigurationError) as raised:
        send(hook, mode, trigger_body(custom_details={"failed_percentage": float("nan")}))

    assert "'se-pagerduty/sales/orders/failure': it cannot be encoded as JSON" in str(raised.value)
    assert events_receiver.requests_seen == 0


@pytest.mark.parametrize("mode", MODES)
def test_oversized_event_rejected_before_sending(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str], mode: str
) -> None:
    hook = make_hook(se_connection(events_receiver.url))

    with pytest.raises(InvalidConfigurationError) as raised:
        send(hook, mode, trigger_body(custom_details={"rows": "x" * 600_000}))

    assert "over PagerDuty's limit of 524288 bytes (512 KB)" in str(raised.value)
    assert events_receiver.requests_seen == 0


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any request that requests or aiohttp would send, and list the attempted URLs."""
    attempted: list[str] = []

    def fail_sync_request(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        attempted.append(str(request.url))
        raise AssertionError(f"a request to {request.url} was sent")

    async def fail_async_request(self: Any, method: str, url: Any, **kwargs: Any) -> Any:
        attempted.append(str(url))
        raise AssertionError(f"a request to {url} was sent")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", fail_sync_request)
    monkeypatch.setattr(aiohttp.ClientSession, "_request", fail_async_request)
    return attempted


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "host",
    [
        "http://events.invalid/v2/enqueue",
        "http://events.invalid",
        "http://127.0.0.1.events.invalid/v2/enqueue",
    ],
)
def test_plain_http_to_remote_host_rejected(
    se_connection: Callable[..., str], no_requests: list[str], mode: str, host: str
) -> None:
    hook = make_hook(se_connection(host, conn_id="pd_plain_http"))

    with pytest.raises(InvalidConfigurationError) as raised:
        send(hook, mode, trigger_body())

    message = str(raised.value)
    assert "Connection 'pd_plain_http'" in message
    assert repr(host) in message
    assert "plain http is allowed only to a loopback host" in message
    assert no_requests == []


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (EU_EVENTS_API_URL, EU_EVENTS_API_URL),
        ("events.eu.pagerduty.com", EU_EVENTS_API_URL),
        ("https://events.eu.pagerduty.com", EU_EVENTS_API_URL),
        (None, "https://events.pagerduty.com/v2/enqueue"),
        ("http://localhost:8090", "http://localhost:8090/v2/enqueue"),
        ("http://[::1]:8090/v2/enqueue", "http://[::1]:8090/v2/enqueue"),
    ],
)
def test_url_built_from_connection_host(
    se_connection: Callable[..., str], no_requests: list[str], host: str | None, url: str
) -> None:
    hook = make_hook(se_connection(host))

    assert hook.url == url
    assert no_requests == []


# The notifier never raises and logs what it could not deliver


FAILED_STATS = {
    "product_id": "sales",
    "table_name": "orders",
    "input_count": 100,
    "output_count": 0,
    "error_count": 100,
    "dq_status": {"run_status": "Failed", "row_dq": "Failed"},
}


def failed_task_context() -> dict[str, Any]:
    ti = FakeTaskInstance(xcom={("check_orders", "return_value"): FAILED_STATS}, state="failed")
    return task_context(ti, exception=RuntimeError("row_dq failed: 100 rows"))


def undelivered_events(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prefix = "Undelivered PagerDuty event: "
    return [
        json.loads(line[len(prefix) :]) for line in log_lines(entries, "error") if line.startswith(prefix)
    ]


@pytest.mark.parametrize("mode", MODES)
def test_notifier_logs_undelivered_event_on_500s(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    task_logs: list[dict[str, Any]],
    mode: str,
) -> None:
    policy = DeliveryPolicy(
        max_attempts=3,
        max_total_seconds=5.0,
        timeout_seconds=1.0,
        backoff_seconds=0.01,
        max_backoff_seconds=0.05,
    )
    notifier = SparkExpectationsPagerDutyNotifier(
        pagerduty_conn_id=se_connection(events_receiver.url), delivery_policy=policy
    )
    events_receiver.inject(*[Fault.status(500)] * 50)

    if mode == "sync":
        notifier.notify(failed_task_context())
    else:
        asyncio.run(notifier.async_notify(failed_task_context()))

    assert events_receiver.requests_seen == 3
    [event] = undelivered_events(task_logs)
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "se-pagerduty/sales/orders/failure"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["input_count"] == 100
    assert "routing_key" not in event
    errors = log_lines(task_logs, "error")
    assert any("after 3 attempt(s)" in line for line in errors)
    assert all(ROUTING_KEY not in line for line in log_lines(task_logs))


@pytest.mark.parametrize("mode", MODES)
def test_notifier_closed_port_never_raises(
    closed_port_url: str, se_connection: Callable[..., str], task_logs: list[dict[str, Any]], mode: str
) -> None:
    notifier = SparkExpectationsPagerDutyNotifier(
        pagerduty_conn_id=se_connection(closed_port_url), delivery_policy=FAST_POLICY
    )

    if mode == "sync":
        notifier.notify(failed_task_context())
    else:
        asyncio.run(notifier.async_notify(failed_task_context()))

    [event] = undelivered_events(task_logs)
    assert event["dedup_key"] == "se-pagerduty/sales/orders/failure"
    assert any("connection failed" in line for line in log_lines(task_logs, "error"))


@pytest.mark.parametrize("mode", MODES)
def test_notifier_logs_only_undelivered_events(
    events_receiver: EventsApiReceiver,
    se_connection: Callable[..., str],
    task_logs: list[dict[str, Any]],
    mode: str,
) -> None:
    # A run that failed and breached a rule threshold plans two triggers. The receiver
    # accepts the first and rejects the second, so only the second is logged as undelivered.
    stats = {
        **FAILED_STATS,
        "output_count": 60,
        "row_dq_res_summary": [
            {"rule": "amount_positive", "action_if_failed": "drop", "failed_row_count": "40"}
        ],
        "row_dq_error_threshold": [
            {"rule_name": "amount_positive", "action_if_failed": "drop", "error_drop_threshold": "10"}
        ],
    }
    ti = FakeTaskInstance(xcom={("check_orders", "return_value"): stats}, state="failed")
    notifier = SparkExpectationsPagerDutyNotifier(
        pagerduty_conn_id=se_connection(events_receiver.url), delivery_policy=FAST_POLICY
    )
    events_receiver.inject(Fault.delay(0.01), Fault.plain_text_400())

    if mode == "sync":
        notifier.notify(task_context(ti, RuntimeError("boom")))
    else:
        asyncio.run(notifier.async_notify(task_context(ti, RuntimeError("boom"))))

    [accepted] = events_receiver.accepted
    assert accepted.dedup_key == "se-pagerduty/sales/orders/failure"
    [event] = undelivered_events(task_logs)
    assert event["dedup_key"] == "se-pagerduty/sales/orders/breach"
