"""ResilienceConfig: defaults, validation naming the field, from_env."""

from __future__ import annotations

import dataclasses

import pytest

from intercom_resilience import (
    AlertPolicy,
    BreakerPolicy,
    CachePolicy,
    DeadlinePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    RetryPolicy,
    TimeoutPolicy,
)


def test_defaults_follow_the_spec() -> None:
    config = ResilienceConfig()
    assert config.rate_limit.app_per_minute == 10_000
    assert config.rate_limit.workspace_per_minute == 25_000
    assert config.rate_limit.window == 10.0
    assert config.rate_limit.window_quota(10_000) == 1666
    assert config.cache.max_entries == 10_000
    assert config.cache.stale_window == 3600.0
    assert config.retry.budget_ratio == 0.1
    assert config.alerts.errors_per_window == 10
    assert config.alerts.rate_limited_per_window == 5
    assert config.alerts.latency_p95_ms == 3000.0


def test_policies_are_frozen_and_replace_validates() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 9  # type: ignore[misc]
    assert policy.replace(max_attempts=9).max_attempts == 9
    with pytest.raises(ValueError, match=r"RetryPolicy\.max_attempts"):
        policy.replace(max_attempts=0)


# One invalid value per field: each must fail at construction, naming its field.
INVALID = [
    (RetryPolicy, "enabled", "yes"),
    (RetryPolicy, "max_attempts", 0),
    (RetryPolicy, "max_attempts", 2.5),
    (RetryPolicy, "base_delay", -1.0),
    (RetryPolicy, "max_delay", "long"),
    (RetryPolicy, "max_server_wait", -5),
    (DeadlinePolicy, "interactive", 0),
    (DeadlinePolicy, "interactive", float("nan")),
    (DeadlinePolicy, "background", -1.0),
    (DeadlinePolicy, "minimum", 0),
    (DeadlinePolicy, "stale_if_slow", 20.0),
    (RetryPolicy, "budget_ratio", 1.5),
    (RetryPolicy, "budget_floor", -1),
    (RetryPolicy, "budget_window", 0),
    (RateLimitPolicy, "enabled", 1),
    (RateLimitPolicy, "app_per_minute", -10),
    (RateLimitPolicy, "workspace_per_minute", 0),
    (RateLimitPolicy, "window", 0),
    (RateLimitPolicy, "window", 61),
    (RateLimitPolicy, "burst", 0),
    (RateLimitPolicy, "max_wait", -1),
    (RateLimitPolicy, "background_reserve", 1.0),
    (RateLimitPolicy, "backend", "memcached"),
    (RateLimitPolicy, "redis_fallback_share", 0),
    (RateLimitPolicy, "workspace", " "),
    (BreakerPolicy, "enabled", None),
    (BreakerPolicy, "window", -1),
    (BreakerPolicy, "min_calls", 0),
    (BreakerPolicy, "failure_ratio", 0),
    (BreakerPolicy, "consecutive_failures", 0),
    (BreakerPolicy, "consecutive_failures", 2.5),
    (BreakerPolicy, "cooldown", 0),
    (BreakerPolicy, "half_open_calls", 0),
    (BreakerPolicy, "backend", "etcd"),
    (CachePolicy, "enabled", "no"),
    (CachePolicy, "coalesce", "yes"),
    (CachePolicy, "fleet_coalesce", "yes"),
    (CachePolicy, "fleet_coalesce", True),  # without coalesce=True and backend="redis"
    (CachePolicy, "fleet_wait", 0),
    (CachePolicy, "fleet_wait", 61),
    (CachePolicy, "fleet_wait", float("inf")),
    (CachePolicy, "max_entries", 0),
    (CachePolicy, "stale_window", 0),
    (CachePolicy, "max_bytes", 0),
    (CachePolicy, "max_entry_bytes", 0),
    (CachePolicy, "backend", "disk"),
    (TimeoutPolicy, "connect", 0),
    (TimeoutPolicy, "read", -1),
    (TimeoutPolicy, "write", float("nan")),
    (TimeoutPolicy, "pool", float("inf")),
    (AlertPolicy, "window", 0),
    (AlertPolicy, "errors_per_window", -1),
    (AlertPolicy, "rate_limited_per_window", -1),
    (AlertPolicy, "deadlines_per_window", -1),
    (AlertPolicy, "latency_p95_ms", 0),
    (AlertPolicy, "webhook_failures_per_window", -1),
    (AlertPolicy, "webhook_handler_errors_per_window", -1),
    (AlertPolicy, "webhook_handler_errors_per_window", 1.5),
    (AlertPolicy, "webhook_delay_s", 0),
    (AlertPolicy, "webhook_delay_s", float("nan")),
    (AlertPolicy, "webhook_backlog_fill", 0),
    (AlertPolicy, "webhook_backlog_fill", 1.2),
    (AlertPolicy, "webhook_error_streak", 0),
    (AlertPolicy, "webhook_error_streak_s", -5),
    (AlertPolicy, "max_request_ids", 0),
    (AlertPolicy, "max_recent_failures", 0),
]


