"""Faults that the local Events API receiver serves in place of a normal response."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Literal

FaultKind = Literal["response", "reset", "delay"]

# The bodies below follow the shape of PagerDuty's JSON error bodies ("status" and "message").
# NOTE: the wording of the 429 and 5xx messages is modelled on PagerDuty's, not captured from it.
_THROTTLE_BODY = {
    "status": "throttle event",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}
_DEFAULT_INVALID_EVENT_ERROR = "Event object is invalid"


def invalid_event_body(errors: list[str]) -> bytes:
    """Encode the JSON body of PagerDuty's 400 response for the given validation errors."""
    return json.dumps(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    ).encode()


def throttle_body() -> bytes:
    """Encode the JSON body of a 429 response."""
    return json.dumps(_THROTTLE_BODY).encode()


@dataclass(frozen=True)
class Fault:
    """One misbehaviour that the receiver serves to the next request it reads.

    Build faults with the class methods, e.g. ``Fault.status(503)``, ``Fault.reset()``,
    ``Fault.delay(2.0)`` or ``Fault.plain_text_400()``, and queue them with
    ``EventsApiReceiver.inject``.

    :param kind: ``response`` sends ``status_code`` with ``body``. ``reset`` closes the connection
        with a TCP reset and sends no response. ``delay`` waits ``delay_seconds`` and then handles
        the request normally.
    """

    kind: FaultKind
    status_code: int = 0
    body: bytes = b""
    content_type: str = "application/json"
    delay_seconds: float = 0.0

    @classmethod
    def status(cls, code: int) -> Fault:
        """Respond with the HTTP status ``code`` and a JSON body like PagerDuty's.

        429 gets PagerDuty's throttle body, 400 a generic invalid-event body, and any other
        4xx or 5xx code a body with its reason phrase.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"fault status must be a 4xx or 5xx code, got {code}")

        if code == HTTPStatus.TOO_MANY_REQUESTS:
            return cls(kind="response", status_code=code, body=throttle_body())
        if code == HTTPStatus.BAD_REQUEST:
            return cls.invalid_event()

        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"status": "error", "message": phrase}).encode()
        return cls(kind="response", status_code=code, body=body)

    @classmethod
    def invalid_event(cls, *errors: str) -> Fault:
        """Respond 400 with PagerDuty's invalid-event JSON body listing ``errors``."""
        error_list = list(errors) if errors else [_DEFAULT_INVALID_EVENT_ERROR]
        return cls(kind="response", status_code=400, body=invalid_event_body(error_list))

    @classmethod
    def plain_text_400(cls) -> Fault:
        """Respond 400 with the plain-text body ``Invalid routing key``, as PagerDuty does for some keys."""
        return cls(
            kind="response",
            status_code=400,
            body=b"Invalid routing key",
            content_type="text/plain; charset=utf-8",
        )

    @classmethod
    def reset(cls) -> Fault:
        """Read the request, then close the connection with a TCP reset and no response.

        NOTE: over https, OpenSSL 3 clients report the reset as an unexpected EOF, so ``requests``
        raises ConnectionError wrapping RemoteDisconnected instead of ConnectionResetError.
        """
        return cls(kind="reset")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before handling the request normally, so that a client can time out.

        The event is still validated and recorded after the wait, as PagerDuty would process an
        event whose response the client stopped waiting for.
        """
        if seconds <= 0:
            raise ValueError(f"fault delay must be positive seconds, got {seconds}")
        return cls(kind="delay", delay_seconds=seconds)
