"""``FakeIntercom``: the sans-I/O core that every way of running the fake drives.

:meth:`FakeIntercom.handle` turns one request (method, target, headers, body) into an
:class:`Outcome` without doing any I/O or sleeping: the in-process transports, the ASGI app and the
HTTP server are thin shells around it, so sync, async and real HTTP cannot drift apart.

The order of checks mirrors the path of a request to Intercom: the network and gateways (fault
script), then authentication, then the rate limiter, then the API itself.
"""

from __future__ import annotations

import contextlib
import functools
import random
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .._clock import Clock, SystemClock
from ._api import route_table
from ._auth import TokenInfo, TokenRegistry
from ._faults import FaultAction, FaultKind, Faults
from ._journal import Journal, JournalEntry
from ._openapi import document
from ._paths import normalize_path
from ._quotas import QuotaDecision, Quotas
from ._responses import (
    DEFAULT_CODES,
    ApiFailure,
    Disruption,
    FakeResponse,
    Outcome,
    error_body,
    gateway_page,
    json_bytes,
)
from ._routes import Request, Router
from ._state import Workspace
from ._validation import validate_request

if TYPE_CHECKING:
    import httpx

    from .._client import AsyncResilientIntercom, ResilientIntercom
    from ._webhooks import WebhookSender

__all__ = ["DEFAULT_TOKEN", "MAX_BODY_BYTES", "MAX_HEADERS", "MAX_HEADER_BYTES", "FakeIntercom"]

#: The token a new fake accepts unless told otherwise.
DEFAULT_TOKEN = "fake-token"  # noqa: S105 - a well-known test credential, not a secret

_JSON_TYPE = ("Content-Type", "application/json; charset=utf-8")
_HTML_TYPE = ("Content-Type", "text/html")
# The versions the description enumerates, and the two moving ones Intercom also accepts.
_API_VERSIONS = frozenset([*document()["versions"], "Preview", "Unstable"])
#: The largest request body answered (Intercom documents no limit; its gateways have one): a
#: larger one is ``413 request_too_large``, refused before authentication, as a gateway would.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: The most request headers answered, and their largest total size (names and values); past
#: either, the answer is ``431 request_header_fields_too_large``.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024
_DISRUPTIONS = {
    FaultKind.CONNECT_ERROR: Disruption.CONNECT_ERROR,
    FaultKind.CONNECTION_RESET: Disruption.CONNECTION_RESET,
}


