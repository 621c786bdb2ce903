"""The exceptions a resilient client raises.

Callers keep every ``except`` clause they wrote for the official SDK: HTTP errors are still the
SDK's own types (``NotFoundError``, ``UnauthorizedError``, the plain ``ApiError`` for 429 and
5xx, ...), and network failures are still ``httpx`` exceptions. What the library adds is a
``request_id`` on all of them, and its own errors for the decisions it takes (refusing to exceed
the quota, failing fast while the circuit is open, refusing to re-send a write whose outcome is
unknown)::

    Exception
    ├── intercom.core.api_error.ApiError            SDK; gains .request_id (from body or header)
    │   ├── BadRequestError, UnauthorizedError,     SDK's typed errors, unchanged
    │   │   ForbiddenError, NotFoundError, ...
    │   ├── RateLimitedError  ────────────────┐     no token within max_wait/deadline (status 429)
    │   ├── DeadlineExceededError ────────────┤     the next retry would end past the deadline
    │   ├── CircuitOpenError  ────────────────┤     failing fast while Intercom is down
    │   └── IntercomDisabledError ────────────┤     the kill switch is on
    └── IntercomResilienceError  ◄────────────┘     base of every error the library itself raises
        ├── OutcomeUnknownError                     a write may or may not have happened
        ├── PaginationLoopError                     a search pager's server repeated a cursor
        ├── IntercomTooManyRedirects (+ httpx.TooManyRedirects)
        └── IntercomNetworkError (+ httpx.TransportError)
            ├── IntercomConnectError    (+ httpx.ConnectError)
            ├── IntercomConnectTimeout  (+ httpx.ConnectTimeout)
            ├── IntercomReadTimeout     (+ httpx.ReadTimeout)
            ├── IntercomWriteTimeout    (+ httpx.WriteTimeout)
            ├── IntercomPoolTimeout     (+ httpx.PoolTimeout)
            ├── IntercomReadError       (+ httpx.ReadError)
            ├── IntercomWriteError      (+ httpx.WriteError)
            └── IntercomRemoteProtocolError (+ httpx.RemoteProtocolError)

Network errors carry ``request_id = None``: no response, no id.
"""

from __future__ import annotations

import httpx
from intercom.core.api_error import ApiError

__all__ = [
    "CircuitOpenError",
    "DeadlineExceededError",
    "IntercomConnectError",
    "IntercomConnectTimeout",
    "IntercomDisabledError",
    "IntercomNetworkError",
    "IntercomPoolTimeout",
    "IntercomReadError",
    "IntercomReadTimeout",
    "IntercomRemoteProtocolError",
    "IntercomResilienceError",
    "IntercomTooManyRedirects",
    "IntercomWriteError",
    "IntercomWriteTimeout",
    "OutcomeUnknownError",
    "PaginationLoopError",
    "RateLimitedError",
    "request_id_of",
    "request_of",
    "wrap_transport_error",
]


def request_id_of(error: BaseException) -> str | None:
    """Intercom's request id behind *error*, for any exception a resilient client raises.

    ``error.request_id`` works too, but the SDK's ``ApiError`` only gains that attribute at run
    time, so type checkers do not know it; this function is the typed way to read it.

    .. versionadded:: 0.1
    """
    value = getattr(error, "request_id", None)
    return value if isinstance(value, str) else None


class IntercomResilienceError(Exception):
    """Base class of every error that intercom-resilience itself raises.

    Attributes:
        request_id: Intercom's request id of the response behind the error, or ``None``.
    """

    request_id: str | None = None


