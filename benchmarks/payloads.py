"""Synthetic stats payloads shaped like spark-expectations 2.10's, with any number of row_dq rules.

The keys and value types follow what spark-expectations 2.10.1 writes to its stats table and
what ``airflow_provider_se_pagerduty.spark.stats_payload`` adds. Counts inside the arrays of
maps are strings. ``row_dq_error_threshold`` lists only the rules that failed on some rows.
``row_dq_rules`` lists every active row_dq rule with its alert switch and threshold.
"""

from __future__ import annotations

from typing import Any

PRODUCT_ID = "bench_product"
TABLE_NAME = "bench_orders"
INPUT_ROWS = 1_000_000

# Rule i gets ACTIONS[i % len(ACTIONS)]: 70 % drop, 20 % ignore, 10 % fail.
ACTIONS = ("drop", "drop", "ignore", "drop", "drop", "fail", "drop", "ignore", "drop", "drop")
# Rule i gets THRESHOLDS[i % len(THRESHOLDS)] percent; the small ones breach on a few rows.
THRESHOLDS = (0, 0.01, 0.02, 0.05, 0.1, 5, 10)


def failed_rows(index: int) -> int:
    """Failed rows of rule ``index``: every fourth rule passes, the others fail on 1 to 997 rows."""
    if index % 4 == 0:
        return 0
    return (index * 7919) % 997 + 1


def stats_payload(rule_count: int) -> dict[str, Any]:
    """Build a stats payload with ``rule_count`` row_dq rules, some failed and some over threshold.

    The run failed (some ``fail`` rules failed), so the decision triggers a failure incident
    and a breach incident and lists the rules in both.
    """
    summary = []
    thresholds = []
    rules = []
    for index in range(rule_count):
        name = f"rule_{index:06d}"
        action = ACTIONS[index % len(ACTIONS)]
        column = f"column_{index % 50}"
        description = f"{column} must satisfy check {index}"
        failed = failed_rows(index)
        threshold = THRESHOLDS[index % len(THRESHOLDS)]

        summary.append(
            {
                "rule_type": "row_dq",
                "rule": name,
                "priority": "medium",
                "column_name": column,
                "description": description,
                "tag": "validity",
                "action_if_failed": action,
                "failed_row_count": str(failed),
                "id_hash": f"{index:032x}",
                "expectation_hash": f"{index * 31:032x}",
            }
        )
        if failed > 0:
            thresholds.append(
                {
                    "rule_type": "row_dq",
                    "rule_name": name,
                    "column_name": column,
                    "error_drop_threshold": str(threshold),
                    "description": description,
                    "error_drop_percentage": str(round(failed / INPUT_ROWS * 100, 2)),
                    "action_if_failed": action,
                }
            )
        rules.append(
            {
                "rule": name,
                "action_if_failed": action,
                "enable_error_drop_alert": index % 2 == 1,
                "error_drop_threshold": threshold,
            }
        )

    failed_total = sum(failed_rows(index) for index in range(rule_count))
    error_count = min(failed_total, INPUT_ROWS)
    return {
        "product_id": PRODUCT_ID,
        "table_name": TABLE_NAME,
        "input_count": INPUT_ROWS,
        "error_count": error_count,
        "output_count": 0,
        "output_percentage": 0.0,
        "error_percentage": round(error_count / INPUT_ROWS * 100, 2),
        "source_agg_dq_results": [
            {
                "rule_type": "agg_dq",
                "rule": "row_count_positive",
                "description": "the table has rows",
                "tag": "completeness",
                "column_name": "",
                "action_if_failed": "fail",
                "status": "pass",
                "actual_value": str(INPUT_ROWS),
                "expected_value": "count(*) > 0",
            }
        ],
        "final_agg_dq_results": None,
        "source_query_dq_results": None,
        "final_query_dq_results": None,
        "row_dq_res_summary": summary,
        "row_dq_error_threshold": thresholds,
        "dq_status": {
            "source_agg_dq": "Passed",
            "source_query_dq": "Skipped",
            "row_dq": "Failed",
            "final_agg_dq": "Skipped",
            "final_query_dq": "Skipped",
            "run_status": "Failed",
        },
        "dq_run_time": {
            "run_time": 42.0,
            "source_agg_dq_run_time": 1.5,
            "source_query_dq_run_time": 0.0,
            "row_dq_run_time": 40.5,
            "final_agg_dq_run_time": 0.0,
            "final_query_dq_run_time": 0.0,
        },
        "dq_rules": {
            "rules": {"num_dq_rules": rule_count + 1, "num_row_dq_rules": rule_count},
            "agg_dq_rules": {
                "num_agg_dq_rules": 1,
                "num_source_agg_dq_rules": 1,
                "num_final_agg_dq_rules": 0,
            },
            "query_dq_rules": {
                "num_query_dq_rules": 0,
                "num_source_query_dq_rules": 0,
                "num_final_query_dq_rules": 0,
            },
        },
        "meta_dq_run_id": f"{PRODUCT_ID}_00000000-0000-0000-0000-000000000000",
        "meta_dq_run_date": "2026-01-05",
        "meta_dq_run_datetime": "2026-01-05T06:30:00",
        "dq_env": "bench",
        "se_job_metadata": '{"se_version": "2.10.1", "spark_version": "4.0.0"}',
        "row_dq_rules": rules,
    }