class FakeIntercom:
    """An in-memory Intercom API with Intercom's auth, rate limits, errors and failure modes.

    Args:
        clock: where time comes from (``VirtualClock`` in tests); the real clock by default.
        token: the token accepted from the start (``"fake-token"``); ``None`` registers none.
        app: the app that *token* belongs to.
        workspace: the workspace of that app.
        app_quota: requests per minute per app (Intercom: 10,000).
        workspace_quota: requests per minute per workspace, shared by its apps (Intercom: 25,000).
        window_seconds: the length of a rate-limit window (Intercom: 10 s); each window admits
            ``quota * window_seconds / 60`` requests.
        rate_limits: ``False`` turns rate limiting off: no 429s, and the ``X-RateLimit-*``
            headers state a window no client can spend (a client pacing by them never waits).
        seed: seeds request ids and resource ids, so runs are reproducible.
        journal_size: how many requests the journal keeps (``None``: all).

    Example::

        fake = FakeIntercom(clock=VirtualClock())
        client = intercom.Intercom(token="fake-token",
                                   httpx_client=httpx.Client(transport=fake.transport()))
        fake.faults.fail_next(2, status=503, path="/contacts/*")
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        token: str | None = DEFAULT_TOKEN,
        app: str = "fake-app",
        workspace: str = "fake-workspace",
        app_quota: int = 10_000,
        workspace_quota: int = 25_000,
        window_seconds: float = 10.0,
        rate_limits: bool = True,
        seed: int = 0,
        journal_size: int | None = 100_000,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.seed = seed
        self.rate_limits = rate_limits
        self.quotas = Quotas(app_quota, workspace_quota, window_seconds)
        self.tokens = TokenRegistry()
        self.faults = Faults(self.clock)
        self.journal = Journal(journal_size)
        self.workspaces: dict[str, Workspace] = {}
        self.default_workspace = workspace
        self._router = _router()
        self._ids = random.Random(seed)
        self._lock = threading.RLock()
        self._ensure_workspace(workspace)
        if token is not None:
            self.add_token(token, app=app, workspace=workspace)

    # -- configuration ---------------------------------------------------------------------------

    def _ensure_workspace(self, name: str) -> Workspace:
        with self._lock:
            found = self.workspaces.get(name)
            if found is None:
                found = Workspace(name, seed=self.seed, created_at=int(self.clock.time()))
                self.workspaces[name] = found
            return found

    def add_token(
        self, token: str, *, app: str = "fake-app", workspace: str | None = None
    ) -> TokenInfo:
        """Accept *token* as *app* of *workspace* (created on first use); works at runtime."""
        workspace = workspace or self.default_workspace
        self._ensure_workspace(workspace)
        return self.tokens.add(token, app=app, workspace=workspace)

    def revoke_token(self, token: str) -> None:
        """Revoke *token*: its requests get 401 ``token_revoked`` from now on."""
        self.tokens.revoke(token)

    def remove_token(self, token: str) -> None:
        """Forget *token*: its requests get 401 ``unauthorized``."""
        self.tokens.remove(token)

    def set_app_quota(self, app: str, per_minute: int) -> None:
        """Give *app* its own per-minute quota."""
        self.quotas.set_app_quota(app, per_minute)

    def set_workspace_quota(self, workspace: str, per_minute: int) -> None:
        """Give *workspace* its own per-minute quota."""
        self.quotas.set_workspace_quota(workspace, per_minute)

    def workspace(self, name: str | None = None) -> Workspace:
        """The state of workspace *name* (the default one if omitted), e.g. to seed data."""
        return self._ensure_workspace(name or self.default_workspace)

    def rate_limit(self, app: str = "fake-app", workspace: str | None = None) -> QuotaDecision:
        """The current window's figures for *app* without spending a request."""
        with self._lock:
            return self.quotas.peek(app, workspace or self.default_workspace, self.clock.time())

    # -- the core --------------------------------------------------------------------------------

    def _request_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        truncated: bool = False,
    ) -> Outcome:
        """Answer one request. No I/O, no sleeping: the shells do that with the outcome.

        Args:
            method: the HTTP method.
            target: the path with its query string (``/contacts?per_page=5``).
            headers: request headers; ``Authorization`` and ``Intercom-Version`` are read
                (case-insensitive mappings such as ``httpx.Headers``, or lower-case keys).
            body: the raw request body.
            truncated: the shell stopped reading a body longer than :data:`MAX_BODY_BYTES`
                (it answers 413 whatever *body* holds).
        """
        method = method.upper()
        path, _, query = target.partition("?")
        path = normalize_path(path)
        with self._lock:
            now = self.clock.time()
            request_id = self._request_id()
            action, delay = self.faults.decide(method, path, now)
            auth = self.tokens.authenticate(_header(headers, "authorization"))
            info = auth.info
            escapes = _escapes(path)
            match = None if escapes else self._router.match(method, path)
            if match is not None:
                template: str | None = match[0].template
            else:
                template = None if escapes else self._router.template_for(path)
            changed = False
            outcome: Outcome
            if action is not None and action.kind is not FaultKind.LOSE_RESPONSE:
                outcome = self._fault_outcome(action, info, request_id, now, delay)
            elif truncated or len(body) > MAX_BODY_BYTES:
                message = f"Request body is larger than {MAX_BODY_BYTES} bytes"
                outcome = self._error(request_id, 413, "request_too_large", message, delay=delay)
            elif len(headers) > MAX_HEADERS or _header_bytes(headers) > MAX_HEADER_BYTES:
                message = f"More than {MAX_HEADERS} request headers or {MAX_HEADER_BYTES} bytes"
                code = "request_header_fields_too_large"
                outcome = self._error(request_id, 431, code, message, delay=delay)
            elif info is None:
                # No rate-limit headers on 401s: Intercom cannot attribute them to an app.
                outcome = self._error(request_id, 401, auth.code or "unauthorized", delay=delay)
            else:
                if self.rate_limits:
                    decision = self.quotas.acquire(info.app, info.workspace, now)
                else:  # unlimited: headers that never tell a client to wait
                    decision = self.quotas.unlimited(info.app, info.workspace, now)
                if not decision.allowed:
                    outcome = self._error(
                        request_id,
                        429,
                        "rate_limit_exceeded",
                        delay=delay,
                        extra=decision.headers(),
                    )
                else:
                    outcome, changed = self._dispatch(
                        method,
                        path,
                        query,
                        headers,
                        body,
                        match,
                        info,
                        request_id,
                        now,
                        decision,
                        delay,
                    )
            # The journal records what the server did, even when the client never hears it.
            status = outcome.response.status if outcome.response is not None else None
            if action is not None and action.kind is FaultKind.LOSE_RESPONSE:
                # Lost response: the work is done and committed, the answer never arrives.
                outcome = self._lost(action.lost, request_id, delay)
            self.journal.record(
                JournalEntry(
                    seq=self.journal.next_seq(),
                    method=method,
                    path=path,
                    query=query,
                    template=template,
                    status=status,
                    request_id=request_id,
                    time=now,
                    changed_state=changed,
                    token_fingerprint=auth.fingerprint,
                    app=info.app if info else None,
                    workspace=info.workspace if info else None,
                    fault=action.name if action is not None else ("latency" if delay else None),
                    outcome=outcome.disruption.value if outcome.disruption else "response",
                )
            )
            return outcome

    def _dispatch(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        match: Any,
        info: TokenInfo,
        request_id: str,
        now: float,
        decision: QuotaDecision,
        delay: float,
    ) -> tuple[Outcome, bool]:
        rate_headers = decision.headers()
        version = _header(headers, "intercom-version")
        if version is not None and version not in _API_VERSIONS:
            return self._error(
                request_id,
                400,
                "intercom_version_invalid",
                f"Requested version {version!r} is not valid",
                delay=delay,
                extra=rate_headers,
            ), False
        if match is None:
            return self._error(
                request_id, 404, "not_found", "Resource Not Found", delay=delay, extra=rate_headers
            ), False
        route, params = match
        request = Request(
            method,
            path,
            query,
            body,
            params,
            self.workspaces[info.workspace],
            info.app,
            int(now),
            version,
        )
        try:
            if route.operation is not None:
                parsed = validate_request(
                    route.operation, query, lambda name: _header(headers, name), body
                )
                if parsed is not None:
                    request.preset_json(parsed)
            result = route.handler(request)
        except ApiFailure as failure:
            return self._error(
                request_id,
                failure.status,
                failure.code,
                failure.message,
                failure.field,
                delay=delay,
                extra=(*rate_headers, *failure.headers),
            ), False
        if result.raw is not None:
            payload = result.raw
            kind = ("Content-Type", result.content_type or "application/octet-stream")
        else:
            payload = b"" if result.body is None else json_bytes(result.body)
            kind = _JSON_TYPE
        response = FakeResponse(
            result.status,
            (kind, ("X-Request-Id", request_id), *rate_headers, *result.headers),
            payload,
        )
        return Outcome(request_id, response, None, delay), result.changed_state

    def _error(
        self,
        request_id: str,
        status: int,
        code: str,
        message: str | None = None,
        field: str | None = None,
        *,
        delay: float = 0.0,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Outcome:
        body = json_bytes(error_body(request_id, code, message, field))
        headers = (_JSON_TYPE, ("X-Request-Id", request_id), *extra)
        return Outcome(request_id, FakeResponse(status, headers, body), None, delay)

    def _lost(self, how: str, request_id: str, delay: float) -> Outcome:
        """What the client gets instead of a committed request's answer. Caller holds the lock."""
        if how == "500":
            # A crash after the commit: the error is a new request's, not the committed one's.
            return self._error(self._request_id(), 500, "server_error", delay=delay)
        disruption = Disruption.CONNECTION_RESET if how == "drop" else Disruption.READ_TIMEOUT
        return Outcome(request_id, None, disruption, delay)

    def _fault_outcome(
        self,
        action: FaultAction,
        info: TokenInfo | None,
        request_id: str,
        now: float,
        delay: float,
    ) -> Outcome:
        if action.kind in _DISRUPTIONS:
            return Outcome(request_id, None, _DISRUPTIONS[action.kind], delay)
        if action.kind is FaultKind.GATEWAY:
            response = FakeResponse(action.status, (_HTML_TYPE,), gateway_page(action.status))
            return Outcome(request_id, response, None, delay)
        extra: tuple[tuple[str, str], ...] = ()
        if action.status == 429 and info is not None:
            peek = self.quotas.peek(info.app, info.workspace, now)
            extra = QuotaDecision(False, peek.limit, 0, peek.reset).headers()
        code = action.code or DEFAULT_CODES.get(action.status, "server_error")
        return self._error(
            request_id, action.status, code, action.message, delay=delay, extra=extra
        )

    # -- ways to run it --------------------------------------------------------------------------

    def transport(self) -> httpx.BaseTransport:
        """An ``httpx`` transport that sends requests to this fake, in process."""
        from ._transport import FakeTransport

        return FakeTransport(self)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        """An ``httpx`` async transport that sends requests to this fake, in process."""
        from ._transport import AsyncFakeTransport

        return AsyncFakeTransport(self)

    def asgi_app(self) -> Any:
        """A plain ASGI application serving this fake (for uvicorn, or httpx's ASGITransport)."""
        from ._asgi import FakeASGIApp

        return FakeASGIApp(self)

    @contextlib.contextmanager
    def serve_in_thread(self, port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
        """Serve this fake over real HTTP on localhost in a thread; yields the base URL.

        Needs the ``server`` extra (uvicorn). ``port=0`` picks a free port.
        """
        from ._server import serve_in_thread

        with serve_in_thread(self, host=host, port=port) as url:
            yield url

    def webhooks(self, url: str, secret: str, **kwargs: Any) -> WebhookSender:
        """A :class:`~._webhooks.WebhookSender` delivering signed notifications to *url*.

        On this fake's clock and seed; *kwargs* go to the sender (``app_id``, ``timeout``, …).
        """
        from ._webhooks import WebhookSender

        options: dict[str, Any] = {"clock": self.clock, "seed": self.seed, **kwargs}
        return WebhookSender(url, secret, **options)

    def client(self, **kwargs: Any) -> ResilientIntercom:
        """A :class:`~intercom_resilience.ResilientIntercom` wired to this fake.

        Defaults: ``token="fake-token"``, ``transport=self.transport()``, ``clock=self.clock``;
        *kwargs* override or add (``config=...``).
        """
        from .._client import ResilientIntercom  # type: ignore[import-not-found,unused-ignore]

        options: dict[str, Any] = {
            "token": DEFAULT_TOKEN,
            "transport": self.transport(),
            "clock": self.clock,
        }
        options.update(kwargs)
        return ResilientIntercom(**options)

    def async_client(self, **kwargs: Any) -> AsyncResilientIntercom:
        """An :class:`~intercom_resilience.AsyncResilientIntercom` wired to this fake."""
        from .._client import AsyncResilientIntercom  # type: ignore[import-not-found,unused-ignore]

        options: dict[str, Any] = {
            "token": DEFAULT_TOKEN,
            "transport": self.async_transport(),
            "clock": self.clock,
        }
        options.update(kwargs)
        return AsyncResilientIntercom(**options)

    def __repr__(self) -> str:
        return (
            f"FakeIntercom(clock={self.clock!r}, workspaces={sorted(self.workspaces)}, "
            f"tokens={len(self.tokens.tokens())}, requests={len(self.journal)})"
        )


@functools.cache
def _router() -> Router:
    # One router per process: the table is immutable, and building it is most of a fake's cost.
    return Router(route_table())


def _header_bytes(headers: Mapping[str, str]) -> int:
    items = headers.multi_items() if hasattr(headers, "multi_items") else headers.items()
    return sum(len(name) + len(value) for name, value in items)


def _escapes(path: str) -> bool:
    # A dot segment, plain or percent-encoded (``/macros/%2e%2e/me``), names no resource: it is
    # refused as unknown rather than passed on as an id that a placeholder would accept.
    if "." not in path and "%" not in path:
        return False
    return any(part in {".", ".."} for part in re.split(r"[/\\]", unquote(path)))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not hasattr(headers, "multi_items"):
        # A plain dict may carry any capitalisation; httpx.Headers is already case-insensitive.
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value
