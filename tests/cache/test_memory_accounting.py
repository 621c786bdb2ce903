"""The memory cache's byte budget counts what the process really holds (not timed).

Each entry is charged its key, its response objects, its slot and tags, and its share of the LRU
and the tag index (``held_size``). Measured with ``tracemalloc`` over realistic contact reads
stored as the pipeline stores them, that charge must be within 10% of the memory that grew.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc

from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.memory_cache import MemoryCache
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import cache_key, read_resources
from intercom_resilience._core.requests import credentials_fingerprint

BASE = "https://api.intercom.io"


def contact_body(i: int) -> bytes:
    """A ``GET /contacts/{id}`` body of Intercom's shape (about 1.5 KB, varying in length)."""
    cid = f"{0x6500000000000000 + i:x}"
    return json.dumps(
        {
            "type": "contact",
            "id": cid,
            "external_id": f"user-{i}",
            "email": f"person{i}@example.com",
            "name": f"Person Number {i}",
            "created_at": 1_700_000_000 + i,
            "location": {"type": "location", "country": "United States", "city": "Paris"},
            "custom_attributes": {"plan": "pro", "notes": "x" * (200 + i % 700)},
            "tags": {"type": "list", "data": [], "url": f"/contacts/{cid}/tags"},
        }
    ).encode()


def fill(cache: MemoryCache, scope: str, bodies: list[bytes], clock: VirtualClock) -> None:
    for i, body in enumerate(bodies):
        path = f"/contacts/{0x6500000000000000 + i:x}"
        # Headers as a response yields them: fresh strings per response, not shared constants.
        headers = tuple(
            (name, value) for name, value in [("content-type", f"application/json; v={i % 3}")]
        )
        cache.put(
            cache_key(scope, BASE, "GET", path, "", b""),
            CachedResponse(200, headers, body, clock.time(), f"req-{i:016x}"),
            read_resources(scope, "GET", path),
        )


def test_the_budget_counts_what_the_entries_hold() -> None:
    clock = VirtualClock()
    scope = credentials_fingerprint("accounting-token", BASE)
    bodies = [contact_body(i) for i in range(3_000)]
    for i in range(len(bodies)):  # warm the process-wide path caches (not the cache's memory)
        read_resources(scope, "GET", f"/contacts/{0x6500000000000000 + i:x}")
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        cache = MemoryCache(CachePolicy(), clock)
        fill(cache, scope, bodies, clock)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cache) == len(bodies)
    # The bodies were allocated before tracing started: the cache keeps them alive, so add them.
    held = after - before + sum(sys.getsizeof(body) for body in bodies)
    assert abs(cache.bytes_used - held) <= 0.10 * held, (cache.bytes_used, held)
