"""Memory of the in-process stale cache full of typical Intercom contact responses (issue #19).

Builds ``--entries`` contact bodies shaped like the 2.16 ``contact`` schema (about 2-3 KB of JSON
each) and stores them in a :class:`MemoryCache` with the default policy exactly as the pipeline
would (key from ``cache_key``, tags from ``read_resources``, headers and request id as fresh
strings per response, a fresh timestamp each). Beside it, in the same run, the baseline: a plain
``dict`` from key to body (the least any cache of these bodies can hold). Every measurement runs in
a fresh child process, so one side's freed memory never flatters the other's.

Two measurements per side:

* ``tracemalloc``: what was allocated while filling and is still alive, beyond the bodies (made
  before tracing: the application had them anyway). The process-wide memo caches
  (``functools.lru_cache`` of ``read_resources`` and friends) are emptied before and after the fill,
  so the figure is what the cache holds, nothing else.
* RSS (``/proc/self/statm``; ``resource`` where there is no ``/proc``): the resident growth while
  building the bodies *and* filling the cache, i.e. everything the cache keeps alive, as the
  operating system sees it (allocator rounding and slack included). The memo caches are full
  before the baseline reading, so their turnover during the fill is memory-neutral.

Targets (printed with the measured figure and whether each holds):

* at most 400 B of structure per entry (tracemalloc);
* the byte budget within 10% of what the cache holds (tracemalloc, bodies added) and within 10% of
  the RSS growth;
* the whole cache, bodies included, under the 64 MiB default budget.

RSS moves by pages and the allocator first reuses what the process already freed, so the RSS
figures mean something only for a fill of many MiB (the default 10,000 entries: about 28 MiB).

The structure per entry depends on the fill: just after the tables grow (about 3,000 and 6,000
entries) their spare room adds ~40-70 B per entry; 10,000 sits before the next growth.

Run: ``python benchmarks/cache_memory.py [--entries 10000]`` (four child processes, ~15 s).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

from intercom_resilience._backends.base import CachedResponse
from intercom_resilience._backends.memory_cache import MemoryCache
from intercom_resilience._clock import VirtualClock
from intercom_resilience._config import CachePolicy
from intercom_resilience._core.cache import cache_key, read_resources
from intercom_resilience._core.requests import credentials_fingerprint

MIB = 1024 * 1024
BASE = "https://api.intercom.io"
STRUCTURE_TARGET = 400  # bytes per entry
SIDES = ("dict", "cache")


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


def clear_memos() -> None:
    """Empty every ``functools`` memo cache of the library (their contents are not the cache's)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("intercom_resilience"):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def fill_memos(scope: str) -> None:
    """Fill the memo caches with paths the fill will not read (a warm process's steady state)."""
    for i in range(5_000):
        read_resources(scope, "GET", f"/companies/{i:024x}")


def rss() -> int:
    """The resident set size of this process, in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # no /proc: the peak, which only grows while filling, is the same figure
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Filler:
    """Stores read after read into one side, as the pipeline would."""

    def __init__(self, side: str, entries: int) -> None:
        self.scope = credentials_fingerprint("benchmark-token", BASE)
        self.clock = VirtualClock()
        # The default policy, with room for every read (past 10,000 the figures would mix
        # evicted bodies in).
        policy = CachePolicy(max_entries=max(CachePolicy().max_entries, entries))
        self.cache = MemoryCache(policy, self.clock)
        self.plain: dict[str, bytes] = {}
        self.store: Callable[[int, bytes], None] = self._cache if side == "cache" else self._plain

    def _plain(self, i: int, body: bytes) -> None:
        path = f"/contacts/{0x6500000000000000 + i:x}"
        self.plain[cache_key(self.scope, BASE, "GET", path, "", b"")] = body

    def _cache(self, i: int, body: bytes) -> None:
        cid = f"{0x6500000000000000 + i:x}"
        path = f"/contacts/{cid}"
        self.clock.advance(0.001)  # a fresh timestamp per response, as time.time() gives
        charset = "utf-8"
        self.cache.put(
            cache_key(self.scope, BASE, "GET", path, "", b""),
            CachedResponse(
                status=200,
                # As a response yields them: fresh strings per response, not shared constants;
                # the request id read once for the header and once for the outcome.
                headers=(
                    ("content-type", f"application/json; charset={charset}"),
                    ("x-request-id", f"{i:020x}"),
                ),
                content=body,  # the cache keeps the response's own bytes object: no copy
                stored_at=self.clock.time(),
                request_id=f"{i:020x}",
            ),
            read_resources(self.scope, "GET", path),
        )

    def budget(self) -> int:
        return self.cache.bytes_used if self.cache else 0

    def entries(self) -> int:
        return len(self.cache) or len(self.plain)


def traced(side: str, entries: int) -> dict[str, Any]:
    """Structure per entry (tracemalloc) and the budget, filling *side* with *entries* reads."""
    rng = random.Random(7)
    bodies = [contact(i, rng) for i in range(entries)]
    body_bytes = sum(sys.getsizeof(body) for body in bodies)
    filler = Filler(side, entries)
    clear_memos()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i, body in enumerate(bodies):
            filler.store(i, body)
        clear_memos()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    structure = after - before
    return {
        "entries": filler.entries(),
        "bodies": body_bytes,
        "structure": structure,
        "held": structure + body_bytes,
        "budget": filler.budget() if side == "cache" else None,
    }


def resident(side: str, entries: int) -> dict[str, Any]:
    """RSS growth while building the bodies and filling *side* (no tracemalloc: it costs memory)."""
    rng = random.Random(7)
    filler = Filler(side, entries)
    fill_memos(filler.scope)
    gc.collect()
    before = rss()
    for i in range(entries):
        filler.store(i, contact(i, rng))
    gc.collect()
    return {
        "entries": filler.entries(),
        "rss": rss() - before,
        "budget": filler.budget() if side == "cache" else None,
    }


def in_child(kind: str, side: str, entries: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (nothing freed by another side is reused)."""
    out = subprocess.run(  # noqa: S603 - this very file, with our own arguments
        [sys.executable, __file__, "--child", kind, side, "--entries", str(entries)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def verdict(holds: bool) -> str:
    return "holds" if holds else "MISSED"


def in_process(kind: str, side: str, entries: int) -> dict[str, Any]:
    """One measurement in this process (the smoke test's: RSS is meaningless there)."""
    return (traced if kind == "traced" else resident)(side, entries)


def report(
    entries: int, measure: Callable[[str, str, int], dict[str, Any]] = in_child
) -> list[str]:
    """Measure both sides (each in its own process) and print every target with its figure."""
    figures = {
        (kind, side): measure(kind, side, entries) for kind in ("traced", "rss") for side in SIDES
    }
    cache, plain = figures["traced", "cache"], figures["traced", "dict"]
    cache_rss, plain_rss = figures["rss", "cache"], figures["rss", "dict"]
    per_entry = cache["structure"] / entries
    plain_per_entry = plain["structure"] / entries
    traced_ratio = cache["budget"] / cache["held"]
    rss_ratio = cache_rss["budget"] / max(1, cache_rss["rss"])
    # RSS moves in pages and allocator arenas: a fill that grows it by less than a MiB (the smoke
    # test's, measured in its own process) says nothing about the budget.
    if cache_rss["rss"] >= MIB:
        held = verdict(abs(rss_ratio - 1) <= 0.10)
        rss_figure = f"{rss_ratio:>10.3f}   target within 10%: {held}"
    else:
        rss_figure = f"{'n/a':>10}   target within 10%: not measured (RSS grew by under 1 MiB)"
    return [
        f"entries stored               {cache['entries']:>10,} "
        f"(of {entries:,}; baseline {plain['entries']:,})",
        f"bodies, mean / total         {cache['bodies'] / entries:>10,.0f} B  "
        f"{cache['bodies'] / MIB:.2f} MiB",
        f"baseline dict: structure     {plain_per_entry:>10,.0f} B/entry (tracemalloc)",
        f"baseline dict: RSS growth    {plain_rss['rss'] / MIB:>10.2f} MiB "
        f"(/ traced held {plain_rss['rss'] / plain['held']:.3f}: RSS vs tracemalloc)",
        f"cache: structure             {per_entry:>10,.0f} B/entry "
        f"({per_entry / plain_per_entry:.2f}x the baseline dict)"
        f"   target <= {STRUCTURE_TARGET} B: {verdict(per_entry <= STRUCTURE_TARGET)}",
        f"cache: held (traced+bodies)  {cache['held'] / MIB:>10.2f} MiB; budget counted "
        f"{cache['budget'] / MIB:.2f} MiB",
        f"cache: budget / traced held  {traced_ratio:>10.3f}"
        f"   target within 10%: {verdict(abs(traced_ratio - 1) <= 0.10)}",
        f"cache: RSS growth            {cache_rss['rss'] / MIB:>10.2f} MiB; budget counted "
        f"{cache_rss['budget'] / MIB:.2f} MiB",
        f"cache: budget / RSS growth   {rss_figure}",
        f"cache: whole, bodies incl.   {cache['held'] / MIB:>10.2f} MiB"
        f"   target under 64 MiB: {verdict(cache['held'] < 64 * MIB)}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SIDE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, side = args.child
        measure = traced if kind == "traced" else resident
        print(json.dumps(measure(side, args.entries)))
        return
    for line in report(args.entries):
        print(line)


if __name__ == "__main__":
    main()
