"""The one seam between intercom-resilience and what python-intercom (and httpx) do not promise.

Everything else in the package uses the SDK's public surface only: its client classes and their
constructor arguments, the namespaces and methods, ``ApiError`` and its typed subclasses. Where the
library must reach further, into a private attribute, a generated helper class or the shape of a
pager, it does so here, and nowhere else. Each touch point is declared as a :class:`TouchPoint`
right above its code: what it relies on, what the SDK lacks that makes it necessary, and how to
retire it. ``tests/sdk/test_touch_points.py`` probes every declared touch point against the
installed SDK and fails naming the touch point when a release moves one, so an upgrade breaks the
suite, not the users.

Not touch points, because they use public names only: `_sdk_bodies.py` mends response bodies
the SDK would mis-parse (it needs nothing from the SDK, and stays harmless once the SDK parses them
well); `_resources.py` re-declares the resource properties' types for type checkers, checked
against the SDK by ``tests/typing``; the facades' constructors mirror the SDK's keyword arguments,
checked by ``tests/client/test_facade.py``. The ``python-intercom>=5.0.1,<6`` pin in
``pyproject.toml`` is what all of them were checked against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from intercom import AsyncIntercom, Intercom
from intercom.core.api_error import ApiError
from intercom.core.http_client import AsyncHttpClient, HttpClient
from intercom.core.pagination import AsyncPager, SyncPager

from ._core.responses import request_id_from
from ._errors import IntercomTooManyRedirects, request_of

__all__ = [
    "TOUCH_POINTS",
    "DefaultAsyncHttpxClient",
    "DefaultHttpxClient",
    "TouchPoint",
    "disable_sdk_retries",
    "install_request_id_on_api_error",
    "next_search_cursor",
    "patch_method",
    "request_headers",
    "with_next_page",
    "wrap_transports",
]

P = TypeVar("P", SyncPager[Any, Any], AsyncPager[Any, Any])


@dataclass(frozen=True)
class TouchPoint:
    """One place where the library relies on something python-intercom or httpx does not promise.

    Attributes:
        name: the touch point's name, as the probe test reports it.
        relies_on: the private names or undocumented behaviour used.
        sdk_lacks: the public feature whose absence makes the touch necessary.
        retire: what would let the touch go, and how.
    """

    name: str
    relies_on: str
    sdk_lacks: str
    retire: str


# -- 1. The SDK's retry loop, switched off ------------------------------------------------------

SDK_RETRIES = TouchPoint(
    name="sdk-retries-off",
    relies_on=(
        "intercom.core.http_client.HttpClient / AsyncHttpClient (generated helpers, not exported "
        "by `intercom`): subclassed so that `request(..., request_options=...)` always carries "
        "`max_retries: 0`, and their constructor keywords `httpx_client`, `base_timeout`, "
        "`base_headers`, `base_url` (read back as attributes) to rebuild the SDK's instance"
    ),
    sdk_lacks=(
        "a client-wide switch for its own retry loop: only `request_options={'max_retries': N}` "
        "per call, which re-sends writes and sleeps outside the pipeline's budget"
    ),
    retire=(
        "when `Intercom(...)` accepts `max_retries=0` (or a retry policy), pass it in "
        "`_client.py` and delete the two subclasses and `disable_sdk_retries`"
    ),
)


def _without_sdk_retries(request_options: Any) -> Any:
    """The caller's request options with the SDK's own retrying forced off."""
    if request_options is None:
        return None
    return {**request_options, "max_retries": 0}


def _redirect_loop(error: httpx.TooManyRedirects) -> IntercomTooManyRedirects:
    return IntercomTooManyRedirects(str(error), request=request_of(error))


#: What a facade wraps each SDK call in, given the call's request options (its deadline scope).
CallScope = Callable[[Any], AbstractContextManager[object]]


def _no_scope(request_options: Any) -> AbstractContextManager[object]:
    return nullcontext()


class _NoRetryHttpClient(HttpClient):
    """The SDK's sync HTTP client with its retry loop disabled for every call."""

    #: Set by :func:`disable_sdk_retries`: the scope each call runs in.
    call_scope: CallScope = staticmethod(_no_scope)

    def request(self, *args: Any, request_options: Any = None, **kwargs: Any) -> httpx.Response:
        try:
            with self.call_scope(request_options):
                return super().request(
                    *args, request_options=_without_sdk_retries(request_options), **kwargs
                )
        except httpx.TooManyRedirects as error:
            # httpx follows redirects above the resilient transport: the pipeline never sees the
            # loop, so it is turned into the library's error here, the first frame that can.
            raise _redirect_loop(error) from error


