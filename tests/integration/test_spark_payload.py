"""The stats payload built from real spark-expectations runs on local Spark."""

from __future__ import annotations

import datetime
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_se_pagerduty.exceptions import InvalidConfigurationError, InvalidStatsPayloadError
from airflow_provider_se_pagerduty.spark import (
    ROW_DQ_RULES_KEY,
    STATS_COLUMNS,
    run_and_push_stats,
    stats_payload,
)
from tests.se_scenarios import SCENARIO_NAMES, SCENARIOS, build_expectations, prepare_scenario

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration

ARRAY_COLUMNS = (
    "source_agg_dq_results",
    "final_agg_dq_results",
    "source_query_dq_results",
    "final_query_dq_results",
    "row_dq_res_summary",
    "row_dq_error_threshold",
)


class RecordingTaskInstance:
    """Fake ``context["ti"]`` that records what is pushed to XCom."""

    def __init__(self, push_error: Exception | None = None) -> None:
        self.pushed: dict[str, Any] = {}
        self.push_error = push_error

    def xcom_push(self, key: str, value: Any) -> None:
        if self.push_error is not None:
            raise self.push_error
        self.pushed[key] = value


def summary_of(payload: dict[str, Any], rule: str) -> dict[str, Any]:
    matches = [entry for entry in payload["row_dq_res_summary"] if entry["rule"] == rule]
    assert len(matches) == 1, f"expected one summary entry for {rule}, got {matches}"
    return matches[0]


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_payload_survives_json_round_trip(se_payloads: dict[str, dict[str, Any]], name: str) -> None:
    payload = se_payloads[name]

    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_payload_columns_match_stats_table(se_payloads: dict[str, dict[str, Any]], name: str) -> None:
    assert set(se_payloads[name]) == {*STATS_COLUMNS, ROW_DQ_RULES_KEY}


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_array_map_values_are_strings(se_payloads: dict[str, dict[str, Any]], name: str) -> None:
    payload = se_payloads[name]

    for column in ARRAY_COLUMNS:
        for entry in payload[column] or []:
            for key, value in entry.items():
                assert value is None or isinstance(value, str), f"{column}.{key} is {value!r}"


