"""A local PagerDuty Events API v2 receiver for DAG tests, fault injection, benchmarks and the demo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_se_pagerduty.testing.faults import Fault
    from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver

__all__ = ["EventsApiReceiver", "Fault"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `python -m airflow_provider_se_pagerduty.testing.receiver`
    # does not find the module already imported by its package.
    if name == "EventsApiReceiver":
        from airflow_provider_se_pagerduty.testing.receiver import EventsApiReceiver

        return EventsApiReceiver
    if name == "Fault":
        from airflow_provider_se_pagerduty.testing.faults import Fault

        return Fault
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
