"""Airflow glue shared by the operator and the notifier: context in, events out.

Both paths read the stats from XCom, decide with :func:`~.decision.decide`, log the decision
for the on-call engineer, and send the planned events through one hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_se_pagerduty.events import RunInfo, Target, resolve_event, trigger_event

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_se_pagerduty.decision import AlertKind, Decision
    from airflow_provider_se_pagerduty.dq_stats import DQStats
    from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

MAX_TASK_ERROR_CHARS = 300


class Logger(Protocol):
    """The logging calls used here; both ``logging.Logger`` and Airflow's task logger have them."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class PlannedEvent:
    """One event to send, with the kind, action and severity that the log and XCom record show."""

    kind: AlertKind
    action: str
    severity: str | None
    body: dict[str, Any]

    @property
    def dedup_key(self) -> str:
        return str(self.body["dedup_key"])

    def record(self) -> dict[str, Any]:
        """Return what the operator pushes to XCom for this event; never the integration key."""
        return {
            "kind": self.kind.value,
            "action": self.action,
            "severity": self.severity,
            "dedup_key": self.dedup_key,
        }


def run_info(context: Mapping[str, Any]) -> RunInfo:
    """Read dag_id, task_id, run_id, try number and log URL from an Airflow context."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    task = context.get("task")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None)
    task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    try_number = getattr(ti, "try_number", None)
    map_index = getattr(ti, "map_index", None)
    log_url: str | None
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # a missing [api] setting must not stop an alert
        log_url = None
    return RunInfo(
        dag_id=dag_id if isinstance(dag_id, str) else None,
        task_id=task_id if isinstance(task_id, str) else None,
        run_id=run_id if isinstance(run_id, str) else None,
        try_number=try_number if isinstance(try_number, int) else None,
        map_index=map_index if isinstance(map_index, int) else None,
        log_url=log_url if isinstance(log_url, str) and log_url else None,
    )


def describe_error(error: BaseException | None) -> str | None:
    """Return ``"Type: first line of the message"``, short enough for a summary."""
    if error is None:
        return None
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text[:MAX_TASK_ERROR_CHARS]


def resolve_target(
    stats: DQStats | None,
    product_id: str | None,
    table_name: str | None,
    dag_id: str | None,
    dq_task_id: str | None,
) -> Target:
    """Name the DQ target: the stats' product and table, else the given ones, else the DQ task.

    The operator and the notifier derive the same dedup keys from the same target, so a
    success can resolve what a failure opened.
    """
    product = (stats.product_id if stats else None) or product_id
    table = (stats.table_name if stats else None) or table_name
    if product and table:
        return Target(product, table)
    task = ".".join(name for name in (dag_id, dq_task_id) if name) or "unknown-task"
    return Target(product or "airflow", table or task)


def plan_events(decision: Decision, target: Target, run: RunInfo) -> list[PlannedEvent]:
    """Turn a decision into bodies: triggers first, then resolves."""
    planned = [
        PlannedEvent(alert.kind, "trigger", alert.severity, trigger_event(alert, decision, target, run))
        for alert in decision.triggers
    ]
    for kind in decision.resolves:
        planned.append(PlannedEvent(kind, "resolve", None, resolve_event(target, kind)))
    return planned


def log_decision(log: Logger, decision: Decision, target: Target, planned: list[PlannedEvent]) -> None:
    """Write what was decided and why, with each dedup key, for the on-call engineer."""
    log.info(
        "DQ target %s / %s: %s",
        target.product_id,
        target.table_name,
        "; ".join(decision.reasons) or "nothing to page",
    )
    for failure in decision.ignored_failures:
        log.info(
            "Rule %s (%s) with action ignore failed%s; it never pages",
            failure.rule,
            failure.stage,
            f" on {failure.failed_row_count} rows" if failure.failed_row_count is not None else "",
        )
    for event in planned:
        log.info(
            "Planned %s %s event%s for dedup key %s",
            event.kind.value,
            event.action,
            f" (severity {event.severity})" if event.severity else "",
            event.dedup_key,
        )


def send_planned(hook: SparkExpectationsPagerDutyHook, planned: list[PlannedEvent]) -> list[dict[str, Any]]:
    """Send every planned event in order and return their records; the first error stops it."""
    records = []
    for event in planned:
        hook.send_event(event.body)
        records.append(event.record())
    return records
