"""Property-based tests: no stats payload, however malformed or extreme, can break an alert.

Every generated payload ends either in ``InvalidStatsPayloadError`` naming a field, or in a
decision whose events PagerDuty would accept. The well-formed payloads also check the
invariants of the alert decision.
"""

from __future__ import annotations

import copy
import json
import math
import operator
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_se_pagerduty.alerting import plan_events, resolve_target
from airflow_provider_se_pagerduty.decision import AlertKind, Decision, decide
from airflow_provider_se_pagerduty.delivery import validate_event
from airflow_provider_se_pagerduty.dq_stats import STAGES, DQStats, parse_stats_payload
from airflow_provider_se_pagerduty.events import (
    MAX_DEDUP_KEY_CHARS,
    MAX_EVENT_BYTES,
    MAX_SUMMARY_CHARS,
    RunInfo,
)
from airflow_provider_se_pagerduty.exceptions import InvalidStatsPayloadError
from airflow_provider_se_pagerduty.settings import SEVERITIES, AlertSettings

# Examples per test, 4,850 in all. Hypothesis runs them on one core, so the file takes
# about 26 s on a 2-core AMD EPYC VM, almost all of it spent generating payloads.
MALFORMED_EXAMPLES = 2000
EXTREME_EXAMPLES = 1000
WELL_FORMED_EXAMPLES = 600
INVARIANT_EXAMPLES = 250

# A placeholder for the routing key that the hook adds, so that the size check counts it.
ROUTING_KEY_PLACEHOLDER = "R" * 32
HUGE_TEXT_CHARS = 600_000
MAX_DRAWN_RULES = 4

HEALTH_CHECKS_OFF = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

STATUS_VALUES = ("Passed", "Failed", "Skipped")
ACTION_VALUES = ("ignore", "drop", "fail")


def repeated(character: str, count: int) -> st.SearchStrategy[str]:
    """Build a long string on draw, so that reports show this recipe instead of the string."""
    return st.builds(operator.mul, st.just(character), st.just(count))


# Counts as spark-expectations writes them inside the arrays of maps, and strings that look
# like counts but are not whole, non-negative, finite numbers.
ODD_COUNT_STRINGS = (
    "11",
    " 11 ",
    "+5",
    "-3",
    "--5",
    "+-5",
    "11.0",
    "1e3",
    "0x1F",
    "",
    " ",
    "NaN",
    "inf",
    "-inf",
    "\u00b2",
    "\u0663",
    "\u0661\u0662",
    "1_000",
    "9" * 19,
)

# Values of every JSON type and then some: NaN, infinities, huge numbers and huge strings.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    # Built on draw, because the repr of an int with over 4300 digits raises ValueError.
    st.builds(pow, st.just(10), st.just(5000)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(ODD_COUNT_STRINGS),
    repeated("9", 5000),
    st.sampled_from(STATUS_VALUES + ACTION_VALUES + ("failed", "FAILED", "Unknown", "pass", "fail")),
    repeated("x", HUGE_TEXT_CHARS),
)
garbage = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=8,
)

rule_names = st.text(min_size=1, max_size=30).filter(lambda text: text.strip() != "")
statuses = st.one_of(st.none(), st.sampled_from(STATUS_VALUES))
actions = st.sampled_from(ACTION_VALUES)
agg_query_statuses = st.sampled_from(("pass", "fail", "Fail", "PASS"))
percent_floats = st.floats(min_value=0, max_value=100)
stored_percentages = st.one_of(st.none(), st.floats(allow_nan=True))
dq_statuses = st.one_of(
    st.none(),
    st.fixed_dictionaries({"run_status": statuses, **{stage: statuses for stage in STAGES}}),
)


