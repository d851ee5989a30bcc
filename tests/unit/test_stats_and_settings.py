"""Parsing of stats payloads and settings: bad input names the field and the value."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.exceptions import InvalidConfigurationError, InvalidStatsPayloadError
from airflow_provider_se_pagerduty.settings import CONF_ON_FAIL, CONF_THRESHOLD, AlertSettings
from tests.payloads import make_payload, row_rule


def with_field(field: str, value: Any) -> dict[str, Any]:
    payload = make_payload(rules=[row_rule("dep_time", 3)])
    payload[field] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "field", "shown"),
    [
        (["not", "a", "dict"], "payload", "['not', 'a', 'dict']"),
        (with_field("input_count", "many"), "input_count", "'many'"),
        (with_field("input_count", -4), "input_count", "-4"),
        (with_field("input_count", float("nan")), "input_count", "nan"),
        (with_field("output_count", 5000), "output_count", "5000"),
        (with_field("dq_status", {"run_status": "Exploded"}), "dq_status.run_status", "'Exploded'"),
        (with_field("row_dq_res_summary", "oops"), "row_dq_res_summary", "'oops'"),
        (with_field("product_id", 42), "product_id", "42"),
    ],
)
def test_bad_payload_names_field_and_value(payload: Any, field: str, shown: str) -> None:
    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(payload)
    assert raised.value.field == field
    assert f"field {field!r}" in str(raised.value)
    assert shown in str(raised.value)


def test_bad_failed_row_count_names_index() -> None:
    payload = make_payload(rules=[row_rule("a", 1), row_rule("b", 2)])
    payload["row_dq_res_summary"][1]["failed_row_count"] = "eleven"
    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(payload)
    assert raised.value.field == "row_dq_res_summary[1].failed_row_count"


def test_string_counts_in_arrays_are_parsed() -> None:
    stats = parse_stats_payload(make_payload(rules=[row_rule("dep_time", 11)]))
    assert stats.row_rule_results[0].failed_row_count == 11


def test_nulls_everywhere_are_accepted() -> None:
    payload = dict.fromkeys(make_payload(), None)
    stats = parse_stats_payload(payload)
    assert stats.input_count is None
    assert stats.run_status is None
    assert stats.row_rule_results == ()


def test_huge_value_quoted_short() -> None:
    with pytest.raises(InvalidStatsPayloadError) as raised:
        parse_stats_payload(with_field("table_name", ["x" * 100_000]))
    assert len(str(raised.value)) < 400


def test_settings_defaults() -> None:
    assert AlertSettings.resolve() == AlertSettings(
        enabled=True,
        page_on_failure=True,
        page_on_error_drop_breach=False,
        error_drop_threshold=100.0,
        failure_severity="critical",
        breach_severity="error",
        resolve_on_success=True,
    )


def test_settings_accept_string_switches() -> None:
    settings = AlertSettings.resolve({CONF_ON_FAIL: "False", CONF_THRESHOLD: "2.5"})
    assert settings.page_on_failure is False
    assert settings.error_drop_threshold == 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_severity": "urgent"}, "failure_severity: expected one of critical, error, warning, info, got 'urgent'"),
        ({"error_drop_threshold": 150}, "error_drop_threshold: expected a percentage from 0 to 100, got 150"),
        ({"user_conf": {CONF_ON_FAIL: "maybe"}}, f"user_conf[{CONF_ON_FAIL!r}]: expected true or false, got 'maybe'"),
        ({"user_conf": "not a dict"}, "user_conf: expected a dict, got 'not a dict'"),
    ],
)
def test_bad_settings_name_field_and_value(kwargs: dict[str, Any], message: str) -> None:
    user_conf = kwargs.pop("user_conf", None)
    with pytest.raises(InvalidConfigurationError) as raised:
        AlertSettings.resolve(user_conf, **kwargs)
    assert message in str(raised.value)
