"""Hypothesis strategies for hostile HTTP responses: what a broken gateway or a buggy server sends.

Everything here builds plain data (status, header pairs, body bytes) so that one generated script
can be served to the sync and the async client alike by an ``httpx.MockTransport``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx
from hypothesis import strategies as st

#: The token the hostile-response tests use; it must never appear in any output.
TOKEN = "tok_hostile_SECRET_1234567890"

_ASCII = st.characters(min_codepoint=32, max_codepoint=126)
_TEXT = st.text(_ASCII, max_size=40)

STATUSES = st.one_of(
    st.sampled_from(
        [
            *(100, 101, 103, 199, 200, 201, 202, 204, 206, 299),
            *(300, 301, 302, 304, 307, 308, 399),
            *(400, 401, 403, 404, 408, 409, 410, 418, 422, 429, 451, 499),
            *(500, 502, 503, 504, 520, 599),
        ]
    ),
    st.integers(min_value=100, max_value=599),
)

_HTTP_DATES = st.sampled_from(
    [
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 2120 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37",  # no zone
        "Tuesday, 99-Foo-99 99:99:99 GMT",
    ]
)

#: Values for Retry-After and X-RateLimit-*: negative, enormous, fractional, non-numeric, dates.
NUMBERISH = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=-5, max_value=120).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "0x10", " 7 ", "", "soon", "1,5"]),
    _HTTP_DATES,
    _TEXT,
)

_HEADER_NAMES = st.sampled_from(
    [
        "Retry-After",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "X-Request-Id",
        "Content-Type",
    ]
)
_CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "text/html",
        "text/plain",
        "application/octet-stream",
        "application/problem+json",
        "garbage/;;;",
        "",
    ]
)
_LOCATIONS = st.sampled_from(
    ["/contacts/1", "https://api.intercom.io/me", "http://127.0.0.1:9/x", "", "ftp://x/y", "//"]
)


def _header_value(name: str) -> st.SearchStrategy[str]:
    if name == "Content-Type":
        return _CONTENT_TYPES
    if name == "X-Request-Id":
        return st.one_of(_TEXT, st.text(_ASCII, min_size=100, max_size=300))
    return NUMBERISH


HEADERS = st.lists(
    _HEADER_NAMES.flatmap(lambda name: st.tuples(st.just(name), _header_value(name))),
    max_size=6,  # a list of pairs, so duplicates of one name are generated too
)

_CONTACT = {"type": "contact", "id": "c1", "email": "a@example.com", "role": "user"}
_LIST = {"type": "list", "data": [_CONTACT], "total_count": 1, "pages": {"type": "pages"}}
_ADMIN = {"type": "admin", "id": "1", "name": "A", "email": "admin@example.com"}


def _error_list(request_id: str, code: str) -> bytes:
    body = {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": "hostile"}],
    }
    return json.dumps(body).encode()


_VALID_OBJECTS = st.sampled_from([_CONTACT, _LIST, _ADMIN, {}, {"type": "unknown"}]).map(
    lambda obj: json.dumps(obj).encode()
)

#: Bodies: well-formed objects, error lists, truncated JSON, HTML, binary, empty, huge.
BODIES = st.one_of(
    _VALID_OBJECTS,
    st.builds(_error_list, _TEXT, st.sampled_from(["server_error", "unauthorized", "x", ""])),
    st.tuples(_VALID_OBJECTS, st.integers(min_value=1, max_value=60)).map(
        lambda pair: pair[0][: max(1, len(pair[0]) - pair[1])]  # truncated
    ),
    st.just(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    st.just(b"<!DOCTYPE html><html><head><title>504 Gateway Time-out</title></head></html>"),
    st.binary(max_size=64),
    st.sampled_from([b"", b"   ", b"\n", b"\x00\x00", b"\xff\xfe{", b'{"a":', b"[]", b"null"]),
    st.sampled_from([b'"contact"', b"1", b'{"type": "list", "data": 5}', b"[" * 100_000]),
    st.sampled_from([b"{" * 100_000, b'{"type":"contact","name":"' + b"x" * 3_000_000 + b'"}']),
)


@dataclasses.dataclass(frozen=True)
class HostileResponse:
    """One scripted response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def build(self) -> httpx.Response:
        # A streamed body, as from a real connection: decoding happens when the client reads it
        # (``content=bytes`` would make httpx decode while building the response).
        return httpx.Response(
            self.status, headers=list(self.headers), stream=NetworkStream(self.body)
        )


class NetworkStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body delivered in chunks, to the sync and the async client alike."""

    def __init__(self, body: bytes, chunk: int = 65_536) -> None:
        self._body = body
        self._chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self._body), self._chunk):
            yield self._body[start : start + self._chunk]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self:
            yield part


@st.composite
def hostile_response(draw: st.DrawFn) -> HostileResponse:
    status = draw(STATUSES)
    headers = list(draw(HEADERS))
    if 300 <= status < 400 and draw(st.booleans()):
        headers.append(("Location", draw(_LOCATIONS)))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        headers.append(("Content-Encoding", draw(st.sampled_from(["gzip", "deflate", "x-junk"]))))
    return HostileResponse(status, tuple(headers), draw(BODIES))


#: What the server answers once the script is exhausted: a plain, final 404.
FINAL = HostileResponse(
    404,
    (("Content-Type", "application/json"), ("X-Request-Id", "final-404")),
    _error_list("final-404", "not_found"),
)


class Script:
    """Serves the scripted responses in order, then :data:`FINAL` forever; counts requests."""

    def __init__(self, responses: Sequence[HostileResponse]) -> None:
        self.responses = list(responses)
        self.served = 0
        self.authorizations: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.authorizations.append(request.headers.get("authorization", ""))
        index = self.served
        self.served += 1
        if index < len(self.responses):
            return self.responses[index].build()
        return FINAL.build()
