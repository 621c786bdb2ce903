"""A ready ``/health`` endpoint for ASGI applications (Starlette, FastAPI, or none at all).

:func:`health_endpoint` returns a plain ASGI application, so it needs no web framework: mount it in
Starlette or FastAPI, or serve it on its own with any ASGI server::

    from fastapi import FastAPI            # or starlette.applications.Starlette
    from intercom_resilience import ResilientIntercom
    from intercom_resilience.asgi import health_endpoint

    client = ResilientIntercom(token=...)
    app = FastAPI()
    app.add_route("/health", health_endpoint(client))   # or app.mount("/health", ...)

``GET`` (or ``HEAD``) answers with the status code that :data:`DEFAULT_STATUS_CODES` maps the
health to: ``200`` for ``healthy`` and ``degraded``, ``503`` for ``unhealthy``, as a readiness
probe expects (a pod absorbing 429s is still serving; pulling it would only move its load onto the
others). ``status_codes=`` changes the mapping (:data:`STRICT_STATUS_CODES` answers 503 for
anything but healthy). The body is::

    {"status": "degraded",
     "services": {"intercom": {...HealthStatus.to_dict()...}},
     "timestamp": "2026-01-01T00:00:00Z"}

The health is passive (computed from recent traffic): probing the endpoint never calls Intercom and
never spends rate-limit quota. For the liveness probe, :func:`liveness_endpoint` answers ``200``
without looking at Intercom at all: a dependency's outage is no reason to restart the process::

    app.add_route("/livez", liveness_endpoint())
    app.add_route("/readyz", health_endpoint(client))

``?scope=fleet`` answers with the whole fleet's health instead (``client.fleet_health()``, see
``docs/fleet.md#fleet-health``): the worst status of every process publishing to the client's
Redis, with one row per process. Its status code follows the same mapping, and a fleet that
cannot be seen (Redis unreachable, no process published) is ``unknown`` and answers 503. A source
without fleet health (no ``fleet_health()``, or no fleet publishing configured) answers 404::

    {"status": "unhealthy", "scope": "fleet",
     "fleet": {...FleetHealth.to_dict()...},
     "timestamp": "2026-01-01T00:00:00Z"}
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from ._fleet import FleetHealth, FleetPublishingOff
from ._health import HealthStatus, Status
from ._incidents import format_utc

__all__ = [
    "DEFAULT_STATUS_CODES",
    "STRICT_STATUS_CODES",
    "ASGIApp",
    "HealthEndpoint",
    "LivenessEndpoint",
    "SupportsHealth",
    "health_endpoint",
    "liveness_endpoint",
]

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
_STATUSES: tuple[Status, ...] = ("healthy", "degraded", "unhealthy")

#: The readiness mapping: serve while healthy or degraded, leave the pool while unhealthy.
DEFAULT_STATUS_CODES: Mapping[Status, int] = MappingProxyType(
    {"healthy": 200, "degraded": 200, "unhealthy": 503}
)
#: The seeds' mapping: 503 for anything but healthy (for a dashboard, not a load balancer).
STRICT_STATUS_CODES: Mapping[Status, int] = MappingProxyType(
    {"healthy": 200, "degraded": 503, "unhealthy": 503}
)


def _status_codes(overrides: Mapping[Status, int] | Mapping[str, int] | None) -> dict[str, int]:
    """:data:`DEFAULT_STATUS_CODES` with *overrides* applied, checked (the field is named)."""
    codes: dict[str, int] = dict(DEFAULT_STATUS_CODES.items())
    for key, code in (overrides or {}).items():
        if key not in _STATUSES:
            raise ValueError(
                f"health_endpoint status_codes: unknown status {key!r} (use {', '.join(_STATUSES)})"
            )
        if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 599:
            raise ValueError(
                f"health_endpoint status_codes[{key!r}] must be an HTTP status 200-599, "
                f"got {code!r}"
            )
        codes[key] = code
    return codes


class HealthEndpoint:
    """The ASGI application :func:`health_endpoint` returns.

    A class instance rather than a function, so that Starlette's and FastAPI's ``Route`` treat it
    as an ASGI app (they would call a plain function with a ``Request``): it can be routed at an
    exact path (``Route("/health", endpoint)``, no redirect to ``/health/``) or mounted
    (``app.mount("/health", endpoint)``).
    """

    __slots__ = ("_codes", "_fleet", "_probe")

    def __init__(
        self,
        probe: Callable[[], Any],
        status_codes: Mapping[Status, int] | Mapping[str, int] | None = None,
        fleet: Callable[[], Any] | None = None,
    ) -> None:
        self._probe = probe
        self._codes = _status_codes(status_codes)
        self._fleet = fleet

    @property
    def status_codes(self) -> Mapping[str, int]:
        """The HTTP status answered for each health status."""
        return MappingProxyType(self._codes)

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
        query = urllib.parse.parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
        wanted = query.get("scope", ["process"])[-1]
        if wanted == "fleet":
            code, body = await _fleet_report(self._fleet, self._codes)
        elif wanted == "process":
            code, body = await _report(self._probe, self._codes)
        else:
            code, body = 400, {"detail": "scope must be process or fleet"}
        await _respond(send, code, body, allow=False, head=method == "HEAD")

    def __repr__(self) -> str:
        return f"HealthEndpoint({self._probe!r})"


def health_endpoint(
    source: HealthSource, *, status_codes: Mapping[Status, int] | Mapping[str, int] | None = None
) -> HealthEndpoint:
    """An ASGI app that reports *source*'s health as JSON (a readiness probe).

    Args:
        source: an object with a ``health()`` method (a ``ResilientIntercom``, a
            ``HealthMonitor``), or a zero-argument callable returning a :class:`HealthStatus`
            (it may be a coroutine function).
        status_codes: the HTTP status per health status, over :data:`DEFAULT_STATUS_CODES`
            (200 healthy, 200 degraded, 503 unhealthy); e.g. ``{"degraded": 503}``. An unknown
            status or a code outside 200-599 raises ``ValueError`` at once.

    The app answers every path it is given; methods other than GET and HEAD get 405. If
    ``health()`` itself raises, the answer is 503 with ``status: unhealthy`` and the exception's
    type, never its message (which could hold data the endpoint should not publish).
    """
    if isinstance(source, SupportsHealth):
        fleet = getattr(source, "fleet_health", None)
        return HealthEndpoint(source.health, status_codes, fleet if callable(fleet) else None)
    if callable(source):
        return HealthEndpoint(source, status_codes)
    raise TypeError(
        "health_endpoint() needs an object with a health() method or a callable returning "
        f"a HealthStatus, got {type(source).__name__}"
    )


async def _report(probe: Callable[[], Any], codes: Mapping[str, int]) -> tuple[int, dict[str, Any]]:
    try:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, HealthStatus):
            raise TypeError(f"health() returned {type(result).__name__}, not HealthStatus")
        health = result
    except Exception as exc:  # the endpoint must answer even when the client is broken
        failure = {"status": "unhealthy", "error": f"health check failed: {type(exc).__name__}"}
        return codes["unhealthy"], {
            "status": "unhealthy",
            "services": {"intercom": failure},
            "timestamp": format_utc(time.time()),
        }
    body = {
        "status": health.status,
        "services": {"intercom": health.to_dict()},
        "timestamp": format_utc(health.checked_at),
    }
    return codes[health.status], body


async def _fleet_report(
    probe: Callable[[], Any] | None, codes: Mapping[str, int]
) -> tuple[int, dict[str, Any]]:
    absent = 404, {"detail": "no fleet health here: the client does not publish to a fleet"}
    if probe is None:
        return absent
    try:
        if inspect.iscoroutinefunction(probe):
            result = await probe()
        else:  # a Redis round trip: off the event loop
            result = await asyncio.to_thread(probe)
        if not isinstance(result, FleetHealth):
            raise TypeError(f"fleet_health() returned {type(result).__name__}, not FleetHealth")
    except FleetPublishingOff:
        return absent
    except Exception as exc:
        return 503, _fleet_failure(exc)
    code = 503 if result.status == "unknown" else codes[result.status]
    body = {
        "status": result.status,
        "scope": "fleet",
        "fleet": result.to_dict(),
        "timestamp": format_utc(result.checked_at),
    }
    return code, body


def _fleet_failure(exc: Exception) -> dict[str, Any]:
    return {
        "status": "unknown",
        "scope": "fleet",
        "error": f"fleet health failed: {type(exc).__name__}",
        "timestamp": format_utc(time.time()),
    }


class LivenessEndpoint:
    """The ASGI application :func:`liveness_endpoint` returns: ``200 {"status": "alive"}``."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection: the process is up, whatever Intercom's state."""
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            raise RuntimeError(f"liveness_endpoint does not handle {kind!r} connections")
        method = str(scope.get("method", "GET")).upper()
        if method not in _ALLOWED:
            await _respond(send, 405, {"detail": "method not allowed"}, allow=True, head=False)
            return
        body = {"status": "alive", "timestamp": format_utc(time.time())}
        await _respond(send, 200, body, allow=False, head=method == "HEAD")

    def __repr__(self) -> str:
        return "LivenessEndpoint()"


def liveness_endpoint() -> LivenessEndpoint:
    """An ASGI app for the liveness probe: always ``200``, never calls Intercom or reads health.

    An orchestrator restarts a process whose liveness probe fails; Intercom's outage is not
    cured by a restart, so this route answers as long as the event loop does.
    """
    return LivenessEndpoint()


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
