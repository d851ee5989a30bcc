"""Real spark-expectations runs on tiny in-memory DataFrames, one per alerting case.

Each scenario runs spark-expectations 2.10 on local Spark and returns the stats payload
that ``airflow_provider_se_pagerduty.spark.stats_payload`` builds from the run, failed
runs included. Tests and benchmarks share these payloads so that they check the alert
decision against what spark-expectations really writes, not against hand-made dicts.

Run ``python -m tests.se_scenarios [FILE]`` to time the whole set and write the payloads as JSON.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_se_pagerduty.spark import stats_payload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pyspark.sql import SparkSession

PRODUCT_ID = "se_pagerduty_scenarios"
STATS_TABLE = "se_scenario_stats"
INPUT_SCHEMA = "id int, amount int, category string"

# Job-level breach settings, as spark-expectations' user_conf keys: page when 20 % or
# more of the input rows were dropped.
JOB_LEVEL_USER_CONF: dict[str, Any] = {
    "spark.expectations.notifications.on.error.drop.exceeds.threshold.breach": True,
    "spark.expectations.notifications.error.drop.threshold": 20,
}

# Every run switches off what the payload does not need: Kafka stats streaming (no broker
# here) and the error table, whose writes would only slow the runs down.
_BASE_USER_CONF: dict[str, Any] = {
    "se.enable.error.table": False,
}
_STATS_STREAMING_OPTIONS = {"se.streaming.enable": False}


@dataclass(frozen=True)
class Rule:
    """One row of a spark-expectations rules table, with the defaults of this module."""

    rule_type: str
    rule: str
    expectation: str
    action_if_failed: str
    column_name: str = ""
    enable_error_drop_alert: bool = False
    error_drop_threshold: int = 0
    enable_for_source_dq_validation: bool = True
    enable_for_target_dq_validation: bool = True


@dataclass(frozen=True)
class Scenario:
    """A named spark-expectations run: its rules, its input rows and its ``user_conf``."""

    name: str
    rules: tuple[Rule, ...]
    rows: list[tuple[int | None, int, str | None]]
    user_conf: dict[str, Any] = field(default_factory=dict)

    @property
    def target_table(self) -> str:
        return f"scenario_{self.name}"


def make_rows(
    count: int, *, null_ids: int = 0, negative_amounts: int = 0, null_categories: int = 0
) -> list[tuple[int | None, int, str | None]]:
    """Build ``count`` input rows whose bad values sit in separate index ranges.

    The first ``null_ids`` rows have no id, the next ``negative_amounts`` rows have a
    negative amount and the next ``null_categories`` rows have no category, so each rule
    fails on exactly the number of rows asked for.
    """
    if null_ids + negative_amounts + null_categories > count:
        raise ValueError(
            f"Cannot put {null_ids + negative_amounts + null_categories} bad values in {count} rows"
        )

    rows: list[tuple[int | None, int, str | None]] = []
    for index in range(count):
        row_id: int | None = index
        amount = index + 1
        category: str | None = "regular"
        if index < null_ids:
            row_id = None
        elif index < null_ids + negative_amounts:
            amount = -amount
        elif index < null_ids + negative_amounts + null_categories:
            category = None
        rows.append((row_id, amount, category))
    return rows


def _id_present(*, action: str = "drop", alert: bool = True, threshold: int = 2) -> Rule:
    return Rule(
        "row_dq",
        "id_is_present",
        "id is not null",
        action,
        column_name="id",
        enable_error_drop_alert=alert,
        error_drop_threshold=threshold,
    )


def _amount_not_negative(*, action: str = "fail", alert: bool = False, threshold: int = 0) -> Rule:
    return Rule(
        "row_dq",
        "amount_not_negative",
        "amount >= 0",
        action,
        column_name="amount",
        enable_error_drop_alert=alert,
        error_drop_threshold=threshold,
    )


def _category_set(*, alert: bool = False, threshold: int = 0) -> Rule:
    return Rule(
        "row_dq",
        "category_is_set",
        "category is not null",
        "ignore",
        column_name="category",
        enable_error_drop_alert=alert,
        error_drop_threshold=threshold,
    )


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "all_pass",
            (
                _id_present(),
                _category_set(),
                Rule("agg_dq", "has_rows", "count(*) > 0", "fail"),
            ),
            make_rows(20),
        ),
        # 5 of 100 rows dropped by a rule whose alert is on at 2 %; 3 rows fail an ignore rule.
        Scenario(
            "row_drop_breach",
            (_id_present(), _amount_not_negative(), _category_set()),
            make_rows(100, null_ids=5, null_categories=3),
        ),
        # 30 % of the rows fail an ignore rule whose alert is on at 10 %; nothing else fails.
        Scenario(
            "ignore_only_failure",
            (_id_present(), _category_set(alert=True, threshold=10)),
            make_rows(100, null_categories=30),
        ),
        Scenario(
            "row_fail",
            (_id_present(), _amount_not_negative()),
            make_rows(100, negative_amounts=11),
        ),
        # The amounts 1..100 sum to 5050, so the source agg_dq rule fails before row_dq runs.
        Scenario(
            "source_agg_failure",
            (
                _id_present(),
                Rule(
                    "agg_dq",
                    "amount_total_below_1000",
                    "sum(amount) < 1000",
                    "fail",
                    column_name="amount",
                    enable_for_target_dq_validation=False,
                ),
            ),
            make_rows(100),
        ),
        Scenario(
            "query_failure",
            (
                _id_present(),
                Rule(
                    "query_dq",
                    "no_negative_amounts",
                    "(select count(*) from scenario_query_failure_source where amount < 0) = 0",
                    "fail",
                    column_name="amount",
                    enable_for_target_dq_validation=False,
                ),
            ),
            make_rows(100, negative_amounts=4),
        ),
        # 5 null ids are dropped, so the 95 rows left fail the final agg_dq rule.
        Scenario(
            "final_agg_failure",
            (
                _id_present(alert=False),
                Rule(
                    "agg_dq",
                    "all_rows_kept",
                    "count(*) >= 100",
                    "fail",
                    enable_for_source_dq_validation=False,
                ),
            ),
            make_rows(100, null_ids=5),
        ),
        Scenario(
            "exactly_at_threshold",
            (_id_present(threshold=2),),
            make_rows(100, null_ids=2),
        ),
        Scenario(
            "below_threshold",
            (_id_present(threshold=2),),
            make_rows(100, null_ids=1),
        ),
        Scenario(
            "alert_disabled_breach",
            (_id_present(alert=False, threshold=2),),
            make_rows(100, null_ids=10),
        ),
        Scenario(
            "empty_input",
            (_id_present(),),
            [],
        ),
        # 30 of 100 rows dropped by rules whose own alerts are off; JOB_LEVEL_USER_CONF pages at 20 %.
        Scenario(
            "job_level_breach",
            (
                _id_present(alert=False, threshold=0),
                _amount_not_negative(action="drop", alert=False, threshold=0),
            ),
            make_rows(100, null_ids=25, negative_amounts=5),
            user_conf=JOB_LEVEL_USER_CONF,
        ),
    )
}
SCENARIO_NAMES = tuple(SCENARIOS)


def build_spark_session(work_dir: Path) -> SparkSession:
    """Start a small local SparkSession whose warehouse and Derby files stay in ``work_dir``."""
    import spark_expectations
    from pyspark.sql import SparkSession

    # spark-expectations logs every step at INFO to stdout, and sets that level when it is
    # first imported, so lower it after the import.
    logging.getLogger(spark_expectations.__name__).setLevel(logging.WARNING)
    # py4j logs its connection closing at INFO, also from garbage collection at exit.
    logging.getLogger("py4j").setLevel(logging.WARNING)

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("se-pagerduty-scenarios")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "1")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(work_dir / "warehouse"))
        # C1-only JIT: these tiny jobs finish before C2 compiles would pay off.
        .config(
            "spark.driver.extraJavaOptions",
            f"-XX:TieredStopAtLevel=1 -Dderby.system.home={work_dir / 'derby'}",
        )
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def scenario_spark_session() -> Iterator[SparkSession]:
    """Yield a session from ``build_spark_session`` in a temporary directory, then stop it and clean up."""
    work_dir = Path(tempfile.mkdtemp(prefix="se-scenarios-"))
    spark = build_spark_session(work_dir)
    try:
        yield spark
    finally:
        spark.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def rules_dataframe(spark: SparkSession, target_table: str, rules: tuple[Rule, ...]) -> Any:
    """Build a rules DataFrame in the schema of spark-expectations' rules table."""
    rows = [
        {
            "product_id": PRODUCT_ID,
            "table_name": target_table,
            "rule_type": rule.rule_type,
            "rule": rule.rule,
            "column_name": rule.column_name,
            "expectation": rule.expectation,
            "action_if_failed": rule.action_if_failed,
            "tag": "validity",
            "description": f"{rule.rule} on {target_table}",
            "enable_for_source_dq_validation": rule.enable_for_source_dq_validation,
            "enable_for_target_dq_validation": rule.enable_for_target_dq_validation,
            "is_active": True,
            "enable_error_drop_alert": rule.enable_error_drop_alert,
            "error_drop_threshold": rule.error_drop_threshold,
            "query_dq_delimiter": None,
            "enable_querydq_custom_output": False,
            "priority": "medium",
        }
        for rule in rules
    ]
    schema = (
        "product_id string, table_name string, rule_type string, rule string, column_name string, "
        "expectation string, action_if_failed string, tag string, description string, "
        "enable_for_source_dq_validation boolean, enable_for_target_dq_validation boolean, "
        "is_active boolean, enable_error_drop_alert boolean, error_drop_threshold int, "
        "query_dq_delimiter string, enable_querydq_custom_output boolean, priority string"
    )
    return spark.createDataFrame(rows, schema=schema)


