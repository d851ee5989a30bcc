"""429 responses: bounded by total seconds, not by the failure count, and Retry-After honoured."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from airflow_provider_se_pagerduty.delivery import DeliveryPolicy, parse_retry_after
from airflow_provider_se_pagerduty.exceptions import DeliveryFailedError
from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook
from airflow_provider_se_pagerduty.testing import EventsApiReceiver
from airflow_provider_se_pagerduty.testing.faults import Fault

EVENT = {"event_action": "resolve", "dedup_key": "se-pagerduty/p/t/failure"}


def test_throttled_event_outlasts_max_attempts(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str]
) -> None:
    policy = DeliveryPolicy(max_attempts=2, backoff_seconds=0.01, max_total_seconds=10)
    hook = SparkExpectationsPagerDutyHook(se_connection(events_receiver.url), delivery_policy=policy)
    events_receiver.inject(*[Fault.status(429)] * 6)

    result = hook.send_event(EVENT)

    assert result.attempts == 7
    assert events_receiver.requests_seen == 7
    assert [e.action for e in events_receiver.accepted] == ["resolve"]


def test_throttling_bounded_by_total_seconds(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str]
) -> None:
    policy = DeliveryPolicy(backoff_seconds=0.05, max_rate_limit_wait_seconds=0.2, max_total_seconds=1.0)
    hook = SparkExpectationsPagerDutyHook(se_connection(events_receiver.url), delivery_policy=policy)
    events_receiver.inject(*[Fault.status(429)] * 200)

    started = time.monotonic()
    with pytest.raises(DeliveryFailedError) as raised:
        hook.send_event(EVENT)
    elapsed = time.monotonic() - started

    assert elapsed < 1.0 + 0.5
    assert raised.value.attempts > policy.max_attempts
    assert "rate limited by PagerDuty (HTTP 429)" in str(raised.value)
    assert events_receiver.accepted == []


def test_failures_still_count_after_throttling(
    events_receiver: EventsApiReceiver, se_connection: Callable[..., str]
) -> None:
    policy = DeliveryPolicy(max_attempts=2, backoff_seconds=0.01, max_total_seconds=10)
    hook = SparkExpectationsPagerDutyHook(se_connection(events_receiver.url), delivery_policy=policy)
    events_receiver.inject(Fault.status(429), Fault.status(503), Fault.status(429), Fault.status(503))

    with pytest.raises(DeliveryFailedError) as raised:
        hook.send_event(EVENT)

    assert raised.value.attempts == 4
    assert events_receiver.requests_seen == 4


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 3.0), (" 0.5 ", 0.5), ("0", 0.0), ("-1", None), ("soon", None), (None, None), ("nan", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None)],
)
def test_retry_after_header_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_rate_limit_wait_uses_retry_after() -> None:
    assert DeliveryPolicy().rate_limit_wait(3, retry_after=2.5) == 2.5


def test_rate_limit_wait_grows_to_cap() -> None:
    policy = DeliveryPolicy(backoff_seconds=0.5, max_rate_limit_wait_seconds=4.0)
    rng = random.Random(7)
    waits = [policy.rate_limit_wait(n, None, rng) for n in range(1, 9)]

    assert 0.25 <= waits[0] <= 0.5
    assert 1.0 <= waits[2] <= 2.0
    assert all(2.0 <= wait <= 4.0 for wait in waits[4:])