class PayloadParts:
    """The strategies that one kind of well-formed payload draws from, built once."""

    def __init__(self, *, extreme: bool) -> None:
        self.max_count = 2**63 - 1 if extreme else 10**6
        self.max_rules = 120 if extreme else 5
        text = st.text(max_size=20)
        if extreme:
            text = st.one_of(text, repeated("\u00e9", HUGE_TEXT_CHARS), repeated("a", 2000))
        self.optional_text = st.one_of(st.none(), text)
        self.count = st.integers(min_value=0, max_value=self.max_count)
        self.optional_count = st.one_of(st.none(), self.count)
        self.agg_query_results = st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "rule": rule_names,
                        "action_if_failed": actions,
                        "status": agg_query_statuses,
                        "description": self.optional_text,
                    }
                ),
                max_size=3,
            ),
        )
        self.rule_count = st.integers(min_value=0, max_value=self.max_rules)


ORDINARY_PARTS = PayloadParts(extreme=False)
EXTREME_PARTS = PayloadParts(extreme=True)


@st.composite
def well_formed_payloads(draw: st.DrawFn, *, extreme: bool = False) -> dict[str, Any]:
    """Build a stats payload shaped as spark-expectations writes it, counts as strings inside arrays."""
    parts = EXTREME_PARTS if extreme else ORDINARY_PARTS

    input_count = draw(parts.optional_count)
    output_count = draw(parts.optional_count)
    if output_count is not None:
        output_count = min(output_count, input_count or 0)
    # Long rule lists repeat a few drawn rules under new names, which keeps generation fast.
    rule_count = draw(parts.rule_count)
    templates = [
        {
            "rule": draw(rule_names),
            "action_if_failed": draw(actions),
            "failed_row_count": str(draw(parts.count)),
            "threshold": draw(percent_floats),
            "alert": draw(st.booleans()),
            "description": draw(parts.optional_text),
        }
        for _ in range(min(rule_count, MAX_DRAWN_RULES))
    ]
    rules = [
        {**templates[index % len(templates)], "rule": f"{templates[index % len(templates)]['rule']}_{index}"}
        for index in range(rule_count)
    ]

    payload: dict[str, Any] = {
        "product_id": draw(parts.optional_text),
        "table_name": draw(parts.optional_text),
        "input_count": input_count,
        "error_count": draw(parts.optional_count),
        "output_count": output_count,
        "output_percentage": draw(stored_percentages),
        "error_percentage": draw(stored_percentages),
        "dq_status": draw(dq_statuses),
        "row_dq_res_summary": [
            {
                "rule": rule["rule"],
                "action_if_failed": rule["action_if_failed"],
                "failed_row_count": rule["failed_row_count"],
                "description": rule["description"],
                "rule_type": "row_dq",
            }
            for rule in rules
        ],
        "meta_dq_run_id": draw(parts.optional_text),
        "meta_dq_run_datetime": draw(parts.optional_text),
        "dq_env": draw(parts.optional_text),
    }
    for field in ("source_agg_dq_results", "final_agg_dq_results", "source_query_dq_results"):
        payload[field] = draw(parts.agg_query_results)
    if draw(st.booleans()):
        payload["row_dq_rules"] = [
            {
                "rule": rule["rule"],
                "action_if_failed": rule["action_if_failed"],
                "enable_error_drop_alert": rule["alert"],
                "error_drop_threshold": rule["threshold"],
            }
            for rule in rules
        ]
    else:
        payload["row_dq_error_threshold"] = [
            {
                "rule_name": rule["rule"],
                "action_if_failed": rule["action_if_failed"],
                "error_drop_threshold": str(rule["threshold"]),
            }
            for rule in rules
        ]
    return payload


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """List the path of every value inside nested dicts and lists."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


CHANGES = ("replace", "delete", "odd count", "negative", "wrap")
changes = st.sampled_from(CHANGES)
odd_counts = st.one_of(st.sampled_from(ODD_COUNT_STRINGS), repeated("9", 5000))
negative_values = st.sampled_from((-1, -(10**20), "-7", -0.5, -math.inf))
change_counts = st.integers(min_value=1, max_value=4)
excess_rows = st.integers(min_value=1, max_value=10**6)


@st.composite
def malformed_payloads(draw: st.DrawFn) -> Any:
    """Take a well-formed payload and break it: delete, replace or nest garbage at any depth."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(garbage)

    payload = draw(well_formed_payloads())
    for _ in range(draw(change_counts)):
        paths = _paths(payload)[1:]
        if not paths:
            break
        path = paths[draw(st.integers(min_value=0, max_value=len(paths) - 1))]
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        change = draw(changes)
        if change == "delete" and isinstance(parent, dict):
            del parent[last]
        elif change == "odd count":
            parent[last] = draw(odd_counts)
        elif change == "negative":
            parent[last] = draw(negative_values)
        elif change == "wrap":
            parent[last] = [parent[last], draw(garbage)]
        else:
            parent[last] = draw(garbage)
    if draw(st.booleans()) and isinstance(payload, dict) and payload.get("input_count") is not None:
        # Output larger than input, which no real run can produce.
        payload["output_count"] = draw(excess_rows) + _as_int(payload["input_count"])
    return payload


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


