"""The local Events API receiver in a child process, so that it does not share the GIL with the senders.

The child runs ``EventsApiReceiver`` on 127.0.0.1, prints one JSON line with its URL (and CA
file in TLS mode), then reads commands from stdin, one per line, and responds to each with
one JSON line:

- ``summary``: counts of accepted, throttled and rejected events and of incidents.
- ``reset``: clear events, incidents and rate-limit windows.

It stops when stdin closes or when its lifetime ends, whichever comes first.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from benchmarks.common import REPOSITORY_ROOT

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver

DEFAULT_LIFETIME_SECONDS = 900.0
STOP_TIMEOUT_SECONDS = 15.0


def summarize(receiver: EventsApiReceiver) -> dict[str, Any]:
    """Count what the receiver recorded: events by outcome, and incidents with their triggers."""
    incidents = receiver.incidents()
    keys = [incident.dedup_key for incident in incidents]
    return {
        "requests_seen": receiver.requests_seen,
        "accepted": len(receiver.accepted),
        "throttled": receiver.throttled_count,
        "rejected": len(receiver.rejected),
        "incidents": len(incidents),
        "distinct_dedup_keys": len(set(keys)),
        # A dedup key that opened more than one incident, or an incident triggered more than
        # once, means that one event became two.
        "repeated_triggers": sum(incident.trigger_count - 1 for incident in incidents),
        "reopened_keys": len(keys) - len(set(keys)),
    }


def _serve_commands(receiver: EventsApiReceiver) -> None:
    """Respond to commands from stdin until it closes, then stop the receiver."""
    for line in sys.stdin:
        command = line.strip()
        if command == "summary":
            response: dict[str, Any] = summarize(receiver)
        elif command == "reset":
            receiver.reset()
            response = {"reset": True}
        else:
            response = {"error": f"unknown command {command!r}; expected summary or reset"}
        print(json.dumps(response), flush=True)
    receiver.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a receiver in this process until stdin closes or the lifetime ends."""
    from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver

    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver_process")
    parser.add_argument("--tls", action="store_true", help="serve https with a self-signed certificate")
    parser.add_argument(
        "--rate-limit",
        nargs=2,
        type=float,
        metavar=("EVENTS", "SECONDS"),
        help="accept at most EVENTS events per routing key in any window of SECONDS, and respond 429 beyond",
    )
    parser.add_argument(
        "--lifetime",
        type=float,
        default=DEFAULT_LIFETIME_SECONDS,
        metavar="SECONDS",
        help=f"stop after this many seconds (default: {DEFAULT_LIFETIME_SECONDS:g})",
    )
    arguments = parser.parse_args(argv)

    # The receiver logs every event at INFO; only problems are worth printing here.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rate_limit = None
    if arguments.rate_limit is not None:
        rate_limit = (int(arguments.rate_limit[0]), arguments.rate_limit[1])

    receiver = EventsApiReceiver(
        max_lifetime_seconds=arguments.lifetime, rate_limit=rate_limit, tls=arguments.tls
    )
    with receiver:
        address = {"url": receiver.url, "ca_file": receiver.ca_file if arguments.tls else None}
        print(json.dumps(address), flush=True)
        threading.Thread(target=_serve_commands, args=(receiver,), daemon=True).start()
        receiver.wait_until_stopped()
    return 0


class ReceiverProcess:
    """Start ``python -m benchmarks.receiver_process`` and talk to it; use it as a context manager.

    :param tls: serve https; ``ca_file`` is then the certificate to verify it with.
    :param rate_limit: ``(events, window_seconds)`` per routing key, or None for no limit.
    :param lifetime_seconds: the child stops by itself after this many seconds.
    """

    def __init__(
        self,
        *,
        tls: bool = False,
        rate_limit: tuple[int, float] | None = None,
        lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        command = [sys.executable, "-m", "benchmarks.receiver_process", "--lifetime", str(lifetime_seconds)]
        if tls:
            command.append("--tls")
        if rate_limit is not None:
            command.extend(["--rate-limit", str(rate_limit[0]), str(rate_limit[1])])
        self._process = subprocess.Popen(
            command,
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            address = self._read_response()
        except BaseException:
            self.close()
            raise
        self.url: str = address["url"]
        self.ca_file: str | None = address["ca_file"]

    def summary(self) -> dict[str, Any]:
        """Return the child's counts of events and incidents (see :func:`summarize`)."""
        return self._ask("summary")

    def reset(self) -> None:
        """Make the child clear its events, incidents and rate-limit windows."""
        self._ask("reset")

    def close(self) -> None:
        """Close the child's stdin, which stops it, and wait for it to exit."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_SECONDS)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read_response()

    def _read_response(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.poll()
            raise RuntimeError(f"the receiver process exited (exit code {code}) before responding")
        response: dict[str, Any] = json.loads(line)
        if "error" in response:
            raise RuntimeError(f"the receiver process rejected a command: {response['error']}")
        return response


if __name__ == "__main__":
    raise SystemExit(main())
