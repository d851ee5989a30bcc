"""The alert decision: which incidents a DQ run triggers and which it resolves.

Only failures and breached error thresholds page. Job start and completion never page, and
neither do rules whose action is ``ignore``; their failures are listed in other incidents.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_se_pagerduty.dq_stats import (
    STAGES,
    AggQueryRuleFailure,
    DQStats,
    cyclic_gc_paused,
    percentage,
)

if TYPE_CHECKING:
    from airflow_provider_se_pagerduty.settings import AlertSettings


class AlertKind(enum.StrEnum):
    """The two conditions that page; each has its own incident per DQ target."""

    FAILURE = "failure"
    BREACH = "breach"


@dataclass(frozen=True, slots=True)
class FailedRule:
    """A rule with action ``fail`` (or ``ignore``, when listed as informational) that failed."""

    rule: str
    stage: str
    action_if_failed: str
    failed_row_count: int | None = None
    failed_percentage: float | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RuleBreach:
    """A row_dq rule whose failed rows reached its own error-drop threshold."""

    rule: str
    action_if_failed: str
    failed_row_count: int
    failed_percentage: float
    threshold: float


@dataclass(frozen=True, slots=True)
class JobBreach:
    """The share of rows that ``drop`` rules removed reached the job-level threshold."""

    dropped_count: int
    dropped_percentage: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Alert:
    """One incident to trigger, with everything its summary and details need."""

    kind: AlertKind
    severity: str
    task_failed: bool = False
    task_error: str | None = None
    failed_stages: tuple[str, ...] = ()
    failed_rules: tuple[FailedRule, ...] = ()
    rule_breaches: tuple[RuleBreach, ...] = ()
    job_breach: JobBreach | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The events to trigger and resolve for one DQ target, with the reasons for the task log."""

    stats: DQStats | None
    triggers: tuple[Alert, ...] = ()
    resolves: tuple[AlertKind, ...] = ()
    ignored_failures: tuple[FailedRule, ...] = ()
    reasons: tuple[str, ...] = field(default=())


def _failed_stages(stats: DQStats) -> tuple[str, ...]:
    return tuple(stage for stage in STAGES if stats.stage_statuses.get(stage) == "Failed")


def _row_rule_failures(stats: DQStats, action: str) -> list[FailedRule]:
    failures = []
    for result in stats.row_rule_results:
        if result.action_if_failed != action or result.failed_row_count <= 0:
            continue
        share = percentage(result.failed_row_count, stats.input_count) if stats.input_count else None
        failures.append(
            FailedRule(
                rule=result.rule,
                stage="row_dq",
                action_if_failed=action,
                failed_row_count=result.failed_row_count,
                failed_percentage=share,
                description=result.description,
            )
        )
    return failures


def _agg_query_failures(stats: DQStats, action: str) -> list[FailedRule]:
    def as_failed_rule(failure: AggQueryRuleFailure) -> FailedRule:
        return FailedRule(
            rule=failure.rule,
            stage=failure.stage,
            action_if_failed=failure.action_if_failed,
            description=failure.description,
        )

    return [as_failed_rule(f) for f in stats.agg_query_failures if f.action_if_failed == action]


def _largest_first(rules: list[FailedRule]) -> tuple[FailedRule, ...]:
    return tuple(sorted(rules, key=lambda rule: (-(rule.failed_row_count or 0), rule.stage, rule.rule)))


def _rule_breaches(stats: DQStats) -> tuple[RuleBreach, ...]:
    """Compare each alert-enabled, non-``ignore`` row rule with its own threshold.

    Percentages come from the counts, not from the stored float32 percentages, and are
    compared with ``>=`` as spark-expectations does. A rule with no failed rows never breaches,
    so a threshold of 0 means "any failed row".
    """
    if not stats.input_count:
        return ()
    failed_rows = {result.rule: result.failed_row_count for result in stats.row_rule_results}
    breaches = []
    for rule in stats.row_rule_thresholds:
        if not rule.enable_error_drop_alert or rule.action_if_failed == "ignore":
            continue
        failed = failed_rows.get(rule.rule, 0)
        if failed <= 0:
            continue
        share = percentage(failed, stats.input_count)
        if share >= rule.error_drop_threshold:
            breaches.append(
                RuleBreach(
                    rule=rule.rule,
                    action_if_failed=rule.action_if_failed,
                    failed_row_count=failed,
                    failed_percentage=share,
                    threshold=rule.error_drop_threshold,
                )
            )
    breaches.sort(key=lambda breach: (-breach.failed_row_count, breach.rule))
    return tuple(breaches)


