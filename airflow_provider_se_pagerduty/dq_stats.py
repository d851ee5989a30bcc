"""The spark-expectations stats payload as typed values.

The payload is one row of the spark-expectations stats table made JSON-safe. Every field may
be null, because a stage that did not run has no results. Values inside the arrays of maps
are strings, as spark-expectations writes them (``"failed_row_count": "11"``).
"""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from airflow_provider_se_pagerduty.exceptions import InvalidStatsPayloadError

# Spark's LongType, the type of the count columns of the stats table.
MAX_ROW_COUNT = 2**63 - 1
_COUNT_TEXT = re.compile(r"[+-]?[0-9]+")

STAGES = ("source_agg_dq", "source_query_dq", "row_dq", "final_agg_dq", "final_query_dq")
STATUSES = ("Passed", "Failed", "Skipped")
ACTIONS = ("ignore", "drop", "fail")

# The four result arrays of aggregate and query rules, with the stage each belongs to.
AGG_QUERY_RESULT_FIELDS = {
    "source_agg_dq_results": "source_agg_dq",
    "source_query_dq_results": "source_query_dq",
    "final_agg_dq_results": "final_agg_dq",
    "final_query_dq_results": "final_query_dq",
}


@dataclass(frozen=True, slots=True)
class RowRuleResult:
    """One row_dq rule as summarised in ``row_dq_res_summary``."""

    rule: str
    action_if_failed: str
    failed_row_count: int
    column_name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class AggQueryRuleFailure:
    """An aggregate or query rule whose result map has ``status: fail``."""

    rule: str
    stage: str
    action_if_failed: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RowRuleThreshold:
    """A row_dq rule's own alert switch and error-drop threshold in percent."""

    rule: str
    action_if_failed: str
    enable_error_drop_alert: bool
    error_drop_threshold: float


@dataclass(frozen=True, slots=True)
class DQStats:
    """A parsed stats payload.

    ``row_rule_thresholds`` comes from the optional ``row_dq_rules`` key; when that key is
    missing it is built from ``row_dq_error_threshold`` and ``rules_known`` is False.
    """

    product_id: str | None
    table_name: str | None
    input_count: int | None
    error_count: int | None
    output_count: int | None
    run_status: str | None
    stage_statuses: Mapping[str, str | None]
    row_rule_results: tuple[RowRuleResult, ...]
    agg_query_failures: tuple[AggQueryRuleFailure, ...]
    row_rule_thresholds: tuple[RowRuleThreshold, ...]
    rules_known: bool
    dq_run_id: str | None
    dq_run_datetime: str | None
    dq_env: str | None

    @property
    def dropped_count(self) -> int | None:
        """Rows that ``drop`` rules removed: input minus output, or None when unknown.

        A failed or skipped row_dq stage leaves ``output_count`` at 0 in spark-expectations
        2.10, so the difference counts dropped rows only when row_dq passed (or its status
        is not in the payload).
        """
        if self.input_count is None or self.output_count is None:
            return None
        if self.stage_statuses.get("row_dq") not in (None, "Passed"):
            return None
        return self.input_count - self.output_count


def percentage(part: int, whole: int) -> float:
    """Return ``part / whole * 100`` rounded to 2 places, as spark-expectations rounds it."""
    return round(part / whole * 100, 2)


