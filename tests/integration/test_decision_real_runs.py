"""The decision table on stats from real spark-expectations runs (tests/se_scenarios.py)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_se_pagerduty.decision import AlertKind, Decision, decide
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.settings import (
    CONF_ENABLED,
    CONF_ON_COMPLETION,
    CONF_ON_IGNORE_RULES,
    CONF_ON_START,
    AlertSettings,
)
from tests.se_scenarios import JOB_LEVEL_USER_CONF

pytestmark = pytest.mark.integration

FAILURE, BREACH = AlertKind.FAILURE, AlertKind.BREACH
JOB_LEVEL_ZERO = {
    "spark.expectations.notifications.on.error.drop.exceeds.threshold.breach": True,
    "spark.expectations.notifications.error.drop.threshold": 0,
}
NEVER_PAGING_TRIGGERS = {CONF_ON_START: True, CONF_ON_COMPLETION: True, CONF_ON_IGNORE_RULES: True}

# (scenario, user_conf, keep row_dq_rules, expected triggers, expected resolves)
DECISION_TABLE = [
    pytest.param("all_pass", None, True, {}, (FAILURE, BREACH), id="all-pass-resolves-both"),
    pytest.param("all_pass", NEVER_PAGING_TRIGGERS, True, {}, (FAILURE, BREACH), id="start-completion-never-page"),
    pytest.param("row_fail", None, True, {FAILURE: "critical"}, (BREACH,), id="row-fail-rule-pages-critical"),
    pytest.param("source_agg_failure", None, True, {FAILURE: "critical"}, (BREACH,), id="source-agg-failure-pages"),
    pytest.param("query_failure", None, True, {FAILURE: "critical"}, (BREACH,), id="query-failure-pages"),
    pytest.param("final_agg_failure", None, True, {FAILURE: "critical"}, (BREACH,), id="final-agg-failure-pages"),
    pytest.param("row_fail", {CONF_ENABLED: False}, True, {}, (), id="master-switch-off-sends-nothing"),
    pytest.param("row_drop_breach", None, True, {BREACH: "error"}, (FAILURE,), id="rule-breach-pages-error"),
    pytest.param("exactly_at_threshold", None, True, {BREACH: "error"}, (FAILURE,), id="exactly-at-threshold-pages"),
    pytest.param("below_threshold", None, True, {}, (FAILURE, BREACH), id="below-threshold-no-page"),
    pytest.param("alert_disabled_breach", None, True, {}, (FAILURE, BREACH), id="rule-alert-off-no-page"),
    pytest.param("alert_disabled_breach", None, False, {BREACH: "error"}, (FAILURE,), id="no-rule-list-assumes-alert-on"),
    pytest.param("ignore_only_failure", None, True, {}, (FAILURE, BREACH), id="ignore-rule-never-pages"),
    pytest.param("ignore_only_failure", None, False, {}, (FAILURE, BREACH), id="ignore-rule-without-rule-list"),
    pytest.param("ignore_only_failure", JOB_LEVEL_ZERO, True, {}, (FAILURE, BREACH), id="ignore-rule-drops-nothing"),
    pytest.param("job_level_breach", JOB_LEVEL_USER_CONF, True, {BREACH: "error"}, (FAILURE,), id="job-level-breach-on"),
    pytest.param("job_level_breach", None, True, {}, (FAILURE, BREACH), id="job-level-breach-off-by-default"),
    pytest.param("empty_input", JOB_LEVEL_ZERO, True, {}, (FAILURE, BREACH), id="empty-input-no-breach"),
]


def decide_on(payload: dict[str, Any], user_conf: dict[str, Any] | None, keep_rules: bool) -> Decision:
    if not keep_rules:
        payload = {key: value for key, value in payload.items() if key != "row_dq_rules"}
    return decide(parse_stats_payload(payload), AlertSettings.resolve(user_conf))


@pytest.mark.parametrize(("scenario", "user_conf", "keep_rules", "triggers", "resolves"), DECISION_TABLE)
def test_real_run_decision(
    se_payloads: dict[str, dict[str, Any]],
    scenario: str,
    user_conf: dict[str, Any] | None,
    keep_rules: bool,
    triggers: dict[AlertKind, str],
    resolves: tuple[AlertKind, ...],
) -> None:
    decision = decide_on(se_payloads[scenario], user_conf, keep_rules)

    assert {alert.kind: alert.severity for alert in decision.triggers} == triggers
    assert decision.resolves == resolves


def test_real_breach_names_rule_and_numbers(se_payloads: dict[str, dict[str, Any]]) -> None:
    decision = decide_on(se_payloads["row_drop_breach"], None, True)

    [breach_alert] = decision.triggers
    assert [(b.rule, b.failed_row_count, b.failed_percentage, b.threshold) for b in breach_alert.rule_breaches] == [
        ("id_is_present", 5, 5.0, 2.0)
    ]
    assert [(f.rule, f.failed_row_count) for f in decision.ignored_failures] == [("category_is_set", 3)]


def test_real_failed_run_lists_fail_rule(se_payloads: dict[str, dict[str, Any]]) -> None:
    decision = decide_on(se_payloads["row_fail"], None, True)

    [failure] = decision.triggers
    assert failure.failed_stages == ("row_dq",)
    assert [(r.rule, r.failed_row_count) for r in failure.failed_rules] == [("amount_not_negative", 11)]


def test_real_final_agg_failure_stage(se_payloads: dict[str, dict[str, Any]]) -> None:
    decision = decide_on(se_payloads["final_agg_failure"], None, True)

    [failure] = decision.triggers
    assert failure.failed_stages == ("final_agg_dq",)
    assert [(r.rule, r.stage) for r in failure.failed_rules] == [("all_rows_kept", "final_agg_dq")]


def test_real_job_level_breach_numbers(se_payloads: dict[str, dict[str, Any]]) -> None:
    decision = decide_on(se_payloads["job_level_breach"], JOB_LEVEL_USER_CONF, True)

    [breach_alert] = decision.triggers
    assert breach_alert.rule_breaches == ()
    assert breach_alert.job_breach is not None
    assert (breach_alert.job_breach.dropped_count, breach_alert.job_breach.dropped_percentage) == (30, 30.0)