def _job_breach(stats: DQStats, threshold: float) -> JobBreach | None:
    """Compare the share of dropped rows with the job-level threshold.

    With no input rows nothing was dropped, and an unknown dropped count (row_dq did not
    pass) is not compared.
    """
    dropped = stats.dropped_count
    if not stats.input_count or dropped is None or dropped <= 0:
        return None
    share = percentage(dropped, stats.input_count)
    if share < threshold:
        return None
    return JobBreach(dropped_count=dropped, dropped_percentage=share, threshold=threshold)


def decide(
    stats: DQStats | None,
    settings: AlertSettings,
    *,
    task_failed: bool = False,
    task_error: str | None = None,
) -> Decision:
    """Decide which incidents to trigger and which to resolve for one DQ run.

    :param stats: the run's parsed stats, or None when the task pushed none.
    :param settings: the merged alert settings.
    :param task_failed: True when called for a DQ task that failed (failure callback).
    :param task_error: a one-line description of the task's exception, for the incident.
    """
    if not settings.enabled:
        return Decision(stats=stats, reasons=("PagerDuty alerts are switched off: nothing is sent",))
    with cyclic_gc_paused():
        return _decide(stats, settings, task_failed, task_error)


def _decide(
    stats: DQStats | None, settings: AlertSettings, task_failed: bool, task_error: str | None
) -> Decision:
    reasons: list[str] = []
    triggers: list[Alert] = []
    resolves: list[AlertKind] = []

    failed_stages: tuple[str, ...] = ()
    failed_rules: tuple[FailedRule, ...] = ()
    ignored: tuple[FailedRule, ...] = ()
    rule_breaches: tuple[RuleBreach, ...] = ()
    job_breach: JobBreach | None = None
    run_failed = False
    if stats is not None:
        failed_stages = _failed_stages(stats)
        run_failed = stats.run_status == "Failed" or bool(failed_stages)
        failed_rules = _largest_first(_row_rule_failures(stats, "fail") + _agg_query_failures(stats, "fail"))
        ignored = _largest_first(_row_rule_failures(stats, "ignore") + _agg_query_failures(stats, "ignore"))
        rule_breaches = _rule_breaches(stats)
        if settings.page_on_error_drop_breach:
            job_breach = _job_breach(stats, settings.error_drop_threshold)

    # Failure: the DQ job failed (a rule with action fail) or the DQ task itself failed.
    failure_seen = task_failed or run_failed
    if failure_seen and settings.page_on_failure:
        triggers.append(
            Alert(
                kind=AlertKind.FAILURE,
                severity=settings.failure_severity,
                task_failed=task_failed,
                task_error=task_error,
                failed_stages=failed_stages,
                failed_rules=failed_rules,
            )
        )
        reasons.append(_failure_reason(task_failed, failed_stages))
    elif failure_seen:
        reasons.append("the DQ run failed, but paging on failure is off")

    # Breach: rule-level thresholds always count; the job-level one only when switched on.
    breach_seen = bool(rule_breaches) or job_breach is not None
    if breach_seen:
        triggers.append(
            Alert(
                kind=AlertKind.BREACH,
                severity=settings.breach_severity,
                rule_breaches=rule_breaches,
                job_breach=job_breach,
            )
        )
        reasons.append(_breach_reason(rule_breaches, job_breach))

    if ignored:
        reasons.append(
            f"{len(ignored)} rule(s) with action ignore failed ({', '.join(r.rule for r in ignored[:5])}); "
            "they never page"
        )

    # A kind whose condition is absent from this run is over; a failed task resolves nothing.
    if settings.resolve_on_success and not task_failed:
        if not failure_seen:
            resolves.append(AlertKind.FAILURE)
        if not breach_seen:
            resolves.append(AlertKind.BREACH)
    if not triggers and not failure_seen:
        reasons.append("no failure and no breached threshold: nothing to page")

    return Decision(
        stats=stats,
        triggers=tuple(triggers),
        resolves=tuple(resolves),
        ignored_failures=ignored,
        reasons=tuple(reasons),
    )


def _failure_reason(task_failed: bool, failed_stages: tuple[str, ...]) -> str:
    if failed_stages:
        stages = ", ".join(failed_stages)
        if task_failed:
            return f"the DQ task failed and the DQ run failed at {stages}"
        return f"the DQ run failed at {stages}"
    if task_failed:
        return "the DQ task failed"
    return "the DQ run status is Failed"


def _breach_reason(rule_breaches: tuple[RuleBreach, ...], job_breach: JobBreach | None) -> str:
    parts = [
        f"rule {b.rule} failed {b.failed_percentage:g}% of rows (threshold {b.threshold:g}%)"
        for b in rule_breaches[:3]
    ]
    if len(rule_breaches) > 3:
        parts.append(f"{len(rule_breaches) - 3} more rule(s)")
    if job_breach is not None:
        parts.append(
            f"dropped {job_breach.dropped_percentage:g}% of rows (job threshold {job_breach.threshold:g}%)"
        )
    return "error threshold breached: " + "; ".join(parts)
