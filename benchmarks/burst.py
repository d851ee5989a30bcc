"""A burst of events under a PagerDuty-style rate limit: total time, lost events and duplicate incidents.

The receiver accepts at most N events per routing key in any sliding window of W seconds and
responds with HTTP 429 to the events beyond that. Several threads, each with its own hook and
the default DeliveryPolicy, send distinct trigger events at once. The hook retries each 429
with exponential backoff and full jitter. The floor is the time that the limit allows for the
burst: events / N * W.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.common import (
    Row,
    airflow_connection_variable,
    environment_variables,
    format_ratio,
    format_seconds,
    median,
    stdout_to_devnull,
    verdict,
)
from benchmarks.receiver_process import ReceiverProcess
from benchmarks.sending import trigger_body

if TYPE_CHECKING:
    from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

AREA = "4 burst"
CONN_ID = "se_pagerduty_bench_burst"
MAX_FLOOR_RATIO = 1.3
# Senders start no new event after this many floors plus DEADLINE_EXTRA_SECONDS, so that a
# policy that falls far behind still ends. An event already started ends within the
# policy's max_total_seconds.
DEADLINE_FLOORS = 3.0
DEADLINE_EXTRA_SECONDS = 30.0


@dataclass(frozen=True)
class BurstOptions:
    """Size of the burst, the receiver's rate limit and the number of runs."""

    events: int = 300
    senders: int = 4
    limit_events: int = 60
    limit_window_seconds: float = 2.0
    runs: int = 3

    @property
    def floor_seconds(self) -> float:
        """The time that the rate limit allows for the whole burst."""
        return self.events / self.limit_events * self.limit_window_seconds


@dataclass
class SenderTally:
    """Counts of one sender thread's events: delivered, given up after retries, never started."""

    delivered: int = 0
    failed: int = 0
    not_started: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BurstResult:
    """One burst: the wall time, the senders' tallies and the receiver's counts."""

    seconds: float
    tallies: list[SenderTally]
    receiver_summary: dict[str, Any]

    @property
    def failed(self) -> int:
        return sum(tally.failed for tally in self.tallies)

    @property
    def not_started(self) -> int:
        return sum(tally.not_started for tally in self.tallies)


def _send_share(
    hook: SparkExpectationsPagerDutyHook,
    bodies: list[dict[str, Any]],
    start: threading.Barrier,
    deadline: list[float],
    tally: SenderTally,
) -> None:
    """Send ``bodies`` one after another, counting deliveries and failures."""
    from airflow_provider_se_pagerduty.exceptions import SparkExpectationsPagerDutyError

    start.wait()
    for index, body in enumerate(bodies):
        if time.monotonic() > deadline[0]:
            tally.not_started += len(bodies) - index
            return
        try:
            hook.send_event(body)
        except SparkExpectationsPagerDutyError as error:
            tally.failed += 1
            tally.errors.append(str(error))
        else:
            tally.delivered += 1


def run_burst(receiver: ReceiverProcess, options: BurstOptions, run_index: int) -> BurstResult:
    """Send one burst of distinct trigger events from ``options.senders`` threads and time it."""
    from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook

    receiver.reset()
    template = trigger_body()
    bodies = [
        {**template, "dedup_key": f"bench-burst/{run_index}/{index}"} for index in range(options.events)
    ]

    hooks = []
    for _ in range(options.senders):
        hook = SparkExpectationsPagerDutyHook(CONN_ID)
        # Read the connection and build the session before the clock starts.
        hook.session  # noqa: B018
        hook.url  # noqa: B018
        hooks.append(hook)

    tallies = [SenderTally() for _ in hooks]
    start = threading.Barrier(len(hooks) + 1)
    deadline = [0.0]
    threads = [
        threading.Thread(
            target=_send_share,
            args=(hook, bodies[number :: len(hooks)], start, deadline, tally),
            name=f"burst-sender-{number}",
        )
        for number, (hook, tally) in enumerate(zip(hooks, tallies, strict=True))
    ]
    for thread in threads:
        thread.start()

    deadline[0] = time.monotonic() + DEADLINE_FLOORS * options.floor_seconds + DEADLINE_EXTRA_SECONDS
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started

    for hook in hooks:
        hook.session.close()
    return BurstResult(seconds, tallies, receiver.summary())


def measure(options: BurstOptions) -> list[Row]:
    """Run ``options.runs`` bursts against one rate-limited receiver child process."""
    rate_limit = (options.limit_events, options.limit_window_seconds)
    with (
        ReceiverProcess(rate_limit=rate_limit) as receiver,
        environment_variables(airflow_connection_variable(CONN_ID, receiver.url)),
        stdout_to_devnull(),
    ):
        results = [run_burst(receiver, options, run_index) for run_index in range(options.runs)]

    return _rows(results, options)


def _rows(results: list[BurstResult], options: BurstOptions) -> list[Row]:
    floor = options.floor_seconds
    total = median([result.seconds for result in results])
    lost = [options.events - result.receiver_summary["distinct_dedup_keys"] for result in results]
    duplicates = [
        result.receiver_summary["repeated_triggers"] + result.receiver_summary["reopened_keys"]
        for result in results
    ]
    throttled = median([float(result.receiver_summary["throttled"]) for result in results])
    runs = str(len(results))
    burst = (
        f"{options.events} events, {options.senders} senders, limit {options.limit_events} "
        f"per {options.limit_window_seconds:g} s"
    )
    return [
        Row(AREA, f"floor allowed by the limit ({burst})", format_seconds(floor)),
        Row(
            AREA,
            "our hook, one per sender thread, default DeliveryPolicy",
            format_seconds(total),
            runs,
            f"{format_ratio(total / floor)} the floor; {throttled:.0f} responses were 429"
            + (f"; {sum(lost)} events lost, which shortens the time" if any(lost) else ""),
            verdict(total <= MAX_FLOOR_RATIO * floor, f"<= {MAX_FLOOR_RATIO:g}x the floor"),
        ),
        Row(
            AREA,
            "events lost (most in one run)",
            str(max(lost)),
            runs,
            (
                f"{sum(result.failed for result in results)} gave up after the policy's bounds, "
                f"{sum(result.not_started for result in results)} not started before the deadline"
            ),
            verdict(max(lost) == 0, "0"),
        ),
        Row(
            AREA,
            "duplicate incidents (most in one run)",
            str(max(duplicates)),
            runs,
            "",
            verdict(max(duplicates) == 0, "0"),
        ),
    ]
