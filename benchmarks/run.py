"""Run the benchmarks, print one results table and write it to ``benchmarks/results.md``.

``python -m benchmarks.run`` (or ``make bench``) runs every measurement at full size, which
took 3 to 6 minutes on 2 cores, depending on the other load. ``--quick`` runs small sizes as
a smoke run and writes no file unless ``--output`` is given. A missed target is reported as
FAIL in the table, and the exit code is 1 only when a measurement could not run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from benchmarks import burst, decision, handoff, imports, sending
from benchmarks.common import FAIL, REPOSITORY_ROOT, Row, format_seconds
from benchmarks.environment import environment_rows, load_average

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PARTS = ("imports", "decision", "sending", "burst", "handoff")
DEFAULT_OUTPUT = REPOSITORY_ROOT / "benchmarks" / "results.md"
COLUMNS = ("area", "case", "median", "runs", "compared", "check")

QUICK_DEFAULTS = {
    "import_runs": 2,
    "decision_sizes": "10,1000,10000",
    "decision_samples": 3,
    "send_events": 20,
    "send_rounds": 2,
    "burst_events": 40,
    "burst_senders": 4,
    "burst_limit": 20,
    "burst_window": 0.5,
    "burst_runs": 1,
    "history_sizes": "1,100",
    "handoff_repeats": 3,
}
FULL_DEFAULTS = {
    "import_runs": imports.ImportOptions.runs,
    "decision_sizes": ",".join(str(size) for size in decision.DecisionOptions.rule_counts),
    "decision_samples": decision.DecisionOptions.samples,
    "send_events": sending.SendingOptions.events_per_sample,
    "send_rounds": sending.SendingOptions.rounds,
    "burst_events": burst.BurstOptions.events,
    "burst_senders": burst.BurstOptions.senders,
    "burst_limit": burst.BurstOptions.limit_events,
    "burst_window": burst.BurstOptions.limit_window_seconds,
    "burst_runs": burst.BurstOptions.runs,
    "history_sizes": ",".join(str(size) for size in handoff.HandoffOptions.history_sizes),
    "handoff_repeats": handoff.HandoffOptions.repeats,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(_positive_int(part.replace("_", "")) for part in text.split(",") if part.strip())
    if not sizes:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of sizes, got {text!r}")
    return sizes


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(PARTS)}, got {text!r}"
        )
    return parts


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser. Size options left unset take the full or ``--quick`` defaults."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Measure the provider against the alternatives and print one results table.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="use small sizes for a smoke run of about 3 minutes"
    )
    parser.add_argument(
        "--only",
        type=_parts,
        default=PARTS,
        metavar="PARTS",
        help=f"run only these comma-separated parts of {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--output",
        help="Markdown file to write the table to (default: benchmarks/results.md, or no file with "
        "--quick); '-' writes no file",
    )

    parser.add_argument("--import-runs", type=_positive_int, help="fresh interpreters per module set")

    parser.add_argument("--decision-sizes", type=_sizes, help="comma-separated numbers of row_dq rules")
    parser.add_argument("--decision-samples", type=_positive_int, help="timed samples per number of rules")

    parser.add_argument("--send-events", type=_positive_int, help="events in each timed sample of a sender")
    parser.add_argument("--send-rounds", type=_positive_int, help="timed samples per sender")

    parser.add_argument("--burst-events", type=_positive_int, help="events in one burst")
    parser.add_argument("--burst-senders", type=_positive_int, help="sender threads, each with its own hook")
    parser.add_argument(
        "--burst-limit", type=_positive_int, help="events the receiver accepts per routing key and window"
    )
    parser.add_argument("--burst-window", type=_positive_float, help="rate-limit window in seconds")
    parser.add_argument("--burst-runs", type=_positive_int, help="number of bursts")

    parser.add_argument(
        "--history-sizes", type=_sizes, help="comma-separated numbers of earlier runs in the stats table"
    )
    parser.add_argument("--handoff-repeats", type=_positive_int, help="timed handoffs per history size")
    return parser


def resolve_defaults(arguments: argparse.Namespace) -> argparse.Namespace:
    """Fill every size option that the command line left unset from the full or quick defaults."""
    defaults = QUICK_DEFAULTS if arguments.quick else FULL_DEFAULTS
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            converted = _sizes(value) if isinstance(value, str) else value
            setattr(arguments, name, converted)
    return arguments


def measurements(arguments: argparse.Namespace) -> dict[str, Callable[[], list[Row]]]:
    """Return the measurement of each part, configured from the command line."""
    return {
        "imports": lambda: imports.measure(imports.ImportOptions(runs=arguments.import_runs)),
        "decision": lambda: decision.measure(
            decision.DecisionOptions(
                rule_counts=arguments.decision_sizes,
                samples=arguments.decision_samples,
                min_sample_seconds=0.1 if arguments.quick else decision.DecisionOptions.min_sample_seconds,
            )
        ),
        "sending": lambda: sending.measure(
            sending.SendingOptions(events_per_sample=arguments.send_events, rounds=arguments.send_rounds)
        ),
        "burst": lambda: burst.measure(
            burst.BurstOptions(
                events=arguments.burst_events,
                senders=arguments.burst_senders,
                limit_events=arguments.burst_limit,
                limit_window_seconds=arguments.burst_window,
                runs=arguments.burst_runs,
            )
        ),
        "handoff": lambda: handoff.measure(
            handoff.HandoffOptions(history_sizes=arguments.history_sizes, repeats=arguments.handoff_repeats)
        ),
    }


def collect_rows(arguments: argparse.Namespace) -> tuple[list[Row], bool]:
    """Run the selected parts in order; return the rows and whether every part ran.

    A part that raises adds a FAIL row with the error and the next part still runs.
    """
    started = time.perf_counter()
    rows = environment_rows()
    every_part_ran = True
    parts = measurements(arguments)
    for name in PARTS:
        if name not in arguments.only:
            continue
        part_started = time.perf_counter()
        print(f"benchmarks: running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(parts[name]())
        except Exception as error:
            every_part_ran = False
            traceback.print_exc(file=sys.stderr)
            rows.append(Row(name, "measurement failed", type(error).__name__, check=f"{FAIL} ({error})"))
        print(
            f"benchmarks: {name} took {format_seconds(time.perf_counter() - part_started)}",
            file=sys.stderr,
            flush=True,
        )

    mode = "quick" if arguments.quick else "full"
    rows.append(Row("machine", "load average (1 min) at end", load_average()))
    rows.append(Row("run", f"total run time ({mode} sizes)", format_seconds(time.perf_counter() - started)))
    return rows, every_part_ran


def render_table(rows: list[Row]) -> str:
    """Render the rows as a Markdown table with padded columns, readable as plain text too."""
    cells = [list(COLUMNS)] + [[getattr(row, column).replace("|", "/") for column in COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(COLUMNS))]

    def render_line(line: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([render_line(cells[0]), separator, *(render_line(line) for line in cells[1:])])


def results_document(table: str, command: str) -> str:
    """Wrap the table in the Markdown page that is committed as ``benchmarks/results.md``."""
    recorded = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "# Benchmark results\n\n"
        f"Recorded on {recorded} with `{command}`, on the machine listed in the table.\n"
        "Each figure is the median of the samples in the runs column. The machine is shared and\n"
        "noisy, so absolute times are context only. The ratios compare figures from the same run.\n"
        "`benchmarks/README.md` explains each row.\n\n"
        f"{table}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table to stdout and write the results file."""
    arguments = resolve_defaults(build_parser().parse_args(argv))
    rows, every_part_ran = collect_rows(arguments)
    table = render_table(rows)
    print(table, flush=True)

    output = arguments.output
    if output is None and not arguments.quick:
        output = str(DEFAULT_OUTPUT)
    if output and output != "-":
        command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(output, "w", encoding="utf-8") as results:
            results.write(results_document(table, command.strip()))
        print(f"benchmarks: wrote {output}", file=sys.stderr)
    return 0 if every_part_ran else 1


if __name__ == "__main__":
    raise SystemExit(main())
