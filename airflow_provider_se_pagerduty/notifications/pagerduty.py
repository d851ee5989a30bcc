"""SparkExpectationsPagerDutyNotifier: page from ``on_failure_callback``, resolve from success."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from airflow_provider_se_pagerduty.alerting import (
    PlannedEvent,
    describe_error,
    log_decision,
    plan_events,
    resolve_target,
    run_info,
)
from airflow_provider_se_pagerduty.decision import Decision, decide
from airflow_provider_se_pagerduty.dq_stats import DQStats, parse_stats_payload
from airflow_provider_se_pagerduty.exceptions import SparkExpectationsPagerDutyError
from airflow_provider_se_pagerduty.settings import AlertSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_provider_se_pagerduty.delivery import DeliveryPolicy
    from airflow_provider_se_pagerduty.events import RunInfo
    from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

FAILED_STATES = ("failed", "up_for_retry", "TaskInstanceState.FAILED", "TaskInstanceState.UP_FOR_RETRY")


class SparkExpectationsPagerDutyNotifier(BaseNotifier):
    """Page PagerDuty when a DQ task fails, and resolve that incident when it succeeds again.

    As ``on_failure_callback`` it triggers a failure incident, carrying the stats that the task
    pushed before failing, if any. As ``on_success_callback`` it applies the same decision as
    :class:`~airflow_provider_se_pagerduty.operators.pagerduty.SparkExpectationsPagerDutyOperator`,
    so a passing run resolves what a failure opened. A delivery problem is logged at ERROR with
    the whole event (never the integration key) and never hides the task's own exception.

    An argument left as None falls back to the same setting in ``user_conf``, then to the default.

    :param pagerduty_conn_id: ``se_pagerduty`` connection with the integration key and URL.
    :param stats_task_id: task whose stats to read; defaults to the task the callback runs for.
    :param stats_xcom_key: XCom key of the stats payload.
    :param product_id: product of the DQ target, used when the task pushed no stats.
    :param table_name: table of the DQ target, used when the task pushed no stats.
    :param user_conf: the ``user_conf`` dict passed to spark-expectations.
    :param resolve_on_success: resolve the target's incidents when nothing triggers.
    :param enabled: master switch; when off nothing is sent, resolves included (default on).
    :param page_on_failure: page when the DQ task or job failed (default on).
    :param page_on_error_drop_breach: page when the share of dropped rows reaches
        ``error_drop_threshold`` (default off). Rules' own thresholds always page.
    :param error_drop_threshold: job-level threshold in percent of input rows (default 100).
    :param failure_severity: severity of failure incidents (default ``critical``).
    :param breach_severity: severity of threshold-breach incidents (default ``error``).
    :param delivery_policy: bounds on delivery attempts, total seconds and timeout; see
        :class:`~airflow_provider_se_pagerduty.delivery.DeliveryPolicy`.
    """

    template_fields: Sequence[str] = (
        "pagerduty_conn_id",
        "stats_task_id",
        "stats_xcom_key",
        "product_id",
        "table_name",
        "user_conf",
    )

    def __init__(
        self,
        *,
        pagerduty_conn_id: str = "se_pagerduty_default",
        stats_task_id: str | None = None,
        stats_xcom_key: str = "return_value",
        product_id: str | None = None,
        table_name: str | None = None,
        user_conf: dict[str, Any] | None = None,
        resolve_on_success: bool = True,
        enabled: bool | None = None,
        page_on_failure: bool | None = None,
        page_on_error_drop_breach: bool | None = None,
        error_drop_threshold: float | None = None,
        failure_severity: str | None = None,
        breach_severity: str | None = None,
        delivery_policy: DeliveryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.pagerduty_conn_id = pagerduty_conn_id
        self.stats_task_id = stats_task_id
        self.stats_xcom_key = stats_xcom_key
        self.product_id = product_id
        self.table_name = table_name
        self.user_conf = user_conf
        self.resolve_on_success = resolve_on_success
        self.enabled = enabled
        self.page_on_failure = page_on_failure
        self.page_on_error_drop_breach = page_on_error_drop_breach
        self.error_drop_threshold = error_drop_threshold
        self.failure_severity = failure_severity
        self.breach_severity = breach_severity
        self.delivery_policy = delivery_policy
        # Fail at DAG parse time on a bad explicit argument, not when the task fails.
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

    def _read_stats(self, context: Context, run: RunInfo, task_failed: bool) -> DQStats | None:
        """Pull and parse the stats; a failed task still pages when they are missing or malformed."""
        ti = context.get("ti")
        task_id = self.stats_task_id or run.task_id
        if ti is None or task_id is None:
            return None
        payload = ti.xcom_pull(task_ids=task_id, key=self.stats_xcom_key)
        if payload is None:
            self.log.info("Task %s pushed no DQ stats under XCom key %s", task_id, self.stats_xcom_key)
            return None
        try:
            return parse_stats_payload(payload)
        except SparkExpectationsPagerDutyError as error:
            if not task_failed:
                raise
            self.log.error("Ignoring the DQ stats of task %s and paging without them: %s", task_id, error)
            return None

    def _plan(self, context: Context, *, outside_task: bool = False) -> tuple[Decision, list[PlannedEvent]]:
        settings = self._settings(self.user_conf)
        run = run_info(context)
        error = context.get("exception")
        ti = context.get("ti")
        dag_run = context.get("dag_run")
        task_failed = (
            isinstance(error, BaseException)
            or str(getattr(ti, "state", "")) in FAILED_STATES
            or (ti is None and str(getattr(dag_run, "state", "")) == "failed")
            # A call with no task and no DAG run, such as a missed deadline, is an alert.
            or (outside_task and ti is None and dag_run is None)
        )

        stats = self._read_stats(context, run, task_failed) if settings.enabled else None
        task_error = describe_error(error) if isinstance(error, BaseException) else None
        decision = decide(stats, settings, task_failed=task_failed, task_error=task_error)
        dq_task_id = self.stats_task_id or run.task_id
        target = resolve_target(stats, self.product_id, self.table_name, run.dag_id, dq_task_id)
        planned = plan_events(decision, target, run)
        log_decision(self.log, decision, target, planned)
        return decision, planned

    def _log_undelivered(self, undelivered: list[PlannedEvent], error: BaseException) -> None:
        self.log.error("Could not deliver PagerDuty events: %s", error)
        for event in undelivered:
            self.log.error("Undelivered PagerDuty event: %s", json.dumps(event.body, default=str))

    def _plan_or_log(self, context: Context, *, outside_task: bool = False) -> list[PlannedEvent] | None:
        """Return the events to send, or log why none can be planned (bad stats or settings)."""
        try:
            return self._plan(context, outside_task=outside_task)[1]
        except Exception as error:  # a callback must never hide the task's exception
            task = getattr(context.get("ti"), "task_id", None) or "unknown task"
            self.log.error("Not sending PagerDuty events for %s: %s", task, error)
            return None

    def notify(self, context: Context) -> None:
        """Decide and send; any error is logged, so the task's own outcome stays as it is."""
        planned = self._plan_or_log(context)
        if planned is None:
            return
        delivered = 0
        try:
            for event in planned:
                self.hook.send_event(event.body)
                delivered += 1
        except Exception as error:  # a callback must never hide the task's exception
            self._log_undelivered(planned[delivered:], error)

    async def async_notify(self, context: Context) -> None:
        """Decide and send from the triggerer (for example for deadline alerts), as :meth:`notify`."""
        planned = self._plan_or_log(context, outside_task=True)
        if planned is None:
            return
        delivered = 0
        try:
            if planned:
                try:
                    for event in planned:
                        await self.hook.asend_event(event.body)
                        delivered += 1
                finally:
                    await self.hook.aclose()
        except Exception as error:  # a callback must never hide the task's exception
            self._log_undelivered(planned[delivered:], error)


send_se_pagerduty_notification = SparkExpectationsPagerDutyNotifier
