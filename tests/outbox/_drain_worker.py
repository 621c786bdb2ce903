"""A drain worker for the kill-9 tests: drains the outbox at ``argv[1]`` against ``argv[2]``.

Run as ``python -m tests.outbox._drain_worker BACKEND URL [REDIS_URL] [KEY]``; prints
``draining`` once started, then drains until killed (or the outbox is empty).
"""

from __future__ import annotations

import sys

from intercom_resilience import OutboxPolicy, ResilienceConfig, ResilientIntercom


def main() -> None:
    """Drain until the outbox is empty."""
    backend, base_url, location = sys.argv[1], sys.argv[2], sys.argv[3]
    if backend == "redis":
        key = sys.argv[4]
        config = ResilienceConfig(
            outbox=OutboxPolicy(backend="redis", redis_key=key, lease=1.0), redis_url=location
        )
    else:
        config = ResilienceConfig(outbox=OutboxPolicy(path=location, lease=1.0))
    client = ResilientIntercom(token="fake-token", base_url=base_url, config=config)
    print("draining", flush=True)
    while client.outbox.drain(limit=1).remaining:
        pass


if __name__ == "__main__":
    main()
