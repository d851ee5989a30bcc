"""Spark side: the stats of a spark-expectations run as a JSON-safe payload for XCom.

This is the only module of the provider that touches pyspark or spark-expectations, and it
reaches them only through the ``SparkExpectations`` instance that the caller passes in, so
importing it loads neither. It needs the ``[spark]`` extra at run time.

The payload is read from ``se._context``, the instance's run context, because
spark-expectations 2.10 has no public accessor for the stats row of the run it just did.
"""

from __future__ import annotations

import datetime
import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_se_pagerduty.exceptions import InvalidConfigurationError, InvalidStatsPayloadError
from airflow_provider_se_pagerduty.settings import parse_bool

if TYPE_CHECKING:
    from spark_expectations.core.expectations import SparkExpectations

log = logging.getLogger(__name__)

# The columns of spark-expectations' stats table that make up the payload, in table order.
# The table also has success_percentage, which the alert decision does not read.
STATS_COLUMNS = (
    "product_id",
    "table_name",
    "input_count",
    "error_count",
    "output_count",
    "output_percentage",
    "error_percentage",
    "source_agg_dq_results",
    "final_agg_dq_results",
    "source_query_dq_results",
    "final_query_dq_results",
    "row_dq_res_summary",
    "row_dq_error_threshold",
    "dq_status",
    "dq_run_time",
    "dq_rules",
    "meta_dq_run_id",
    "meta_dq_run_date",
    "meta_dq_run_datetime",
    "dq_env",
    "se_job_metadata",
)
RUN_ID_COLUMN = "meta_dq_run_id"
ROW_DQ_RULES_KEY = "row_dq_rules"
ROW_DQ_RULE_TYPE = "row_dq"

# The rules_df columns read for ROW_DQ_RULES_KEY.
_RULE_COLUMNS = (
    "product_id",
    "table_name",
    "rule_type",
    "rule",
    "action_if_failed",
    "is_active",
    "enable_error_drop_alert",
    "error_drop_threshold",
)


class XComPusher(Protocol):
    """The part of an Airflow task instance that ``run_and_push_stats`` uses."""

    def xcom_push(self, key: str, value: Any) -> None: ...


def stats_payload(se: SparkExpectations, target_table: str | None = None) -> dict[str, Any]:
    """Build the JSON-safe stats payload of the latest run of ``se``.

    The stats row comes from the run context, which contains the row that the run just wrote,
    so the cost does not grow with the history in the stats table. Only when the context
    has no row for ``target_table`` is the stats table read, filtered by the run id.

    :param se: the ``SparkExpectations`` instance that ran.
    :param target_table: the table given to ``se.with_expectations``; defaults to the
        table of the latest run.
    :raises InvalidStatsPayloadError: when no stats row exists for the run, or a value of
        the row cannot be made JSON-safe.
    """
    row = _stats_row_in_context(se, target_table)
    if row is None:
        row = _stats_row_in_table(se, target_table)

    missing_columns = [column for column in STATS_COLUMNS if column not in row]
    if missing_columns:
        log.warning(
            "The stats row of DQ run %s has no column %s, so the payload has null there",
            row.get(RUN_ID_COLUMN),
            ", ".join(missing_columns),
        )
    payload = {column: _to_json_value(row.get(column), column) for column in STATS_COLUMNS}

    table_name = target_table if target_table is not None else payload["table_name"]
    payload[ROW_DQ_RULES_KEY] = _row_dq_rules(se, table_name)
    return payload


