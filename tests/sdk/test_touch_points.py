"""Every touch point of the SDK seam (``_sdk.py``) still holds against the installed SDK.

A python-intercom (or httpx) release that renames a private attribute or reshapes a pager fails
here, naming the touch point, what it relies on and how to retire it, instead of breaking every
facade at construction time in a user's process.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError
from intercom.core.http_client import AsyncHttpClient, HttpClient
from intercom.core.pagination import AsyncPager, SyncPager
from intercom.errors import NotFoundError

from intercom_resilience import _sdk
from intercom_resilience._pagination import SEARCH_NAMESPACES
from intercom_resilience.testing import FakeIntercom


@contextmanager
def touch_point(point: _sdk.TouchPoint) -> Iterator[None]:
    """Turn any failure inside the block into one that names *point* and how to retire it."""
    try:
        yield
    except Exception as error:
        pytest.fail(
            f"SDK touch point {point.name!r} no longer holds: {type(error).__name__}: {error}\n"
            f"  relies on: {point.relies_on}\n"
            f"  the SDK lacks: {point.sdk_lacks}\n"
            f"  to retire it: {point.retire}",
            pytrace=False,
        )


class Counting(httpx.MockTransport):
    """Answers every request with *status*; counts them."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.count = 0

        def handle(request: httpx.Request) -> httpx.Response:
            self.count += 1
            # Should the SDK's own retry loop run, Retry-After: 1 keeps its sleep to one second
            # (its backoff would be 2 s, then 4 s, ...; it cannot parse Retry-After-Ms).
            return httpx.Response(status, json=body or {}, headers={"retry-after": "1"})

        super().__init__(handle)


def probe_sdk_retries_off() -> None:
    # The knob is still `max_retries`: the untouched SDK retries when told to (it counts from 2,
    # so 3 means one retry)...
    transport = Counting(429)
    raw = intercom.Intercom(token="probe", httpx_client=httpx.Client(transport=transport))
    with pytest.raises(ApiError):
        raw.admins.identify(request_options={"max_retries": 3})
    assert transport.count > 1, "the SDK no longer retries on request_options['max_retries']"
    # ...and the seam's subclass stops it.
    transport = Counting(429)
    raw = intercom.Intercom(token="probe", httpx_client=httpx.Client(transport=transport))
    _sdk.disable_sdk_retries(raw)
    with pytest.raises(ApiError):
        raw.admins.identify(request_options={"max_retries": 5})
    assert transport.count == 1
    for cls in (HttpClient, AsyncHttpClient):
        parameters = inspect.signature(cls.request).parameters
        assert "request_options" in parameters, f"{cls.__name__}.request lost request_options"
        assert {"httpx_client", "base_timeout", "base_headers", "base_url"} <= set(
            inspect.signature(cls.__init__).parameters
        ), f"{cls.__name__}.__init__ changed its keywords"


def probe_client_wrapper() -> None:
    for sdk_cls, http_cls, sdk_http_cls in (
        (intercom.Intercom, httpx.Client, HttpClient),
        (intercom.AsyncIntercom, httpx.AsyncClient, AsyncHttpClient),
    ):
        raw = sdk_cls(token="probe", httpx_client=http_cls())
        sdk_http = raw._client_wrapper.httpx_client
        assert isinstance(sdk_http, sdk_http_cls)
        for attribute in ("httpx_client", "base_timeout", "base_headers", "base_url"):
            assert hasattr(sdk_http, attribute), f"{sdk_http_cls.__name__}.{attribute} is gone"
        _sdk.disable_sdk_retries(raw)
        swapped = raw._client_wrapper.httpx_client
        assert type(swapped) is not type(sdk_http)
        assert isinstance(swapped, sdk_http_cls)
        assert swapped.httpx_client is sdk_http.httpx_client
        headers = _sdk.request_headers(raw)()
        assert headers.get("Authorization") == "Bearer probe", "get_headers() lost the token"
    # A namespace built before the swap reaches the HTTP client through the wrapper at call
    # time, so it uses the retry-free one too.
    transport = Counting(429)
    raw = intercom.Intercom(token="probe", httpx_client=httpx.Client(transport=transport))
    namespace = raw.admins
    _sdk.disable_sdk_retries(raw)
    with pytest.raises(ApiError):
        namespace.identify(request_options={"max_retries": 5})
    assert transport.count == 1


