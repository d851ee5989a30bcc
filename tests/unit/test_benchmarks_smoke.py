"""Smoke run of the benchmark driver: the cheapest quick-mode parts, checked for their rows, never for speed."""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import pytest

from benchmarks import run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(180)

SENDER_CASES = {
    "http": [
        "raw http.client keep-alive loop (floor)",
        "our hook: send_event on one keep-alive session",
        "requests.post, new connection per event (as spark-expectations' plugin)",
    ],
    "https": [
        "raw http.client keep-alive loop (floor)",
        "our hook: send_event on one keep-alive session",
        "requests.post, new connection per event (as spark-expectations' plugin)",
        "python-pagerduty EventsApiV2Client (keep-alive)",
    ],
}


def _table_rows(table: str) -> list[dict[str, str]]:
    """Parse the printed Markdown table into one dict per data row, keyed by column name."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[dict[str, str]], Path]:
    """Run decision at 10 and 1,000 rules and one timed event per sender, once for the module."""
    output = tmp_path_factory.mktemp("bench") / "results.md"
    printed = io.StringIO()
    capture = pytest.MonkeyPatch()
    capture.setattr(sys, "stdout", printed)
    try:
        exit_code = run.main(
            [
                "--quick",
                "--only",
                "decision,sending",
                "--decision-sizes",
                "10,1000",
                "--decision-samples",
                "1",
                "--send-events",
                "1",
                "--send-rounds",
                "1",
                "--output",
                str(output),
            ]
        )
    finally:
        capture.undo()
    return exit_code, _table_rows(printed.getvalue()), output


def test_smoke_run_exits_zero(smoke_run: tuple[int, list[dict[str, str]], Path]) -> None:
    exit_code, rows, _ = smoke_run
    failed_parts = [row for row in rows if row["case"] == "measurement failed"]
    assert failed_parts == []
    assert exit_code == 0


def test_table_lists_machine_and_versions(smoke_run: tuple[int, list[dict[str, str]], Path]) -> None:
    _, rows, _ = smoke_run
    cases = {(row["area"], row["case"]) for row in rows}
    assert ("machine", "CPU") in cases
    assert ("machine", "memory") in cases
    for label in ("Python", "Airflow", "pyspark", "spark-expectations", "requests"):
        assert ("versions", label) in cases


def test_decision_rows_per_size(smoke_run: tuple[int, list[dict[str, str]], Path]) -> None:
    _, rows, _ = smoke_run
    decision_rows = [row for row in rows if row["area"] == "2 decision"]
    assert [row["case"] for row in decision_rows] == [
        "parse + decide + build 2 events, 10 row_dq rules",
        "parse + decide + build 2 events, 1,000 row_dq rules",
        "same at 1,000 rules, cyclic garbage collector off (context)",
    ]
    assert decision_rows[0]["median"].endswith("per decision")
    assert "per rule" in decision_rows[0]["compared"]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_sender_rows_per_scheme(smoke_run: tuple[int, list[dict[str, str]], Path], scheme: str) -> None:
    _, rows, _ = smoke_run
    scheme_rows = [row for row in rows if row["area"] == f"3 send ({scheme})"]
    assert [row["case"] for row in scheme_rows] == SENDER_CASES[scheme]
    hook_row = scheme_rows[1]
    assert hook_row["check"].split(" ", 1)[0] in ("PASS", "FAIL")
    assert scheme_rows[0]["compared"].startswith("1x the floor")


def test_results_file_holds_printed_table(smoke_run: tuple[int, list[dict[str, str]], Path]) -> None:
    _, rows, output = smoke_run
    written = output.read_text(encoding="utf-8")
    assert written.startswith("# Benchmark results")
    assert "| 3 send (https)" in written
    assert len(_table_rows(written)) == len(rows)


def test_unknown_part_is_rejected() -> None:
    with pytest.raises(SystemExit) as raised:
        run.build_parser().parse_args(["--only", "decision,parsing"])
    assert raised.value.code == 2
