"""Build stats payloads shaped like the rows spark-expectations writes, for unit tests."""

from __future__ import annotations

from typing import Any


def row_rule(
    rule: str,
    failed: int,
    *,
    action: str = "drop",
    threshold: float = 100,
    alert: bool = True,
) -> dict[str, Any]:
    """Describe one row_dq rule and its failed row count."""
    return {
        "rule": rule,
        "failed": failed,
        "action": action,
        "threshold": threshold,
        "alert": alert,
    }


def make_payload(
    *,
    input_count: int = 1000,
    rules: list[dict[str, Any]] | None = None,
    run_status: str = "Passed",
    stages: dict[str, str] | None = None,
    agg_results: list[dict[str, str]] | None = None,
    with_rule_list: bool = True,
    product_id: str = "flights_product",
    table_name: str = "dq.flights",
) -> dict[str, Any]:
    """Return a JSON-safe stats payload; counts inside arrays are strings, as in real rows."""
    rules = rules or []
    dropped_rows = sum(r["failed"] for r in rules if r["action"] == "drop")
    error_rows = sum(r["failed"] for r in rules)
    output_count = max(input_count - dropped_rows, 0)
    statuses = {
        "run_status": run_status,
        "source_agg_dq": "Skipped",
        "source_query_dq": "Skipped",
        "row_dq": "Passed" if rules else "Skipped",
        "final_agg_dq": "Skipped",
        "final_query_dq": "Skipped",
    }
    statuses.update(stages or {})
    payload: dict[str, Any] = {
        "product_id": product_id,
        "table_name": table_name,
        "input_count": input_count,
        "error_count": error_rows,
        "output_count": output_count,
        "output_percentage": round(output_count / input_count * 100, 2) if input_count else 0.0,
        "error_percentage": round(error_rows / input_count * 100, 2) if input_count else 0.0,
        "source_agg_dq_results": agg_results,
        "final_agg_dq_results": None,
        "source_query_dq_results": None,
        "final_query_dq_results": None,
        "row_dq_res_summary": [
            {
                "rule_type": "row_dq",
                "rule": r["rule"],
                "description": f"{r['rule']} must hold",
                "column_name": "col",
                "action_if_failed": r["action"],
                "failed_row_count": str(r["failed"]),
            }
            for r in rules
        ],
        "row_dq_error_threshold": [
            {
                "rule_name": r["rule"],
                "column_name": "col",
                "action_if_failed": r["action"],
                "description": f"{r['rule']} must hold",
                "rule_type": "row_dq",
                "error_drop_threshold": str(r["threshold"]),
                "error_drop_percentage": str(round(r["failed"] / input_count * 100, 2)),
            }
            for r in rules
            if r["failed"] > 0
        ]
        or None,
        "dq_status": statuses,
        "dq_run_time": {"run_time": 1.5},
        "dq_rules": {"rules": {"num_row_dq_rules": len(rules), "num_dq_rules": len(rules)}},
        "meta_dq_run_id": "run_id_1700000000",
        "meta_dq_run_date": "2026-12-04",
        "meta_dq_run_datetime": "2026-12-04T10:00:00",
        "dq_env": "",
        "se_job_metadata": None,
    }
    if with_rule_list:
        payload["row_dq_rules"] = [
            {
                "rule": r["rule"],
                "action_if_failed": r["action"],
                "enable_error_drop_alert": r["alert"],
                "error_drop_threshold": r["threshold"],
            }
            for r in rules
        ]
    return payload