def probe_httpx_transport() -> None:
    seen: list[str] = []

    def recording(inner: Any) -> Any:
        def handle(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return inner.handle_request(request)

        return httpx.MockTransport(handle)

    plain = httpx.MockTransport(lambda request: httpx.Response(204))
    mounted = httpx.MockTransport(lambda request: httpx.Response(202))
    client = httpx.Client(transport=plain, mounts={"http://mounted.example": mounted})
    _sdk.wrap_transports(client, None, recording)
    assert client.get("https://plain.example/").status_code == 204
    assert client.get("http://mounted.example/").status_code == 202
    assert seen == ["https://plain.example/", "http://mounted.example/"]
    async_client = httpx.AsyncClient()
    assert isinstance(async_client._transport, httpx.AsyncBaseTransport)
    assert isinstance(async_client._mounts, dict)


def probe_search_pagers(fake: FakeIntercom) -> None:
    for pager_cls in (SyncPager, AsyncPager):
        fields = {field.name for field in dataclasses.fields(pager_cls)}
        assert {"has_next", "get_next", "items", "response"} <= fields, pager_cls.__name__
    raw = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    for i in range(3):
        raw.contacts.create(request={"email": f"probe{i}@example.com"})  # type: ignore[arg-type]
    query = {"field": "email", "operator": "~", "value": "probe"}
    pager = raw.contacts.search(query=query, pagination={"per_page": 1})  # type: ignore[arg-type]
    cursor = _sdk.next_search_cursor(pager)
    assert isinstance(cursor, str), "the search page's cursor is no longer at pages.next"
    last = _sdk.with_next_page(pager, None)
    assert (last.has_next, last.get_next, last.items) == (False, None, pager.items)
    for client in (raw, intercom.AsyncIntercom(token="probe")):
        for name in SEARCH_NAMESPACES:
            namespace = getattr(client, name)
            assert getattr(client, name) is namespace, f"{name} is no longer cached"
            assert {"query", "pagination"} <= set(inspect.signature(namespace.search).parameters)
            _sdk.patch_method(namespace, "search", lambda method: ("patched", method))
            assert getattr(client, name).search[0] == "patched"


def probe_api_error_request_id() -> None:
    _sdk.install_request_id_on_api_error()
    assert isinstance(vars(ApiError).get("request_id"), _sdk._RequestIdFromResponse), (
        "ApiError has a request_id of its own now: the install is a no-op and can go"
    )
    error = NotFoundError(body={"type": "error.list", "request_id": "req-1"}, headers={})
    assert error.request_id == "req-1"  # type: ignore[attr-defined]
    assert ApiError(headers={"X-Request-Id": "req-2"}).request_id == "req-2"  # type: ignore[attr-defined]


def probe_httpx_cookies() -> None:
    # httpx reaches the jar through the `cookies` property on both sides of a request: a cookie a
    # response sets lands in the overriding jar and goes out on the next request.
    sent: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "probe=1; Path=/"})

    client = _sdk.DefaultHttpxClient(transport=httpx.MockTransport(handle))
    client.get("https://probe.example/")
    client.get("https://probe.example/")
    assert sent == [None, "probe=1"], "httpx no longer reads its jar through `cookies`"
    assert dict(client.cookies) == {"probe": "1"}
    # ...and after each response it calls `extract_cookies(response)` on that jar.
    source = inspect.getsource(httpx.Client._send_single_request)
    assert "self.cookies.extract_cookies(response)" in source
    source = inspect.getsource(httpx.AsyncClient._send_single_request)
    assert "self.cookies.extract_cookies(response)" in source


PROBES: dict[str, Callable[..., None]] = {
    _sdk.SDK_RETRIES.name: probe_sdk_retries_off,
    _sdk.CLIENT_WRAPPER.name: probe_client_wrapper,
    _sdk.HTTPX_TRANSPORT.name: probe_httpx_transport,
    _sdk.SEARCH_PAGERS.name: probe_search_pagers,
    _sdk.API_ERROR_REQUEST_ID.name: probe_api_error_request_id,
    _sdk.HTTPX_COOKIES.name: probe_httpx_cookies,
}


def test_every_touch_point_has_a_probe() -> None:
    declared = [point.name for point in _sdk.TOUCH_POINTS]
    assert len(declared) == len(set(declared))
    assert set(declared) == set(PROBES)
    for point in _sdk.TOUCH_POINTS:
        assert point.relies_on and point.sdk_lacks and point.retire, point.name


@pytest.mark.parametrize("point", _sdk.TOUCH_POINTS, ids=lambda point: point.name)
def test_touch_point_holds(point: _sdk.TouchPoint, intercom_fake: FakeIntercom) -> None:
    probe = PROBES[point.name]
    with touch_point(point):
        if "fake" in inspect.signature(probe).parameters:
            probe(intercom_fake)
        else:
            probe()


def test_a_broken_touch_point_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a failure looks like: the name, what it relies on, how to retire it."""
    monkeypatch.delattr(HttpClient, "request")
    with pytest.raises(pytest.fail.Exception) as failure, touch_point(_sdk.SDK_RETRIES):
        probe_sdk_retries_off()
    message = str(failure.value)
    assert "'sdk-retries-off' no longer holds" in message
    assert "to retire it: when `Intercom(...)` accepts" in message


def test_the_seam_is_the_only_module_reaching_into_the_sdk() -> None:
    """Private SDK/httpx names appear in `_sdk.py` only (the facade and pager use its helpers)."""
    import pathlib

    import intercom_resilience

    package = pathlib.Path(intercom_resilience.__file__).parent
    private = (
        "_client_wrapper",
        "intercom.core.http_client",
        "._transport =",
        "._mounts",
        "ApiError.request_id",
        "dataclasses.replace(pager",
    )
    offenders = [
        f"{path.relative_to(package)}: {needle}"
        for path in package.rglob("*.py")
        if path.name != "_sdk.py"
        for needle in private
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
