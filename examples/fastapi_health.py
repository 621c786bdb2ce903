"""Readiness and liveness endpoints for a web service that talks to Intercom.

Works with Starlette alone (``pip install "intercom-resilience[server]"``); with FastAPI the code is
the same, because FastAPI is Starlette underneath::

    from fastapi import FastAPI

    app = FastAPI()
    app.add_route("/health", health_endpoint(client))
    app.add_route("/livez", liveness_endpoint())

Run it against the bundled fake Intercom (no token needed)::

    python examples/fastapi_health.py            # then: curl -i localhost:8000/health

or against Intercom itself with ``INTERCOM_ACCESS_TOKEN`` set. ``/health`` (the readiness probe)
answers 200 while the Intercom integration is healthy or degraded and 503 when it is unhealthy,
with the details in the body; ``/livez`` (the liveness probe) answers 200 as long as the process
serves, without looking at Intercom.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from intercom_resilience.asgi import SupportsHealth, health_endpoint, liveness_endpoint


def create_app(client: SupportsHealth) -> Starlette:
    """The web service: one business route, readiness at /health, liveness at /livez."""

    async def homepage(request: Request) -> JSONResponse:
        return JSONResponse({"service": "support-portal"})

    return Starlette(
        routes=[
            Route("/", homepage),
            # An ASGI app as a Route answers /health itself (a Mount would redirect to /health/).
            Route("/health", health_endpoint(client)),
            Route("/livez", liveness_endpoint()),
        ]
    )


def main() -> None:
    """Serve the example on localhost:8000."""
    import uvicorn

    token = os.environ.get("INTERCOM_ACCESS_TOKEN")
    if token:
        from intercom_resilience import ResilientIntercom

        client = ResilientIntercom(token=token)
    else:
        from intercom_resilience.testing import FakeIntercom

        client = FakeIntercom().client()
    uvicorn.run(create_app(client), host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