class _LibraryApiError(ApiError, IntercomResilienceError):
    """An error of ours that callers catching the SDK's ``ApiError`` must also catch."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, headers=headers or {}, body=message)
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        suffix = f" (request_id={self.request_id})" if self.request_id else ""
        return f"{self.message}{suffix}"


class RateLimitedError(_LibraryApiError):
    """No rate-limit token could be had within the allowed wait, or Intercom's own 429 asks for
    a wait that would end past the call's deadline.

    The first is raised before anything is sent, so nothing counts against Intercom's quota. It
    is an ``ApiError`` with ``status_code == 429``, so handlers written for Intercom's own 429
    keep working.

    Attributes:
        retry_at: Unix time at which a token is expected to be available.
        retry_after: seconds from the error until then (``None`` when unknown).
        request_id: the request id of Intercom's 429 behind it, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_at: float | None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=429, request_id=request_id)
        self.retry_at = retry_at
        self.retry_after = retry_after


class DeadlineExceededError(_LibraryApiError):
    """A retryable failure whose next attempt could not start and finish before the deadline.

    The call ended at once instead of sleeping toward a failure: it is an ``ApiError`` with the
    status of the failure behind it (a 5xx, 408, …), so existing handlers keep working, and it
    says how long to wait before trying again.

    Attributes:
        retry_after: seconds to wait before a new attempt (the server's wait, or the backoff).
        request_id: the request id of the failure behind it, when Intercom sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status_code: int | None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id)
        self.retry_after = retry_after


class CircuitOpenError(_LibraryApiError):
    """Intercom is failing and the circuit breaker is open: the call failed fast, unsent.

    Attributes:
        retry_at: Unix time at which the breaker lets a trial call through.
    """

    def __init__(
        self, message: str, *, retry_at: float | None, request_id: str | None = None
    ) -> None:
        super().__init__(message, status_code=None, request_id=request_id)
        self.retry_at = retry_at


class IntercomDisabledError(_LibraryApiError):
    """The kill switch is on and no stale answer was available: nothing was sent."""

    def __init__(self, message: str = "the Intercom integration is disabled") -> None:
        super().__init__(message, status_code=None)


class OutcomeUnknownError(IntercomResilienceError):
    """A write failed in a way that leaves its outcome unknown.

    The request may have been processed (a lost response, a 5xx after commit) and reconciliation
    (``docs/writes.md``) could not find out in time, or the write-safety table knows no safe way.
    A write that repeating could duplicate was never re-sent blindly; an idempotent one may have
    been (*resolution* ``idempotent``: sending it again is safe). Check the resource before
    retrying by hand.

    Attributes:
        method: the HTTP method of the write.
        path: the path template of the write.
        status_code: the status of the failed response, or ``None`` for a network failure.
        request_id: Intercom's request id when a response arrived, else ``None``.
        resolution: the write's row in the write-safety table (``unresolvable``, or the
            resolution that reconciliation could not complete: ``docs/writes.md``).
        hint: why reconciliation stopped and how to check by hand.

    *resent* says that the write was sent more than once (an idempotent write, whose repeats are
    harmless); the message then does not claim otherwise.
    """

    def __init__(
        self,
        method: str,
        path: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        reason: str = "",
        resolution: str = "unresolvable",
        hint: str = "",
        resent: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.status_code = status_code
        self.request_id = request_id
        self.resolution = resolution
        self.hint = hint
        what = f"status {status_code}" if status_code is not None else reason or "network failure"
        rid = request_id if request_id is not None else "none (no response received)"
        more = f" ({resolution}: {hint})" if hint else ""
        # An idempotent write may have been re-sent: saying it was not would mislead the reader.
        sent = "" if resent else "; it was not re-sent to avoid a duplicate write"
        super().__init__(
            f"outcome of {method} {path} is unknown after {what}{sent} (request_id={rid}){more}"
        )


class PaginationLoopError(IntercomResilienceError):
    """A paged endpoint handed back a cursor it had already given: following it would never end.

    Iterating a search (``contacts.search(...)``, ``conversations.search(...)``,
    ``tickets.search(...)``) follows each page's ``pages.next.starting_after`` cursor. A server
    that repeats a cursor (the same one twice, or a cycle) would make the loop endless, so the
    pager yields every page it has read and then raises this instead of fetching the repeat.

    Attributes:
        endpoint: the endpoint that repeated itself, e.g. ``"POST /contacts/search"``.
        cursor: the repeated cursor (an opaque page token, not a credential).
        pages: how many pages had been read when the repeat was detected.

    .. versionadded:: 0.1
    """

    def __init__(self, endpoint: str, *, cursor: str, pages: int) -> None:
        self.endpoint = endpoint
        self.cursor = cursor
        self.pages = pages
        shown = cursor if len(cursor) <= 40 else f"{cursor[:37]}..."
        super().__init__(
            f"{endpoint} returned the cursor {shown!r} a second time after {pages} page(s); "
            "the server's pagination loops, so iteration stopped instead of running forever"
        )


class IntercomTooManyRedirects(IntercomResilienceError, httpx.TooManyRedirects):
    """Intercom (or something in front of it) redirected the request in a loop.

    httpx follows redirects above the resilient transport, so the pipeline never sees the loop
    itself; the facade turns httpx's error into this one (still an ``httpx.TooManyRedirects``).
    """

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        httpx.TooManyRedirects.__init__(self, message, request=request)
        self.request_id = None


class IntercomNetworkError(IntercomResilienceError, httpx.TransportError):
    """A network failure talking to Intercom; also the matching ``httpx`` exception."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        httpx.TransportError.__init__(self, message, request=request)
        self.request_id = None


