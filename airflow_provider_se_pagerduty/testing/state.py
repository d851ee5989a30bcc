"""Records and incident state of the local Events API receiver, safe to use from many threads."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Literal

IncidentStatus = Literal["open", "acknowledged", "resolved"]


@dataclass(frozen=True)
class AcceptedEvent:
    """An event that the receiver accepted with HTTP 202.

    :param action: ``trigger``, ``acknowledge`` or ``resolve``.
    :param dedup_key: the client's dedup key, or the one the receiver generated for a trigger.
    :param severity: ``payload.severity`` of a trigger, else None.
    :param summary: ``payload.summary`` of a trigger, else None.
    :param payload: the event's ``payload`` object, or None when the event had none.
    :param custom_details: ``payload.custom_details``, or None when the event had none.
    :param event: the whole request body without ``routing_key``.
    :param routing_key_fingerprint: a short hash that distinguishes routing keys without storing them.
    :param matched_incident: whether the event changed an incident. An acknowledge or resolve for
        a dedup key with no unresolved incident is accepted but dropped, as PagerDuty does.
    :param received_at: Unix time in seconds when the receiver accepted the event.
    """

    action: str
    dedup_key: str
    severity: str | None
    summary: str | None
    payload: dict[str, Any] | None
    custom_details: dict[str, Any] | None
    event: dict[str, Any]
    routing_key_fingerprint: str
    matched_incident: bool
    received_at: float


@dataclass(frozen=True)
class RejectedEvent:
    """A request that the receiver rejected with HTTP 400 because the event was invalid.

    ``action``, ``dedup_key`` and ``summary`` are the client's values when they were strings.
    Faults injected as 400 responses are not recorded here.
    """

    errors: tuple[str, ...]
    action: str | None
    dedup_key: str | None
    summary: str | None
    received_at: float


@dataclass(frozen=True)
class Incident:
    """The state of one alert, identified by its routing key and dedup key.

    :param status: ``open`` after a trigger, then ``acknowledged`` or ``resolved``.
    :param trigger_count: triggers applied to this incident, the first one included.
    :param summary: ``payload.summary`` of the latest trigger.
    :param severity: ``payload.severity`` of the latest trigger.
    """

    dedup_key: str
    status: IncidentStatus
    trigger_count: int
    summary: str
    severity: str
    routing_key_fingerprint: str
    opened_at: float
    updated_at: float


def fingerprint_routing_key(routing_key: str) -> str:
    """Hash a routing key to 12 hex characters, enough to tell test keys apart."""
    return hashlib.sha256(routing_key.encode()).hexdigest()[:12]


class EventStore:
    """Accepted and rejected events, incidents, and the optional sliding-window rate limit.

    :param rate_limit: ``(max_events, window_seconds)`` applied to each routing key, or None.
    """

    def __init__(self, rate_limit: tuple[int, float] | None = None) -> None:
        if rate_limit is not None:
            max_events, window_seconds = rate_limit
            if max_events < 1 or window_seconds <= 0:
                raise ValueError(
                    "rate_limit must be (max_events >= 1, window_seconds > 0), "
                    f"got ({max_events}, {window_seconds})"
                )
        self._rate_limit = rate_limit
        self._changed = threading.Condition()
        self._accepted: list[AcceptedEvent] = []
        self._rejected: list[RejectedEvent] = []
        self._incident_history: list[Incident] = []
        # Index into _incident_history of the latest incident per (fingerprint, dedup_key).
        self._latest_incident: dict[tuple[str, str], int] = {}
        self._accept_times: dict[str, deque[float]] = {}
        self._throttled_count = 0

    def accept(self, event: dict[str, Any]) -> AcceptedEvent | None:
        """Apply a valid event to the incidents and record it, or return None when throttled."""
        fingerprint = fingerprint_routing_key(event["routing_key"])
        action = event["event_action"]
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        payload = event.get("payload") if action == "trigger" else None

        with self._changed:
            if not self._take_rate_limit_slot(fingerprint):
                self._throttled_count += 1
                return None

            now = time.time()
            matched = self._apply_to_incident(fingerprint, action, dedup_key, payload, now)
            record = AcceptedEvent(
                action=action,
                dedup_key=dedup_key,
                severity=payload["severity"] if payload else None,
                summary=payload["summary"] if payload else None,
                payload=_object_or_none(event.get("payload")),
                custom_details=_custom_details(event.get("payload")),
                event={key: value for key, value in event.items() if key != "routing_key"},
                routing_key_fingerprint=fingerprint,
                matched_incident=matched,
                received_at=now,
            )
            self._accepted.append(record)
            self._changed.notify_all()
        return record

    def reject(self, errors: list[str], event: dict[str, Any] | None) -> RejectedEvent:
        """Record an invalid event with its validation errors."""
        event = event or {}
        payload = event.get("payload")
        summary = payload.get("summary") if isinstance(payload, dict) else None
        record = RejectedEvent(
            errors=tuple(errors),
            action=_string_or_none(event.get("event_action")),
            dedup_key=_string_or_none(event.get("dedup_key")),
            summary=_string_or_none(summary),
            received_at=time.time(),
        )
        with self._changed:
            self._rejected.append(record)
        return record

    @property
    def accepted(self) -> list[AcceptedEvent]:
        with self._changed:
            return list(self._accepted)

    @property
    def rejected(self) -> list[RejectedEvent]:
        with self._changed:
            return list(self._rejected)

    @property
    def throttled_count(self) -> int:
        with self._changed:
            return self._throttled_count

    def incidents(self) -> list[Incident]:
        """Return every incident in the order it was opened, resolved ones included."""
        with self._changed:
            return list(self._incident_history)

    def open_incidents(self) -> list[Incident]:
        """Return the incidents that are not resolved, in the order they were opened."""
        with self._changed:
            return [incident for incident in self._incident_history if incident.status != "resolved"]

    def wait_for_accepted(self, count: int, timeout: float) -> list[AcceptedEvent]:
        """Block until at least ``count`` events were accepted and return them all.

        Raises TimeoutError when fewer arrive within ``timeout`` seconds.
        """
        with self._changed:
            reached = self._changed.wait_for(lambda: len(self._accepted) >= count, timeout)
            if not reached:
                raise TimeoutError(
                    f"expected {count} accepted events within {timeout} s, "
                    f"but the receiver accepted {len(self._accepted)}"
                )
            return list(self._accepted)

    def clear(self) -> None:
        """Forget all events, incidents, throttling counts and rate-limit windows."""
        with self._changed:
            self._accepted.clear()
            self._rejected.clear()
            self._incident_history.clear()
            self._latest_incident.clear()
            self._accept_times.clear()
            self._throttled_count = 0
            self._changed.notify_all()

    def _take_rate_limit_slot(self, fingerprint: str) -> bool:
        """Count one event in the routing key's window and return True, or False if the window is full."""
        if self._rate_limit is None:
            return True

        max_events, window_seconds = self._rate_limit
        now = time.monotonic()
        times = self._accept_times.setdefault(fingerprint, deque())
        while times and times[0] <= now - window_seconds:
            times.popleft()

        if len(times) >= max_events:
            return False
        times.append(now)
        return True

    def _apply_to_incident(
        self,
        fingerprint: str,
        action: str,
        dedup_key: str,
        payload: dict[str, Any] | None,
        now: float,
    ) -> bool:
        """Update the incident for the event and return whether one was changed."""
        key = (fingerprint, dedup_key)
        index = self._latest_incident.get(key)
        current = self._incident_history[index] if index is not None else None
        unresolved = current is not None and current.status != "resolved"

        if action == "trigger":
            assert payload is not None
            if current is not None and unresolved:
                # A repeated trigger updates the alert. An acknowledged alert stays acknowledged,
                # because PagerDuty does not notify again for it.
                updated = replace(
                    current,
                    trigger_count=current.trigger_count + 1,
                    summary=payload["summary"],
                    severity=payload["severity"],
                    updated_at=now,
                )
                self._incident_history[self._latest_incident[key]] = updated
            else:
                # A trigger after a resolve opens a new incident, as PagerDuty does.
                self._latest_incident[key] = len(self._incident_history)
                self._incident_history.append(
                    Incident(
                        dedup_key=dedup_key,
                        status="open",
                        trigger_count=1,
                        summary=payload["summary"],
                        severity=payload["severity"],
                        routing_key_fingerprint=fingerprint,
                        opened_at=now,
                        updated_at=now,
                    )
                )
            return True

        if current is None or not unresolved:
            return False
        status: IncidentStatus = "acknowledged" if action == "acknowledge" else "resolved"
        self._incident_history[self._latest_incident[key]] = replace(current, status=status, updated_at=now)
        return True


def _custom_details(payload: object) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        return None
    return _object_or_none(payload.get("custom_details"))


def _object_or_none(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _string_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
