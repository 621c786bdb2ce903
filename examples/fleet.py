"""A fleet: several processes, one Redis, one Intercom quota.

Intercom's quota belongs to the app and the workspace, not to a process: ten pods that each pace
themselves to the full quota send ten times too much. With ``backend="redis"`` every process
takes its tokens from the same buckets in Redis, so together they stay inside one quota; the
stale cache can live in Redis too, so one process can serve another's last good answer.

This example starts the fake Intercom as a real HTTP server on localhost (with 1-second rate-limit
windows instead of Intercom's 10 s, so that it finishes quickly), then three worker processes
that all read as fast as they can. It needs a Redis server (``pip install
"intercom-resilience[redis,server]"``)::

    python examples/fleet.py --redis-url redis://127.0.0.1:6379/0
    python examples/fleet.py --backend memory     # the same without Redis: watch the 429s

Note: the example writes its keys (with expiry times) into that Redis database.

While Redis is unreachable the library keeps working by design: each process falls back to
pacing itself with ``redis_fallback_share`` of the quota. That is right for production and wrong
for a demonstration of the shared budget, so the example first checks that Redis answers and
stops with one line (exit 2) if it does not.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import urllib.parse
from typing import Any

from intercom_resilience import (
    CachePolicy,
    RateLimitPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom

PER_MINUTE = 1_200  # the app's quota: 20 requests per 1-second window
WINDOW = 1.0  # seconds; Intercom's windows are 10 s
WORKERS = 3
CALLS_PER_WORKER = 20


def fleet_config(redis_url: str, backend: str = "redis") -> ResilienceConfig:
    """Every process of the fleet builds the same configuration (same quota, same policies)."""
    return ResilienceConfig(
        rate_limit=RateLimitPolicy(
            # A little headroom: with 1-second windows, a few milliseconds of network or
            # scheduling jitter on a busy machine can bunch requests the limiter spaced apart
            # into one of Intercom's fixed windows. (With Intercom's 10 s windows the limiter's
            # 100 ms slots absorb ordinary jitter.)
            app_per_minute=int(PER_MINUTE * 0.9),
            window=WINDOW,
            backend=backend,  # type: ignore[arg-type]
            # While Redis is unreachable each process paces itself to this share of the quota.
            redis_fallback_share=1 / WORKERS,
        ),
        cache=CachePolicy(backend=backend),  # type: ignore[arg-type]
        redis_url=redis_url if backend == "redis" else None,
    )


def worker(base_url: str, redis_url: str, backend: str, contact_id: str) -> dict[str, Any]:
    """One process of the fleet: a client built exactly like in production."""
    config = fleet_config(redis_url, backend)
    with ResilientIntercom(token="fake-token", base_url=base_url, config=config) as client:
        for _ in range(CALLS_PER_WORKER):
            client.contacts.find(contact_id=contact_id)
        health = client.health()
        # A read that would wait for quota longer than its latency budget is answered from the
        # fleet's cache instead (reason `limiter_wait`): it sends nothing.
        cached = client.stale_served
    return {
        "pid": os.getpid(),
        "status": health.status,
        "p95_ms": health.latency_ms.p95,
        "cached": cached,
    }


def shown(redis_url: str) -> str:
    """*redis_url* fit to print: the password, if any, masked."""
    try:
        parts = urllib.parse.urlsplit(redis_url)
        if parts.password is None:
            return redis_url
        host = parts.netloc.rsplit("@", 1)[1]
        return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
    except ValueError:
        return "the --redis-url given"


def redis_problem(redis_url: str) -> str | None:
    """``None`` when Redis answers a PING at *redis_url*, else why not (one line)."""
    try:
        import redis
    except ImportError:
        return "the redis package is missing (pip install 'intercom-resilience[redis,server]')"
    try:
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2) as db:
            db.ping()
    except (redis.RedisError, ValueError, OSError) as error:
        return f"{type(error).__name__}: {error}".replace("\n", " ")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--backend", choices=["redis", "memory"], default="redis")
    args = parser.parse_args(argv)
    if args.backend == "redis":
        problem = redis_problem(args.redis_url)
        if problem is not None:
            print(
                f"fleet.py: cannot reach Redis at {shown(args.redis_url)} ({problem}); "
                "start Redis, pass --redis-url, or run with --backend memory",
                file=sys.stderr,
            )
            return 2

    fake = FakeIntercom(app_quota=PER_MINUTE, window_seconds=WINDOW)
    contact_id = fake.workspace().create_contact({"email": "shared@example.com"}, now=0).id

    with fake.serve_in_thread() as base_url:
        # spawn: fresh interpreters, as separate pods would be.
        with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
            jobs = [(base_url, args.redis_url, args.backend, contact_id)] * WORKERS
            results = pool.starmap(worker, jobs)
        for result in results:
            print(f"worker {result['pid']}: {CALLS_PER_WORKER} reads, health {result['status']}")

        sent = fake.journal.count(path="/contacts/*")
        refused = fake.journal.count(status=429)
        cached = sum(result["cached"] for result in results)
        print(
            f"the fleet made {WORKERS * CALLS_PER_WORKER} reads: {sent} sent to Intercom, which "
            f"answered 429 to {refused} of them, and {cached} answered from the shared cache "
            "while waiting for quota"
        )

        if args.backend == "redis":
            # The stale cache is shared too: a brand-new process that never read this contact
            # gets the fleet's last good answer while Intercom is down.
            fake.faults.outage(seconds=60)
            config = fleet_config(args.redis_url).replace(
                retry=RetryPolicy(base_delay=0.05, max_delay=0.2)  # short backoff for the demo
            )
            new_process = ResilientIntercom(token="fake-token", base_url=base_url, config=config)
            with new_process, capture_calls() as calls:
                contact = new_process.contacts.find(contact_id=contact_id)
            info = calls.last
            assert info is not None
            print(
                f"during an outage a new process read {contact.email} from the shared cache "
                f"(stale={info.stale}, {info.age:.1f}s old)"
            )
    return 0 if refused == 0 or args.backend == "memory" else 1


if __name__ == "__main__":
    raise SystemExit(main())