class IntercomConnectError(IntercomNetworkError, httpx.ConnectError):
    """Could not connect (nothing was sent)."""


class IntercomConnectTimeout(IntercomNetworkError, httpx.ConnectTimeout):
    """Timed out while connecting (nothing was sent)."""


class IntercomReadTimeout(IntercomNetworkError, httpx.ReadTimeout):
    """Timed out waiting for the response (the request may have been processed)."""


class IntercomWriteTimeout(IntercomNetworkError, httpx.WriteTimeout):
    """Timed out while sending the request."""


class IntercomPoolTimeout(IntercomNetworkError, httpx.PoolTimeout):
    """No connection could be had from the pool in time (nothing was sent)."""


class IntercomReadError(IntercomNetworkError, httpx.ReadError):
    """The connection failed while reading the response."""


class IntercomWriteError(IntercomNetworkError, httpx.WriteError):
    """The connection failed while sending the request."""


class IntercomRemoteProtocolError(IntercomNetworkError, httpx.RemoteProtocolError):
    """The server broke the protocol, typically by dropping the connection mid-response."""


# Most specific first: ConnectTimeout is a TimeoutException, not a ConnectError, and so on.
_WRAPPERS: tuple[tuple[type[httpx.TransportError], type[IntercomNetworkError]], ...] = (
    (httpx.ConnectTimeout, IntercomConnectTimeout),
    (httpx.ReadTimeout, IntercomReadTimeout),
    (httpx.WriteTimeout, IntercomWriteTimeout),
    (httpx.PoolTimeout, IntercomPoolTimeout),
    (httpx.ConnectError, IntercomConnectError),
    (httpx.ReadError, IntercomReadError),
    (httpx.WriteError, IntercomWriteError),
    (httpx.RemoteProtocolError, IntercomRemoteProtocolError),
)


def request_of(error: httpx.HTTPError) -> httpx.Request | None:
    """The request behind an ``httpx`` error, or ``None`` when httpx raised it without one."""
    try:
        return error.request
    except RuntimeError:  # httpx's way of saying "no request was attached"
        return None


def wrap_transport_error(error: httpx.TransportError) -> IntercomNetworkError:
    """The library's twin of an ``httpx`` transport error (same ``httpx`` class, plus ours)."""
    if isinstance(error, IntercomNetworkError):
        return error
    request = request_of(error)
    for httpx_type, ours in _WRAPPERS:
        if isinstance(error, httpx_type):
            return ours(str(error) or type(error).__name__, request=request)
    return IntercomNetworkError(str(error) or type(error).__name__, request=request)