def build_expectations(spark: SparkSession, scenario: Scenario, stats_table: str = STATS_TABLE) -> Any:
    """Create the ``SparkExpectations`` instance of ``scenario``, with Kafka streaming off."""
    from spark_expectations.core.expectations import SparkExpectations, WrappedDataFrameWriter

    return SparkExpectations(
        product_id=PRODUCT_ID,
        rules_df=rules_dataframe(spark, scenario.target_table, scenario.rules),
        stats_table=stats_table,
        stats_table_writer=WrappedDataFrameWriter().mode("append").format("parquet"),
        target_and_error_table_writer=WrappedDataFrameWriter().mode("append").format("parquet"),
        stats_streaming_options=_STATS_STREAMING_OPTIONS,
    )


def prepare_scenario(
    spark: SparkSession, name: str, stats_table: str = STATS_TABLE
) -> tuple[Any, Callable[[], Any]]:
    """Return the ``SparkExpectations`` instance of scenario ``name`` and its decorated DQ function.

    Calling the function runs spark-expectations once; it raises
    ``SparkExpectationsMiscException`` when a rule with action ``fail`` fails.
    """
    scenario = SCENARIOS[name]
    se = build_expectations(spark, scenario, stats_table)
    input_df = spark.createDataFrame(scenario.rows, schema=INPUT_SCHEMA)
    # query_dq rules read the input through this view.
    input_df.createOrReplaceTempView(f"{scenario.target_table}_source")

    @se.with_expectations(
        target_table=scenario.target_table,
        write_to_table=False,
        user_conf={**_BASE_USER_CONF, **scenario.user_conf},
    )
    def dq_function() -> Any:
        return input_df

    return se, dq_function


