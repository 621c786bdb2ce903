"""Helpers shared by the cache tests (entries, event capture, the backend factory type)."""

from __future__ import annotations

from collections.abc import Callable

from intercom_resilience._backends.base import CacheBackend, CachedResponse
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy

Events = list[tuple[str, dict[str, object]]]
CacheFactory = Callable[[CachePolicy], CacheBackend]


def entry(
    clock: VirtualClock, body: bytes = b'{"type":"contact"}', request_id: str | None = "req-1"
) -> CachedResponse:
    """A stored response made now on *clock*."""
    return CachedResponse(
        status=200,
        headers=(("content-type", "application/json"),),
        content=body,
        stored_at=clock.time(),
        request_id=request_id,
    )
