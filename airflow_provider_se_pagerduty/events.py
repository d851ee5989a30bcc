"""Turn alert decisions into PagerDuty Events API v2 bodies (without the routing key)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_se_pagerduty.decision import Alert, AlertKind, Decision, FailedRule
from airflow_provider_se_pagerduty.dq_stats import percentage

if TYPE_CHECKING:
    from airflow_provider_se_pagerduty.dq_stats import DQStats

# Limits of the Events API v2.
MAX_DEDUP_KEY_CHARS = 255
MAX_SUMMARY_CHARS = 1024
MAX_EVENT_BYTES = 512 * 1024

# Limits of this provider, so that one incident stays readable and the body stays small.
MAX_LISTED_RULES = 50
MAX_DETAIL_TEXT_CHARS = 512
DEDUP_KEY_PREFIX = "se-pagerduty"
DEDUP_HASH_CHARS = 16
FALLBACK_SUMMARY = "spark-expectations data-quality alert"
CLIENT_NAME = "Apache Airflow (airflow-provider-se-pagerduty)"


@dataclass(frozen=True)
class Target:
    """The DQ target an incident belongs to: a product and a table."""

    product_id: str
    table_name: str


@dataclass(frozen=True)
class RunInfo:
    """The Airflow origin of an alert (DAG, task, run, try, log URL); every field may be unknown."""

    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: int | None = None
    map_index: int | None = None
    log_url: str | None = None


def dedup_key(target: Target, kind: AlertKind) -> str:
    """Derive the dedup key of one kind of incident for one DQ target.

    It depends only on the product, the table and the kind, so retries and later runs
    update the open incident, and the operator and the notifier agree on it. A key over
    255 characters keeps its head and replaces the tail with a hash of the whole key.
    """
    key = f"{DEDUP_KEY_PREFIX}/{target.product_id}/{target.table_name}/{kind.value}"
    if len(key) <= MAX_DEDUP_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:DEDUP_HASH_CHARS]
    return f"{key[: MAX_DEDUP_KEY_CHARS - DEDUP_HASH_CHARS - 1]}~{digest}"


def cut_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars`` characters, ending with an ellipsis when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1] + "\u2026"


def _cut_or_none(text: str | None) -> str | None:
    return None if text is None else cut_text(text, MAX_DETAIL_TEXT_CHARS)


def _count(value: int) -> str:
    return f"{value:,}"


def _rule_phrase(rule: FailedRule) -> str:
    if rule.failed_row_count is None:
        return f"{rule.rule} ({rule.stage})"
    share = f", {rule.failed_percentage:g}%" if rule.failed_percentage is not None else ""
    return f"{rule.rule} ({_count(rule.failed_row_count)} rows{share})"


def summarize(alert: Alert, target: Target, stats: DQStats | None, run: RunInfo) -> str:
    """Write the one-line summary: table, product, what failed and the numbers."""
    head = f"[DQ {alert.kind.value}] {target.table_name} ({target.product_id}): "
    parts: list[str] = []
    if alert.kind is AlertKind.FAILURE:
        if alert.failed_stages:
            parts.append(f"DQ job failed at {', '.join(alert.failed_stages)}")
        elif alert.task_failed:
            task = ".".join(name for name in (run.dag_id, run.task_id) if name) or "the DQ task"
            parts.append(f"task {task} failed")
        else:
            parts.append("DQ job failed")
        if alert.failed_rules:
            more = len(alert.failed_rules) - 1
            tail = f" and {more} more" if more else ""
            parts.append(f"fail rule {_rule_phrase(alert.failed_rules[0])}{tail}")
        if alert.task_error and not alert.failed_stages:
            parts.append(alert.task_error)
    else:
        for breach in alert.rule_breaches[:1]:
            parts.append(
                f"rule {breach.rule} failed {_count(breach.failed_row_count)} rows "
                f"({breach.failed_percentage:g}% >= threshold {breach.threshold:g}%)"
            )
        if len(alert.rule_breaches) > 1:
            parts.append(f"{len(alert.rule_breaches) - 1} more rule(s) over threshold")
        if alert.job_breach is not None:
            job = alert.job_breach
            parts.append(
                f"dropped {_count(job.dropped_count)} rows "
                f"({job.dropped_percentage:g}% >= job threshold {job.threshold:g}%)"
            )
    if stats is not None and stats.input_count is not None:
        parts.append(f"{_count(stats.input_count)} input rows")

    summary = " ".join((head + "; ".join(parts)).split())
    return cut_text(summary, MAX_SUMMARY_CHARS) or FALLBACK_SUMMARY


def _rule_details(rules: tuple[FailedRule, ...], limit: int) -> list[dict[str, Any]]:
    listed = []
    for rule in rules[:limit]:
        entry: dict[str, Any] = {
            "rule": cut_text(rule.rule, MAX_DETAIL_TEXT_CHARS),
            "stage": rule.stage,
            "action_if_failed": rule.action_if_failed,
        }
        if rule.failed_row_count is not None:
            entry["failed_row_count"] = rule.failed_row_count
        if rule.failed_percentage is not None:
            entry["failed_percentage"] = rule.failed_percentage
        if rule.description:
            entry["description"] = cut_text(rule.description, MAX_DETAIL_TEXT_CHARS)
        listed.append(entry)
    return listed


def custom_details(
    alert: Alert, decision: Decision, run: RunInfo, limit: int = MAX_LISTED_RULES
) -> dict[str, Any]:
    """Collect the numbers and names an on-call engineer needs, with lists capped at ``limit``."""
    stats = decision.stats
    details: dict[str, Any] = {"kind": alert.kind.value}
    if alert.task_failed:
        details["task_failed"] = True
        if alert.task_error:
            details["task_error"] = cut_text(alert.task_error, MAX_DETAIL_TEXT_CHARS)

    if stats is not None:
        details.update(
            {
                "input_count": stats.input_count,
                "output_count": stats.output_count,
                "error_count": stats.error_count,
                "dropped_count": stats.dropped_count,
                "dropped_percentage": (
                    percentage(stats.dropped_count, stats.input_count)
                    if stats.input_count and stats.dropped_count is not None
                    else None
                ),
                "run_status": stats.run_status,
                "stage_statuses": dict(stats.stage_statuses),
                "dq_run_id": _cut_or_none(stats.dq_run_id),
                "dq_run_datetime": _cut_or_none(stats.dq_run_datetime),
                "dq_env": _cut_or_none(stats.dq_env),
            }
        )

    if alert.failed_rules:
        details["failed_rules"] = _rule_details(alert.failed_rules, limit)
        details["failed_rules_total"] = len(alert.failed_rules)

    if alert.rule_breaches:
        details["breached_rules"] = [
            {
                "rule": cut_text(breach.rule, MAX_DETAIL_TEXT_CHARS),
                "action_if_failed": breach.action_if_failed,
                "failed_row_count": breach.failed_row_count,
                "failed_percentage": breach.failed_percentage,
                "threshold": breach.threshold,
            }
            for breach in alert.rule_breaches[:limit]
        ]
        details["breached_rules_total"] = len(alert.rule_breaches)

    if alert.job_breach is not None:
        details["job_breach"] = {
            "dropped_count": alert.job_breach.dropped_count,
            "dropped_percentage": alert.job_breach.dropped_percentage,
            "threshold": alert.job_breach.threshold,
        }

    if decision.ignored_failures:
        details["ignored_rule_failures"] = _rule_details(decision.ignored_failures, limit)
        details["ignored_rule_failures_total"] = len(decision.ignored_failures)
        details["ignored_rule_failures_note"] = "rules with action ignore are informational and never page"

    details.update(
        {
            "dag_id": run.dag_id,
            "task_id": run.task_id,
            "run_id": run.run_id,
            "try_number": run.try_number,
        }
    )
    if run.map_index is not None and run.map_index >= 0:
        details["map_index"] = run.map_index
    return details


def trigger_event(alert: Alert, decision: Decision, target: Target, run: RunInfo) -> dict[str, Any]:
    """Build the trigger body for one alert; the hook adds the routing key."""
    summary = summarize(alert, target, decision.stats, run)
    source = f"airflow:{run.dag_id}" if run.dag_id else "airflow"
    limit = MAX_LISTED_RULES
    while True:
        event: dict[str, Any] = {
            "event_action": "trigger",
            "dedup_key": dedup_key(target, alert.kind),
            "client": CLIENT_NAME,
            "payload": {
                "summary": summary,
                "source": source,
                "severity": alert.severity,
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                "component": cut_text(target.table_name, MAX_DETAIL_TEXT_CHARS),
                "group": cut_text(target.product_id, MAX_DETAIL_TEXT_CHARS),
                "class": alert.kind.value,
                "custom_details": custom_details(alert, decision, run, limit),
            },
        }
        if run.log_url:
            event["client_url"] = run.log_url
            event["links"] = [{"href": run.log_url, "text": "Airflow task log"}]
        # The routing key the hook adds is 32 characters; keep a margin for it.
        if limit == 0 or len(json.dumps(event).encode("utf-8")) < MAX_EVENT_BYTES - 1024:
            return event
        limit //= 2


def resolve_event(target: Target, kind: AlertKind) -> dict[str, Any]:
    """Build the resolve body for one kind of incident of a target."""
    return {"event_action": "resolve", "dedup_key": dedup_key(target, kind)}
