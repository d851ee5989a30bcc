"""Stats handoff: the time to get a run's stats payload as the stats table's history grows.

Real spark-expectations runs (from ``tests/se_scenarios.py``) write to a parquet stats table
on local Spark. Before each measured run, synthetic earlier runs are appended to the table
directly with Spark: copies of the first run's row with their own run ids and older
timestamps. Then ``spark.stats_payload`` is timed against the naive alternative, which reads
the stats table and takes the latest row of the target table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    Row,
    environment_variables,
    format_ratio,
    format_seconds,
    median,
    stdout_to_devnull,
    verdict,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

AREA = "5 handoff"
SCENARIO_NAME = "row_drop_breach"
MAX_GROWTH = 1.5
# Spark's console progress bars would interleave with the table on stderr.
SPARK_SUBMIT_ARGUMENTS = "--conf spark.ui.showConsoleProgress=false pyspark-shell"
HISTORY_RUN_ID_PREFIX = "bench-history-"


@dataclass(frozen=True)
class HandoffOptions:
    """History sizes (earlier runs in the stats table) and repeats per size."""

    history_sizes: tuple[int, ...] = (1, 1_000, 10_000)
    repeats: int = 11


def latest_stats_row(spark: SparkSession, stats_table: str, target_table: str) -> dict[str, Any]:
    """Read the stats table and return the newest row of ``target_table``: the naive handoff."""
    stats = spark.table(stats_table)
    newest_first = stats.filter(stats["table_name"] == target_table).orderBy(
        stats["meta_dq_run_datetime"].desc()
    )
    return dict(newest_first.limit(1).collect()[0].asDict(recursive=True))


def append_history(spark: SparkSession, stats_table: str, count: int) -> None:
    """Append ``count`` copies of the table's oldest row, each an older run with its own run id."""
    from pyspark.sql import functions

    if count <= 0:
        return
    table = spark.table(stats_table)
    oldest = table.orderBy(table["meta_dq_run_datetime"]).limit(1).collect()
    # A local DataFrame, so that the append does not read the table it writes to.
    template = spark.createDataFrame(oldest, schema=table.schema)
    index = functions.col("history_index")
    run_datetime = functions.timestamp_seconds(
        functions.unix_timestamp("meta_dq_run_datetime") - (index + 1) * 60
    )
    history = (
        template.crossJoin(spark.range(count).withColumnRenamed("id", "history_index"))
        .withColumn("meta_dq_run_id", functions.concat(functions.lit(HISTORY_RUN_ID_PREFIX), index))
        .withColumn("meta_dq_run_datetime", run_datetime)
        .withColumn("meta_dq_run_date", functions.to_date(run_datetime))
        .select(*table.columns)
    )
    history.write.mode("append").format("parquet").saveAsTable(stats_table)


def _earlier_runs(count: int) -> str:
    return f"{count:,} earlier run" if count == 1 else f"{count:,} earlier runs"


def _timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def measure(options: HandoffOptions) -> list[Row]:
    """Run spark-expectations once per history size and time both handoffs after each run."""
    from airflow_provider_se_pagerduty.spark import stats_payload
    from tests.se_scenarios import SCENARIOS, STATS_TABLE, run_scenario_expectations, scenario_spark_session

    target_table = SCENARIOS[SCENARIO_NAME].target_table
    ours: dict[int, float] = {}
    naive: dict[int, float] = {}
    mismatches: dict[int, str] = {}
    with (
        environment_variables({"PYSPARK_SUBMIT_ARGS": SPARK_SUBMIT_ARGUMENTS}),
        scenario_spark_session() as spark,
        # spark-expectations prints some settings to stdout on every run.
        stdout_to_devnull(),
    ):
        # The first run creates the stats table and is the template of the synthetic history.
        run_scenario_expectations(spark, SCENARIO_NAME)
        for history in sorted(options.history_sizes):
            existing = spark.table(STATS_TABLE).count()
            append_history(spark, STATS_TABLE, history - existing)
            se, _ = run_scenario_expectations(spark, SCENARIO_NAME)

            payload = stats_payload(se, target_table)
            row = latest_stats_row(spark, STATS_TABLE, target_table)
            if row["meta_dq_run_id"] != payload["meta_dq_run_id"]:
                mismatches[history] = str(row["meta_dq_run_id"])

            our_samples: list[float] = []
            naive_samples: list[float] = []
            for _ in range(options.repeats):
                our_samples.append(_timed(lambda se=se: stats_payload(se, target_table))[0])
                naive_samples.append(_timed(lambda: latest_stats_row(spark, STATS_TABLE, target_table))[0])
            ours[history] = median(our_samples)
            naive[history] = median(naive_samples)

    return _rows(ours, naive, mismatches, options)


def _rows(
    ours: dict[int, float], naive: dict[int, float], mismatches: dict[int, str], options: HandoffOptions
) -> list[Row]:
    smallest = min(ours)
    largest = max(ours)
    runs = str(options.repeats)
    rows = []
    for history in sorted(ours):
        growth = ours[history] / ours[smallest]
        check = ""
        if history == largest and largest != smallest:
            check = verdict(growth <= MAX_GROWTH, f"<= {MAX_GROWTH:g}x the {smallest:,}-run time")
        rows.append(
            Row(
                AREA,
                f"spark.stats_payload, {_earlier_runs(history)} in the stats table",
                format_seconds(ours[history]),
                runs,
                f"{format_ratio(growth)} the {smallest:,}-run time",
                check,
            )
        )
    for history in sorted(naive):
        compared = (
            f"{format_ratio(naive[history] / naive[smallest])} its {smallest:,}-run time; "
            f"{format_ratio(naive[history] / ours[history])} stats_payload"
        )
        if history in mismatches:
            compared += f"; took run {mismatches[history]}, not the latest"
        rows.append(
            Row(
                AREA,
                f"naive: read the stats table, take the latest row, {_earlier_runs(history)}",
                format_seconds(naive[history]),
                runs,
                compared,
            )
        )
    return rows
