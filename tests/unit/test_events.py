"""Event bodies: dedup keys, summaries, details and size limits."""

from __future__ import annotations

import json

from airflow_provider_se_pagerduty.decision import AlertKind, decide
from airflow_provider_se_pagerduty.delivery import validate_event
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.events import (
    MAX_EVENT_BYTES,
    MAX_SUMMARY_CHARS,
    RunInfo,
    Target,
    dedup_key,
    resolve_event,
    trigger_event,
)
from airflow_provider_se_pagerduty.settings import AlertSettings
from tests.payloads import make_payload, row_rule

RUN = RunInfo(
    dag_id="se_flights_dq",
    task_id="page_flights",
    run_id="manual__2026-12-04T10:00:00+00:00",
    try_number=2,
    log_url="http://127.0.0.1:8080/dags/se_flights_dq/runs/r/tasks/t?try_number=2",
)


def first_trigger(payload: dict, run: RunInfo = RUN, **settings: object) -> dict:
    decision = decide(parse_stats_payload(payload), AlertSettings(**settings))  # type: ignore[arg-type]
    target = Target(payload["product_id"], payload["table_name"])
    return trigger_event(decision.triggers[0], decision, target, run)


def test_dedup_key_stable_and_readable() -> None:
    target = Target("flights_product", "dq.flights")
    assert dedup_key(target, AlertKind.FAILURE) == "se-pagerduty/flights_product/dq.flights/failure"
    assert dedup_key(target, AlertKind.BREACH) == "se-pagerduty/flights_product/dq.flights/breach"


def test_dedup_key_long_table_hashed_tail() -> None:
    long_a = Target("p", "t" * 400 + "a")
    long_b = Target("p", "t" * 400 + "b")
    key_a = dedup_key(long_a, AlertKind.FAILURE)
    key_b = dedup_key(long_b, AlertKind.FAILURE)
    assert len(key_a) == 255
    assert len(key_b) == 255
    assert key_a != key_b
    assert key_a.startswith("se-pagerduty/p/ttt")


def test_dedup_key_has_no_run_id() -> None:
    body = first_trigger(make_payload(run_status="Failed", stages={"row_dq": "Failed"}))
    assert RUN.run_id not in body["dedup_key"]
    assert "run_id_1700000000" not in body["dedup_key"]


def test_breach_event_content() -> None:
    payload = make_payload(
        input_count=336_776,
        rules=[row_rule("dep_time_not_null", 8_255, threshold=2), row_rule("tailnum", 2_512, action="ignore")],
    )
    body = first_trigger(payload)
    validate_event(body)
    event_payload = body["payload"]
    assert event_payload["summary"] == (
        "[DQ breach] dq.flights (flights_product): rule dep_time_not_null failed 8,255 rows "
        "(2.45% >= threshold 2%); 336,776 input rows"
    )
    assert event_payload["severity"] == "error"
    assert event_payload["component"] == "dq.flights"
    assert event_payload["group"] == "flights_product"
    assert event_payload["class"] == "breach"
    assert event_payload["source"] == "airflow:se_flights_dq"
    details = event_payload["custom_details"]
    assert details["input_count"] == 336_776
    assert details["breached_rules"][0]["failed_percentage"] == 2.45
    assert details["ignored_rule_failures"][0]["rule"] == "tailnum"
    assert details["dq_run_id"] == "run_id_1700000000"
    assert (details["dag_id"], details["task_id"], details["try_number"]) == ("se_flights_dq", "page_flights", 2)
    assert details["run_id"] == RUN.run_id
    assert body["links"] == [{"href": RUN.log_url, "text": "Airflow task log"}]


def test_failure_summary_names_stage_and_rule() -> None:
    payload = make_payload(
        input_count=200,
        rules=[row_rule("arr_delay_not_null", 7, action="fail")],
        run_status="Failed",
        stages={"row_dq": "Failed"},
    )
    summary = first_trigger(payload)["payload"]["summary"]
    assert summary == (
        "[DQ failure] dq.flights (flights_product): DQ job failed at row_dq; "
        "fail rule arr_delay_not_null (7 rows, 3.5%); 200 input rows"
    )


def test_summary_cut_to_limit() -> None:
    payload = make_payload(table_name="x" * 5000, run_status="Failed", stages={"row_dq": "Failed"})
    summary = first_trigger(payload)["payload"]["summary"]
    assert len(summary) == MAX_SUMMARY_CHARS
    assert summary.endswith("\u2026")


def test_summary_cut_on_character_boundary() -> None:
    payload = make_payload(table_name="\u00e9\U0001f600" * 800, run_status="Failed", stages={"row_dq": "Failed"})
    summary = first_trigger(payload)["payload"]["summary"]
    assert len(summary) <= MAX_SUMMARY_CHARS
    summary.encode("utf-8")  # a split surrogate or byte would raise here
    assert json.loads(json.dumps(summary)) == summary


def test_body_under_512_kb_with_20000_rules() -> None:
    rules = [row_rule(f"rule_{i:05d}_" + "n" * 60, 10 + i, threshold=0) for i in range(20_000)]
    payload = make_payload(input_count=10_000_000, rules=rules)
    body = first_trigger(payload)
    size = len(json.dumps({**body, "routing_key": "k" * 32}).encode("utf-8"))
    assert size < MAX_EVENT_BYTES
    details = body["payload"]["custom_details"]
    assert details["breached_rules_total"] == 20_000
    assert details["breached_rules"][0]["rule"].startswith("rule_19999_")


def test_resolve_event_uses_same_key() -> None:
    target = Target("flights_product", "dq.flights")
    assert resolve_event(target, AlertKind.FAILURE) == {
        "event_action": "resolve",
        "dedup_key": "se-pagerduty/flights_product/dq.flights/failure",
    }


def test_no_log_link_without_url() -> None:
    body = first_trigger(make_payload(run_status="Failed", stages={"row_dq": "Failed"}), run=RunInfo())
    assert "links" not in body
    assert body["payload"]["source"] == "airflow"
