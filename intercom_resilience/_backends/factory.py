"""Choosing the limiter, cache and breaker backends a client's configuration asks for."""

from __future__ import annotations

from .._clock import Clock
from .._config import ResilienceConfig
from .._core.requests import credentials_fingerprint
from .._events import EventLog
from .base import BreakerBackend, CacheBackend, LimiterBackend

__all__ = ["make_breaker", "make_cache", "make_limiter"]


def make_limiter(
    config: ResilienceConfig, clock: Clock, scope: str, events: EventLog
) -> LimiterBackend | None:
    """The rate-limit backend for *scope* (``None`` when rate limiting is off)."""
    policy = config.rate_limit
    if not policy.enabled:
        return None
    if policy.backend == "redis":
        from .redis_limiter import RedisLimiter

        assert config.redis_url is not None  # enforced by ResilienceConfig
        workspace_scope = None
        if policy.workspace is not None:
            # Named, not derived from a token: every app of the workspace computes the same key.
            workspace_scope = credentials_fingerprint(f"workspace:{policy.workspace}")
        return RedisLimiter(
            policy, config.redis_url, scope, clock, events=events, workspace_scope=workspace_scope
        )
    from .memory_limiter import MemoryLimiter

    return MemoryLimiter(policy, clock, events=events)


def make_cache(config: ResilienceConfig, clock: Clock, events: EventLog) -> CacheBackend | None:
    """The stale-cache backend (``None`` when the stale cache is off)."""
    policy = config.cache
    if not policy.enabled:
        return None
    if policy.backend == "redis":
        from .redis_cache import RedisCache

        assert config.redis_url is not None
        return RedisCache(policy, config.redis_url, clock, events=events)
    from .memory_cache import MemoryCache

    return MemoryCache(policy, clock, events=events)


def make_breaker(config: ResilienceConfig, clock: Clock, scope: str) -> BreakerBackend | None:
    """The circuit-breaker backend for *scope* (``None``: the pipeline's own, in memory)."""
    policy = config.breaker
    if policy.backend != "redis" or not policy.enabled:
        return None
    from .redis_breaker import RedisBreaker

    assert config.redis_url is not None  # enforced by ResilienceConfig
    return RedisBreaker(policy, config.redis_url, scope, clock)
