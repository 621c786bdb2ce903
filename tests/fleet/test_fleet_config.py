"""FleetPolicy: its checks name the field; publishing follows redis_url unless told otherwise."""

from __future__ import annotations

import pytest

from intercom_resilience import FleetPolicy, ResilienceConfig, ResilientIntercom
from intercom_resilience.testing import FakeIntercom


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"interval": 0}, "FleetPolicy.interval must be > 0"),
        ({"interval": float("nan")}, "FleetPolicy.interval must be finite"),
        ({"ttl": -1}, "FleetPolicy.ttl must be > 0"),
        ({"interval": 10, "ttl": 10}, "FleetPolicy.ttl must be > FleetPolicy.interval"),
        ({"publish": "yes"}, "FleetPolicy.publish must be a bool"),
        ({"incident_ttl": 0}, "FleetPolicy.incident_ttl must be > 0"),
        ({"incident_ttl": 30}, "FleetPolicy.incident_ttl must be > FleetPolicy.ttl"),
        ({"key_prefix": ""}, "FleetPolicy.key_prefix must be a non-empty string"),
        ({"key_prefix": " x"}, "FleetPolicy.key_prefix must be a non-empty string"),
        ({"key_prefix": 7}, "FleetPolicy.key_prefix must be a non-empty string"),
        ({"key_prefix": "fleet{a}"}, "FleetPolicy.key_prefix must not contain glob"),
        ({"key_prefix": "fleet*"}, "FleetPolicy.key_prefix must not contain glob"),
    ],
)
def test_bad_values_fail_at_construction_naming_the_field(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        FleetPolicy(**changes)  # type: ignore[arg-type]


def test_publish_true_needs_a_redis_url() -> None:
    with pytest.raises(ValueError, match=r"redis_url is required when FleetPolicy.publish is True"):
        ResilienceConfig(fleet=FleetPolicy(publish=True))


def test_publishing_defaults_to_whether_redis_is_configured() -> None:
    assert ResilienceConfig().publishes_fleet_health is False
    assert ResilienceConfig(redis_url="redis://r:6379/0").publishes_fleet_health is True
    off = ResilienceConfig(redis_url="redis://r:6379/0", fleet=FleetPolicy(publish=False))
    assert off.publishes_fleet_health is False


def test_environment_variables() -> None:
    config = ResilienceConfig.from_env(
        {
            "INTERCOM_RESILIENCE_REDIS_URL": "redis://r:6379/0",
            "INTERCOM_RESILIENCE_FLEET_PUBLISH": "off",
            "INTERCOM_RESILIENCE_FLEET_INTERVAL": "2",
            "INTERCOM_RESILIENCE_FLEET_TTL": "20",
        }
    )
    assert config.fleet == FleetPolicy(publish=False, interval=2.0, ttl=20.0)
    auto = ResilienceConfig.from_env({"INTERCOM_RESILIENCE_FLEET_PUBLISH": ""})
    assert auto.fleet.publish is None


def test_a_client_without_fleet_publishing_says_how_to_get_it() -> None:
    fake = FakeIntercom()
    with ResilientIntercom(
        token="fake-token", transport=fake.transport(), config=ResilienceConfig()
    ) as client:
        assert client._pipeline.fleet is None
        with pytest.raises(RuntimeError, match=r"ResilienceConfig\.redis_url"):
            client.fleet_health()


def test_fleet_keys_and_fleet_coalescing_from_the_environment() -> None:
    config = ResilienceConfig.from_env(
        {
            "INTERCOM_RESILIENCE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "INTERCOM_RESILIENCE_FLEET_KEY_PREFIX": "eu-fleet",
            "INTERCOM_RESILIENCE_FLEET_INCIDENT_TTL": "3600",
            "INTERCOM_RESILIENCE_CACHE_BACKEND": "redis",
            "INTERCOM_RESILIENCE_CACHE_COALESCE": "1",
            "INTERCOM_RESILIENCE_CACHE_FLEET_COALESCE": "true",
            "INTERCOM_RESILIENCE_CACHE_FLEET_WAIT": "0.5",
        }
    )
    assert (config.fleet.key_prefix, config.fleet.incident_ttl) == ("eu-fleet", 3600.0)
    assert (config.cache.fleet_coalesce, config.cache.fleet_wait) == (True, 0.5)
    with pytest.raises(ValueError, match="fleet_coalesce needs"):
        ResilienceConfig.from_env({"INTERCOM_RESILIENCE_CACHE_FLEET_COALESCE": "1"})
