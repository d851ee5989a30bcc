"""SparkExpectationsPagerDutyOperator: page PagerDuty from the DQ stats a Spark task pushed."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_se_pagerduty.alerting import (
    log_decision,
    plan_events,
    resolve_target,
    run_info,
    send_planned,
)
from airflow_provider_se_pagerduty.decision import decide
from airflow_provider_se_pagerduty.dq_stats import parse_stats_payload
from airflow_provider_se_pagerduty.exceptions import InvalidStatsPayloadError
from airflow_provider_se_pagerduty.settings import AlertSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_se_pagerduty.delivery import DeliveryPolicy
    from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook


class SparkExpectationsPagerDutyOperator(BaseOperator):
    """Raise or resolve PagerDuty incidents from the spark-expectations stats of a DQ task.

    Failed DQ jobs page with severity ``critical`` and breached error thresholds with ``error``;
    job start, job completion and rules with action ``ignore`` never page. When nothing
    triggers, the target's open incidents are resolved. The return value (pushed to XCom)
    lists what was sent: kind, action, severity and dedup key of each event.

    An argument left as None falls back to the same setting in ``user_conf``, then to the default.

    :param stats_task_id: id of the task that pushed the stats payload to XCom.
    :param stats_xcom_key: XCom key of the payload.
    :param pagerduty_conn_id: ``se_pagerduty`` connection with the integration key and URL.
    :param user_conf: the ``user_conf`` dict passed to spark-expectations; its
        ``spark.expectations.notifications.*`` keys are read.
    :param resolve_on_success: resolve the target's incidents when nothing triggers.
    :param enabled: master switch; when off nothing is sent, resolves included (default on).
    :param page_on_failure: page when the DQ job failed (default on).
    :param page_on_error_drop_breach: page when the share of dropped rows reaches
        ``error_drop_threshold`` (default off). Rules' own thresholds always page.
    :param error_drop_threshold: job-level threshold in percent of input rows (default 100).
    :param failure_severity: severity of failure incidents (default ``critical``).
    :param breach_severity: severity of threshold-breach incidents (default ``error``).
    :param delivery_policy: bounds on delivery attempts, total seconds and timeout; see
        :class:`~airflow_provider_se_pagerduty.delivery.DeliveryPolicy`.
    """

    template_fields: Sequence[str] = ("stats_task_id", "stats_xcom_key", "pagerduty_conn_id", "user_conf")
    ui_color = "#06ac38"

    def __init__(
        self,
        *,
        stats_task_id: str,
        stats_xcom_key: str = "return_value",
        pagerduty_conn_id: str = "se_pagerduty_default",
        user_conf: dict[str, Any] | None = None,
        resolve_on_success: bool = True,
        enabled: bool | None = None,
        page_on_failure: bool | None = None,
        page_on_error_drop_breach: bool | None = None,
        error_drop_threshold: float | None = None,
        failure_severity: str | None = None,
        breach_severity: str | None = None,
        delivery_policy: DeliveryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stats_task_id = stats_task_id
        self.stats_xcom_key = stats_xcom_key
        self.pagerduty_conn_id = pagerduty_conn_id
        self.user_conf = user_conf
        self.resolve_on_success = resolve_on_success
        self.enabled = enabled
        self.page_on_failure = page_on_failure
        self.page_on_error_drop_breach = page_on_error_drop_breach
        self.error_drop_threshold = error_drop_threshold
        self.failure_severity = failure_severity
        self.breach_severity = breach_severity
        self.delivery_policy = delivery_policy
        # Fail at DAG parse time on a bad explicit argument, not at 3 a.m.
        self._settings(None)

    def _settings(self, user_conf: dict[str, Any] | None) -> AlertSettings:
        return AlertSettings.resolve(
            user_conf,
            enabled=self.enabled,
            page_on_failure=self.page_on_failure,
            page_on_error_drop_breach=self.page_on_error_drop_breach,
            error_drop_threshold=self.error_drop_threshold,
            failure_severity=self.failure_severity,
            breach_severity=self.breach_severity,
            resolve_on_success=self.resolve_on_success,
        )

    @cached_property
    def hook(self) -> SparkExpectationsPagerDutyHook:
        """The hook, built on first use."""
        from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

        return SparkExpectationsPagerDutyHook(self.pagerduty_conn_id, delivery_policy=self.delivery_policy)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        settings = self._settings(self.user_conf)
        if not settings.enabled:
            self.log.info("PagerDuty alerts are switched off: nothing is sent")
            return []

        payload = context["ti"].xcom_pull(task_ids=self.stats_task_id, key=self.stats_xcom_key)
        if payload is None:
            raise InvalidStatsPayloadError(
                "payload",
                None,
                f"is missing: task {self.stats_task_id!r} pushed nothing "
                f"under XCom key {self.stats_xcom_key!r}",
            )
        stats = parse_stats_payload(payload)

        run = run_info(context)
        target = resolve_target(stats, None, None, run.dag_id, self.stats_task_id)
        decision = decide(stats, settings)
        planned = plan_events(decision, target, run)
        log_decision(self.log, decision, target, planned)
        if not planned:
            return []

        # An error here fails the task, so Airflow's retry sends again. Dedup keys do not
        # depend on the try, so the retry updates the incident instead of opening another.
        return send_planned(self.hook, planned)