@pytest.mark.parametrize(("policy", "field", "value"), INVALID)
def test_invalid_values_name_the_field(policy: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"{policy.__name__}\.{field}\b"):
        policy(**{field: value})


def test_every_field_has_an_invalid_case() -> None:
    covered = {(p.__name__, f) for p, f, _ in INVALID}
    for policy in (
        RetryPolicy,
        RateLimitPolicy,
        BreakerPolicy,
        CachePolicy,
        TimeoutPolicy,
        AlertPolicy,
    ):
        for field in dataclasses.fields(policy):
            assert (policy.__name__, field.name) in covered, f"{policy.__name__}.{field.name}"


def test_cross_field_rules() -> None:
    with pytest.raises(ValueError, match=r"RetryPolicy\.max_delay must be >= base_delay"):
        RetryPolicy(base_delay=5.0, max_delay=1.0)
    with pytest.raises(ValueError, match=r"CachePolicy\.max_entry_bytes"):
        CachePolicy(max_bytes=10, max_entry_bytes=11)
    with pytest.raises(ValueError, match=r"fleet_coalesce needs .*backend='redis'"):
        CachePolicy(coalesce=True, fleet_coalesce=True)
    with pytest.raises(ValueError, match=r"fleet_coalesce needs .*coalesce=True"):
        CachePolicy(backend="redis", fleet_coalesce=True)
    with pytest.raises(ValueError, match=r"fleet_coalesce needs enabled=True"):
        CachePolicy(enabled=False, coalesce=True, backend="redis", fleet_coalesce=True)
    assert CachePolicy(coalesce=True, backend="redis", fleet_coalesce=True).fleet_coalesce
    with pytest.raises(ValueError, match=r"ResilienceConfig\.redis_url"):
        ResilienceConfig(rate_limit=RateLimitPolicy(backend="redis"))
    with pytest.raises(ValueError, match=r"ResilienceConfig\.redis_url"):
        ResilienceConfig(breaker=BreakerPolicy(backend="redis"))
    with pytest.raises(ValueError, match=r"ResilienceConfig\.retry"):
        ResilienceConfig(retry=CachePolicy())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ResilienceConfig\.status_page_url"):
        ResilienceConfig(status_page_url="ftp://example")
    with pytest.raises(ValueError, match=r"ResilienceConfig\.disabled"):
        ResilienceConfig(disabled="1")  # type: ignore[arg-type]


def test_from_env_reads_sections_and_top_level_fields() -> None:
    config = ResilienceConfig.from_env(
        {
            "INTERCOM_RESILIENCE_RETRY_MAX_ATTEMPTS": "7",
            "INTERCOM_RESILIENCE_RATE_LIMIT_APP_PER_MINUTE": "1_000",
            "INTERCOM_RESILIENCE_CACHE_BACKEND": "redis",
            "INTERCOM_RESILIENCE_BREAKER_ENABLED": "false",
            "INTERCOM_RESILIENCE_REDIS_URL": "redis://localhost:6379/0",
            "INTERCOM_RESILIENCE_DISABLED": "1",
            "UNRELATED": "ignored",
        }
    )
    assert config.retry.max_attempts == 7
    assert config.rate_limit.app_per_minute == 1000
    assert config.cache.backend == "redis"
    assert config.breaker.enabled is False
    assert config.redis_url == "redis://localhost:6379/0"
    assert config.disabled is True
    assert ResilienceConfig.from_env({}) == ResilienceConfig()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INTERCOM_RESILIENCE_RETRY_MAX_ATTEMPTS", "many", "must be an integer"),
        ("INTERCOM_RESILIENCE_RETRY_BASE_DELAY", "fast", "must be a number"),
        ("INTERCOM_RESILIENCE_DISABLED", "maybe", "must be a boolean"),
        ("INTERCOM_RESILIENCE_RETRY_MAX_ATTEMPS", "3", "unknown configuration variable"),
    ],
)
def test_from_env_errors_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        ResilienceConfig.from_env({name: value})
    assert name in str(raised.value)


def test_from_env_invalid_value_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"RateLimitPolicy\.window"):
        ResilienceConfig.from_env({"INTERCOM_RESILIENCE_RATE_LIMIT_WINDOW": "0"})


def test_from_env_leaves_the_test_suites_own_variables_alone() -> None:
    # Regression: the README tells developers to export INTERCOM_RESILIENCE_TEST_REDIS_URL, and
    # every client built from the environment then failed with "unknown configuration variable".
    environ = {"INTERCOM_RESILIENCE_TEST_REDIS_URL": "redis://127.0.0.1:6379/13"}
    assert ResilienceConfig.from_env(environ) == ResilienceConfig()
