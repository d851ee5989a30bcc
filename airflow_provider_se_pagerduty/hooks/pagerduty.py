"""SparkExpectationsPagerDutyHook: an ``se_pagerduty`` connection to the PagerDuty Events API v2."""

from __future__ import annotations

import asyncio
import copy
import os
import ssl
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_se_pagerduty import EU_EVENTS_API_URL, US_EVENTS_API_URL, connection_check
from airflow_provider_se_pagerduty.delivery import (
    DeliveryPolicy,
    EventResult,
    encode_event,
    events_api_url,
    parse_retry_after,
    rejection,
    retry_reason,
    success_result,
    validate_event,
    validate_routing_key,
)
from airflow_provider_se_pagerduty.exceptions import (
    DeliveryFailedError,
    EventRejectedError,
    InvalidConfigurationError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import aiohttp
    import requests

CONNECTION_TEST_DEDUP_PREFIX = "se-pagerduty/connection-test/"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass
class _Attempts:
    """Delivery state of one event so far; 429 responses are counted separately."""

    started: float
    sent: int = 0
    failures: int = 0
    throttled: int = 0
    problem: str = ""
    last_throttled: bool = False
    retry_after: float | None = None

    def failed(self, problem: str) -> None:
        self.failures += 1
        self.problem = problem
        self.last_throttled = False
        self.retry_after = None

    def throttled_by_pagerduty(self, problem: str, retry_after: float | None) -> None:
        self.throttled += 1
        self.problem = problem
        self.last_throttled = True
        self.retry_after = retry_after


class SparkExpectationsPagerDutyHook(HttpHook):
    """Send Events API v2 events with the integration key and URL of an ``se_pagerduty`` connection.

    The connection's password is the integration key (PagerDuty's routing key) and its host is
    the Events API URL; an empty host means ``https://events.pagerduty.com/v2/enqueue``. One
    keep-alive session serves every event that this hook sends.

    :param pagerduty_conn_id: the ``se_pagerduty`` connection to use.
    :param delivery_policy: bounds on attempts, total seconds and per-attempt timeout; see
        :class:`~airflow_provider_se_pagerduty.delivery.DeliveryPolicy`.
    """

    conn_name_attr = "pagerduty_conn_id"
    default_conn_name = "se_pagerduty_default"
    conn_type = "se_pagerduty"
    hook_name = "PagerDuty Events API v2 (spark-expectations)"

    def __init__(
        self,
        pagerduty_conn_id: str = default_conn_name,
        *,
        delivery_policy: DeliveryPolicy | None = None,
    ) -> None:
        super().__init__(method="POST", http_conn_id=pagerduty_conn_id)
        self.pagerduty_conn_id = pagerduty_conn_id
        self.delivery_policy = delivery_policy or DeliveryPolicy()
        self._async_session: aiohttp.ClientSession | None = None
        self._async_session_loop: asyncio.AbstractEventLoop | None = None
        self._async_request_options: dict[str, Any] = {}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Describe the connection form, from the ``ui-field-behaviour`` of the provider info."""
        from airflow_provider_se_pagerduty import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": list(behaviour["hidden-fields"]),
            "relabeling": dict(behaviour["relabeling"]),
            "placeholders": dict(behaviour["placeholders"]),
        }

    @cached_property
    def _connection_details(self) -> tuple[str, str]:
        """Read and check the URL and integration key once, before the first event."""
        connection = self.get_connection(self.pagerduty_conn_id)
        routing_key = validate_routing_key(connection.password, self.pagerduty_conn_id)
        url = events_api_url(connection.host, connection.port, self.pagerduty_conn_id)
        return url, routing_key

    @property
    def url(self) -> str:
        """The Events API URL that events are sent to."""
        return self._connection_details[0]

    @cached_property
    def session(self) -> requests.Session:
        """The keep-alive session, built once from the connection by ``HttpHook.get_conn``."""
        import requests

        session = self.get_conn(headers=JSON_HEADERS)
        # The password is the integration key, which travels in the body; never send it as
        # HTTP basic auth, whatever the login field holds.
        session.auth = None
        if session.trust_env:
            # Read the proxy and CA bundle variables once, not on every request as requests
            # does while trust_env is on. The connection's own extras win over them, and
            # with trust_env off no .netrc login is ever added either.
            url = self._connection_details[0]
            session.proxies = {**requests.utils.get_environ_proxies(url), **session.proxies}
            if session.verify is True:
                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                session.verify = bundle or True
            session.trust_env = False
        return session

    def send_event(self, event: dict[str, Any]) -> EventResult:
        """Send one event (without ``routing_key``), retrying 429, 5xx, timeouts and resets.

        :raises InvalidConfigurationError: the connection or the event is invalid; nothing was sent.
        :raises EventRejectedError: PagerDuty responded with 400 or another 4xx; not retried.
        :raises DeliveryFailedError: the retry policy's attempts or seconds ran out.
        """
        import requests

        validate_event(event)
        url, routing_key = self._connection_details
        body = encode_event(event, routing_key)
        action = str(event["event_action"])
        dedup = event.get("dedup_key")
        attempts = _Attempts(started=time.monotonic())
        while True:
            timeout = self._attempt_timeout(attempts)
            attempts.sent += 1
            try:
                # NOTE: requests applies the timeout to the connect and to each socket read
                # separately, so one attempt can last longer than `timeout` when PagerDuty
                # accepts the connection slowly or sends its response in slow pieces.
                # verify is passed again because requests lets REQUESTS_CA_BUNDLE from the
                # environment override the session's own verify, the connection's CA file.
                response = self.session.post(url, data=body, timeout=timeout, verify=self.session.verify)
            except requests.Timeout:
                attempts.failed(f"no answer within {timeout:.1f} s")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
                attempts.failed(f"connection failed ({type(error).__name__})")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._accepted(action, status, response.text, attempts.sent, dedup)
                self._record_retryable(attempts, status, response.text, response.headers, routing_key)
            time.sleep(self._next_wait(attempts, action, dedup))

    def _attempt_timeout(self, attempts: _Attempts) -> float:
        """Return the next attempt's timeout: the policy's, cut to the seconds left of the total.

        :raises DeliveryFailedError: no time is left, because the last wait ended late.
        """
        policy = self.delivery_policy
        elapsed = time.monotonic() - attempts.started
        remaining = policy.max_total_seconds - elapsed
        if remaining <= 0:
            # A wait that should end just before the deadline can end after it on a busy
            # worker. requests and aiohttp reject a zero or negative timeout.
            raise DeliveryFailedError(attempts.sent, elapsed, attempts.problem)
        return min(policy.timeout_seconds, remaining)

    @staticmethod
    def _record_retryable(
        attempts: _Attempts, status: int, text: str, headers: Mapping[str, str], routing_key: str
    ) -> None:
        """Record a non-2xx response worth retrying, or raise for a final one."""
        reason = retry_reason(status)
        if reason is None:
            raise rejection(status, text, routing_key)
        if status == 429:
            attempts.throttled_by_pagerduty(reason, parse_retry_after(headers.get("Retry-After")))
        else:
            attempts.failed(reason)

    def _next_wait(self, attempts: _Attempts, action: str, dedup: Any) -> float:
        """Return the wait before the next attempt, or raise when the policy's bounds are spent."""
        policy = self.delivery_policy
        elapsed = time.monotonic() - attempts.started
        if attempts.last_throttled:
            wait = policy.rate_limit_wait(attempts.throttled, attempts.retry_after)
            out_of_attempts = False
        else:
            wait = policy.backoff(attempts.failures)
            out_of_attempts = attempts.failures >= policy.max_attempts
        if out_of_attempts or elapsed + wait >= policy.max_total_seconds:
            raise DeliveryFailedError(attempts.sent, elapsed, attempts.problem)
        self.log.warning(
            "PagerDuty %s event for dedup key %s: %s; retrying in %.2f s "
            "(%d failed and %d rate-limited attempts so far; at most %d failed)",
            action,
            dedup,
            attempts.problem,
            wait,
            attempts.failures,
            attempts.throttled,
            policy.max_attempts,
        )
        return wait

    def _accepted(self, action: str, status: int, text: str, attempt: int, dedup: Any) -> EventResult:
        result = success_result(action, status, text, attempt, dedup)
        self.log.info(
            "PagerDuty accepted %s event for dedup key %s: HTTP %s %s (attempt %d)",
            action,
            result.dedup_key,
            status,
            result.message,
            attempt,
        )
        return result

    async def asend_event(self, event: dict[str, Any]) -> EventResult:
        """Send one event from an event loop, with the same checks, retries and errors as
        :meth:`send_event`.

        Events sent from the same event loop share one keep-alive aiohttp session. Await
        :meth:`aclose` in that loop when done, so that its connection is closed.
        """
        import aiohttp

        validate_event(event)
        url, routing_key = await asyncio.to_thread(lambda: self._connection_details)
        body = encode_event(event, routing_key)
        action = str(event["event_action"])
        dedup = event.get("dedup_key")
        session, request_options = await self._aiohttp_session(url)
        attempts = _Attempts(started=time.monotonic())
        while True:
            timeout = self._attempt_timeout(attempts)
            attempts.sent += 1
            try:
                async with session.post(
                    url, data=body, timeout=aiohttp.ClientTimeout(total=timeout), **request_options
                ) as response:
                    status = response.status
                    headers = dict(response.headers)
                    # A body that is not UTF-8 must not hide PagerDuty's status code.
                    text = (await response.read()).decode("utf-8", errors="replace")
            except TimeoutError:
                attempts.failed(f"no answer within {timeout:.1f} s")
            except aiohttp.ClientError as error:
                attempts.failed(f"connection failed ({type(error).__name__})")
            else:
                if 200 <= status < 300:
                    return self._accepted(action, status, text, attempts.sent, dedup)
                self._record_retryable(attempts, status, text, headers, routing_key)
            await asyncio.sleep(self._next_wait(attempts, action, dedup))

    async def _aiohttp_session(self, url: str) -> tuple[aiohttp.ClientSession, dict[str, Any]]:
        """Return the keep-alive aiohttp session of the running loop, and the options for a request.

        The TLS verification, client certificate, proxies and ``trust_env`` come from the
        connection's extra, as :attr:`session` reads them, so that both paths reach
        PagerDuty the same way.
        """
        import aiohttp

        loop = asyncio.get_running_loop()
        session = self._async_session
        if session is None or session.closed or self._async_session_loop is not loop:
            # A session cannot move to another event loop. One left open in a finished
            # loop is dropped, and aiohttp warns about it when it is garbage collected.
            sync_session = await asyncio.to_thread(lambda: self.session)
            session = aiohttp.ClientSession(headers=JSON_HEADERS, trust_env=sync_session.trust_env)
            self._async_session = session
            self._async_session_loop = loop
            # Built once per session: aiohttp pools connections by SSL context object, so a
            # new context for each event would open a new connection for each event.
            self._async_request_options = _aiohttp_request_options(url, sync_session)
        return session, self._async_request_options

    async def aclose(self) -> None:
        """Close the aiohttp session that :meth:`asend_event` keeps open in this event loop."""
        session, self._async_session = self._async_session, None
        if session is not None and not session.closed:
            await session.close()

    def trigger(self, event: dict[str, Any]) -> EventResult:
        """Send a trigger event built by :mod:`airflow_provider_se_pagerduty.events`."""
        return self.send_event({**event, "event_action": "trigger"})

    def resolve(self, dedup_key: str) -> EventResult:
        """Resolve the incident with ``dedup_key``; PagerDuty accepts it even when none is open."""
        return self.send_event({"event_action": "resolve", "dedup_key": dedup_key})

    def test_connection(self) -> tuple[bool, str]:
        """Send a resolve event for a new dedup key and report PagerDuty's response in plain words.

        Airflow calls this for the Test button and for ``airflow connections test``. Such a
        resolve opens, changes and closes no incident. The event gets at most 2 attempts in
        15 s, so that the button responds soon even when PagerDuty cannot be reached.
        """
        import requests

        # A shallow copy shares the connection and the session but not the retry policy.
        probe = copy.copy(self)
        probe.delivery_policy = connection_check.cap_for_connection_test(self.delivery_policy)
        try:
            result = probe.resolve(f"{CONNECTION_TEST_DEDUP_PREFIX}{uuid.uuid4()}")
        except InvalidConfigurationError as error:
            return False, connection_check.invalid_configuration_message(self.pagerduty_conn_id, error)
        except EventRejectedError as error:
            return False, connection_check.rejected_message(probe.url, error)
        except DeliveryFailedError as error:
            return False, connection_check.undelivered_message(probe.url, error)
        except requests.RequestException as error:
            # Errors that send_event does not retry, such as an invalid URL or too many redirects.
            return False, f"The test event to {probe.url} failed: {type(error).__name__}: {error}"
        return True, connection_check.accepted_message(probe.url, result)


def _aiohttp_request_options(url: str, session: requests.Session) -> dict[str, Any]:
    """Translate the requests session's ``verify``, ``cert`` and ``proxies`` into aiohttp options."""
    options: dict[str, Any] = {}

    # The session already contains the CA bundle and proxies of the environment, read once.
    verify, cert = session.verify, session.cert
    if verify is False:
        options["ssl"] = False
    elif isinstance(verify, str) or cert:
        ca_file = verify if isinstance(verify, str) and not os.path.isdir(verify) else None
        ca_dir = verify if isinstance(verify, str) and os.path.isdir(verify) else None
        context = ssl.create_default_context(cafile=ca_file, capath=ca_dir)
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        elif cert:
            context.load_cert_chain(*cert)
        options["ssl"] = context

    # requests also accepts "all" and per-host keys such as "https://events.pagerduty.com".
    proxies = session.proxies or {}
    parts = urlsplit(url)
    proxy = (
        proxies.get(f"{parts.scheme}://{parts.hostname}") or proxies.get(parts.scheme) or proxies.get("all")
    )
    if proxy:
        options["proxy"] = proxy
    return options


__all__ = ["EU_EVENTS_API_URL", "US_EVENTS_API_URL", "SparkExpectationsPagerDutyHook"]
