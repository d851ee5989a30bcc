"""The se_pagerduty connection in Airflow 3's connection form, driven in Debian's chromium.

A person adds the connection in the UI, saves it and presses Test, and the local receiver must
then get exactly one resolve event and no trigger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_se_pagerduty import EU_EVENTS_API_URL, US_EVENTS_API_URL, get_provider_info
from airflow_provider_se_pagerduty.hooks.pagerduty import CONNECTION_TEST_DEDUP_PREFIX
from airflow_provider_se_pagerduty.testing.receiver import Fault
from airflow_provider_se_pagerduty.testing.state import fingerprint_routing_key
from tests.browser.conftest import CHROMIUM

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

    from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver
    from tests.browser.conftest import ApiServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Debian's chromium is not installed at {CHROMIUM}: run scripts/ensure-chromium.sh as root",
    ),
    # Budget for `airflow db migrate`, the api-server start and the browser steps together.
    pytest.mark.timeout(300),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (extra dev)")
expect = playwright_api.expect

CONNECTION_TYPE = get_provider_info()["connection-types"][0]
FIELD_BEHAVIOUR = CONNECTION_TYPE["ui-field-behaviour"]

CONN_ID = "se_pagerduty_ui"
ROUTING_KEY = "BrowserTestKey012345678901234567"
# Toasts slide in, so the screenshots wait this long to show their whole text.
TOAST_SETTLE_MS = 1000


def test_add_and_test_connection_in_ui(
    page: Page, api_server: ApiServer, receiver: EventsApiReceiver, output_dir: Path
) -> None:
    # The connection list, logged in as admin by the simple auth manager.
    page.goto(f"{api_server.base_url}/connections")
    add_button = page.get_by_role("button", name="Add Connection")
    expect(add_button).to_be_visible()
    page.screenshot(path=output_dir / "01-connection-list.png")

    # The form for a new se_pagerduty connection.
    add_button.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Connection ID").fill(CONN_ID)
    dialog.get_by_role("combobox").fill("PagerDuty Events API v2")
    page.get_by_role("option", name=CONNECTION_TYPE["hook-name"]).click()
    expect(dialog.get_by_text(CONNECTION_TYPE["hook-name"], exact=True)).to_be_visible()

    # Labels, placeholders and hidden fields, as get_provider_info() declares them.
    host_label = FIELD_BEHAVIOUR["relabeling"]["host"]
    password_label = FIELD_BEHAVIOUR["relabeling"]["password"]
    assert host_label == f"Events API URL (EU accounts: {EU_EVENTS_API_URL})"
    assert password_label == "Integration key"
    host = dialog.get_by_label(host_label, exact=True)
    password = dialog.get_by_label(password_label, exact=True)
    port = dialog.get_by_label("Port", exact=True)
    expect(host).to_have_attribute("placeholder", US_EVENTS_API_URL)
    expect(password).to_have_attribute("type", "password")
    expect(password).to_have_attribute("placeholder", FIELD_BEHAVIOUR["placeholders"]["password"])
    expect(port).to_have_attribute("placeholder", "443")
    expect(dialog.get_by_label("Description", exact=True)).to_be_visible()
    for hidden in ("login", "schema"):
        expect(dialog.locator(f'input[name="{hidden}"]')).to_have_count(0)
    expect(dialog.get_by_text("Login", exact=True)).to_have_count(0)
    expect(dialog.get_by_text("Schema", exact=True)).to_have_count(0)
    page.screenshot(path=output_dir / "02-connection-form-empty.png")

    # Filled in for the local receiver. The port repeats the URL's port because the Test
    # button of Airflow 3.3.2 rejects a saved connection without one.
    host.fill(receiver.url)
    password.fill(ROUTING_KEY)
    port.fill(str(receiver.port))
    expect(password).to_have_value(ROUTING_KEY)
    page.screenshot(path=output_dir / "03-connection-form-filled.png")

    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    expect(row).to_contain_text("se_pagerduty")
    expect(row).to_contain_text(receiver.url)

    # Test: the success toast carries the hook's message.
    row.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Test Connection Successful")).to_be_visible()
    expect(page.get_by_text(f"PagerDuty accepted the test event at {receiver.url}")).to_be_visible()
    page.wait_for_timeout(TOAST_SETTLE_MS)
    page.screenshot(path=output_dir / "04-test-connection-success.png")

    events = receiver.wait_for_accepted(1)
    assert len(events) == 1
    assert events[0].action == "resolve"
    assert events[0].dedup_key.startswith(CONNECTION_TEST_DEDUP_PREFIX)
    assert events[0].routing_key_fingerprint == fingerprint_routing_key(ROUTING_KEY)
    assert [event for event in receiver.accepted if event.action == "trigger"] == []
    assert receiver.incidents() == []

    # Test again while PagerDuty rejects the key: the error toast carries PagerDuty's text.
    receiver.inject(Fault.plain_text_400())
    row.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Test Connection Failed")).to_be_visible()
    expect(page.get_by_text("HTTP 400: Invalid routing key", exact=False)).to_be_visible()
    page.wait_for_timeout(TOAST_SETTLE_MS)
    page.screenshot(path=output_dir / "05-test-connection-rejected.png")

    assert len(receiver.accepted) == 1
    assert receiver.requests_seen == 2