def _optional_str(payload: Mapping[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value is None or isinstance(value, str):
        return value
    raise InvalidStatsPayloadError(field, value, "must be a string or null")


def _parse_count(value: Any, field: str) -> int | None:
    """Read a row count given as an int, an integral float or a string of ASCII digits."""
    if value is None:
        return None
    count: int | None = None
    if isinstance(value, bool):
        count = None
    elif isinstance(value, int):
        count = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        count = int(value)
    elif isinstance(value, str) and _COUNT_TEXT.fullmatch(value.strip()):
        # The length is checked before int(), which raises ValueError on over 4300 digits.
        if len(value.strip().lstrip("+-").lstrip("0")) > len(str(MAX_ROW_COUNT)):
            raise InvalidStatsPayloadError(field, value, f"must be at most {MAX_ROW_COUNT} rows")
        count = int(value.strip())
    if count is None:
        raise InvalidStatsPayloadError(field, value, "must be a whole number of rows")
    if count < 0:
        raise InvalidStatsPayloadError(field, value, "must not be negative")
    if count > MAX_ROW_COUNT:
        raise InvalidStatsPayloadError(field, value, f"must be at most {MAX_ROW_COUNT} rows")
    return count


def _parse_threshold(value: Any, field: str) -> float:
    number: float | None = None
    if isinstance(value, float):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100:
        # A larger int is out of range anyway, and float() raises OverflowError past 1e308.
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number <= 100:
        raise InvalidStatsPayloadError(field, value, "must be a percentage from 0 to 100")
    return number


def _parse_flag(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidStatsPayloadError(field, value, "must be true or false")


def _parse_status(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        for status in STATUSES:
            if value.strip().lower() == status.lower():
                return status
    raise InvalidStatsPayloadError(field, value, f"must be one of {', '.join(STATUSES)} or null")


def _parse_action(value: Any, field: str) -> str:
    if isinstance(value, str) and value.strip().lower() in ACTIONS:
        return value.strip().lower()
    raise InvalidStatsPayloadError(field, value, f"must be one of {', '.join(ACTIONS)}")


def _list_of_maps(payload: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    value = payload.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidStatsPayloadError(field, value, "must be a list of objects or null")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidStatsPayloadError(f"{field}[{index}]", item, "must be an object")
    return value


def _required_str(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if isinstance(value, str) and value.strip():
        return value
    raise InvalidStatsPayloadError(key, value, "must be a non-empty string")


def _optional_item_str(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _parse_stage_statuses(payload: Mapping[str, Any]) -> tuple[str | None, dict[str, str | None]]:
    dq_status = payload.get("dq_status")
    if dq_status is None:
        return None, dict.fromkeys(STAGES)
    if not isinstance(dq_status, Mapping):
        raise InvalidStatsPayloadError("dq_status", dq_status, "must be an object or null")
    run_status = _parse_status(dq_status.get("run_status"), "dq_status.run_status")
    stages = {stage: _parse_status(dq_status.get(stage), f"dq_status.{stage}") for stage in STAGES}
    return run_status, stages


def _parse_row_rule_results(payload: Mapping[str, Any]) -> tuple[RowRuleResult, ...]:
    results = []
    for index, item in enumerate(_list_of_maps(payload, "row_dq_res_summary")):
        # Field names are built only for an error: a payload may list 100,000 rules.
        try:
            failed = _parse_count(item.get("failed_row_count"), "failed_row_count")
            result = RowRuleResult(
                rule=_required_str(item, "rule"),
                action_if_failed=_parse_action(item.get("action_if_failed"), "action_if_failed"),
                failed_row_count=failed or 0,
                column_name=_optional_item_str(item, "column_name"),
                description=_optional_item_str(item, "description"),
            )
        except InvalidStatsPayloadError as error:
            raise error.within(f"row_dq_res_summary[{index}]") from None
        results.append(result)
    return tuple(results)


def _parse_agg_query_failures(payload: Mapping[str, Any]) -> tuple[AggQueryRuleFailure, ...]:
    failures = []
    for field, stage in AGG_QUERY_RESULT_FIELDS.items():
        for index, item in enumerate(_list_of_maps(payload, field)):
            try:
                failure = _agg_query_failure(item, stage)
            except InvalidStatsPayloadError as error:
                raise error.within(f"{field}[{index}]") from None
            if failure is not None:
                failures.append(failure)
    return tuple(failures)


def _agg_query_failure(item: Mapping[str, Any], stage: str) -> AggQueryRuleFailure | None:
    status = item.get("status")
    if not isinstance(status, str) or status.strip().lower() not in ("pass", "fail"):
        raise InvalidStatsPayloadError("status", status, "must be pass or fail")
    if status.strip().lower() != "fail":
        return None
    return AggQueryRuleFailure(
        rule=_required_str(item, "rule"),
        stage=stage,
        action_if_failed=_parse_action(item.get("action_if_failed"), "action_if_failed"),
        description=_optional_item_str(item, "description"),
    )


def _parse_row_rule_thresholds(payload: Mapping[str, Any]) -> tuple[tuple[RowRuleThreshold, ...], bool]:
    """Read the rules' alert switches from ``row_dq_rules``, else from ``row_dq_error_threshold``."""
    thresholds = []
    if payload.get("row_dq_rules") is not None:
        for index, item in enumerate(_list_of_maps(payload, "row_dq_rules")):
            try:
                threshold = RowRuleThreshold(
                    rule=_required_str(item, "rule"),
                    action_if_failed=_parse_action(item.get("action_if_failed"), "action_if_failed"),
                    enable_error_drop_alert=_parse_flag(
                        item.get("enable_error_drop_alert"), "enable_error_drop_alert"
                    ),
                    error_drop_threshold=_parse_threshold(
                        item.get("error_drop_threshold"), "error_drop_threshold"
                    ),
                )
            except InvalidStatsPayloadError as error:
                raise error.within(f"row_dq_rules[{index}]") from None
            thresholds.append(threshold)
        return tuple(thresholds), True

    # The stats row alone does not say which rules have their alert switched on. Taking every
    # listed rule as switched on may page once too often, which beats missing a page.
    for index, item in enumerate(_list_of_maps(payload, "row_dq_error_threshold")):
        try:
            threshold = RowRuleThreshold(
                rule=_required_str(item, "rule_name"),
                action_if_failed=_parse_action(item.get("action_if_failed"), "action_if_failed"),
                enable_error_drop_alert=True,
                error_drop_threshold=_parse_threshold(
                    item.get("error_drop_threshold"), "error_drop_threshold"
                ),
            )
        except InvalidStatsPayloadError as error:
            raise error.within(f"row_dq_error_threshold[{index}]") from None
        thresholds.append(threshold)
    return tuple(thresholds), False


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector, and restore it only if it was on.

    Parsing a payload with 100,000 rules allocates about a million small objects, and
    deciding on it some hundred thousand more, none in a reference cycle. Each allocation
    burst made the collector rescan every live object, the payload included, so the time
    grew faster than the number of rules.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_stats_payload(payload: Any) -> DQStats:
    """Check a stats payload and turn it into :class:`DQStats`.

    :raises InvalidStatsPayloadError: naming the first field that is malformed.
    """
    with cyclic_gc_paused():
        return _parse_stats_payload(payload)


def _parse_stats_payload(payload: Any) -> DQStats:
    if not isinstance(payload, Mapping):
        raise InvalidStatsPayloadError("payload", payload, "must be an object (a dict of stats columns)")

    input_count = _parse_count(payload.get("input_count"), "input_count")
    output_count = _parse_count(payload.get("output_count"), "output_count")
    if input_count is not None and output_count is not None and output_count > input_count:
        raise InvalidStatsPayloadError(
            "output_count", output_count, f"must not exceed input_count ({input_count})"
        )
    run_status, stage_statuses = _parse_stage_statuses(payload)
    row_rule_thresholds, rules_known = _parse_row_rule_thresholds(payload)

    return DQStats(
        product_id=_optional_str(payload, "product_id"),
        table_name=_optional_str(payload, "table_name"),
        input_count=input_count,
        error_count=_parse_count(payload.get("error_count"), "error_count"),
        output_count=output_count,
        run_status=run_status,
        stage_statuses=stage_statuses,
        row_rule_results=_parse_row_rule_results(payload),
        agg_query_failures=_parse_agg_query_failures(payload),
        row_rule_thresholds=row_rule_thresholds,
        rules_known=rules_known,
        dq_run_id=_optional_str(payload, "meta_dq_run_id"),
        dq_run_datetime=_optional_str(payload, "meta_dq_run_datetime"),
        dq_env=_optional_str(payload, "dq_env"),
    )
