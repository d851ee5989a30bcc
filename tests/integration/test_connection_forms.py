"""se_pagerduty connections from environment variables and from the airflow CLI, in JSON and URI forms.

Each form must give the hook the right Events API URL and integration key: the hook sends an
event to a local receiver, which records the key's fingerprint. EU forms are checked by the URL
that the hook builds, without sending anything, and so is the US endpoint.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_se_pagerduty import EU_EVENTS_API_URL, US_EVENTS_API_URL
from airflow_provider_se_pagerduty.exceptions import InvalidConfigurationError
from airflow_provider_se_pagerduty.hooks.pagerduty import SparkExpectationsPagerDutyHook
from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver
from airflow_provider_se_pagerduty.testing.state import fingerprint_routing_key
from tests.integration.airflow_env import AirflowEnv

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration

RECEIVER_LIFETIME_SECONDS = 600.0


def routing_key(tag: str) -> str:
    """Return a valid 32-character integration key that starts with ``tag``, one per form."""
    return tag.ljust(32, "0")


def uri_with_url_host(url: str, key: str) -> str:
    """Build the URI form with the whole Events API URL percent-encoded into the host."""
    return f"se-pagerduty://:{key}@{quote(url, safe='')}"


def uri_as_airflow_writes_it(url: str, key: str) -> str:
    """Build the URI form that ``Connection.get_uri()`` and ``airflow connections get`` print.

    Airflow moves the URL's scheme in front of the credentials and percent-encodes the rest.
    """
    scheme, rest = url.split("://", 1)
    return f"se-pagerduty://{scheme}://:{key}@{quote(rest, safe='')}"


def json_form(url: str, key: str) -> str:
    return json.dumps({"conn_type": "se_pagerduty", "host": url, "password": key})


ENV_FORMS: dict[str, Callable[[str, str], str]] = {
    "json": json_form,
    "uri_url_in_host": uri_with_url_host,
    "uri_as_airflow_writes_it": uri_as_airflow_writes_it,
}


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[EventsApiReceiver]:
    with EventsApiReceiver(max_lifetime_seconds=RECEIVER_LIFETIME_SECONDS) as receiver:
        yield receiver


@pytest.fixture
def receiver(module_receiver: EventsApiReceiver) -> EventsApiReceiver:
    module_receiver.reset()
    return module_receiver


def set_env_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


# Environment variables, read by the hook in this process


@pytest.mark.parametrize("form", sorted(ENV_FORMS))
def test_env_form_sends_to_url_with_key(
    form: str, receiver: EventsApiReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = f"se_pd_env_{form}"
    key = routing_key(form.replace("_", ""))
    set_env_connection(monkeypatch, conn_id, ENV_FORMS[form](receiver.url, key))

    hook = SparkExpectationsPagerDutyHook(conn_id)
    assert hook.url == receiver.url

    result = hook.resolve(f"connection-form/{form}")
    assert result.status_code == 202

    events = receiver.wait_for_accepted(1)
    assert len(events) == 1
    assert events[0].action == "resolve"
    assert events[0].dedup_key == f"connection-form/{form}"
    assert events[0].routing_key_fingerprint == fingerprint_routing_key(key)


def test_env_uri_bare_host_means_https(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without a scheme gets https and /v2/enqueue, and ``verify`` in the query becomes an extra."""
    key = routing_key("barehost")
    # requests lets these variables override a session's verify, and so the connection's extra.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    with EventsApiReceiver(tls=True, max_lifetime_seconds=RECEIVER_LIFETIME_SECONDS) as tls_receiver:
        ca_file = quote(tls_receiver.ca_file, safe="")
        uri = f"se-pagerduty://:{key}@127.0.0.1:{tls_receiver.port}?verify={ca_file}"
        set_env_connection(monkeypatch, "se_pd_env_bare_host", uri)

        hook = SparkExpectationsPagerDutyHook("se_pd_env_bare_host")
        assert hook.url == f"https://127.0.0.1:{tls_receiver.port}/v2/enqueue"
        assert hook.url == tls_receiver.url

        hook.resolve("connection-form/bare-host")
        events = tls_receiver.wait_for_accepted(1)

    assert events[0].dedup_key == "connection-form/bare-host"
    assert events[0].routing_key_fingerprint == fingerprint_routing_key(key)


