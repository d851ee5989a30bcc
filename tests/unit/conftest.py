"""Fixtures for tests that send real HTTP to the local Events API receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from airflow_provider_se_pagerduty.testing import EventsApiReceiver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# A made-up integration key of the right shape. The leak tests search every output for it.
ROUTING_KEY = "Sk7Qw2Zr9Lm4Xp8Tn3Vb6Yc1Hd5Jf0Ga"


@pytest.fixture
def events_receiver() -> Iterator[EventsApiReceiver]:
    """A receiver on an OS-chosen port of 127.0.0.1 that stops after the test, or after 120 s."""
    with EventsApiReceiver(max_lifetime_seconds=120) as receiver:
        yield receiver


@pytest.fixture
def se_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an ``se_pagerduty`` connection as an AIRFLOW_CONN_ variable and return its id.

    Outside a task, ``BaseHook.get_connection`` in Airflow 3.3 reads such variables through
    the environment secrets backend before the metadata database, so no database is needed.
    """

    def define(
        host: str | None,
        password: str | None = ROUTING_KEY,
        conn_id: str = "se_pd_test",
        extra: dict[str, Any] | None = None,
    ) -> str:
        document: dict[str, Any] = {"conn_type": "se_pagerduty"}
        if host is not None:
            document["host"] = host
        if password is not None:
            document["password"] = password
        if extra is not None:
            document["extra"] = extra
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(document))
        return conn_id

    return define


@pytest.fixture
def task_logs() -> Iterator[list[dict[str, Any]]]:
    """Log entries of the hook, operator and notifier, written through Airflow's structlog.

    Airflow 3 writes these loggers with structlog straight to stdout, so pytest's caplog
    does not capture them. Each entry has the formatted ``event`` text and the ``log_level``.
    """
    with structlog.testing.capture_logs() as entries:
        yield entries


def log_lines(entries: list[dict[str, Any]], level: str | None = None) -> list[str]:
    """Return the messages of the captured entries, optionally only those of one level."""
    return [str(entry["event"]) for entry in entries if level is None or entry["log_level"] == level]


@pytest.fixture
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 whose port was free a moment ago, so connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2/enqueue"


@dataclass
class FakeTaskInstance:
    """The task instance attributes and XCom pull that the operator and notifier read."""

    xcom: dict[tuple[str, str], Any] = field(default_factory=dict)
    dag_id: str = "dq_orders"
    task_id: str = "check_orders"
    run_id: str = "scheduled__2026-01-01T00:00:00+00:00"
    try_number: int = 1
    map_index: int = -1
    state: str = "running"
    log_url: str = "http://localhost:8080/dags/dq_orders/runs/r/tasks/check_orders"

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get((task_ids, key))


def task_context(ti: FakeTaskInstance, exception: BaseException | None = None) -> dict[str, Any]:
    """Build the part of an Airflow context that the operator and notifier read."""
    context: dict[str, Any] = {"ti": ti, "task_instance": ti, "run_id": ti.run_id}
    if exception is not None:
        context["exception"] = exception
    return context
