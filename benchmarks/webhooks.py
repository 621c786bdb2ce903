"""Webhook acknowledgement latency over real HTTP: the receiver next to a bare 200 endpoint.

Both run under uvicorn on 127.0.0.1 in this process; the fake Intercom's ``WebhookSender`` POSTs
the same signed notifications to each, one at a time, over one keep-alive connection. The
baseline is an ASGI app that reads the body and answers 200 (what a handler that does nothing
costs); the receiver verifies the signature, parses, dedupes, queues for a handler and answers.
Its p99 must stay well under Intercom's 500 ms priority budget; the target is 50 ms.

Run: ``python benchmarks/webhooks.py [--notifications 2000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from intercom_resilience import VirtualClock
from intercom_resilience.testing import DeliveryReport, FakeIntercom
from intercom_resilience.webhooks import Notification

SECRET = "benchmark-secret"  # intercom-resilience: allow-token


async def bare(scope: Any, receive: Any, send: Any) -> None:
    """The baseline: read the body, answer 200."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


def run(app: Any, fake: FakeIntercom, count: int) -> DeliveryReport:
    with serve(app) as url, fake.webhooks(url, SECRET) as sender:
        sender.run(50)  # warm up the connection and the code paths
        return sender.run(count, duplicates=0.05, bad_signatures=0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=2000)
    args = parser.parse_args()
    clock = VirtualClock()
    handled = 0

    def handler(notification: Notification) -> None:
        nonlocal handled
        handled += 1

    baseline = run(bare, FakeIntercom(clock=clock, seed=1), args.notifications)
    fake = FakeIntercom(clock=clock, seed=2)
    with fake.client() as client:
        receiver = client.webhook_receiver(secret=SECRET, handler=handler)
        measured = run(receiver, fake, args.notifications)
    print(f"{args.notifications} deliveries each (5% duplicates, 2% bad signatures)")
    print(f"{'':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, report in (("baseline", baseline), ("receiver", measured)):
        print(
            f"{name:>10} {report.ack_ms(50):8.2f} {report.ack_ms(99):8.2f} "
            f"{report.ack_ms(100):8.2f}"
        )
    ratio = measured.ack_ms(99) / baseline.ack_ms(99)
    verdict = "ok" if measured.ack_ms(99) < 50.0 else "OVER the 50 ms target"
    print(f"receiver p99 / baseline p99: {ratio:.2f}x; receiver p99 {verdict}")


if __name__ == "__main__":
    main()
