"""Cost per event sent to the loopback receiver: our hook against a raw keep-alive loop and the alternatives.

The receiver runs in a child process (see :mod:`benchmarks.receiver_process`), so a sender's
figure is its own cost plus the receiver's response time, which is the same for every sender.
Every sender serializes the same trigger body to JSON for each event and checks for HTTP 202.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_se_pagerduty.alerting import plan_events, resolve_target
from airflow_provider_se_pagerduty.decision import decide
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.settings import AlertSettings
from benchmarks import payloads
from benchmarks.common import (
    BENCH_ROUTING_KEY,
    Row,
    airflow_connection_variable,
    environment_variables,
    format_ratio,
    format_seconds,
    median,
    stdout_to_devnull,
    verdict,
)
from benchmarks.decision import RUN_INFO
from benchmarks.receiver_process import ReceiverProcess

if TYPE_CHECKING:
    from collections.abc import Callable

AREA = "3 send"
HTTP_TIMEOUT_SECONDS = 10.0
WARM_UP_EVENTS = 3
# The synthetic payload behind the trigger body; 10 rules give a body of a few KB.
EVENT_RULE_COUNT = 10

FLOOR = "raw http.client keep-alive loop (floor)"
HOOK = "our hook: send_event on one keep-alive session"
NEW_CONNECTION = "requests.post, new connection per event (as spark-expectations' plugin)"
PAGERDUTY_CLIENT = "python-pagerduty EventsApiV2Client (keep-alive)"


@dataclass(frozen=True)
class SendingOptions:
    """Sizes and repeats of the per-event measurement."""

    events_per_sample: int = 50
    rounds: int = 15
    schemes: tuple[str, ...] = ("http", "https")


class Sender(Protocol):
    """A way of sending events. ``send`` raises unless the receiver responds with HTTP 202."""

    def send(self) -> None: ...

    def close(self) -> None: ...


def trigger_body() -> dict[str, Any]:
    """Build the trigger body that every sender sends: a breach alert from a 10-rule payload."""
    stats = parse_stats_payload(payloads.stats_payload(EVENT_RULE_COUNT))
    decision = decide(stats, AlertSettings.resolve({}))
    target = resolve_target(stats, None, None, RUN_INFO.dag_id, RUN_INFO.task_id)
    planned = plan_events(decision, target, RUN_INFO)
    return dict(next(event.body for event in planned if event.action == "trigger"))


class RawKeepAliveSender:
    """``http.client`` on one connection: the least work a Python client can do per event."""

    def __init__(self, url: str, ca_file: str | None, event: dict[str, Any]) -> None:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        self._path = parts.path
        self._event = event
        self._connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_file)
            self._connection = http.client.HTTPSConnection(
                host, parts.port, timeout=HTTP_TIMEOUT_SECONDS, context=context
            )
        else:
            self._connection = http.client.HTTPConnection(host, parts.port, timeout=HTTP_TIMEOUT_SECONDS)

    def send(self) -> None:
        body = json.dumps({**self._event, "routing_key": BENCH_ROUTING_KEY}).encode()
        self._connection.request(
            "POST", self._path, body, {"Content-Type": "application/json", "Accept": "application/json"}
        )
        response = self._connection.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError(
                f"the receiver responded with HTTP {response.status} to the raw sender, expected 202"
            )

    def close(self) -> None:
        self._connection.close()


class HookSender:
    """``SparkExpectationsPagerDutyHook.send_event`` with the connection ``conn_id``."""

    def __init__(self, conn_id: str, event: dict[str, Any]) -> None:
        from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

        self._hook = SparkExpectationsPagerDutyHook(conn_id)
        self._event = event

    def send(self) -> None:
        result = self._hook.send_event(self._event)
        if result.status_code != 202:
            raise RuntimeError(
                f"the receiver responded with HTTP {result.status_code} to the hook, expected 202"
            )

    def close(self) -> None:
        self._hook.session.close()


class NewConnectionSender:
    """``requests.post`` per event, which opens and closes a connection (and a TLS session) each time."""

    def __init__(self, url: str, ca_file: str | None, event: dict[str, Any]) -> None:
        import requests

        self._post = requests.post
        self._url = url
        self._verify: str | bool = ca_file or True
        self._event = event

    def send(self) -> None:
        response = self._post(
            self._url,
            json={**self._event, "routing_key": BENCH_ROUTING_KEY},
            headers={"Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT_SECONDS,
            verify=self._verify,
        )
        if response.status_code != 202:
            raise RuntimeError(
                f"the receiver responded with HTTP {response.status_code} to requests.post, expected 202"
            )

    def close(self) -> None:
        pass


class PagerDutyClientSender:
    """python-pagerduty's ``EventsApiV2Client``, an httpx2 client that keeps its connection open.

    The client accepts only https base URLs. Its constructor takes ``base_url`` and passes
    ``verify``, here an SSL context with the receiver's certificate, on to httpx2.
    """

    def __init__(self, url: str, ca_file: str | None, event: dict[str, Any]) -> None:
        from pagerduty import EventsApiV2Client

        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=ca_file)
        self._client = EventsApiV2Client(
            BENCH_ROUTING_KEY, base_url=f"{parts.scheme}://{parts.netloc}", verify=context
        )
        self._dedup_key = str(event["dedup_key"])
        self._properties = {
            key: value for key, value in event.items() if key not in ("event_action", "dedup_key")
        }

    def send(self) -> None:
        # send_event raises unless the response is a 2xx with a dedup_key.
        self._client.send_event("trigger", dedup_key=self._dedup_key, **self._properties)

    def close(self) -> None:
        self._client.close()


def _senders_for(
    scheme: str, receiver: ReceiverProcess, conn_id: str, event: dict[str, Any]
) -> dict[str, Callable[[], Sender]]:
    """Return a factory per sender name; each sender gets its own dedup key."""

    def with_key(name: str) -> dict[str, Any]:
        return {**event, "dedup_key": f"bench-send/{scheme}/{name}"}

    factories: dict[str, Callable[[], Sender]] = {
        FLOOR: lambda: RawKeepAliveSender(receiver.url, receiver.ca_file, with_key("raw")),
        HOOK: lambda: HookSender(conn_id, with_key("hook")),
        NEW_CONNECTION: lambda: NewConnectionSender(receiver.url, receiver.ca_file, with_key("requests")),
    }
    if scheme == "https":
        factories[PAGERDUTY_CLIENT] = lambda: PagerDutyClientSender(
            receiver.url, receiver.ca_file, with_key("pagerduty")
        )
    return factories


@dataclass
class SenderFigures:
    """Wall-clock and CPU seconds per event of one sender, one figure per sample."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def _time_senders(
    senders: dict[str, Sender], receiver: ReceiverProcess, options: SendingOptions
) -> dict[str, SenderFigures]:
    """Time ``events_per_sample`` sends per sender per round, rotating the order each round.

    Many short rounds spread the load of other processes on the machine evenly over the
    senders. The receiver's records are cleared before each sample, so that its memory, and
    the time its garbage collector takes, is the same for every sender. CPU time is this
    process's, which only the sending thread uses while a sample runs.
    """
    for sender in senders.values():
        for _ in range(WARM_UP_EVENTS):
            sender.send()

    names = list(senders)
    figures = {name: SenderFigures() for name in names}
    for round_index in range(options.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            sender = senders[name]
            receiver.reset()
            cpu_started = time.process_time()
            started = time.perf_counter()
            for _ in range(options.events_per_sample):
                sender.send()
            figures[name].wall.append((time.perf_counter() - started) / options.events_per_sample)
            figures[name].cpu.append((time.process_time() - cpu_started) / options.events_per_sample)
    return figures


def _measure_scheme(scheme: str, event: dict[str, Any], options: SendingOptions) -> list[Row]:
    conn_id = f"se_pagerduty_bench_{scheme}"
    with ReceiverProcess(tls=scheme == "https") as receiver:
        variables = airflow_connection_variable(conn_id, receiver.url)
        if receiver.ca_file:
            # While a session's trust_env is on, which is the hook's default, requests verifies
            # with REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) when set, in place of the session's own
            # verify value. Pointing both at the receiver's certificate keeps the hook at its
            # defaults. The other senders pass the certificate themselves.
            variables |= {"REQUESTS_CA_BUNDLE": receiver.ca_file, "CURL_CA_BUNDLE": receiver.ca_file}
        with environment_variables(variables):
            senders = {
                name: factory() for name, factory in _senders_for(scheme, receiver, conn_id, event).items()
            }
            try:
                with stdout_to_devnull():
                    figures = _time_senders(senders, receiver, options)
            finally:
                for sender in senders.values():
                    sender.close()

    per_event = {name: median(sender_figures.wall) for name, sender_figures in figures.items()}
    floor = per_event[FLOOR]
    rows = []
    for name, seconds in per_event.items():
        check = ""
        if name == HOOK:
            check = verdict(seconds < per_event[NEW_CONNECTION], "ahead of new connection per event")
        rows.append(
            Row(
                f"{AREA} ({scheme})",
                name,
                f"{format_seconds(seconds)} per event",
                f"{options.rounds} x {options.events_per_sample}",
                f"{format_ratio(seconds / floor)} the floor; "
                f"client CPU {format_seconds(median(figures[name].cpu))} per event",
                check,
            )
        )
    return rows


def measure(options: SendingOptions) -> list[Row]:
    """Time each sender per scheme against a fresh receiver child process."""
    event = trigger_body()
    rows = []
    for scheme in options.schemes:
        rows.extend(_measure_scheme(scheme, event, options))
    return rows