def run_scenario_expectations(
    spark: SparkSession, name: str, stats_table: str = STATS_TABLE
) -> tuple[Any, BaseException | None]:
    """Run scenario ``name`` and return its ``SparkExpectations`` instance and the run's error.

    The error is ``None`` when the run passed; a failed run still wrote its stats row.
    """
    from spark_expectations.core.exceptions import SparkExpectationsMiscException

    se, dq_function = prepare_scenario(spark, name, stats_table)
    try:
        dq_function()
    except SparkExpectationsMiscException as error:
        return se, error
    return se, None


def run_scenario(spark: SparkSession, name: str) -> dict[str, Any]:
    """Run scenario ``name`` and return its stats payload, for failed runs too."""
    se, _ = run_scenario_expectations(spark, name)
    return stats_payload(se, SCENARIOS[name].target_table)


def run_all_scenarios(spark: SparkSession) -> dict[str, dict[str, Any]]:
    """Run every scenario in order and return the payloads by scenario name."""
    return {name: run_scenario(spark, name) for name in SCENARIO_NAMES}


def main(argv: list[str]) -> int:
    """Time the scenario set and write the payloads as JSON to the file argument, or to stdout."""
    started = time.perf_counter()
    # spark-expectations prints some lines to stdout; keep stdout for the JSON.
    with redirect_stdout(sys.stderr), scenario_spark_session() as spark:
        session_ready = time.perf_counter()
        payloads = {}
        for name in SCENARIO_NAMES:
            scenario_started = time.perf_counter()
            payloads[name] = run_scenario(spark, name)
            status = (payloads[name]["dq_status"] or {}).get("run_status")
            print(f"{name}: {time.perf_counter() - scenario_started:.2f} s, run_status {status}", file=sys.stderr)
        finished = time.perf_counter()

    print(
        f"SparkSession start {session_ready - started:.2f} s, "
        f"{len(payloads)} scenarios {finished - session_ready:.2f} s",
        file=sys.stderr,
    )
    text = json.dumps(payloads, indent=2)
    if argv:
        Path(argv[0]).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