def test_payload_counts_of_drop_breach(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["row_drop_breach"]

    assert payload["product_id"] == "se_pagerduty_scenarios"
    assert payload["table_name"] == "scenario_row_drop_breach"
    assert payload["input_count"] == 100
    assert payload["error_count"] == 8
    assert payload["output_count"] == 95
    assert payload["dq_status"]["run_status"] == "Passed"
    assert summary_of(payload, "id_is_present")["failed_row_count"] == "5"
    assert summary_of(payload, "category_is_set")["failed_row_count"] == "3"
    assert summary_of(payload, "amount_not_negative")["failed_row_count"] == "0"


def test_payload_threshold_entries_of_drop_breach(se_payloads: dict[str, dict[str, Any]]) -> None:
    thresholds = {entry["rule_name"]: entry for entry in se_payloads["row_drop_breach"]["row_dq_error_threshold"]}

    assert set(thresholds) == {"id_is_present", "category_is_set"}
    assert thresholds["id_is_present"]["error_drop_threshold"] == "2"
    assert thresholds["id_is_present"]["error_drop_percentage"] == "5.0"


def test_row_dq_rules_of_drop_breach(se_payloads: dict[str, dict[str, Any]]) -> None:
    rules = sorted(se_payloads["row_drop_breach"][ROW_DQ_RULES_KEY], key=lambda rule: rule["rule"])

    assert rules == [
        {
            "rule": "amount_not_negative",
            "action_if_failed": "fail",
            "enable_error_drop_alert": False,
            "error_drop_threshold": 0,
        },
        {
            "rule": "category_is_set",
            "action_if_failed": "ignore",
            "enable_error_drop_alert": False,
            "error_drop_threshold": 0,
        },
        {
            "rule": "id_is_present",
            "action_if_failed": "drop",
            "enable_error_drop_alert": True,
            "error_drop_threshold": 2,
        },
    ]


def test_row_dq_rules_exclude_agg_rules(se_payloads: dict[str, dict[str, Any]]) -> None:
    rules = se_payloads["all_pass"][ROW_DQ_RULES_KEY]

    assert sorted(rule["rule"] for rule in rules) == ["category_is_set", "id_is_present"]


def test_payload_dates_are_iso_8601(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["all_pass"]

    run_date = datetime.date.fromisoformat(payload["meta_dq_run_date"])
    run_datetime = datetime.datetime.fromisoformat(payload["meta_dq_run_datetime"])
    assert run_datetime.date() == run_date


def test_payload_of_failed_row_rule(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["row_fail"]

    assert payload["dq_status"]["run_status"] == "Failed"
    assert payload["dq_status"]["row_dq"] == "Failed"
    assert payload["input_count"] == 100
    assert payload["error_count"] == 11
    assert summary_of(payload, "amount_not_negative")["failed_row_count"] == "11"
    assert summary_of(payload, "amount_not_negative")["action_if_failed"] == "fail"


def test_payload_of_failed_source_agg_rule(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["source_agg_failure"]

    assert payload["dq_status"]["run_status"] == "Failed"
    assert payload["dq_status"]["source_agg_dq"] == "Failed"
    assert [entry["rule"] for entry in payload["source_agg_dq_results"]] == ["amount_total_below_1000"]
    assert payload["source_agg_dq_results"][0]["status"] == "fail"


def test_payload_of_failed_query_rule(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["query_failure"]

    assert payload["dq_status"]["run_status"] == "Failed"
    assert payload["dq_status"]["source_query_dq"] == "Failed"
    assert [entry["rule"] for entry in payload["source_query_dq_results"]] == ["no_negative_amounts"]


def test_payload_of_empty_input(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["empty_input"]

    assert payload["input_count"] == 0
    assert payload["output_count"] == 0
    assert payload["dq_status"]["run_status"] == "Passed"


def test_payload_of_job_level_breach(se_payloads: dict[str, dict[str, Any]]) -> None:
    payload = se_payloads["job_level_breach"]

    assert payload["input_count"] == 100
    assert payload["output_count"] == 70
    assert all(not rule["enable_error_drop_alert"] for rule in payload[ROW_DQ_RULES_KEY])


def test_payload_read_without_stats_table(spark: SparkSession) -> None:
    se, dq_function = prepare_scenario(spark, "row_drop_breach", stats_table="handoff_in_context")
    dq_function()
    expected = stats_payload(se)

    spark.sql("DROP TABLE handoff_in_context")

    assert stats_payload(se) == expected


def test_payload_falls_back_to_stats_table(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    se, dq_function = prepare_scenario(spark, "row_fail", stats_table="handoff_fallback")
    with pytest.raises(Exception, match="action_if_failed suggested to fail"):
        dq_function()
    expected = stats_payload(se)

    # Empty the run context, as if the row had never been kept in memory.
    se._context._stats_dict = []
    with caplog.at_level(logging.INFO, logger="airflow_provider_se_pagerduty.spark"):
        from_table = stats_payload(se, SCENARIOS["row_fail"].target_table)

    assert from_table == expected
    assert "reading it from stats table handoff_fallback" in caplog.text


def test_payload_before_any_run_raises(spark: SparkSession) -> None:
    se = build_expectations(spark, SCENARIOS["all_pass"], stats_table="never_written")

    with pytest.raises(InvalidStatsPayloadError, match="never_written"):
        stats_payload(se)


def test_run_and_push_on_success(spark: SparkSession) -> None:
    se, dq_function = prepare_scenario(spark, "below_threshold", stats_table="push_on_success")
    task_instance = RecordingTaskInstance()

    payload = run_and_push_stats(se, dq_function, task_instance=task_instance)

    assert payload["dq_status"]["run_status"] == "Passed"
    assert payload["table_name"] == "scenario_below_threshold"
    assert task_instance.pushed == {}


def test_run_and_push_on_failure(spark: SparkSession) -> None:
    se, decorated = prepare_scenario(spark, "row_fail", stats_table="push_on_failure")
    raised: list[BaseException] = []

    def dq_function() -> Any:
        try:
            return decorated()
        except Exception as error:
            raised.append(error)
            raise

    task_instance = RecordingTaskInstance()
    with pytest.raises(Exception) as caught:
        run_and_push_stats(se, dq_function, task_instance=task_instance, xcom_key="se_stats")

    assert caught.value is raised[0]
    assert list(task_instance.pushed) == ["se_stats"]
    pushed = task_instance.pushed["se_stats"]
    assert pushed["dq_status"]["run_status"] == "Failed"
    assert pushed["error_count"] == 11
    assert json.loads(json.dumps(pushed)) == pushed


def test_run_and_push_when_push_fails(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    se, decorated = prepare_scenario(spark, "query_failure", stats_table="push_fails")
    raised: list[BaseException] = []

    def dq_function() -> Any:
        try:
            return decorated()
        except Exception as error:
            raised.append(error)
            raise

    task_instance = RecordingTaskInstance(push_error=RuntimeError("XCom backend is down"))
    with caplog.at_level(logging.ERROR, logger="airflow_provider_se_pagerduty.spark"), pytest.raises(
        Exception
    ) as caught:
        run_and_push_stats(se, dq_function, task_instance=task_instance)

    assert caught.value is raised[0]
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Could not push the stats of the failed DQ run" in errors[0].getMessage()
    assert "XCom backend is down" in caplog.text


def test_run_and_push_without_stats_row(spark: SparkSession) -> None:
    se = build_expectations(spark, SCENARIOS["all_pass"], stats_table="never_written")
    error = ValueError("source table not found")

    def dq_function() -> Any:
        raise error

    task_instance = RecordingTaskInstance()
    with pytest.raises(ValueError) as caught:
        run_and_push_stats(se, dq_function, task_instance=task_instance)

    assert caught.value is error
    assert task_instance.pushed == {}


def test_run_and_push_rejects_undecorated_function(spark: SparkSession) -> None:
    se = build_expectations(spark, SCENARIOS["all_pass"], stats_table="never_written")

    with pytest.raises(InvalidConfigurationError, match=r"se\.with_expectations"):
        run_and_push_stats(se, lambda: None, task_instance=RecordingTaskInstance())