alert_settings = st.builds(
    AlertSettings,
    enabled=st.booleans(),
    page_on_failure=st.booleans(),
    page_on_error_drop_breach=st.booleans(),
    error_drop_threshold=st.floats(min_value=0, max_value=100),
    failure_severity=st.sampled_from(SEVERITIES),
    breach_severity=st.sampled_from(SEVERITIES),
    resolve_on_success=st.booleans(),
)
run_infos = st.builds(
    RunInfo,
    dag_id=st.one_of(st.none(), st.text(max_size=250)),
    task_id=st.one_of(st.none(), st.text(max_size=250)),
    run_id=st.one_of(st.none(), st.text(max_size=250)),
    try_number=st.one_of(st.none(), st.integers(min_value=0, max_value=100)),
    map_index=st.one_of(st.none(), st.integers(min_value=-1, max_value=1000)),
    log_url=st.one_of(st.none(), st.just("http://localhost:8080/dags/d/runs/r/tasks/t")),
)
task_errors = st.one_of(st.none(), st.text(max_size=300), st.just("E" * 5000))


def check_events(decision: Decision, stats: DQStats | None, run: RunInfo) -> None:
    """Check every planned event as the hook would before sending, and as PagerDuty would."""
    target = resolve_target(stats, None, None, run.dag_id, run.task_id)
    planned = plan_events(decision, target, run)
    assert len(planned) == len(decision.triggers) + len(decision.resolves)

    for event in planned:
        validate_event(event.body)

        body = {**event.body, "routing_key": ROUTING_KEY_PLACEHOLDER}
        encoded = json.dumps(body, allow_nan=False).encode("utf-8")
        assert len(encoded) < MAX_EVENT_BYTES, f"{event.action} body is {len(encoded)} bytes"

        dedup = event.body["dedup_key"]
        assert 1 <= len(dedup) <= MAX_DEDUP_KEY_CHARS
        assert ROUTING_KEY_PLACEHOLDER not in dedup

        if event.action == "trigger":
            summary = event.body["payload"]["summary"]
            assert 1 <= len(summary) <= MAX_SUMMARY_CHARS
            assert summary.strip() == summary
            assert event.body["payload"]["severity"] in SEVERITIES


def check_payload(payload: Any, alert: AlertSettings, run: RunInfo, task_error: str | None) -> None:
    """Run a payload through parsing, the decision and event building, as the operator does."""
    try:
        stats = parse_stats_payload(payload)
    except InvalidStatsPayloadError as error:
        hypothesis.event("rejected as invalid")
        assert f"field {error.field!r}" in str(error)
        return
    hypothesis.event("accepted")

    decision = decide(stats, alert)
    check_events(decision, stats, run)

    failed_task_decision = decide(stats, alert, task_failed=True, task_error=task_error)
    check_events(failed_task_decision, stats, run)


