"""Decision cost: parse a stats payload, decide, and build the events, for growing numbers of rules."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from airflow_provider_se_pagerduty.alerting import plan_events, resolve_target
from airflow_provider_se_pagerduty.decision import decide
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.events import RunInfo
from airflow_provider_se_pagerduty.settings import AlertSettings
from benchmarks import payloads
from benchmarks.common import Row, format_ratio, format_seconds, median, time_per_call, verdict

AREA = "2 decision"
# Time per rule at the largest size may be at most this multiple of the time per rule at the
# reference size. The decision sorts the failed rules, so a little growth beyond linear is expected.
MAX_PER_RULE_GROWTH = 2.0
REFERENCE_RULE_COUNT = 1_000
RUN_INFO = RunInfo(dag_id="bench_dag", task_id="dq_check", run_id="manual__bench", try_number=1)


@dataclass(frozen=True)
class DecisionOptions:
    """Sizes and repeats of the decision measurement."""

    rule_counts: tuple[int, ...] = (10, 1_000, 10_000, 100_000)
    samples: int = 5
    min_sample_seconds: float = 0.3
    without_gc_row: bool = True


def decide_and_plan(payload: dict[str, object], settings: AlertSettings) -> int:
    """Parse, decide and build the event bodies, as the operator does between XCom and sending.

    Return the number of events built.
    """
    stats = parse_stats_payload(payload)
    decision = decide(stats, settings)
    target = resolve_target(stats, None, None, RUN_INFO.dag_id, RUN_INFO.task_id)
    return len(plan_events(decision, target, RUN_INFO))


def measure(options: DecisionOptions) -> list[Row]:
    """Time one decision per payload size and compare the time per rule across sizes."""
    settings = AlertSettings.resolve({})
    seconds_per_decision: dict[int, float] = {}
    rows: list[Row] = []
    for rule_count in options.rule_counts:
        payload = payloads.stats_payload(rule_count)
        event_count = decide_and_plan(payload, settings)
        gc.collect()
        figures = time_per_call(
            lambda payload=payload: decide_and_plan(payload, settings),
            options.samples,
            options.min_sample_seconds,
        )
        seconds_per_decision[rule_count] = median(figures)
        del payload
        rows.append(
            Row(
                AREA,
                f"parse + decide + build {event_count} events, {rule_count:,} row_dq rules",
                f"{format_seconds(seconds_per_decision[rule_count])} per decision",
                str(len(figures)),
                f"{format_seconds(seconds_per_decision[rule_count] / rule_count)} per rule",
            )
        )

    rows = _with_growth_check(rows, seconds_per_decision, options.rule_counts)
    if options.without_gc_row:
        rows.append(_largest_without_gc(options, settings, seconds_per_decision))
    return rows


def _largest_without_gc(
    options: DecisionOptions, settings: AlertSettings, seconds_per_decision: dict[int, float]
) -> Row:
    """Time the largest size again with the cyclic garbage collector off, to show its share."""
    largest = max(options.rule_counts)
    reference = _reference_size(options.rule_counts)
    payload = payloads.stats_payload(largest)
    gc.collect()
    gc.disable()
    try:
        figures = time_per_call(
            lambda: decide_and_plan(payload, settings), options.samples, options.min_sample_seconds
        )
    finally:
        gc.enable()
    seconds = median(figures)
    growth = seconds / largest / (seconds_per_decision[reference] / reference)
    return Row(
        AREA,
        f"same at {largest:,} rules, cyclic garbage collector off (context)",
        f"{format_seconds(seconds)} per decision",
        str(len(figures)),
        f"{format_seconds(seconds / largest)} per rule, {format_ratio(growth)} the per-rule time at "
        f"{reference:,} with the collector on",
    )


def _reference_size(rule_counts: tuple[int, ...]) -> int:
    """Return the size whose time per rule the others are compared with: 1,000, else the smallest."""
    return REFERENCE_RULE_COUNT if REFERENCE_RULE_COUNT in rule_counts else min(rule_counts)


def _with_growth_check(
    rows: list[Row], seconds_per_decision: dict[int, float], rule_counts: tuple[int, ...]
) -> list[Row]:
    """Add the per-rule ratio to the reference size and the linearity check on the largest size."""
    reference = _reference_size(rule_counts)
    reference_per_rule = seconds_per_decision[reference] / reference
    largest = max(rule_counts)
    checked = []
    for row, rule_count in zip(rows, rule_counts, strict=True):
        growth = seconds_per_decision[rule_count] / rule_count / reference_per_rule
        compared = f"{row.compared}, {format_ratio(growth)} the per-rule time at {reference:,}"
        check = ""
        if rule_count == largest and largest != reference:
            check = verdict(
                growth <= MAX_PER_RULE_GROWTH,
                f"per rule <= {MAX_PER_RULE_GROWTH:g}x at {reference:,}",
            )
        checked.append(Row(row.area, row.case, row.median, row.runs, compared, check))
    return checked
