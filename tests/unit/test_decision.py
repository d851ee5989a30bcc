"""The alert decision on hand-built payloads: one case per row and edge of the decision table."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_se_pagerduty.decision import AlertKind, decide
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.settings import (
    CONF_ENABLED,
    CONF_ON_BREACH,
    CONF_ON_COMPLETION,
    CONF_ON_FAIL,
    CONF_ON_IGNORE_RULES,
    CONF_ON_START,
    CONF_THRESHOLD,
    AlertSettings,
)
from tests.payloads import make_payload, row_rule

FAILURE, BREACH = AlertKind.FAILURE, AlertKind.BREACH


def triggered(payload: dict[str, Any], **settings: Any) -> dict[AlertKind, str]:
    """Return the triggered kinds with their severity."""
    user_conf = settings.pop("user_conf", None)
    decision = decide(parse_stats_payload(payload), AlertSettings.resolve(user_conf, **settings))
    return {alert.kind: alert.severity for alert in decision.triggers}


CASES = [
    pytest.param(make_payload(rules=[row_rule("ok", 0)]), {}, {}, id="all-pass"),
    pytest.param(
        make_payload(rules=[row_rule("id_not_null", 5, action="fail")], run_status="Failed",
                     stages={"row_dq": "Failed"}),
        {},
        {FAILURE: "critical"},
        id="row-fail-rule-failed",
    ),
    pytest.param(
        make_payload(run_status="Failed", stages={"source_agg_dq": "Failed"}),
        {},
        {FAILURE: "critical"},
        id="source-agg-stage-failed",
    ),
    pytest.param(
        make_payload(run_status="Passed", stages={"final_query_dq": "Failed"}),
        {},
        {FAILURE: "critical"},
        id="final-query-stage-failed",
    ),
    pytest.param(
        make_payload(run_status="Failed", stages={"row_dq": "Failed"}),
        {"page_on_failure": False},
        {},
        id="failure-paging-off",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 30, threshold=2)]),
        {},
        {BREACH: "error"},
        id="rule-breach-over-threshold",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 20, threshold=2)]),
        {},
        {BREACH: "error"},
        id="rule-breach-exactly-at-threshold",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 19, threshold=2)]),
        {},
        {},
        id="rule-just-below-threshold",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 1, threshold=0)]),
        {},
        {BREACH: "error"},
        id="threshold-zero-one-row",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 0, threshold=0)]),
        {},
        {},
        id="threshold-zero-no-rows",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 500, threshold=2, alert=False)]),
        {},
        {},
        id="rule-alert-off-never-pages",
    ),
    pytest.param(
        make_payload(rules=[row_rule("tailnum", 900, action="ignore", threshold=0)]),
        {"page_on_error_drop_breach": True, "error_drop_threshold": 0},
        {},
        id="ignore-rule-never-pages",
    ),
    pytest.param(
        make_payload(rules=[row_rule("tailnum", 900, action="ignore", threshold=0)], with_rule_list=False),
        {},
        {},
        id="ignore-rule-without-rule-list",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 30, threshold=2, alert=False)], with_rule_list=False),
        {},
        {BREACH: "error"},
        id="without-rule-list-alert-assumed-on",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 100, alert=False)]),
        {"page_on_error_drop_breach": True, "error_drop_threshold": 10},
        {BREACH: "error"},
        id="job-level-breach-on",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 100, alert=False)]),
        {},
        {},
        id="job-level-breach-off-by-default",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 99, alert=False)]),
        {"page_on_error_drop_breach": True, "error_drop_threshold": 10},
        {},
        id="job-level-just-below",
    ),
    pytest.param(
        make_payload(input_count=0, rules=[row_rule("dep_time", 0, threshold=0)]),
        {"page_on_error_drop_breach": True, "error_drop_threshold": 0},
        {},
        id="empty-input-no-breach",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 30, threshold=2)], run_status="Failed",
                     stages={"row_dq": "Failed"}),
        {},
        {FAILURE: "critical", BREACH: "error"},
        id="failure-and-breach-both",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 30, threshold=2)], run_status="Failed",
                     stages={"row_dq": "Failed"}),
        {"failure_severity": "error", "breach_severity": "warning"},
        {FAILURE: "error", BREACH: "warning"},
        id="severities-set-by-user",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 30, threshold=2)], run_status="Failed",
                     stages={"row_dq": "Failed"}),
        {"enabled": False},
        {},
        id="master-switch-off",
    ),
    pytest.param(
        make_payload(rules=[row_rule("dep_time", 0)]),
        {"user_conf": {CONF_ON_START: True, CONF_ON_COMPLETION: True, CONF_ON_IGNORE_RULES: True}},
        {},
        id="start-completion-never-page",
    ),
]


@pytest.mark.parametrize(("payload", "settings", "expected"), CASES)
def test_decision_table_row(payload: dict[str, Any], settings: dict[str, Any], expected: dict[str, str]) -> None:
    assert triggered(payload, **settings) == expected


def test_one_breach_incident_for_many_rules() -> None:
    rules = [row_rule(f"rule_{i}", 50 + i, threshold=1) for i in range(40)]
    decision = decide(parse_stats_payload(make_payload(rules=rules)), AlertSettings())
    assert [a.kind for a in decision.triggers] == [BREACH]
    breaches = decision.triggers[0].rule_breaches
    assert len(breaches) == 40
    assert breaches[0].rule == "rule_39"
    assert breaches[0].failed_row_count == 89


def test_percentage_from_counts_not_stored_float() -> None:
    payload = make_payload(rules=[row_rule("dep_time", 20, threshold=2)])
    # A stored float32 percentage just under the threshold must not decide.
    payload["row_dq_error_threshold"][0]["error_drop_percentage"] = "1.9999999"
    payload["error_percentage"] = 1.9999999
    assert triggered(payload) == {BREACH: "error"}


def test_rounding_to_two_places_before_compare() -> None:
    # 1999 / 100000 = 1.999 %, rounded to 2.0 %, which reaches a threshold of 2.
    payload = make_payload(input_count=100_000, rules=[row_rule("dep_time", 1999, threshold=2)])
    assert triggered(payload) == {BREACH: "error"}


def test_user_conf_keys_apply() -> None:
    payload = make_payload(rules=[row_rule("dep_time", 100, alert=False)], run_status="Failed",
                           stages={"row_dq": "Failed"})
    conf = {CONF_ON_FAIL: False, CONF_ON_BREACH: True, CONF_THRESHOLD: 5}
    # row_dq failed, so the dropped share is not compared; only the failure could page.
    assert triggered(payload, user_conf=conf) == {}
    conf_passed = {CONF_ON_BREACH: True, CONF_THRESHOLD: 5}
    assert triggered(make_payload(rules=[row_rule("dep_time", 100, alert=False)]),
                     user_conf=conf_passed) == {BREACH: "error"}


def test_arguments_override_user_conf() -> None:
    payload = make_payload(run_status="Failed", stages={"row_dq": "Failed"})
    assert triggered(payload, user_conf={CONF_ON_FAIL: False}, page_on_failure=True) == {FAILURE: "critical"}
    assert triggered(payload, user_conf={CONF_ENABLED: False}) == {}
    assert triggered(payload, user_conf={CONF_ENABLED: False}, enabled=True) == {FAILURE: "critical"}


def test_master_switch_off_resolves_nothing() -> None:
    decision = decide(parse_stats_payload(make_payload()), AlertSettings(enabled=False))
    assert decision.triggers == ()
    assert decision.resolves == ()


def test_passing_run_resolves_both_kinds() -> None:
    decision = decide(parse_stats_payload(make_payload(rules=[row_rule("a", 0)])), AlertSettings())
    assert decision.resolves == (FAILURE, BREACH)


def test_breach_only_run_resolves_failure() -> None:
    payload = make_payload(rules=[row_rule("dep_time", 30, threshold=2)])
    decision = decide(parse_stats_payload(payload), AlertSettings())
    assert decision.resolves == (FAILURE,)


def test_resolve_on_success_off_resolves_nothing() -> None:
    decision = decide(parse_stats_payload(make_payload()), AlertSettings(resolve_on_success=False))
    assert decision.resolves == ()


def test_failed_task_without_stats_pages() -> None:
    decision = decide(None, AlertSettings(), task_failed=True, task_error="ValueError: boom")
    assert [(a.kind, a.severity) for a in decision.triggers] == [(FAILURE, "critical")]
    assert decision.triggers[0].task_error == "ValueError: boom"
    assert decision.resolves == ()


def test_ignore_failures_listed_not_paged() -> None:
    payload = make_payload(
        rules=[row_rule("tailnum", 40, action="ignore"), row_rule("id", 3, action="fail")],
        run_status="Failed",
        stages={"row_dq": "Failed"},
    )
    decision = decide(parse_stats_payload(payload), AlertSettings())
    assert [a.kind for a in decision.triggers] == [FAILURE]
    assert [f.rule for f in decision.ignored_failures] == ["tailnum"]
    assert [f.rule for f in decision.triggers[0].failed_rules] == ["id"]


def test_agg_ignore_failure_listed() -> None:
    agg = [{"rule": "sum_check", "action_if_failed": "ignore", "status": "fail", "description": "d"}]
    decision = decide(parse_stats_payload(make_payload(agg_results=agg)), AlertSettings())
    assert decision.triggers == ()
    assert [(f.rule, f.stage) for f in decision.ignored_failures] == [("sum_check", "source_agg_dq")]


def test_failed_row_dq_has_no_dropped_count() -> None:
    # spark-expectations leaves output_count at 0 when row_dq fails; that is not 100 % dropped.
    payload = make_payload(rules=[row_rule("id", 3, action="fail")], run_status="Failed", stages={"row_dq": "Failed"})
    payload["output_count"] = 0
    stats = parse_stats_payload(payload)
    assert stats.dropped_count is None
    decision = decide(stats, AlertSettings(page_on_error_drop_breach=True, error_drop_threshold=0))
    assert [a.kind for a in decision.triggers] == [FAILURE]
