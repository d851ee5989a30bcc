"""A local PagerDuty Events API v2 receiver for DAG tests, fault injection, benchmarks and the demo.

``EventsApiReceiver`` listens on 127.0.0.1, responds to ``POST /v2/enqueue`` as PagerDuty does
(202 for a valid event, 400 with an ``errors`` list for an invalid one), keeps the incidents
that the events open, acknowledge and resolve, and serves injected faults. It stops by itself
after ``max_lifetime_seconds``.

Run it from a shell to watch what a DAG sends::

    python -m airflow_provider_se_pagerduty.testing.receiver --port 8090 --lifetime 600
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import selectors
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from airflow_provider_se_pagerduty.testing.faults import Fault, invalid_event_body, throttle_body
from airflow_provider_se_pagerduty.testing.state import AcceptedEvent, EventStore, Incident, RejectedEvent
from airflow_provider_se_pagerduty.testing.validation import MAX_BODY_BYTES, parse_body, validate_event

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["AcceptedEvent", "EventsApiReceiver", "Fault", "Incident", "RejectedEvent", "main"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
ENQUEUE_PATH = "/v2/enqueue"
DEFAULT_MAX_LIFETIME_SECONDS = 1800.0
# An idle keep-alive connection is closed after this many seconds, which also bounds a slow upload.
KEEP_ALIVE_IDLE_TIMEOUT_SECONDS = 30.0
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
# A body over MAX_BODY_BYTES is read and discarded up to this size, so that the client still
# reads the 400. A longer body gets the 400 and the connection is closed without reading it.
_MAX_DRAINED_BODY_BYTES = 16 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
# Maximum time that stop() waits for the connection threads to finish.
_STOP_JOIN_TIMEOUT_SECONDS = 5.0
_LISTEN_BACKLOG = 128


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: str = "application/json"
    extra_headers: tuple[tuple[str, str], ...] = ()


class _FramingError(Exception):
    """The request's Content-Length or chunked encoding is malformed."""


