"""A ready ``/health`` endpoint for ASGI applications (Starlette, FastAPI, or none at all).

:func:`health_endpoint` returns a plain ASGI application, so it needs no web framework: mount it in
Starlette or FastAPI, or serve it on its own with any ASGI server::

    from fastapi import FastAPI            # or starlette.applications.Starlette
    from intercom_resilience import ResilientIntercom
    from intercom_resilience.asgi import health_endpoint

    client = ResilientIntercom(token=...)
    app = FastAPI()
    app.add_route("/health", health_endpoint(client))   # or app.mount("/health", ...)

``GET`` (or ``HEAD``) answers ``200`` when the integration is healthy and ``503`` otherwise (a
load balancer or orchestrator then sees the dependency's trouble), with the body::

    {"status": "degraded",
     "services": {"intercom": {...HealthStatus.to_dict()...}},
     "timestamp": "2026-01-01T00:00:00Z"}

The health is passive (computed from recent traffic): probing the endpoint never calls Intercom and
never spends rate-limit quota.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, runtime_checkable

from ._health import HealthStatus
from ._incidents import format_utc

__all__ = ["ASGIApp", "HealthEndpoint", "SupportsHealth", "health_endpoint"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: The ASGI 3 application signature.
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class SupportsHealth(Protocol):
    """Anything with a passive ``health()``: a resilient client, or a :class:`HealthMonitor`."""

    def health(self) -> HealthStatus:
        """The current health."""
        ...


HealthSource = SupportsHealth | Callable[[], HealthStatus | Awaitable[HealthStatus]]

_ALLOWED = ("GET", "HEAD")


class HealthEndpoint:
    """The ASGI application :func:`health_endpoint` returns.

    A class instance rather than a function, so that Starlette's and FastAPI's ``Route`` treat it
    as an ASGI app (they would call a plain function with a ``Request``): it can be routed at an
    exact path (``Route("/health", endpoint)``, no redirect to ``/health/``) or mounted
    (``app.mount("/health", endpoint)``).
    """

    __slots__ = ("_probe",)

    def __init__(self, probe: Callable[[], Any]) -> None:
        self._probe = probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection (see :func:`health_endpoint`)."""
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":  # websockets: not ours to answer
            raise RuntimeError(f"health_endpoint does not handle {kind!r} connections")
        method = str(scope.get("method", "GET")).upper()
        if method not in _ALLOWED:
            await _respond(send, 405, {"detail": "method not allowed"}, allow=True, head=False)
            return
        code, body = await _report(self._probe)
        await _respond(send, code, body, allow=False, head=method == "HEAD")

    def __repr__(self) -> str:
        return f"HealthEndpoint({self._probe!r})"


def health_endpoint(source: HealthSource) -> HealthEndpoint:
    """An ASGI app that reports *source*'s health as JSON (200 healthy, 503 otherwise).

    Args:
        source: an object with a ``health()`` method (a ``ResilientIntercom``, a
            ``HealthMonitor``), or a zero-argument callable returning a :class:`HealthStatus`
            (it may be a coroutine function).

    The app answers every path it is given; methods other than GET and HEAD get 405. If
    ``health()`` itself raises, the answer is 503 with ``status: unhealthy`` and the exception's
    type, never its message (which could hold data the endpoint should not publish).
    """
    if isinstance(source, SupportsHealth):
        return HealthEndpoint(source.health)
    if callable(source):
        return HealthEndpoint(source)
    raise TypeError(
        "health_endpoint() needs an object with a health() method or a callable returning "
        f"a HealthStatus, got {type(source).__name__}"
    )


async def _report(probe: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    try:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, HealthStatus):
            raise TypeError(f"health() returned {type(result).__name__}, not HealthStatus")
        health = result
    except Exception as exc:  # the endpoint must answer even when the client is broken
        failure = {"status": "unhealthy", "error": f"health check failed: {type(exc).__name__}"}
        return 503, {
            "status": "unhealthy",
            "services": {"intercom": failure},
            "timestamp": format_utc(time.time()),
        }
    body = {
        "status": health.status,
        "services": {"intercom": health.to_dict()},
        "timestamp": format_utc(health.checked_at),
    }
    return (200 if health.status == "healthy" else 503), body


async def _respond(
    send: Send, status: int, body: dict[str, Any], *, allow: bool, head: bool
) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        # A cached "healthy" would hide an outage from the load balancer.
        (b"cache-control", b"no-store"),
    ]
    if allow:
        headers.append((b"allow", ", ".join(_ALLOWED).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Serve the lifespan protocol when the endpoint is the top-level app: nothing to set up."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
