"""Apache Airflow provider that turns spark-expectations results into PagerDuty incidents."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

US_EVENTS_API_URL = "https://events.pagerduty.com/v2/enqueue"
EU_EVENTS_API_URL = "https://events.eu.pagerduty.com/v2/enqueue"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider, its connection form and its notifier to Airflow's providers manager.

    Airflow reads the form from here without importing the hook, so the hook's
    ``get_ui_field_behaviour`` must return the same ``ui-field-behaviour``.
    """
    return {
        "package-name": "airflow-provider-se-pagerduty",
        "name": "spark-expectations PagerDuty",
        "description": "Pages PagerDuty from spark-expectations data-quality results.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "se_pagerduty",
                "hook-class-name": (
                    "airflow_provider_se_pagerduty.hooks.pagerduty.SparkExpectationsPagerDutyHook"
                ),
                "hook-name": "PagerDuty Events API v2 (spark-expectations)",
                # Airflow 3.3's connection form shows a label and a placeholder for each standard
                # field but no help text, and it ignores a placeholder for Description, so the EU
                # endpoint goes into the URL's label. The port stays visible because the Test
                # button of Airflow 3.3.2 sends port 0 for a connection without one, and the API
                # rejects that as a different destination.
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {
                        "host": f"Events API URL (EU accounts: {EU_EVENTS_API_URL})",
                        "password": "Integration key",
                    },
                    "placeholders": {
                        "host": US_EVENTS_API_URL,
                        "port": "443",
                        "password": "32-character integration key of an Events API v2 integration",
                    },
                },
            }
        ],
        "notifications": [
            "airflow_provider_se_pagerduty.notifications.pagerduty.SparkExpectationsPagerDutyNotifier"
        ],
    }