def run_and_push_stats(
    se: SparkExpectations,
    dq_function: Callable[[], Any],
    *,
    task_instance: XComPusher,
    target_table: str | None = None,
    xcom_key: str = "return_value",
) -> dict[str, Any]:
    """Run ``dq_function`` and return the stats payload of its run.

    Return the payload from the Airflow task so that it lands in XCom as ``return_value``.
    When ``dq_function`` raises, the payload of that failed run is pushed to XCom under
    ``xcom_key`` first, so that an ``on_failure_callback`` can page with the stats. Then the
    original exception is re-raised unchanged, even when building or pushing the payload
    fails too.

    :param se: the ``SparkExpectations`` instance whose ``with_expectations`` decorated
        ``dq_function``.
    :param dq_function: a function decorated with ``se.with_expectations(...)``, called
        without arguments.
    :param task_instance: the running task instance, ``context["ti"]``.
    :param target_table: the table given to ``se.with_expectations``; defaults to the
        table of the run.
    :param xcom_key: the XCom key for the payload of a failed run.
    :raises InvalidConfigurationError: when ``dq_function`` returns without writing a stats
        row, which means that it is not decorated with ``se.with_expectations``.
    """
    # spark-expectations replaces the list of stats rows each time it writes one, so a new
    # list object shows that this call wrote a row.
    rows_before = se._context.get_stats_dict

    try:
        dq_function()
    except Exception:
        if se._context.get_stats_dict is rows_before:
            log.warning(
                "The DQ function failed before spark-expectations wrote a stats row, "
                "so nothing was pushed to XCom key %r",
                xcom_key,
            )
        else:
            _push_failed_run_stats(se, task_instance, target_table, xcom_key)
        raise

    if se._context.get_stats_dict is rows_before:
        raise InvalidConfigurationError(
            "The DQ function returned without writing a spark-expectations stats row: "
            "decorate it with se.with_expectations(...) of the same SparkExpectations instance"
        )
    return stats_payload(se, target_table)


def _push_failed_run_stats(
    se: SparkExpectations,
    task_instance: XComPusher,
    target_table: str | None,
    xcom_key: str,
) -> None:
    """Push the payload of a failed run to XCom, logging instead of raising on any error."""
    # The caller re-raises the DQ error next, so an error here must not replace it.
    try:
        payload = stats_payload(se, target_table)
        task_instance.xcom_push(key=xcom_key, value=payload)
    except Exception:
        log.exception(
            "Could not push the stats of the failed DQ run to XCom key %r. "
            "The DQ error is re-raised next",
            xcom_key,
        )
        return

    log.info(
        "Pushed the stats of failed DQ run %s (table %s, run_status %s) to XCom key %r",
        payload[RUN_ID_COLUMN],
        payload["table_name"],
        (payload["dq_status"] or {}).get("run_status"),
        xcom_key,
    )


def _stats_row_in_context(se: SparkExpectations, target_table: str | None) -> dict[str, Any] | None:
    """Return the stats row that the latest run left in the context, if it is for ``target_table``."""
    rows = se._context.get_stats_dict
    if not rows:
        return None

    # One write produces one row: the stats DataFrame has a single row per run.
    row = rows[-1]
    if target_table is not None and row.get("table_name") != target_table:
        log.info(
            "The latest stats row in the context is for table %s, not %s",
            row.get("table_name"),
            target_table,
        )
        return None
    return dict(row)


def _stats_row_in_table(se: SparkExpectations, target_table: str | None) -> dict[str, Any]:
    """Read the stats row of the run from the stats table, filtered by the run id."""
    run_id = se._context.get_run_id
    stats_table = se.stats_table
    log.info(
        "No stats row of DQ run %s in the context, so reading it from stats table %s",
        run_id,
        stats_table,
    )

    next_step = "run a function decorated with se.with_expectations(...) first"
    spark = se.spark
    if not spark.catalog.tableExists(stats_table):
        raise InvalidStatsPayloadError(
            RUN_ID_COLUMN,
            run_id,
            f"matches no stats row because stats table {stats_table!r} does not exist ({next_step})",
        )

    stats_df = spark.table(stats_table)
    run_filter = stats_df[RUN_ID_COLUMN] == run_id
    where = f"stats table {stats_table!r}"
    if target_table is not None:
        run_filter = run_filter & (stats_df["table_name"] == target_table)
        where = f"{where} for table {target_table!r}"
    rows = stats_df.filter(run_filter).collect()
    if not rows:
        raise InvalidStatsPayloadError(RUN_ID_COLUMN, run_id, f"matches no row in {where} ({next_step})")

    # NOTE: spark-expectations 2.10 keeps one run id for the whole life of a
    # SparkExpectations instance, so every run of the same instance and table shares it,
    # and the stats table has no column that orders them. Which of those rows is returned
    # is then arbitrary.
    if len(rows) > 1:
        log.warning(
            "Stats table %s has %d rows for DQ run %s. Using one of them, which may not be the latest",
            stats_table,
            len(rows),
            run_id,
        )
    return dict(rows[-1].asDict())