class _NoRetryAsyncHttpClient(AsyncHttpClient):
    """The SDK's async HTTP client with its retry loop disabled for every call."""

    #: Set by :func:`disable_sdk_retries`: the scope each call runs in.
    call_scope: CallScope = staticmethod(_no_scope)

    async def request(
        self, *args: Any, request_options: Any = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            with self.call_scope(request_options):
                return await super().request(
                    *args, request_options=_without_sdk_retries(request_options), **kwargs
                )
        except httpx.TooManyRedirects as error:
            raise _redirect_loop(error) from error


# -- 2. The SDK client's private wrapper ---------------------------------------------------------

CLIENT_WRAPPER = TouchPoint(
    name="client-wrapper",
    relies_on=(
        "`Intercom._client_wrapper.httpx_client` (a private attribute holding the SDK's "
        "HttpClient), read by every namespace at call time, replaced after construction; "
        "its `get_headers()`, the headers (auth, version, user agent) of every SDK request"
    ),
    sdk_lacks="a way to hand the client its HTTP layer (or a retry setting, see sdk-retries-off)",
    retire="goes with sdk-retries-off",
)


def disable_sdk_retries(
    client: Intercom | AsyncIntercom, call_scope: CallScope | None = None
) -> None:
    """Swap *client*'s SDK HTTP client for the subclass that forces its retry loop off.

    *call_scope*, given each call's ``request_options``, is the context the call runs in (the
    facade scopes the SDK's ``timeout_in_seconds`` as the call's whole deadline with it).
    """
    wrapper = client._client_wrapper
    sdk_http = wrapper.httpx_client
    settings: dict[str, Any] = {
        "base_timeout": sdk_http.base_timeout,
        "base_headers": sdk_http.base_headers,
        "base_url": sdk_http.base_url,
    }
    replacement: _NoRetryHttpClient | _NoRetryAsyncHttpClient
    if isinstance(sdk_http, AsyncHttpClient):
        replacement = _NoRetryAsyncHttpClient(httpx_client=sdk_http.httpx_client, **settings)
    else:
        replacement = _NoRetryHttpClient(httpx_client=sdk_http.httpx_client, **settings)
    if call_scope is not None:
        replacement.call_scope = call_scope
    wrapper.httpx_client = replacement


def request_headers(client: Intercom | AsyncIntercom) -> Callable[[], dict[str, str]]:
    """What gives the headers *client* sends on every request (the outbox replays with them).

    A callable rather than a snapshot, so a rotating token is read when a write is replayed.
    """
    get_headers: Callable[[], dict[str, str]] = client._client_wrapper.get_headers
    return get_headers


# -- 3. httpx's transport, wrapped in place ------------------------------------------------------

HTTPX_TRANSPORT = TouchPoint(
    name="httpx-transport",
    relies_on="`httpx.Client._transport` and `._mounts` (and the AsyncClient twins), replaced",
    sdk_lacks=(
        "httpx offers no public way to swap the transport of an existing client, and the SDK "
        "takes a ready-made `httpx_client`; wrapping in place keeps every setting the caller "
        "chose (proxies from mounts, limits, auth, hooks)"
    ),
    retire=(
        "if httpx gains a public transport setter, use it; or, giving up on user-built clients, "
        "build the httpx client here from the caller's settings"
    ),
)


def wrap_transports(
    client: httpx.Client | httpx.AsyncClient,
    inner: httpx.BaseTransport | httpx.AsyncBaseTransport | None,
    wrap: Callable[[Any], Any],
) -> None:
    """Put *wrap* around *client*'s transport (*inner* if given) and every mounted one."""
    client._transport = wrap(inner or client._transport)
    for pattern, mounted in list(client._mounts.items()):
        if mounted is not None:
            client._mounts[pattern] = wrap(mounted)


# -- 4. The search pagers ------------------------------------------------------------------------

SEARCH_PAGERS = TouchPoint(
    name="search-pagers",
    relies_on=(
        "SyncPager / AsyncPager (intercom.core.pagination) being dataclasses with `has_next` and "
        "`get_next` fields; a search page's cursor at `response.pages.next.starting_after`; "
        "namespaces cached by the client (`client.contacts is client.contacts`) and accepting an "
        "instance attribute `search` that shadows the method"
    ),
    sdk_lacks=(
        "a working search pager: 5.0.1 fetches page 2 with the original `pagination` argument, "
        "so iterating a search returns page 1 forever"
    ),
    retire=(
        "when tests/client/test_search_pagination.py::test_the_raw_sdk_still_has_the_bug fails, "
        "python-intercom pages search correctly: delete `_pagination.py` and these helpers"
    ),
)

_PATCHED = "_intercom_resilience_patched"


def next_search_cursor(pager: SyncPager[Any, Any] | AsyncPager[Any, Any]) -> str | None:
    """The ``starting_after`` cursor of the page after *pager*'s, or ``None`` on the last page."""
    pages = getattr(pager.response, "pages", None)
    following = getattr(pages, "next", None)
    cursor = getattr(following, "starting_after", None)
    return cursor if isinstance(cursor, str) and cursor else None


def with_next_page(pager: P, get_next: Callable[[], Any] | None) -> P:
    """*pager* with its link to the next page replaced (``None``: it is the last page)."""
    return dataclasses.replace(pager, has_next=get_next is not None, get_next=get_next)


def patch_method(namespace: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """Shadow *namespace*'s method *name* with ``wrap(method)`` on the instance (idempotent)."""
    marks: set[str] = getattr(namespace, _PATCHED, set())
    if name in marks:
        return
    setattr(namespace, name, wrap(getattr(namespace, name)))
    setattr(namespace, _PATCHED, marks | {name})


# -- 5. request_id on the SDK's ApiError ---------------------------------------------------------

API_ERROR_REQUEST_ID = TouchPoint(
    name="api-error-request-id",
    relies_on=(
        "a class attribute added to `intercom.core.api_error.ApiError` (and so to every typed "
        "subclass), reading the error's public `body` and `headers`"
    ),
    sdk_lacks=(
        "Intercom's `request_id` on its errors: the SDK builds them deep in generated code, so the "
        "base class is the one place that covers every endpoint, pager and raw response"
    ),
    retire=(
        "when ApiError carries `request_id` itself, the install below becomes a no-op (it never "
        "replaces an existing attribute; an instance attribute wins over the descriptor): delete it"
    ),
)


class _RequestIdFromResponse:
    """``ApiError.request_id``: read from the error's body and headers on first access.

    A non-data descriptor (no ``__set__``): an instance attribute of the same name wins, so a future
    SDK that sets ``self.request_id`` itself keeps working, and so do our own subclasses.
    """

    def __get__(self, instance: ApiError | None, owner: type[ApiError]) -> Any:
        if instance is None:
            return self
        body: Any = instance.body
        if hasattr(body, "model_dump"):  # the SDK parses some error bodies into pydantic models
            body = body.model_dump()
        headers = instance.headers or {}
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        return request_id_from(lowered, body)


def install_request_id_on_api_error() -> None:
    """Give the SDK's ``ApiError`` (and so every typed subclass) a ``request_id`` attribute.

    Additive and idempotent; applied when ``intercom_resilience`` is imported.
    """
    if "request_id" not in vars(ApiError):
        ApiError.request_id = _RequestIdFromResponse()  # type: ignore[attr-defined]


# -- 6. httpx's cookie jar, read only for responses that set a cookie ----------------------------

HTTPX_COOKIES = TouchPoint(
    name="httpx-cookies",
    relies_on=(
        "`httpx.Client` and `AsyncClient` reaching their jar through the public `cookies` "
        "property on every request and response (`self.cookies.extract_cookies(response)` after "
        "each one), which the default clients below override"
    ),
    sdk_lacks=(
        "httpx offers no switch for its cookie pass: it wraps every response and its request in "
        "urllib compatibility objects (a URL parse and an email-style header copy) before the jar "
        "finds no `Set-Cookie` in them, 18-19 us of an 850 us `contacts.find` measured here"
    ),
    retire=(
        "if httpx skips responses that set no cookie itself, or the probe fails, drop the two "
        "client classes: `_default_httpx_client` then builds plain httpx clients, as the SDK does"
    ),
)


class _SetCookieOnlyCookies(httpx.Cookies):
    """A cookie jar that reads a response only when it carries a cookie header.

    Exactly what httpx's jar does otherwise: `http.cookiejar` keeps nothing from a response
    without `Set-Cookie` or `Set-Cookie2`, and cookies are still sent and stored as ever.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class _SetCookieOnlyJar:
    """The cookie jar of the clients below, mixed in ahead of httpx's client class."""

    _set_cookie_only: _SetCookieOnlyCookies

    def __init__(self, **settings: Any) -> None:
        cookies = settings.pop("cookies", None)
        super().__init__(**settings)
        self._set_cookie_only = _SetCookieOnlyCookies(cookies)

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookie jar (httpx's own, reading only responses that set a cookie)."""
        return self._set_cookie_only

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._set_cookie_only = _SetCookieOnlyCookies(cookies)


class DefaultHttpxClient(_SetCookieOnlyJar, httpx.Client):
    """The httpx client a facade builds when given none: httpx's, minus the empty cookie pass."""


class DefaultAsyncHttpxClient(_SetCookieOnlyJar, httpx.AsyncClient):
    """The async twin of :class:`DefaultHttpxClient`."""


#: Every touch point, in the order of this module.
TOUCH_POINTS: tuple[TouchPoint, ...] = (
    SDK_RETRIES,
    CLIENT_WRAPPER,
    HTTPX_TRANSPORT,
    SEARCH_PAGERS,
    API_ERROR_REQUEST_ID,
    HTTPX_COOKIES,
)
