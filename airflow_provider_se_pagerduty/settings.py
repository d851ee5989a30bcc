"""Alert settings: explicit arguments first, then spark-expectations' ``user_conf``, then defaults."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_se_pagerduty.exceptions import InvalidConfigurationError, quote_value

SEVERITIES = ("critical", "error", "warning", "info")

# spark-expectations' own user_conf keys (spark_expectations.config.user_config.Constants).
CONF_ENABLED = "spark.expectations.notifications.pagerduty.enabled"
CONF_ON_FAIL = "spark.expectations.notifications.on.fail"
CONF_ON_BREACH = "spark.expectations.notifications.on.error.drop.exceeds.threshold.breach"
CONF_THRESHOLD = "spark.expectations.notifications.error.drop.threshold"
CONF_ON_START = "spark.expectations.notifications.on.start"
CONF_ON_COMPLETION = "spark.expectations.notifications.on.completion"
CONF_ON_IGNORE_RULES = "spark.expectations.notifications.on.rules.action.if.failed.set.ignore"

# Triggers that spark-expectations honours for other channels but that never page.
NEVER_PAGING_KEYS = (CONF_ON_START, CONF_ON_COMPLETION, CONF_ON_IGNORE_RULES)

_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})


def parse_bool(value: Any, field: str) -> bool:
    """Read a switch given as a bool or as a word such as ``"true"``/``"false"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise InvalidConfigurationError(
        f"Invalid setting {field}: expected true or false, got {quote_value(value)}"
    )


def parse_percentage(value: Any, field: str) -> float:
    """Read a threshold in percent (0 to 100) given as a number or a numeric string."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or not 0 <= number <= 100:
        raise InvalidConfigurationError(
            f"Invalid setting {field}: expected a percentage from 0 to 100, got {quote_value(value)}"
        )
    return number


def parse_severity(value: Any, field: str) -> str:
    """Check a severity against the four that the Events API v2 accepts, in any letter case."""
    if isinstance(value, str) and value.strip().lower() in SEVERITIES:
        return value.strip().lower()
    raise InvalidConfigurationError(
        f"Invalid setting {field}: expected one of {', '.join(SEVERITIES)}, got {quote_value(value)}"
    )


@dataclass(frozen=True)
class AlertSettings:
    """The switches and thresholds that the alert decision reads.

    ``page_on_error_drop_breach`` and ``error_drop_threshold`` are the job-level check on the
    share of rows that ``drop`` rules removed; rule-level thresholds come with each rule.
    """

    enabled: bool = True
    page_on_failure: bool = True
    page_on_error_drop_breach: bool = False
    error_drop_threshold: float = 100.0
    failure_severity: str = "critical"
    breach_severity: str = "error"
    resolve_on_success: bool = True

    @classmethod
    def resolve(
        cls,
        user_conf: Mapping[str, Any] | None = None,
        *,
        enabled: bool | None = None,
        page_on_failure: bool | None = None,
        page_on_error_drop_breach: bool | None = None,
        error_drop_threshold: float | None = None,
        failure_severity: str | None = None,
        breach_severity: str | None = None,
        resolve_on_success: bool | None = None,
    ) -> AlertSettings:
        """Merge explicit arguments, then ``user_conf`` keys, then the defaults.

        An argument left as ``None`` falls through to ``user_conf``; a key missing from
        ``user_conf`` falls through to the default of this class.
        """
        if user_conf is None:
            user_conf = {}
        if not isinstance(user_conf, Mapping):
            raise InvalidConfigurationError(
                f"Invalid setting user_conf: expected a dict, got {quote_value(user_conf)}"
            )
        defaults = cls()

        def pick_bool(argument: bool | None, argument_name: str, conf_key: str | None, default: bool) -> bool:
            if argument is not None:
                return parse_bool(argument, argument_name)
            if conf_key is not None and conf_key in user_conf:
                return parse_bool(user_conf[conf_key], f"user_conf[{conf_key!r}]")
            return default

        if error_drop_threshold is not None:
            threshold = parse_percentage(error_drop_threshold, "error_drop_threshold")
        elif CONF_THRESHOLD in user_conf:
            threshold = parse_percentage(user_conf[CONF_THRESHOLD], f"user_conf[{CONF_THRESHOLD!r}]")
        else:
            threshold = defaults.error_drop_threshold

        return cls(
            enabled=pick_bool(enabled, "enabled", CONF_ENABLED, defaults.enabled),
            page_on_failure=pick_bool(
                page_on_failure, "page_on_failure", CONF_ON_FAIL, defaults.page_on_failure
            ),
            page_on_error_drop_breach=pick_bool(
                page_on_error_drop_breach,
                "page_on_error_drop_breach",
                CONF_ON_BREACH,
                defaults.page_on_error_drop_breach,
            ),
            error_drop_threshold=threshold,
            failure_severity=parse_severity(
                failure_severity if failure_severity is not None else defaults.failure_severity,
                "failure_severity",
            ),
            breach_severity=parse_severity(
                breach_severity if breach_severity is not None else defaults.breach_severity,
                "breach_severity",
            ),
            resolve_on_success=pick_bool(
                resolve_on_success, "resolve_on_success", None, defaults.resolve_on_success
            ),
        )
