"""Errors of the provider, grouped so that a caller can catch them by meaning."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException

# Values quoted in messages are cut to this many characters, so that a huge payload
# field cannot flood a task log.
MAX_QUOTED_VALUE_CHARS = 200


def quote_value(value: Any) -> str:
    """Return ``repr(value)`` cut to a length that fits in a log line."""
    try:
        text = repr(value)
    except ValueError:
        # repr() raises ValueError for an int of over 4300 digits (sys.get_int_max_str_digits),
        # also when the int is inside a list or dict.
        if isinstance(value, int):
            return f"<an integer of {value.bit_length()} bits>"
        return f"<a {type(value).__name__} containing an integer too large to show>"
    if len(text) > MAX_QUOTED_VALUE_CHARS:
        return f"{text[:MAX_QUOTED_VALUE_CHARS]}... ({len(text)} characters)"
    return text


class SparkExpectationsPagerDutyError(AirflowException):
    """Base class of every error that this provider raises on purpose."""


class InvalidStatsPayloadError(SparkExpectationsPagerDutyError, ValueError):
    """The DQ stats payload is malformed: nothing is sent for it."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"Invalid DQ stats payload: field {field!r} {problem}, got {quote_value(value)}")

    def within(self, container: str) -> InvalidStatsPayloadError:
        """Return the same error with its field named inside ``container``, e.g. ``list[3].key``."""
        return InvalidStatsPayloadError(f"{container}.{self.field}", self.value, self.problem)


class InvalidConfigurationError(SparkExpectationsPagerDutyError, ValueError):
    """A connection, argument or ``user_conf`` setting is invalid: nothing is sent."""


class EventRejectedError(SparkExpectationsPagerDutyError):
    """PagerDuty responded with a 4xx status: the event is invalid and retrying cannot help.

    ``errors`` is PagerDuty's ``errors`` list, or the plain-text body as a one-item list.
    """

    def __init__(self, status_code: int, message: str, errors: list[str]) -> None:
        self.http_status = status_code
        self.message = message
        self.errors = errors
        detail = "; ".join(errors) if errors else "no error details in the response"
        super().__init__(f"PagerDuty rejected the event with HTTP {status_code} ({message}): {detail}")


class DeliveryFailedError(SparkExpectationsPagerDutyError):
    """Delivery gave up after retrying 429, 5xx, timeouts or dropped connections."""

    def __init__(self, attempts: int, elapsed_seconds: float, last_problem: str) -> None:
        self.attempts = attempts
        self.elapsed_seconds = elapsed_seconds
        self.last_problem = last_problem
        super().__init__(
            f"Could not deliver the event to PagerDuty after {attempts} attempt(s) in "
            f"{elapsed_seconds:.1f} s; last problem: {last_problem}"
        )
