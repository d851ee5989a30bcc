"""A DAG whose DQ task replays a stats payload, so tests can run real Airflow on chosen stats.

The scenario file named by SE_TEST_SCENARIO_FILE sets the payload, whether the DQ task fails
after pushing it, and the arguments of the notifier and the operator.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_se_pagerduty.delivery import DeliveryPolicy
from airflow_provider_se_pagerduty.notifications.pagerduty import send_se_pagerduty_notification
from airflow_provider_se_pagerduty.operators.pagerduty import SparkExpectationsPagerDutyOperator


def load_scenario() -> dict[str, Any]:
    path = os.environ.get("SE_TEST_SCENARIO_FILE")
    if not path or not Path(path).exists():
        return {"fail": False, "payload": None, "retries": 0, "options": {}}
    scenario: dict[str, Any] = json.loads(Path(path).read_text())
    return scenario


SCENARIO = load_scenario()
notifier = send_se_pagerduty_notification(**SCENARIO.get("notifier_options", {}))
operator_options = dict(SCENARIO.get("options", {}))
if "delivery_policy" in operator_options:
    operator_options["delivery_policy"] = DeliveryPolicy(**operator_options["delivery_policy"])

with DAG("se_scenario_dag", schedule=None, catchup=False):

    @task(
        retries=SCENARIO.get("retries", 0),
        retry_delay=timedelta(seconds=0),
        on_failure_callback=notifier,
        on_retry_callback=notifier,
        on_success_callback=notifier if SCENARIO.get("notify_on_success") else None,
    )
    def dq_check(ti: Any = None) -> Any:
        scenario = load_scenario()
        if scenario["fail"]:
            if scenario["payload"] is not None:
                ti.xcom_push(key="return_value", value=scenario["payload"])
            raise RuntimeError(scenario.get("error", "spark-expectations run failed"))
        return scenario["payload"]

    dq_check() >> SparkExpectationsPagerDutyOperator(
        task_id="page_on_dq",
        stats_task_id="dq_check",
        retry_delay=timedelta(seconds=0),
        **operator_options,
    )
