"""Delivery rules shared by the sync and async send paths: validation, retry policy, responses.

Nothing here does I/O, so both paths retry, give up and raise in exactly the same way.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_se_pagerduty import US_EVENTS_API_URL
from airflow_provider_se_pagerduty.events import MAX_EVENT_BYTES
from airflow_provider_se_pagerduty.exceptions import (
    EventRejectedError,
    InvalidConfigurationError,
    quote_value,
)
from airflow_provider_se_pagerduty.settings import SEVERITIES

EVENTS_API_PATH = "/v2/enqueue"

ROUTING_KEY_LENGTH = 32
_ROUTING_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{32}")

# Retry reason by response status: 429 and every 5xx are worth another attempt, any
# other 4xx is final because the same event would be rejected again.
RETRYABLE_STATUS_REASONS = {
    429: "rate limited by PagerDuty (HTTP 429)",
    500: "PagerDuty internal error (HTTP 500)",
    502: "bad gateway (HTTP 502)",
    503: "PagerDuty unavailable (HTTP 503)",
    504: "gateway timeout (HTTP 504)",
}
MAX_ERROR_TEXT_CHARS = 500


@dataclass(frozen=True)
class DeliveryPolicy:
    """Bounds for one event's delivery: attempts, total seconds and per-attempt timeout.

    After a 5xx, a timeout or a dropped connection, waits grow exponentially from
    ``backoff_seconds`` up to ``max_backoff_seconds`` with full jitter, and ``max_attempts``
    counts these failures. A 429 means PagerDuty is throttling a burst, not failing, so it
    does not count against ``max_attempts``: the wait is the ``Retry-After`` header when
    present, else grows from ``backoff_seconds`` up to ``max_rate_limit_wait_seconds`` with
    half of it jittered. No wait starts that would end past ``max_total_seconds``, which
    bounds every kind of retry.
    """

    max_attempts: int = 5
    max_total_seconds: float = 60.0
    timeout_seconds: float = 10.0
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 16.0
    max_rate_limit_wait_seconds: float = 4.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidConfigurationError(
                f"Invalid setting max_attempts: expected a whole number >= 1, got {quote_value(attempts)}"
            )
        for name in ("max_total_seconds", "timeout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidConfigurationError(
                    f"Invalid setting {name}: expected a number of seconds > 0, got {quote_value(value)}"
                )
        for name in ("backoff_seconds", "max_backoff_seconds", "max_rate_limit_wait_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidConfigurationError(
                    f"Invalid setting {name}: expected a number of seconds >= 0, got {quote_value(value)}"
                )

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the wait before attempt ``attempt + 1``, after ``attempt`` failed attempts."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)

    def rate_limit_wait(
        self, throttled: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        """Return the wait after the ``throttled``-th 429 response to one event.

        Half of the wait is fixed, so that senders back off from a full window at once, and
        half is jittered, so that they do not all come back together.
        """
        if retry_after is not None:
            return retry_after
        ceiling = float(min(self.max_rate_limit_wait_seconds, self.backoff_seconds * 2 ** (throttled - 1)))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class EventResult:
    """PagerDuty's response to an accepted event."""

    action: str
    dedup_key: str | None
    status_code: int
    message: str
    attempts: int


def validate_routing_key(routing_key: str | None, conn_id: str) -> str:
    """Check the integration key's shape without ever quoting it."""
    if not routing_key:
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: the integration key (password field) is missing. "
            "Copy it from the Events API v2 integration of your PagerDuty service."
        )
    key = routing_key.strip()
    if len(key) != ROUTING_KEY_LENGTH:
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: the integration key must be {ROUTING_KEY_LENGTH} letters and digits, "
            f"but it is {len(key)} characters long"
        )
    if not _ROUTING_KEY_PATTERN.fullmatch(key):
        bad = sorted({char for char in key if not char.isascii() or not char.isalnum()})
        kinds = ", ".join("space" if c.isspace() else "non-alphanumeric character" for c in bad[:1])
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: the integration key must be {ROUTING_KEY_LENGTH} letters and digits, "
            f"but it contains a {kinds}"
        )
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def events_api_url(host: str | None, port: int | None, conn_id: str) -> str:
    """Build the Events API URL from the connection's host (a URL or a bare host name) and port.

    An empty host means PagerDuty's US endpoint. Plain http is allowed only to a loopback host,
    so that an integration key never travels unencrypted over a network.
    """
    raw = (host or "").strip() or US_EVENTS_API_URL
    if "://" not in raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    if not hostname:
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: invalid Events API URL {quote_value(host)}: no host name"
        )
    if scheme not in ("https", "http"):
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: invalid Events API URL {quote_value(host)}: "
            "the scheme must be https"
        )
    if scheme == "http" and not _is_loopback(hostname):
        raise InvalidConfigurationError(
            f"Connection {conn_id!r}: invalid Events API URL {quote_value(host)}: plain http is "
            "allowed only to a loopback host (127.0.0.1, ::1, localhost); use https"
        )
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path if parts.path not in ("", "/") else EVENTS_API_PATH
    return f"{scheme}://{netloc}{path}"