def _row_dq_rules(se: SparkExpectations, table_name: Any) -> list[dict[str, Any]]:
    """List the active row_dq rules of ``table_name`` with their alert settings, from ``se.rules_df``."""
    # spark-expectations fills "{key}" placeholders in table and rule names from these
    # parameters before it runs the rules. Filling them here makes the names match the stats.
    params: Mapping[str, Any] = se._context.get_dq_rules_params or {}

    rules = []
    for rule_row in se.rules_df.select(*_RULE_COLUMNS).collect():
        rule = rule_row.asDict()
        if rule["product_id"] != se.product_id or rule["rule_type"] != ROW_DQ_RULE_TYPE:
            continue
        if _fill_params(rule["table_name"], params) != table_name:
            continue
        if not _rule_switch(rule["is_active"], rule["rule"], "is_active"):
            continue

        rule_name = _fill_params(rule["rule"], params)
        rules.append(
            {
                "rule": rule_name,
                "action_if_failed": rule["action_if_failed"],
                "enable_error_drop_alert": _rule_switch(
                    rule["enable_error_drop_alert"], rule_name, "enable_error_drop_alert"
                ),
                "error_drop_threshold": _threshold_number(rule["error_drop_threshold"], rule_name),
            }
        )
    return rules


def _fill_params(text: Any, params: Mapping[str, Any]) -> Any:
    if not isinstance(text, str):
        return text
    for key, value in params.items():
        text = text.replace(f"{{{key}}}", str(value))
    return text


def _rule_switch(value: Any, rule_name: Any, column: str) -> bool:
    """Read a boolean rules_df column, where null counts as false as in spark-expectations."""
    if value is None:
        return False
    return parse_bool(value, f"rules_df column {column} of rule {rule_name!r}")


def _threshold_number(value: Any, rule_name: Any) -> int | float:
    """Read ``error_drop_threshold`` as a number, where null counts as 0, the rules' default."""
    field = f"{ROW_DQ_RULES_KEY}[{rule_name!r}].error_drop_threshold"
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidStatsPayloadError(field, value, "is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidStatsPayloadError(field, value, "is not a finite number")
        return value

    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidStatsPayloadError(field, value, "is not a number") from None
    if not math.isfinite(number):
        raise InvalidStatsPayloadError(field, value, "is not a finite number")
    return int(number) if number.is_integer() else number


def _to_json_value(value: Any, field: str) -> Any:
    """Convert a value collected from a Spark row into one that ``json.dumps`` accepts.

    Non-finite floats become null, because JSON has no NaN or infinity.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    # datetime is a subclass of date, and both render as ISO 8601.
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _to_json_value(item, f"{field}.{key}") for key, item in value.items()}
    # pyspark's Row is a tuple with field names; convert it before the plain tuple case.
    if isinstance(value, tuple) and hasattr(value, "asDict"):
        return _to_json_value(value.asDict(), field)
    if isinstance(value, list | tuple):
        return [_to_json_value(item, f"{field}[{index}]") for index, item in enumerate(value)]
    raise InvalidStatsPayloadError(field, value, f"has type {type(value).__name__}, which has no JSON form")