@pytest.mark.parametrize(
    ("value", "expected_url"),
    [
        (json_form(EU_EVENTS_API_URL, routing_key("eu")), EU_EVENTS_API_URL),
        (uri_with_url_host(EU_EVENTS_API_URL, routing_key("eu")), EU_EVENTS_API_URL),
        (uri_as_airflow_writes_it(EU_EVENTS_API_URL, routing_key("eu")), EU_EVENTS_API_URL),
        (f"se-pagerduty://:{routing_key('eu')}@events.eu.pagerduty.com", EU_EVENTS_API_URL),
        # Airflow reads the unencoded path as the schema field, which the hook ignores.
        (f"se-pagerduty://:{routing_key('eu')}@events.eu.pagerduty.com/v2/enqueue", EU_EVENTS_API_URL),
        (f"se-pagerduty://:{routing_key('eu')}@", US_EVENTS_API_URL),
    ],
    ids=[
        "json",
        "uri_url_in_host",
        "uri_as_airflow_writes_it",
        "uri_host_name_only",
        "uri_host_and_path",
        "uri_no_host_means_us",
    ],
)
def test_env_pagerduty_forms_build_url(
    value: str, expected_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env_connection(monkeypatch, "se_pd_env_pagerduty", value)

    hook = SparkExpectationsPagerDutyHook("se_pd_env_pagerduty")

    assert hook.url == expected_url
    assert hook.get_connection("se_pd_env_pagerduty").password == routing_key("eu")


def test_env_uri_unencoded_url_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow cannot parse a URL left unencoded in the host, and then reports the id as undefined."""
    key = routing_key("unencoded")
    uri = f"se-pagerduty://:{key}@http://127.0.0.1:9/v2/enqueue"
    set_env_connection(monkeypatch, "se_pd_env_unencoded", uri)

    hook = SparkExpectationsPagerDutyHook("se_pd_env_unencoded")

    with pytest.raises(AirflowNotFoundException, match="se_pd_env_unencoded"):
        _ = hook.url


def test_env_uri_underscore_scheme_loses_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """``se_pagerduty://`` is not a valid URI scheme, so Airflow parses no password from it."""
    key = routing_key("underscore")
    uri = f"se_pagerduty://:{key}@events.eu.pagerduty.com"
    set_env_connection(monkeypatch, "se_pd_env_underscore", uri)

    hook = SparkExpectationsPagerDutyHook("se_pd_env_underscore")

    with pytest.raises(InvalidConfigurationError, match="integration key"):
        _ = hook.url


# The airflow CLI, stored in a throwaway metadata DB and tested with `airflow connections test`


def cli_add_arguments(form: str, url: str, key: str) -> list[str]:
    """Return the `airflow connections add` options for one form."""
    if form == "fields":
        return ["--conn-type", "se_pagerduty", "--conn-host", url, "--conn-password", key]
    if form == "uri":
        return ["--conn-uri", uri_with_url_host(url, key)]
    if form == "json":
        return ["--conn-json", json_form(url, key)]
    raise ValueError(f"unknown CLI form {form!r}")


CLI_FORMS = ("fields", "json", "uri")


def json_output(completed_stdout: str) -> list[dict[str, object]]:
    """Parse the JSON list that an `airflow ... -o json` command prints after any log lines."""
    start = completed_stdout.index("[{")
    parsed: list[dict[str, object]] = json.loads(completed_stdout[start:])
    return parsed


@pytest.fixture(scope="module")
def cli_airflow(tmp_path_factory: pytest.TempPathFactory, module_receiver: EventsApiReceiver) -> AirflowEnv:
    """A migrated Airflow home with one se_pagerduty connection per CLI form, added by the CLI."""
    airflow = AirflowEnv(tmp_path_factory.mktemp("airflow-cli-connections"))
    airflow.migrate()
    for form in CLI_FORMS:
        arguments = cli_add_arguments(form, module_receiver.url, routing_key(form))
        added = airflow.airflow("connections", "add", f"se_pd_cli_{form}", *arguments)
        assert added.returncode == 0, added.stdout + added.stderr
    return airflow


@pytest.mark.parametrize("form", CLI_FORMS)
def test_cli_form_passes_connection_test(
    form: str, cli_airflow: AirflowEnv, receiver: EventsApiReceiver
) -> None:
    enabled = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    tested = cli_airflow.airflow("connections", "test", f"se_pd_cli_{form}", extra_env=enabled)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    assert "Connection success!" in output

    events = receiver.wait_for_accepted(1)
    assert len(events) == 1
    assert events[0].action == "resolve"
    assert events[0].dedup_key.startswith("se-pagerduty/connection-test/")
    assert events[0].routing_key_fingerprint == fingerprint_routing_key(routing_key(form))
    assert routing_key(form) not in output


def test_cli_stored_uri_round_trips(cli_airflow: AirflowEnv, module_receiver: EventsApiReceiver) -> None:
    """`airflow connections get` prints the URI form that ``uri_as_airflow_writes_it`` builds."""
    fetched = cli_airflow.airflow("connections", "get", "se_pd_cli_uri", "-o", "json")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr

    stored = json_output(fetched.stdout)[0]
    assert stored["conn_type"] == "se_pagerduty"
    assert stored["host"] == module_receiver.url
    assert stored["get_uri"] == uri_as_airflow_writes_it(module_receiver.url, routing_key("uri"))



def test_cli_lists_provider_and_hook(cli_airflow: AirflowEnv) -> None:
    providers = cli_airflow.airflow("providers", "list", "-o", "json")
    assert providers.returncode == 0, providers.stdout + providers.stderr
    packages = {row["package_name"]: row for row in json_output(providers.stdout)}
    assert "airflow-provider-se-pagerduty" in packages

    hooks = cli_airflow.airflow("providers", "hooks", "-o", "json")
    assert hooks.returncode == 0, hooks.stdout + hooks.stderr
    by_type = {row["connection_type"]: row for row in json_output(hooks.stdout)}
    assert by_type["se_pagerduty"]["class"] == (
        "airflow_provider_se_pagerduty.hooks.pagerduty.SparkExpectationsPagerDutyHook"
    )
    assert by_type["se_pagerduty"]["conn_id_attribute_name"] == "pagerduty_conn_id"