@settings(max_examples=MALFORMED_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=malformed_payloads(), alert=alert_settings, run=run_infos, task_error=task_errors)
def test_malformed_payload_raises_own_error_or_sends_valid(
    payload: Any, alert: AlertSettings, run: RunInfo, task_error: str | None
) -> None:
    check_payload(payload, alert, run, task_error)


@settings(max_examples=EXTREME_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(
    payload=well_formed_payloads(extreme=True),
    alert=alert_settings,
    run=run_infos,
    task_error=task_errors,
)
def test_extreme_payload_events_stay_within_limits(
    payload: dict[str, Any], alert: AlertSettings, run: RunInfo, task_error: str | None
) -> None:
    check_payload(payload, alert, run, task_error)


@settings(max_examples=WELL_FORMED_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=well_formed_payloads(), alert=alert_settings, run=run_infos)
def test_well_formed_payload_parses_and_sends_valid(
    payload: dict[str, Any], alert: AlertSettings, run: RunInfo
) -> None:
    stats = parse_stats_payload(payload)
    decision = decide(stats, alert)

    assert stats.input_count == payload["input_count"]
    assert len(stats.row_rule_results) == len(payload["row_dq_res_summary"])
    check_events(decision, stats, run)


def _without_ignore_rules(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop every rule with action ignore from every array of the payload."""
    stripped = copy.deepcopy(payload)
    for field in (
        "row_dq_res_summary",
        "row_dq_rules",
        "row_dq_error_threshold",
        "source_agg_dq_results",
        "final_agg_dq_results",
        "source_query_dq_results",
    ):
        if stripped.get(field) is not None:
            stripped[field] = [item for item in stripped[field] if item["action_if_failed"] != "ignore"]
    return stripped


@settings(max_examples=INVARIANT_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=well_formed_payloads(), alert=alert_settings, task_failed=st.booleans())
def test_ignore_rules_never_cause_trigger(
    payload: dict[str, Any], alert: AlertSettings, task_failed: bool
) -> None:
    with_ignore = decide(parse_stats_payload(payload), alert, task_failed=task_failed)
    without_ignore = decide(
        parse_stats_payload(_without_ignore_rules(payload)), alert, task_failed=task_failed
    )

    assert [a.kind for a in with_ignore.triggers] == [a.kind for a in without_ignore.triggers]
    assert with_ignore.resolves == without_ignore.resolves
    for alert_sent in with_ignore.triggers:
        assert all(rule.action_if_failed != "ignore" for rule in alert_sent.failed_rules)
        assert all(breach.action_if_failed != "ignore" for breach in alert_sent.rule_breaches)


@settings(max_examples=INVARIANT_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=well_formed_payloads(), alert=alert_settings, task_failed=st.booleans(), run=run_infos)
def test_master_switch_off_sends_nothing(
    payload: dict[str, Any], alert: AlertSettings, task_failed: bool, run: RunInfo
) -> None:
    switched_off = AlertSettings(**{**alert.__dict__, "enabled": False})
    stats = parse_stats_payload(payload)

    decision = decide(stats, switched_off, task_failed=task_failed, task_error="boom")
    planned = plan_events(decision, resolve_target(stats, None, None, run.dag_id, run.task_id), run)

    assert decision.triggers == ()
    assert decision.resolves == ()
    assert planned == []


@settings(max_examples=INVARIANT_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=well_formed_payloads(), alert=alert_settings, no_rows=st.sampled_from((0, None)))
def test_no_input_rows_never_breach(
    payload: dict[str, Any], alert: AlertSettings, no_rows: int | None
) -> None:
    payload["input_count"] = no_rows
    payload["output_count"] = no_rows

    decision = decide(parse_stats_payload(payload), alert)

    assert AlertKind.BREACH not in [a.kind for a in decision.triggers]


@settings(max_examples=INVARIANT_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(
    payload=well_formed_payloads(),
    alert=alert_settings,
    failed_stage=st.sampled_from(("run_status", *STAGES)),
)
def test_failed_stage_triggers_failure_incident(
    payload: dict[str, Any], alert: AlertSettings, failed_stage: str
) -> None:
    paging = AlertSettings(**{**alert.__dict__, "enabled": True, "page_on_failure": True})
    payload["dq_status"] = {**(payload["dq_status"] or {}), failed_stage: "Failed"}

    decision = decide(parse_stats_payload(payload), paging)

    failures = [a for a in decision.triggers if a.kind is AlertKind.FAILURE]
    assert len(failures) == 1
    assert failures[0].severity == paging.failure_severity
    assert AlertKind.FAILURE not in decision.resolves


@settings(max_examples=INVARIANT_EXAMPLES, deadline=None, suppress_health_check=HEALTH_CHECKS_OFF)
@given(payload=well_formed_payloads(), alert=alert_settings)
def test_failed_task_resolves_nothing(payload: dict[str, Any], alert: AlertSettings) -> None:
    decision = decide(parse_stats_payload(payload), alert, task_failed=True, task_error="boom")

    assert decision.resolves == ()
    if alert.enabled and alert.page_on_failure:
        assert AlertKind.FAILURE in [a.kind for a in decision.triggers]


def _minimal_payload(**fields: Any) -> dict[str, Any]:
    return {"product_id": "sales", "table_name": "orders", "input_count": 100, "output_count": 90, **fields}


@pytest.mark.parametrize(
    "text",
    ["--5", "+-5", "\u00b2", "\u0663", "1e3", "11.0", "9" * 5000, "9" * 20],
    ids=[
        "double-sign",
        "mixed-signs",
        "superscript",
        "arabic-indic",
        "exponent",
        "decimal",
        "5000-digits",
        "20-digits",
    ],
)
def test_odd_count_string_names_field(text: str) -> None:
    payload = _minimal_payload(
        row_dq_res_summary=[{"rule": "id_not_null", "action_if_failed": "drop", "failed_row_count": text}]
    )

    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(payload)

    assert raised.value.field == "row_dq_res_summary[0].failed_row_count"
    assert "row_dq_res_summary[0].failed_row_count" in str(raised.value)


def test_count_beyond_spark_long_rejected() -> None:
    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(_minimal_payload(input_count=2**63))

    assert raised.value.field == "input_count"
    assert "must be at most 9223372036854775807 rows" in str(raised.value)


def test_integer_too_large_to_print_named() -> None:
    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(_minimal_payload(error_count=10**5000))

    assert raised.value.field == "error_count"
    assert "an integer of 16610 bits" in str(raised.value)


def test_threshold_too_large_for_float_named() -> None:
    payload = _minimal_payload(
        row_dq_error_threshold=[
            {"rule_name": "r", "action_if_failed": "drop", "error_drop_threshold": 10**400}
        ]
    )

    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(payload)

    assert raised.value.field == "row_dq_error_threshold[0].error_drop_threshold"


def test_huge_run_metadata_keeps_event_small() -> None:
    huge = "\u00e9" * HUGE_TEXT_CHARS
    stats = parse_stats_payload(
        _minimal_payload(
            meta_dq_run_id=huge, meta_dq_run_datetime=huge, dq_env=huge, dq_status={"run_status": "Failed"}
        )
    )
    decision = decide(stats, AlertSettings())

    run = RunInfo(dag_id="dq", task_id="check")
    check_events(decision, stats, run)

    trigger = plan_events(decision, resolve_target(stats, None, None, "dq", "check"), run)[0]
    details = trigger.body["payload"]["custom_details"]
    assert trigger.action == "trigger"
    assert len(details["dq_run_id"]) == 512
    assert len(details["dq_env"]) == 512
