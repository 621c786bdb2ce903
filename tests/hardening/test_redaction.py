"""A Redis password never shows: not in a repr, a ``str``, an event or an error.

The sweep builds everything public with a password-bearing ``redis_url`` pointed at the test Redis
(which rejects the credentials, so the backends also go through their failure path and report
it), drives calls that succeed, are refused by the limiter, meet an open breaker and the kill
switch, then walks every library object reachable from the clients and checks each ``repr`` and
``str``, every event field and every error raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from intercom_resilience import (
    AlertPolicy,
    AsyncResilientIntercom,
    BreakerPolicy,
    CachePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    TimeoutPolicy,
    VirtualClock,
)
from intercom_resilience._redaction import MASK, redact_text, redact_url
from intercom_resilience.testing import FakeIntercom

PASSWORD = "s3cr3t-Redis-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:pw@host:6380/1", "rediss://user:***@host:6380/1"),
        ("redis://pw@host", "redis://***@host"),  # a lone userinfo may be the password
        ("redis://user:p@ss:w@host/0", "redis://user:***@host/0"),  # "@" inside the password
        ("unix:///tmp/redis.sock?db=1&password=pw", "unix:///tmp/redis.sock?db=1&password=***"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_text(f"cannot reach {url} (refused)") == f"cannot reach {shown} (refused)"


def test_redact_url_keeps_none_and_plain_text() -> None:
    assert redact_url(None) is None
    assert redact_text("mail ops@example.com at 10:00") == "mail ops@example.com at 10:00"


def _with_password(url: str) -> str:
    parts = urlsplit(url)
    netloc = f"intercom:{PASSWORD}@{parts.hostname}:{parts.port or 6379}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _library_objects(roots: list[Any]) -> Iterator[Any]:
    """Every object of the library reachable from *roots* (the bundled fake excepted)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, type(None))):
            continue
        seen.add(id(obj))
        module = type(obj).__module__
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
            continue
        if not module.startswith("intercom_resilience") or module.startswith(
            "intercom_resilience.testing"
        ):
            continue
        yield obj
        for name in getattr(obj, "__dict__", {}):
            stack.append(getattr(obj, name))
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    stack.append(getattr(obj, name))


def _shown(obj: Any) -> str:
    return f"{obj!r}\n{obj!s}"


@pytest.mark.redis
def test_no_repr_event_or_error_shows_the_redis_password(redis_url: str) -> None:
    url = _with_password(redis_url)
    policies: list[Any] = [
        RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
        RateLimitPolicy(backend="redis", app_per_minute=60, burst=1.0, max_wait=0.0),
        BreakerPolicy(min_calls=2, window=60.0),
        CachePolicy(backend="redis"),
        TimeoutPolicy(),
        AlertPolicy(),
    ]
    config = ResilienceConfig(
        retry=policies[0],
        rate_limit=policies[1],
        breaker=policies[2],
        cache=policies[3],
        timeouts=policies[4],
        alerts=policies[5],
        redis_url=url,
    )
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    events: list[tuple[str, dict[str, Any]]] = []

    def hook(event: Any) -> None:
        events.append((event.name, event.fields()))

    client = ResilientIntercom(
        token="fake-token",
        transport=fake.transport(),
        clock=clock,
        config=config,
        event_hooks=[hook],
    )
    aclient = AsyncResilientIntercom(
        token="fake-token",
        transport=fake.async_transport(),
        clock=clock,
        config=config,
        event_hooks=[hook],
    )
    errors: list[BaseException] = []

    async def drive_async() -> None:
        for _ in range(3):
            try:
                await aclient.admins.identify()
            except Exception as error:  # every failure mode is a thing to show
                errors.append(error)
        await aclient.aclose()

    for _ in range(4):  # past the local share of the limiter: RateLimitedError
        try:
            client.admins.identify()
        except Exception as error:
            errors.append(error)
    fake.faults.outage(seconds=3600)
    for _ in range(4):  # failures, then the open breaker
        clock.advance(10.0)  # a fresh window of the limiter's local share
        try:
            client.contacts.find(contact_id="1")
        except Exception as error:
            errors.append(error)
    client.disable()
    try:
        client.admins.identify()
    except Exception as error:
        errors.append(error)
    asyncio.run(drive_async())
    health = client.health()

    assert {type(error).__name__ for error in errors} >= {
        "RateLimitedError",
        "CircuitOpenError",
        "IntercomDisabledError",
    }
    names = [name for name, _ in events]
    assert "limiter.redis_unavailable" in names  # Redis refused the credentials: reported...
    assert "cache.redis_unavailable" in names
    objects = list(_library_objects([config, *policies, client, aclient, health, *errors]))
    assert {"RedisLimiter", "RedisCache", "RedisLink", "ResilienceConfig"} <= {
        type(obj).__name__ for obj in objects
    }
    assert MASK in repr(config)
    for obj in objects:
        assert PASSWORD not in _shown(obj), type(obj).__name__
    for error in errors:
        assert PASSWORD not in _shown(error)
    for name, fields in events:
        assert PASSWORD not in repr(fields), name  # ...without the password
    client.close()


def test_errors_about_a_redis_url_never_show_its_password() -> None:
    with pytest.raises(ValueError, match="redis_url") as not_a_string:
        ResilienceConfig(redis_url=f"redis://:{PASSWORD}@host/0".encode())  # type: ignore[arg-type]
    assert PASSWORD not in str(not_a_string.value)
    config = ResilienceConfig(
        rate_limit=RateLimitPolicy(backend="redis"),
        redis_url=f"redis://:{PASSWORD}@host:not-a-port/0",
    )
    with pytest.raises(ValueError, match="redis_url") as malformed:
        ResilientIntercom(token="t", config=config, transport=FakeIntercom().transport())
    assert PASSWORD not in str(malformed.value)
    assert MASK in str(malformed.value)


def test_every_config_field_shows_in_the_repr() -> None:
    config = ResilienceConfig(redis_url=f"redis://u:{PASSWORD}@h/0", disabled=True)
    shown = repr(config)
    for field in dataclasses.fields(config):
        assert f"{field.name}=" in shown
    assert PASSWORD not in shown
    assert "redis://u:***@h/0" in shown
