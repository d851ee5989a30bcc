"""Validation of Events API v2 alert events, as the local receiver applies it.

The rules follow PagerDuty's "Send an Alert Event" reference
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/) and its overview page,
which sets the 512 KB size limit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY_LENGTH = 255
MAX_SUMMARY_LENGTH = 1024
# PagerDuty documents the limit as 512 KB, which is read here as 512 * 1024 bytes.
MAX_BODY_BYTES = 512 * 1024

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
_OPTIONAL_PAYLOAD_STRINGS = ("component", "group", "class")
_OPTIONAL_TOP_LEVEL_STRINGS = ("client", "client_url")
_MAX_SHOWN_VALUE_LENGTH = 40


def parse_body(raw: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """Decode a request body and return the JSON object, or None with the reasons it is not one."""
    try:
        decoded = json.loads(raw)
    except UnicodeDecodeError:
        return None, ["Request body is not UTF-8 encoded JSON"]
    except json.JSONDecodeError as error:
        return None, [f"Request body is not valid JSON: {error}"]

    if not isinstance(decoded, dict):
        return None, [f"Request body must be a JSON object, not {_json_type(decoded)}"]
    return decoded, []


def validate_event(event: dict[str, Any]) -> list[str]:
    """Check an alert event against the Events API v2 rules and return one message per problem.

    An empty list means the event is valid. Messages never contain the routing key.
    """
    errors = _routing_key_errors(event.get("routing_key"))

    action = event.get("event_action")
    if action is None:
        errors.append("event_action is missing")
    elif action not in EVENT_ACTIONS:
        errors.append(f"event_action must be trigger, acknowledge or resolve, not {_show(action)}")

    errors.extend(_dedup_key_errors(event.get("dedup_key"), action))

    if action == "trigger":
        errors.extend(_payload_errors(event.get("payload")))
        errors.extend(_context_errors(event))
    return errors


def _routing_key_errors(routing_key: object) -> list[str]:
    if routing_key is None:
        return ["routing_key is missing"]
    if not isinstance(routing_key, str):
        return [f"routing_key must be a string, not {_json_type(routing_key)}"]

    # The value itself is a secret, so only its length is shown.
    if len(routing_key) != ROUTING_KEY_LENGTH:
        return [
            f"routing_key must be exactly {ROUTING_KEY_LENGTH} letters and digits, "
            f"but the value's length is {len(routing_key)}"
        ]
    if not (routing_key.isascii() and routing_key.isalnum()):
        return [
            f"routing_key must be exactly {ROUTING_KEY_LENGTH} letters and digits, "
            "but the value contains other characters"
        ]
    return []


def _dedup_key_errors(dedup_key: object, action: object) -> list[str]:
    if dedup_key is not None and not isinstance(dedup_key, str):
        return [f"dedup_key must be a string, not {_json_type(dedup_key)}"]

    if action in ("acknowledge", "resolve") and not dedup_key:
        return [f"dedup_key is required for event_action {action}"]
    if dedup_key is not None and len(dedup_key) > MAX_DEDUP_KEY_LENGTH:
        return [f"dedup_key must be at most {MAX_DEDUP_KEY_LENGTH} characters, got {len(dedup_key)}"]
    return []


def _payload_errors(payload: object) -> list[str]:
    if payload is None:
        return ["payload is required for event_action trigger"]
    if not isinstance(payload, dict):
        return [f"payload must be a JSON object, not {_json_type(payload)}"]

    errors = _required_text_errors(payload, "summary", MAX_SUMMARY_LENGTH)
    errors.extend(_required_text_errors(payload, "source", None))

    severity = payload.get("severity")
    if severity is None:
        errors.append("payload.severity is missing")
    elif severity not in SEVERITIES:
        errors.append(f"payload.severity must be critical, error, warning or info, not {_show(severity)}")

    # NOTE: PagerDuty does not document whether it rejects an unparsable timestamp. The receiver
    # rejects one so that a client bug shows up in tests.
    timestamp = payload.get("timestamp")
    if timestamp is not None and not _is_iso_8601(timestamp):
        errors.append(f"payload.timestamp must be an ISO 8601 date and time, not {_show(timestamp)}")

    for name in _OPTIONAL_PAYLOAD_STRINGS:
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(f"payload.{name} must be a string, not {_json_type(value)}")

    # NOTE: PagerDuty documents custom_details as an object, and the receiver rejects any other
    # JSON value there, although PagerDuty may tolerate one.
    custom_details = payload.get("custom_details")
    if custom_details is not None and not isinstance(custom_details, dict):
        errors.append(f"payload.custom_details must be a JSON object, not {_json_type(custom_details)}")
    return errors


def _required_text_errors(payload: dict[str, Any], name: str, max_length: int | None) -> list[str]:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        return [f"payload.{name} must be a string, not {_json_type(value)}"]
    if value is None or not value.strip():
        return [f"payload.{name} is missing or blank"]
    if max_length is not None and len(value) > max_length:
        return [f"payload.{name} must be at most {max_length} characters, got {len(value)}"]
    return []


def _context_errors(event: dict[str, Any]) -> list[str]:
    """Check the optional links, images, client and client_url of a trigger."""
    errors = _context_list_errors(event.get("links"), "links", "href")
    errors.extend(_context_list_errors(event.get("images"), "images", "src"))

    for name in _OPTIONAL_TOP_LEVEL_STRINGS:
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(f"{name} must be a string, not {_json_type(value)}")
    return errors


def _context_list_errors(items: object, name: str, required_field: str) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"{name} must be a list of objects, not {_json_type(items)}"]

    errors = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"{name}[{index}] must be a JSON object, not {_json_type(item)}")
        elif not isinstance(item.get(required_field), str) or not item[required_field]:
            errors.append(f"{name}[{index}].{required_field} is missing or not a string")
    return errors


def _is_iso_8601(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    """Render a client's value as JSON for an error message, cut to a readable length."""
    rendered = json.dumps(value)
    if len(rendered) > _MAX_SHOWN_VALUE_LENGTH:
        return rendered[:_MAX_SHOWN_VALUE_LENGTH] + "..."
    return rendered


def _json_type(value: object) -> str:
    """Name the JSON type of a decoded value, as an error message should call it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
