"""Fixtures for the browser tests: a local Events API receiver, `airflow api-server`, and chromium.

Everything listens on 127.0.0.1 only and stops in a finalizer, also when a test fails. The
api-server additionally runs under coreutils' `timeout`, so it stops even if pytest is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver
from tests.integration.airflow_env import AirflowEnv

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Page, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "browser"

# The api-server became healthy within about 20 s of its start on a 2-core machine. The limit
# leaves room for a slower or busier one.
API_SERVER_START_TIMEOUT_SECONDS = 120.0
API_SERVER_LIFETIME_SECONDS = 600
API_SERVER_STOP_TIMEOUT_SECONDS = 15.0
RECEIVER_LIFETIME_SECONDS = 600.0
BROWSER_ACTION_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class ApiServer:
    """A running `airflow api-server`: its base URL and the file its output goes to."""

    base_url: str
    log_file: Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no output)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    """Poll the health endpoint until it returns 200, the process exits or the timeout passes."""
    health_url = f"{base_url}/api/v2/monitor/health"
    deadline = time.monotonic() + API_SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with code {process.returncode} before it was healthy:\n"
                f"{log_tail(log_file)}"
            )
        try:
            with urllib.request.urlopen(health_url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    raise TimeoutError(
        f"airflow api-server did not respond at {health_url} within "
        f"{API_SERVER_START_TIMEOUT_SECONDS:.0f} s:\n"
        f"{log_tail(log_file)}"
    )


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Send SIGTERM to the process group, then SIGKILL if it is still running after a grace period."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=API_SERVER_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=API_SERVER_STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """test-output/browser/ under the repository, git-ignored: screenshots and server logs."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(scope="module")
def receiver() -> Iterator[EventsApiReceiver]:
    with EventsApiReceiver(max_lifetime_seconds=RECEIVER_LIFETIME_SECONDS) as running:
        yield running


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, output_dir: Path) -> Iterator[ApiServer]:
    """`airflow api-server` on a free 127.0.0.1 port, with a new SQLite home and every user an admin."""
    airflow = AirflowEnv(tmp_path_factory.mktemp("airflow-api-server"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server_env = {
        "AIRFLOW__API__BASE_URL": f"{base_url}/",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        # The simple auth manager then logs every visitor in as an admin, with no login page.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
    }
    airflow.env.update(server_env)
    airflow.migrate()

    log_file = output_dir / "api-server.log"
    command = [
        "timeout",
        "--kill-after=10",
        str(API_SERVER_LIFETIME_SECONDS),
        sys.executable,
        "-m",
        "airflow",
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=airflow.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until_healthy(base_url, process, log_file)
        yield ApiServer(base_url=base_url, log_file=log_file)
    finally:
        stop_process_group(process)


@pytest.fixture
def page(tmp_path: Path, api_server: ApiServer) -> Iterator[Page]:
    """A chromium page with a new empty profile that can reach 127.0.0.1 only."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def allow_loopback_only(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.set_default_timeout(BROWSER_ACTION_TIMEOUT_MS)
            context.route("**/*", allow_loopback_only)
            yield context.new_page()
        finally:
            context.close()
    if blocked:
        print(f"blocked requests to hosts other than 127.0.0.1: {blocked}")