def validate_event(event: dict[str, Any]) -> None:
    """Check what PagerDuty would reject, before anything is sent."""
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        raise InvalidConfigurationError(
            f"Invalid event_action {quote_value(action)}: expected trigger, acknowledge or resolve"
        )
    dedup = event.get("dedup_key")
    if action != "trigger" and not dedup:
        raise InvalidConfigurationError(f"A {action} event needs a dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        raise InvalidConfigurationError(f"Invalid dedup_key {quote_value(dedup)}: at most 255 characters")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            raise InvalidConfigurationError("A trigger event needs a payload object")
        severity = payload.get("severity")
        if severity not in SEVERITIES:
            raise InvalidConfigurationError(
                f"Invalid severity {quote_value(severity)}: expected one of {', '.join(SEVERITIES)}"
            )
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary.strip() or len(summary) > 1024:
            raise InvalidConfigurationError(
                f"Invalid summary {quote_value(summary)}: expected 1 to 1024 characters"
            )


def encode_event(event: dict[str, Any], routing_key: str) -> str:
    """Encode the request body: the event with its routing key, as strict JSON of at most 512 KB.

    :raises InvalidConfigurationError: a value is not JSON (NaN, infinity or another type),
        or the body is over PagerDuty's size limit. Nothing was sent.
    """
    dedup = event.get("dedup_key")
    try:
        body = json.dumps({**event, "routing_key": routing_key}, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidConfigurationError(
            f"Invalid event for dedup key {quote_value(dedup)}: it cannot be encoded as JSON ({error})"
        ) from None
    size = len(body.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        raise InvalidConfigurationError(
            f"Invalid event for dedup key {quote_value(dedup)}: the body is {size} bytes, over "
            f"PagerDuty's limit of {MAX_EVENT_BYTES} bytes (512 KB); shorten its custom_details"
        )
    return body


def redact(text: str, secret: str) -> str:
    """Replace every occurrence of ``secret`` in ``text``."""
    return text.replace(secret, "<integration key>") if secret else text


def error_list(body: str) -> tuple[str, list[str]]:
    """Read ``(message, errors)`` from an error response, whether JSON or plain text."""
    text = body.strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        message = str(parsed.get("message") or parsed.get("status") or "")
        raw_errors = parsed.get("errors")
        errors = [str(e) for e in raw_errors] if isinstance(raw_errors, list) else []
        return message, errors
    short = text[:MAX_ERROR_TEXT_CHARS]
    return short, [short] if short else []


def success_result(
    action: str, status_code: int, body: str, attempts: int, sent_key: str | None
) -> EventResult:
    """Read PagerDuty's 2xx response; a body that is not JSON still counts as accepted."""
    message, dedup = "", sent_key
    try:
        parsed = json.loads(body) if body.strip() else {}
    except ValueError:
        parsed = {}
    if isinstance(parsed, dict):
        message = str(parsed.get("message") or parsed.get("status") or "")
        dedup = parsed.get("dedup_key") or sent_key
    return EventResult(action, dedup, status_code, message, attempts)


def rejection(status_code: int, body: str, routing_key: str) -> EventRejectedError:
    """Build the error for a final 4xx response, with PagerDuty's ``errors`` list."""
    message, errors = error_list(redact(body, routing_key))
    return EventRejectedError(status_code, message or f"HTTP {status_code}", errors)


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds; a date or garbage counts as absent."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def retry_reason(status_code: int) -> str | None:
    """Return why a response is worth another attempt, or None when it is final."""
    if status_code in RETRYABLE_STATUS_REASONS:
        return RETRYABLE_STATUS_REASONS[status_code]
    if status_code >= 500:
        return f"PagerDuty server error (HTTP {status_code})"
    return None
