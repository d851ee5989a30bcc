"""Messages for Test connection: PagerDuty's response to the test event, in plain words.

The hook's ``test_connection`` sends the event. This module caps its retries, because a person
waits on the Test button, and turns each outcome into one message for the UI or the CLI. No
message contains the integration key.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_se_pagerduty.delivery import DeliveryPolicy, EventResult
    from airflow_provider_se_pagerduty.exceptions import (
        DeliveryFailedError,
        EventRejectedError,
        InvalidConfigurationError,
    )

MAX_CONNECTION_TEST_ATTEMPTS = 2
MAX_CONNECTION_TEST_SECONDS = 15.0

# Hints on what to check after a final 4xx response, by status code. Other codes get the generic hint.
REJECTION_HINTS = {
    400: "Check the integration key: it is the Integration Key of an Events API v2 integration "
    "of a PagerDuty service.",
    401: "Check the integration key, and any proxy between Airflow and PagerDuty.",
    403: "Check the integration key, and any proxy between Airflow and PagerDuty.",
    404: "Check the Events API URL: it ends in /v2/enqueue.",
    405: "Check the Events API URL: it ends in /v2/enqueue.",
}
GENERIC_REJECTION_HINT = "Check the Events API URL and the integration key."


def cap_for_connection_test(policy: DeliveryPolicy) -> DeliveryPolicy:
    """Cap the attempts and seconds of ``policy`` for a test that a person waits on."""
    return dataclasses.replace(
        policy,
        max_attempts=min(policy.max_attempts, MAX_CONNECTION_TEST_ATTEMPTS),
        max_total_seconds=min(policy.max_total_seconds, MAX_CONNECTION_TEST_SECONDS),
        timeout_seconds=min(policy.timeout_seconds, MAX_CONNECTION_TEST_SECONDS),
    )


def accepted_message(url: str, result: EventResult) -> str:
    """Describe a 2xx response to the test resolve event."""
    answer = f"HTTP {result.status_code}"
    if result.message:
        answer = f"{answer} {result.message!r}"
    return (
        f"PagerDuty accepted the test event at {url} ({answer}). "
        "It was a resolve for a new dedup key, so no incident was opened or changed."
    )


def rejected_message(url: str, error: EventRejectedError) -> str:
    """Describe a final 4xx response, with PagerDuty's own errors."""
    details = "; ".join(error.errors) or error.message
    hint = REJECTION_HINTS.get(error.http_status, GENERIC_REJECTION_HINT)
    return f"PagerDuty rejected the test event at {url} with HTTP {error.http_status}: {details}. {hint}"


def undelivered_message(url: str, error: DeliveryFailedError) -> str:
    """Describe a test event that got no final response within the capped attempts."""
    return (
        f"The test event to {url} was not delivered: {error.last_problem}, after "
        f"{error.attempts} attempt(s) in {error.elapsed_seconds:.1f} s. Check the Events API URL "
        "and that this Airflow component can reach it (proxy, firewall)."
    )


def invalid_configuration_message(conn_id: str, error: InvalidConfigurationError) -> str:
    """Describe a connection that failed validation, so that nothing was sent.

    The connection id is dropped from the message: the Test button runs on a temporary copy of
    the connection with a random id, which would only confuse.
    """
    text = str(error).removeprefix(f"Connection {conn_id!r}: ")
    return f"Nothing was sent: {text[:1].lower()}{text[1:]}"