class EventsApiReceiver:
    """A local PagerDuty Events API v2 endpoint on 127.0.0.1.

    Use it as a context manager, or call ``start()`` and ``stop()``. Events, incidents and
    counters are kept in memory until ``reset()`` or until the receiver is garbage collected.

    :param port: TCP port on 127.0.0.1, or 0 to let the OS choose a free one.
    :param max_lifetime_seconds: the receiver stops by itself this many seconds after start(),
        so that a test that never calls stop() leaves no server behind.
    :param rate_limit: ``(max_events, window_seconds)``. When given, each routing key may have at
        most ``max_events`` events accepted in any sliding window of ``window_seconds``. Events
        beyond that get 429 and are not recorded.
    :param tls: serve https with a self-signed certificate for 127.0.0.1 and localhost, written to
        a temporary directory that stop() deletes. ``ca_file`` is its path.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        max_lifetime_seconds: float = DEFAULT_MAX_LIFETIME_SECONDS,
        rate_limit: tuple[int, float] | None = None,
        tls: bool = False,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        if max_lifetime_seconds <= 0:
            raise ValueError(f"max_lifetime_seconds must be positive, got {max_lifetime_seconds}")

        self._requested_port = port
        self._max_lifetime_seconds = max_lifetime_seconds
        self._tls = tls
        self._store = EventStore(rate_limit)

        self._lock = threading.Lock()
        self._faults: collections.deque[Fault] = collections.deque()
        self._requests_seen = 0

        self._lifecycle_lock = threading.Lock()
        self._started = False
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._server: _ReceiverServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._lifetime_timer: threading.Timer | None = None
        self._certificate_dir: Path | None = None
        self._ca_file: Path | None = None

    # Lifecycle

    def start(self) -> EventsApiReceiver:
        """Bind the port, serve in a background thread and return the receiver itself."""
        with self._lifecycle_lock:
            if self._started or self._stopping.is_set():
                raise RuntimeError("a receiver starts only once. Create a new EventsApiReceiver")
            self._started = True

        try:
            ssl_context = self._create_ssl_context() if self._tls else None
            self._server = _ReceiverServer((HOST, self._requested_port), self, ssl_context)
        except BaseException:
            self._remove_certificate_dir()
            raise

        self._serve_thread = threading.Thread(
            target=self._server.serve_until_woken,
            name=f"events-api-receiver-{self.port}",
            daemon=True,
        )
        self._serve_thread.start()

        self._lifetime_timer = threading.Timer(self._max_lifetime_seconds, self._stop_after_lifetime)
        self._lifetime_timer.daemon = True
        self._lifetime_timer.start()

        log.info(
            "Events API receiver listening on %s, stopping by itself after %s s",
            self.url,
            self._max_lifetime_seconds,
        )
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and delete the TLS files. Calling it again does nothing."""
        with self._lifecycle_lock:
            if self._stopping.is_set():
                return
            self._stopping.set()

        if self._lifetime_timer is not None:
            self._lifetime_timer.cancel()

        server = self._server
        if server is not None:
            server.wake()
            if self._serve_thread is not None:
                self._serve_thread.join(_STOP_JOIN_TIMEOUT_SECONDS)
            server.server_close()
            server.close_connections(_STOP_JOIN_TIMEOUT_SECONDS)

        self._remove_certificate_dir()
        self._stopped.set()
        if server is not None:
            log.info("Events API receiver on %s stopped", self.url)

    def wait_until_stopped(self, timeout: float | None = None) -> bool:
        """Block until the receiver has stopped, and return whether it did within ``timeout`` seconds."""
        return self._stopped.wait(timeout)

    @property
    def is_running(self) -> bool:
        """Whether the receiver was started and has not begun stopping."""
        return self._server is not None and not self._stopping.is_set()

    def __enter__(self) -> EventsApiReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses

    @property
    def port(self) -> int:
        """The TCP port the receiver listens on."""
        if self._server is None:
            raise RuntimeError("the receiver is not started. Call start() or use it in a with block")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The Events API URL to configure in a client, e.g. ``http://127.0.0.1:PORT/v2/enqueue``."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{HOST}:{self.port}{ENQUEUE_PATH}"

    @property
    def ca_file(self) -> str:
        """Path of the self-signed certificate to verify the receiver with in TLS mode.

        The file is deleted when the receiver stops.
        """
        if self._ca_file is None:
            raise RuntimeError("ca_file exists only for a started receiver created with tls=True")
        return str(self._ca_file)

    # Recorded events and incidents

    @property
    def accepted(self) -> list[AcceptedEvent]:
        """Events accepted with HTTP 202, oldest first."""
        return self._store.accepted

    @property
    def rejected(self) -> list[RejectedEvent]:
        """Invalid events rejected with HTTP 400, with their validation errors, oldest first."""
        return self._store.rejected

    @property
    def requests_seen(self) -> int:
        """Number of HTTP requests read, including those that got a fault or an error response."""
        with self._lock:
            return self._requests_seen

    @property
    def throttled_count(self) -> int:
        """Number of valid events rejected with HTTP 429 because of ``rate_limit``."""
        return self._store.throttled_count

    @property
    def pending_faults(self) -> int:
        """Number of injected faults that no request has consumed yet."""
        with self._lock:
            return len(self._faults)

    def incidents(self) -> list[Incident]:
        """Return every incident in the order it was opened, resolved ones included."""
        return self._store.incidents()

    def open_incidents(self) -> list[Incident]:
        """Return the incidents that are open or acknowledged, in the order they were opened."""
        return self._store.open_incidents()

    def wait_for_accepted(self, count: int, timeout: float = 10.0) -> list[AcceptedEvent]:
        """Block until at least ``count`` events were accepted and return all accepted events.

        Raises TimeoutError when fewer arrive within ``timeout`` seconds.
        """
        return self._store.wait_for_accepted(count, timeout)

    def inject(self, *faults: Fault) -> None:
        """Queue faults, each served to one incoming request in place of normal handling.

        Every request consumes the next fault, whatever its method or path.
        """
        for fault in faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"inject() takes Fault values, got {type(fault).__name__}")
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget recorded events, incidents, counters, pending faults and rate-limit windows."""
        with self._lock:
            self._faults.clear()
            self._requests_seen = 0
        self._store.clear()

    # Request handling, called from the connection threads

    def _begin_request(self) -> Fault | None:
        """Count a request and return the fault it must be served, if one is queued."""
        with self._lock:
            self._requests_seen += 1
            return self._faults.popleft() if self._faults else None

    def _respond(self, method: str, path: str, body: bytes | None) -> _Response:
        """Build the response to a request after its body was read.

        ``body`` is None when the body was over MAX_BODY_BYTES.
        """
        if urlsplit(path).path != ENQUEUE_PATH:
            return _json_response(
                HTTPStatus.NOT_FOUND,
                {
                    "status": "not found",
                    "message": f"No endpoint at {path}. Send events to POST {ENQUEUE_PATH}",
                },
            )
        if method != "POST":
            return _json_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"status": "method not allowed", "message": f"{ENQUEUE_PATH} accepts POST only"},
                extra_headers=(("Allow", "POST"),),
            )

        if body is None:
            return self._reject(
                [f"Request body is larger than the limit of {MAX_BODY_BYTES} bytes (512 KB)"], None
            )
        event, errors = parse_body(body)
        if event is None:
            return self._reject(errors, None)
        errors = validate_event(event)
        if errors:
            return self._reject(errors, event)

        record = self._store.accept(event)
        if record is None:
            log.info(
                "Throttled %s for dedup_key %s: rate limit reached",
                event["event_action"],
                event.get("dedup_key"),
            )
            return _Response(HTTPStatus.TOO_MANY_REQUESTS, throttle_body())

        log.info(
            "Accepted %s severity=%s dedup_key=%s summary=%r",
            record.action,
            record.severity,
            record.dedup_key,
            record.summary,
        )
        return _json_response(
            HTTPStatus.ACCEPTED,
            {"status": "success", "message": "Event processed", "dedup_key": record.dedup_key},
        )

    def _reject(self, errors: list[str], event: dict[str, Any] | None) -> _Response:
        record = self._store.reject(errors, event)
        log.info(
            "Rejected %s dedup_key=%s summary=%r: %s",
            record.action,
            record.dedup_key,
            record.summary,
            "; ".join(record.errors),
        )
        return _Response(HTTPStatus.BAD_REQUEST, invalid_event_body(errors))

    # Internals

    def _create_ssl_context(self) -> ssl.SSLContext:
        from airflow_provider_se_pagerduty.testing.tls import write_self_signed_certificate

        self._certificate_dir = Path(tempfile.mkdtemp(prefix="se-pagerduty-receiver-"))
        certificate_path, key_path = write_self_signed_certificate(self._certificate_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate_path, key_path)
        self._ca_file = certificate_path
        return context

    def _remove_certificate_dir(self) -> None:
        if self._certificate_dir is not None:
            shutil.rmtree(self._certificate_dir, ignore_errors=True)

    def _stop_after_lifetime(self) -> None:
        log.info(
            "Events API receiver reached its max lifetime of %s s and stops now", self._max_lifetime_seconds
        )
        self.stop()


def _json_response(
    status: int, document: dict[str, Any], extra_headers: tuple[tuple[str, str], ...] = ()
) -> _Response:
    return _Response(status, json.dumps(document).encode(), extra_headers=extra_headers)


class _ReceiverServer(socketserver.ThreadingTCPServer):
    """A TCP server with one thread per connection that tracks its connections for stop()."""

    allow_reuse_address = True
    daemon_threads = True
    # stop() shuts the connections down and waits for them itself.
    block_on_close = False
    request_queue_size = _LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        receiver: EventsApiReceiver,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.receiver = receiver
        self.ssl_context = ssl_context
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self._closing = False
        # serve_until_woken() returns as soon as wake() writes to this pair, where
        # serve_forever() would notice shutdown() only at its next poll.
        self._wake_reader, self._wake_writer = socket.socketpair()
        try:
            super().__init__(address, _RequestHandler)
        except BaseException:
            self._close_wake_pair()
            raise

    def serve_until_woken(self) -> None:
        """Accept connections, each served in its own thread, until wake() is called."""
        self.socket.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_reader for key, _ in ready):
                    return
                self._accept_one()

    def wake(self) -> None:
        """Make serve_until_woken() return."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._close_wake_pair()

    def _accept_one(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:
            # The client went away between select() and accept(), or the backlog is empty.
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def _close_wake_pair(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Run the TLS handshake, if any, and the handler in the connection's own thread."""
        connection: socket.socket = request
        handler: _RequestHandler | None = None
        try:
            if self.ssl_context is not None:
                request.settimeout(TLS_HANDSHAKE_TIMEOUT_SECONDS)
                connection = self.ssl_context.wrap_socket(request, server_side=True)
            if self._track(connection):
                handler = _RequestHandler(connection, client_address, self)
        except OSError as error:
            # Covers failed TLS handshakes and clients that went away mid-request.
            log.debug("Connection from %s ended with %r", client_address, error)
        finally:
            self._untrack(connection)
            _close_connection(connection, reset=handler is not None and handler.reset_requested)

    def shutdown_request(self, request: Any) -> None:
        # finish_request has closed the connection already, with a reset when a fault asked for one.
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.error("Unexpected error while serving %s", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        """Shut down open connections and wait up to ``timeout`` seconds for their threads to end."""
        with self._connections_changed:
            self._closing = True
            for connection in self._connections:
                _shutdown_socket(connection)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def _track(self, connection: socket.socket) -> bool:
        with self._connections_changed:
            if self._closing:
                return False
            self._connections.add(connection)
            return True

    def _untrack(self, connection: socket.socket) -> None:
        with self._connections_changed:
            self._connections.discard(connection)
            self._connections_changed.notify_all()


class _RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that writes each response with a single send."""

    protocol_version = "HTTP/1.1"
    server_version = "se-pagerduty-events-receiver"
    timeout = KEEP_ALIVE_IDLE_TIMEOUT_SECONDS
    # Sets TCP_NODELAY, so that a response is not held back waiting for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _ReceiverServer

    def setup(self) -> None:
        self.reset_requested = False
        super().setup()

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        # http.server passes its own %-format; it is applied only when debug logging is on.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", self.address_string(), format % args)

    def _handle(self) -> None:
        receiver = self.server.receiver
        if receiver._stopping.is_set():
            self.close_connection = True
            return

        try:
            body = self._read_body()
        except _FramingError as error:
            receiver._begin_request()
            self.close_connection = True
            self._send(_Response(HTTPStatus.BAD_REQUEST, str(error).encode(), "text/plain; charset=utf-8"))
            return

        fault = receiver._begin_request()
        if fault is not None:
            log.info(
                "Serving fault %s (status %s, delay %s s) to %s %s",
                fault.kind,
                fault.status_code,
                fault.delay_seconds,
                self.command,
                self.path,
            )
            if fault.kind == "reset":
                self._request_reset()
                return
            if fault.kind == "response":
                self._send(_Response(fault.status_code, fault.body, fault.content_type))
                return
            # A delay fault: stop() ends the wait early and the request is dropped unanswered.
            if receiver._stopping.wait(fault.delay_seconds):
                self.close_connection = True
                return

        self._send(receiver._respond(self.command, self.path, body))

    def _read_body(self) -> bytes | None:
        """Read the request body and return it, or None when it is over MAX_BODY_BYTES."""
        transfer_encoding = self.headers.get("Transfer-Encoding", "")
        if "chunked" in transfer_encoding.lower():
            return self._read_chunked_body()

        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _FramingError(f"Invalid Content-Length {length_header!r}") from None
        if length < 0:
            raise _FramingError(f"Invalid Content-Length {length_header!r}")

        if length <= MAX_BODY_BYTES:
            return self._read_exactly(length)
        if length <= _MAX_DRAINED_BODY_BYTES:
            self._discard(length)
        else:
            self.close_connection = True
        return None

    def _read_chunked_body(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _FramingError(f"Invalid chunk size line {size_line[:40]!r}") from None
            if size < 0:
                raise _FramingError(f"Invalid chunk size line {size_line[:40]!r}")
            if size == 0:
                break

            total += size
            if total > _MAX_DRAINED_BODY_BYTES:
                self.close_connection = True
                return None
            if total <= MAX_BODY_BYTES:
                chunks.append(self._read_exactly(size))
            else:
                chunks.clear()
                self._discard(size)
            self._read_exactly(2)

        # Skip any trailer fields up to the empty line that ends the message.
        while self.rfile.readline(1024).strip():
            pass
        return b"".join(chunks) if total <= MAX_BODY_BYTES else None

    def _read_exactly(self, length: int) -> bytes:
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError(f"client closed the connection after {len(data)} of {length} body bytes")
        return data

    def _discard(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            remaining -= len(self._read_exactly(min(remaining, _READ_CHUNK_BYTES)))

    def _send(self, response: _Response) -> None:
        """Write status line, headers and body with one send, so that no write waits on an ACK."""
        status = HTTPStatus(response.status)
        lines = [
            f"{self.protocol_version} {status.value} {status.phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.extra_headers)
        if self.close_connection:
            lines.append("Connection: close")

        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        message = head if self.command == "HEAD" else head + response.body
        try:
            self.wfile.write(message)
        except OSError as error:
            log.debug("Could not send the response to %s: %r", self.address_string(), error)
            self.close_connection = True

    def _request_reset(self) -> None:
        """Make the close after this request send a TCP reset instead of a normal FIN."""
        # SO_LINGER on with a zero timeout makes close() discard unsent data and send RST.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.reset_requested = True
        self.close_connection = True


def _close_connection(connection: socket.socket, *, reset: bool) -> None:
    if not reset:
        _shutdown_socket(connection, socket.SHUT_WR)
    connection.close()


def _shutdown_socket(connection: socket.socket, direction: int = socket.SHUT_RDWR) -> None:
    """Shut down the socket at the OS level, without TLS close_notify, so that reads in other threads end."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(connection, direction)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a receiver until Ctrl-C or until its lifetime ends, logging each event on one line."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_se_pagerduty.testing.receiver",
        description=(
            "Run a local PagerDuty Events API v2 receiver on 127.0.0.1. It prints its URL, then logs "
            "each accepted or rejected event on one line."
        ),
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: 0, chosen by the OS)"
    )
    parser.add_argument(
        "--lifetime",
        type=float,
        default=DEFAULT_MAX_LIFETIME_SECONDS,
        metavar="SECONDS",
        help=f"stop after this many seconds (default: {DEFAULT_MAX_LIFETIME_SECONDS:g})",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate, whose path is printed after the URL",
    )
    arguments = parser.parse_args(argv)

    try:
        receiver = EventsApiReceiver(
            port=arguments.port, max_lifetime_seconds=arguments.lifetime, tls=arguments.tls
        )
    except ValueError as error:
        parser.error(str(error))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with receiver:
        print(receiver.url, flush=True)
        if arguments.tls:
            print(f"CA file: {receiver.ca_file}", flush=True)
        try:
            receiver.wait_until_stopped()
        except KeyboardInterrupt:
            log.info("Interrupted by the user, stopping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
