"""Receive Intercom's webhooks in a Starlette (or FastAPI) service, with health and alerts.

Works with Starlette alone (``pip install "intercom-resilience[server]"``); with FastAPI the code is
the same, because FastAPI is Starlette underneath::

    app = FastAPI(lifespan=lifespan)
    app.add_route("/hooks/intercom", receiver)  # a Route, not a Mount: no redirect to .../

Run it, and the bundled fake Intercom delivers 200 signed notifications to it over real HTTP
(some redelivered, some forged), then it prints what the handler saw and the health::

    python examples/webhooks_fastapi.py

With ``INTERCOM_ACCESS_TOKEN`` and ``INTERCOM_CLIENT_SECRET`` set it serves on localhost:8000
instead, for Intercom to deliver to (through a tunnel): register
``https://<your tunnel>/hooks/intercom`` as the endpoint URL in the Developer Hub.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from intercom_resilience import ResilientIntercom
from intercom_resilience.asgi import health_endpoint, liveness_endpoint
from intercom_resilience.webhooks import Notification, WebhookReceiver


class Inbox:
    """The application's handler: here it only counts; yours would store or act."""

    def __init__(self) -> None:
        self.topics: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, notification: Notification) -> None:
        # Runs in a worker thread after Intercom has been answered: it may take its time.
        with self._lock:
            self.topics[notification.topic] += 1
            self.ids[notification.id] += 1


def create_app(client: ResilientIntercom, receiver: WebhookReceiver) -> Starlette:
    """The service: webhooks at /hooks/intercom, readiness at /health, liveness at /livez."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await receiver.aclose()  # handle what is queued before the process exits

    return Starlette(
        routes=[
            # An ASGI app as a Route answers the exact path (a Mount would redirect with a 307,
            # which Intercom counts as an error).
            Route("/hooks/intercom", receiver),
            Route("/health", health_endpoint(client)),
            Route("/livez", liveness_endpoint()),
        ],
        lifespan=lifespan,
    )


def demo() -> None:
    """Serve the app on a free port and let the fake Intercom deliver to it."""
    import uvicorn

    from intercom_resilience.testing import FakeIntercom

    secret = "example-client-secret"  # the Developer Hub's client secret, in real life
    fake = FakeIntercom(seed=7)
    inbox = Inbox()
    with fake.client() as client:
        receiver = client.webhook_receiver(secret=secret, handler=inbox)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(client, receiver), host="127.0.0.1", port=0, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/hooks/intercom"
        with fake.webhooks(url, secret) as sender:
            report = sender.run(200, duplicates=0.05, bad_signatures=0.02)
        for _ in range(1000):  # the handler runs after the answers: give it up to 10 s
            if set(inbox.ids) == report.valid_ids:
                break
            time.sleep(0.01)
        server.should_exit = True
        thread.join()
        print(
            f"delivered {len(report.deliveries)}: answers {dict(sorted(report.statuses.items()))}"
        )
        print(
            f"handled {sum(inbox.ids.values())} notifications, each once: "
            f"{set(inbox.ids.values()) == {1}}"
        )
        print(f"ack p99 {report.ack_ms(99):.1f} ms")
        health = client.health()
        print(f"health: {health.status}; alerts: {[a.rule for a in health.alerts]}")


def main() -> None:
    """Serve on localhost:8000 with real credentials, else run the demo against the fake."""
    token = os.environ.get("INTERCOM_ACCESS_TOKEN")
    secret = os.environ.get("INTERCOM_CLIENT_SECRET")
    if not (token and secret):
        demo()
        return
    import uvicorn

    client = ResilientIntercom(token=token)
    receiver = client.webhook_receiver(secret=secret, handler=Inbox())
    uvicorn.run(create_app(client, receiver), host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
