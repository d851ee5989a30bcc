"""Shared fixtures. The Spark ones start a JVM only for the tests that request them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A local[1] SparkSession for the whole test session, with its files in a temporary directory."""
    pytest.importorskip("pyspark", reason="needs the [spark] extra")
    pytest.importorskip("spark_expectations", reason="needs the [spark] extra")
    from tests.se_scenarios import scenario_spark_session

    with scenario_spark_session() as session:
        yield session


@pytest.fixture(scope="session")
def se_payloads(spark: SparkSession) -> dict[str, dict[str, Any]]:
    """Stats payloads of real spark-expectations runs, by scenario name (see tests/se_scenarios.py)."""
    from tests.se_scenarios import run_all_scenarios

    return run_all_scenarios(spark)
