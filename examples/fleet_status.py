"""Fleet health: four processes publish their health to one Redis; one of them is broken.

This example serves two fake Intercoms as real HTTP servers on localhost, one healthy and one in
a full outage, then starts four worker processes: three call the healthy one, the fourth the
broken one, until its circuit breaker opens. Every worker publishes its health snapshot to Redis
(``FleetPolicy``: on whenever ``redis_url`` is set). Once all four are in the fleet's view, the
example runs the very command an operator would run, and prints its table::

    intercom-resilience fleet status --redis-url redis://127.0.0.1:6379/0 --key-prefix ...

It needs a Redis server (``pip install "intercom-resilience[redis,server,cli]"``)::

    python examples/fleet_status.py --redis-url redis://127.0.0.1:6379/0

The keys go under a prefix of their own (``FleetPolicy.key_prefix``), deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from intercom_resilience import (
    FleetPolicy,
    ResilienceConfig,
    ResilientIntercom,
    RetryPolicy,
)
from intercom_resilience._fleet_publisher import read_fleet
from intercom_resilience.testing import FakeIntercom

PROCESSES = 4
TOKEN = "fleet-status-example"


def worker(options: dict[str, Any]) -> None:
    """One process: call its Intercom until the parent says stop (a line on stdin)."""
    config = ResilienceConfig(
        redis_url=options["redis_url"],
        retry=RetryPolicy(max_attempts=1),  # the broken one's breaker opens sooner
        fleet=FleetPolicy(interval=0.5, ttl=10.0, key_prefix=options["prefix"]),
    )
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    with ResilientIntercom(token=TOKEN, base_url=options["base_url"], config=config) as client:
        while not stop.is_set():
            # The broken worker's calls fail: that is the point.
            with contextlib.suppress(Exception):
                client.admins.identify()
            client.health()  # publishes at most every FleetPolicy.interval (or on a change)
            stop.wait(0.05)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    prefix = f"fleet-status-example-{uuid.uuid4().hex[:8]}"
    if not read_fleet(args.redis_url, key_prefix=prefix).reachable:
        print(f"fleet_status.py: cannot reach Redis at {args.redis_url}", file=sys.stderr)
        raise SystemExit(2)
    healthy, broken = FakeIntercom(token=TOKEN), FakeIntercom(token=TOKEN)
    broken.faults.outage(seconds=3600)
    with healthy.serve_in_thread() as good_url, broken.serve_in_thread() as bad_url:
        urls = [good_url] * (PROCESSES - 1) + [bad_url]
        workers = [
            subprocess.Popen(  # noqa: S603 - this very file, with our own arguments
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "worker",
                    json.dumps({"redis_url": args.redis_url, "base_url": url, "prefix": prefix}),
                ],
                stdin=subprocess.PIPE,
                text=True,
            )
            for url in urls
        ]
        try:
            for _ in range(600):  # until the four are in the fleet's view, one unhealthy
                fleet = read_fleet(args.redis_url, key_prefix=prefix)
                if len(fleet.processes) == PROCESSES and fleet.counts["unhealthy"] == 1:
                    break
                time.sleep(0.1)
            table = subprocess.run(  # noqa: S603 - our own console script, our own arguments
                [
                    sys.executable,
                    "-m",
                    "intercom_resilience.cli",
                    "fleet",
                    "status",
                    "--redis-url",
                    args.redis_url,
                    "--key-prefix",
                    prefix,
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "COLUMNS": "200"},
            )
            print(f"$ intercom-resilience fleet status  (exit code {table.returncode})")
            print(table.stdout, end="")
        finally:
            for process in workers:
                assert process.stdin is not None
                process.stdin.write("stop\n")
                process.stdin.flush()
            for process in workers:
                process.wait(timeout=30)
            _forget(args.redis_url, prefix)


def _forget(redis_url: str, prefix: str) -> None:
    """Delete the example's keys (the incident reports would otherwise stay a day)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


if __name__ == "__main__":
    main()
