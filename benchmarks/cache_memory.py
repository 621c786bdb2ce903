"""Memory of the in-process stale cache full of typical Intercom contact responses.

Builds ``--entries`` contact bodies shaped like the 2.16 ``contact`` schema (about 2–3 KB of JSON
each), stores them in a :class:`MemoryCache` with the default policy exactly as the pipeline
would (key from ``cache_key``, tags from ``read_resources``), and measures with ``tracemalloc``
what the cache holds beyond the bodies the application already had. Also reports what the byte
budget counted, so the gap between the budget's figure and real memory (Python's per-object
overhead) is visible.

Run: ``python benchmarks/cache_memory.py [--entries 10000]``. The target: the whole cache,
bodies included, under the 64 MiB default budget.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import tracemalloc

from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.memory_cache import MemoryCache
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import cache_key, read_resources
from intercom_resilience._core.requests import credentials_fingerprint

MIB = 1024 * 1024
BASE = "https://api.intercom.io"


def contact(i: int, rng: random.Random) -> bytes:
    """One ``GET /contacts/{id}`` body, shaped like Intercom's (2–3 KB)."""
    cid = f"{0x6500000000000000 + i:x}"
    body = {
        "type": "contact",
        "id": cid,
        "workspace_id": "ecahpwf5",
        "external_id": f"user-{i}",
        "role": "user",
        "email": f"person{i}@example.com",
        "email_domain": "example.com",
        "phone": f"+1555{i:07d}",
        "formatted_phone": f"+1 555-{i:07d}",
        "name": f"Person Number {i}",
        "owner_id": rng.randint(1, 10**6),
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": rng.random() < 0.1,
        "created_at": 1_700_000_000 + i,
        "updated_at": 1_700_000_500 + i,
        "signed_up_at": 1_700_000_000 + i,
        "last_seen_at": 1_700_001_000 + i,
        "last_replied_at": None,
        "last_contacted_at": 1_700_002_000 + i,
        "last_email_opened_at": None,
        "last_email_clicked_at": None,
        "language_override": None,
        "browser": "chrome",
        "browser_version": "120.0.0",
        "browser_language": "en",
        "os": "macOS 14",
        "location": {
            "type": "location",
            "country": "United States",
            "region": "California",
            "city": "San Francisco",
            "country_code": "USA",
            "continent_code": "NA",
        },
        "android_app_name": None,
        "ios_app_name": None,
        "ios_os_version": None,
        "ios_sdk_version": None,
        "custom_attributes": {
            "plan": rng.choice(["free", "pro", "enterprise"]),
            "seats": rng.randint(1, 500),
            "account_manager": f"manager{rng.randint(1, 40)}@example.com",
            "signup_source": rng.choice(["web", "ios", "android", "sales"]),
            "notes": "x" * rng.randint(200, 900),
        },
        "avatar": {"type": "avatar", "image_url": f"https://static.example.com/avatars/{cid}.png"},
        "tags": {
            "type": "list",
            "data": [
                {"type": "tag", "id": str(rng.randint(1, 999)), "url": "/tags/1"}
                for _ in range(rng.randint(0, 4))
            ],
            "url": f"/contacts/{cid}/tags",
            "total_count": 2,
            "has_more": False,
        },
        "notes": {"type": "list", "data": [], "url": f"/contacts/{cid}/notes", "total_count": 0},
        "companies": {
            "type": "list",
            "data": [{"type": "company", "id": "531ee472cce572a6ec000006"}],
            "url": f"/contacts/{cid}/companies",
            "total_count": 1,
            "has_more": False,
        },
        "opted_out_subscription_types": {"type": "list", "data": [], "total_count": 0},
        "opted_in_subscription_types": {"type": "list", "data": [], "total_count": 0},
        "utm_campaign": None,
        "utm_content": None,
        "utm_medium": "email",
        "utm_source": "newsletter",
        "utm_term": None,
        "referrer": "https://www.example.com/pricing",
        "sms_consent": False,
        "unsubscribed_from_sms": False,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()

    rng = random.Random(7)
    bodies = [contact(i, rng) for i in range(args.entries)]
    body_bytes = sum(len(b) for b in bodies)
    scope = credentials_fingerprint("benchmark-token", BASE)
    clock = VirtualClock()
    policy = CachePolicy()

    for i in range(min(args.entries, 4096)):  # warm the process-wide path caches (lru_cache 4096)
        read_resources(scope, "GET", f"/contacts/{0x6500000000000000 + i:x}")
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    cache = MemoryCache(policy, clock)
    charset = "utf-8"
    for body in bodies:
        cid = json.loads(body)["id"]
        path = f"/contacts/{cid}"
        cache.put(
            cache_key(scope, BASE, "GET", path, "", b""),
            CachedResponse(
                status=200,
                # As a response yields them: fresh strings per response, not a shared constant.
                headers=(("content-type", f"application/json; charset={charset}"),),
                content=body,  # the cache keeps the response's own bytes object: no copy
                stored_at=clock.time(),
                request_id=f"req-{cid}",
            ),
            read_resources(scope, "GET", path),
        )
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    stats = cache.stats()
    overhead = after - before
    total = overhead + body_bytes  # what the cache keeps alive, bodies included
    print(f"entries stored             {stats['entries']:>12,} (of {args.entries:,})")
    print(f"evictions                  {stats['evictions']:>12,}")
    print(f"body size, mean            {body_bytes / args.entries:>12,.0f} B")
    print(f"bodies, total              {body_bytes / MIB:>12.2f} MiB")
    budget = policy.max_bytes / MIB
    per_entry = overhead / args.entries
    print(f"budget counted             {stats['bytes'] / MIB:>12.2f} MiB (of {budget:.0f} MiB)")
    print(f"cache structures (traced)  {overhead / MIB:>12.2f} MiB ({per_entry:,.0f} B/entry)")
    print(f"peak during fill (traced)  {(peak - before) / MIB:>12.2f} MiB")
    print(f"total held by the cache    {total / MIB:>12.2f} MiB")
    ratio = stats["bytes"] / total
    verdict = "ok" if abs(ratio - 1) <= 0.10 else "OFF"
    print(f"budget / held              {ratio:>12.3f}   (target within 10%: {verdict})")
    if args.entries > 4096:
        print("  (above 4,096 entries the path caches' churn is traced too: held is overstated)")
    verdict = "OK" if total < 64 * MIB else "OVER"
    print(f"under 64 MiB               {verdict:>12}")


if __name__ == "__main__":
    main()
