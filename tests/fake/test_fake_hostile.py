"""Hostile requests to the fake's real HTTP server answer 4xx; the server neither crashes nor hangs.

Requests are written byte for byte on a socket (an HTTP client would normalise the very things
under test: dot segments, bad UTF-8, header floods). Hypothesis draws them from five families:
huge bodies, deeply nested JSON, bodies that are not UTF-8, path traversal, header floods. After
every one, the same server must still answer ``GET /me``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercom_resilience.testing import FakeIntercom
from intercom_resilience.testing._fake import MAX_BODY_BYTES, MAX_HEADERS

AUTH = b"Authorization: Bearer fake-token\r\n"
Address = tuple[str, int]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeIntercom, Address]]:
    fake = FakeIntercom(rate_limits=False)
    with fake.serve_in_thread() as url:
        host, port = url.removeprefix("http://").split(":")
        yield fake, (host, int(port))


def exchange(address: Address, request: bytes) -> tuple[int, bytes]:
    """Send raw *request* bytes; the status and head of the answer (a timeout fails the test)."""
    with socket.create_connection(address, timeout=20) as sock:
        # The server may answer before taking the whole request: then read that answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    return int(received.split(b" ", 2)[1]), received


def post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: fake\r\n" + AUTH + extra
        + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip


def get(path: bytes, extra: bytes = b"") -> bytes:
    return (
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: fake\r\n"
        + AUTH
        + extra
        + b"Connection: close\r\n\r\n"
    )


def assert_alive(address: Address) -> None:
    status, _ = exchange(address, get(b"/me"))
    assert status == 200


deep = st.builds(
    lambda depth, opener: opener * depth + b"1" + (b"]" if opener == b"[" else b"}") * depth,
    st.integers(min_value=65, max_value=50_000),
    st.sampled_from([b"[", b'{"a":']),
).map(lambda body: body.replace(b'{"a":1}', b"1"))
not_utf8 = st.builds(
    lambda prefix, bad, suffix: b'{"email": "' + prefix + bad + suffix + b'"}',
    st.binary(max_size=50).filter(lambda b: b'"' not in b and b"\\" not in b),
    st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
    st.binary(max_size=50).filter(lambda b: b'"' not in b and b"\\" not in b),
)
garbage = st.binary(min_size=1, max_size=3000)
segment = st.sampled_from([b"..", b"%2e%2e", b".%2E", b"..%2F..%2Fetc", b"..\\..", b"%2E", b"."])
benign = st.sampled_from([b"contacts", b"macros", b"me", b"etc", b"passwd", b"%00", b"~root"])
traversal = st.builds(
    lambda head, dots, tail: b"/" + b"/".join([*head, dots, *tail]),
    st.lists(benign, max_size=3),
    segment,
    st.lists(benign, max_size=3),
)
flood = st.builds(
    lambda count, same: b"".join(
        (b"X-Flood: 1\r\n" if same else b"X-Flood-%d: %d\r\n" % (i, i)) for i in range(count)
    ),
    st.integers(min_value=MAX_HEADERS + 1, max_value=2_000),
    st.booleans(),
)
long_header = st.integers(min_value=20_000, max_value=200_000).map(
    lambda size: b"X-Long: " + b"a" * size + b"\r\n"
)

hostile = st.one_of(
    deep.map(lambda body: post(b"/contacts", body)),
    not_utf8.map(lambda body: post(b"/contacts", body)),
    garbage.map(lambda body: post(b"/contacts/search", body)),
    traversal.map(get),
    flood.map(lambda headers: get(b"/me", headers)),
    long_header.map(lambda header: get(b"/me", header)),
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=hostile)
def test_hostile_requests_answer_4xx(server: tuple[FakeIntercom, Address], request: bytes) -> None:
    _, address = server
    status, head = exchange(address, request)
    assert 400 <= status < 500, head[:300]
    assert_alive(address)


@pytest.mark.parametrize(
    "declared",
    [MAX_BODY_BYTES + 1, 100 * MAX_BODY_BYTES],
    ids=["just-over-the-cap", "declared-far-over"],
)
def test_huge_bodies_are_413(server: tuple[FakeIntercom, Address], declared: int) -> None:
    fake, address = server
    body = b"[" * min(declared, MAX_BODY_BYTES + 1)  # sent in full only when just over
    head = (
        b"POST /contacts HTTP/1.1\r\nHost: fake\r\n" + AUTH
        + b"Content-Length: " + str(declared).encode() + b"\r\nConnection: close\r\n\r\n"
    )  # fmt: skip
    status, answer = exchange(address, head + body)
    assert status == 413, answer[:300]
    entry = fake.journal.last(path="/contacts")
    assert entry is not None
    assert entry.status == 413
    assert b"x-request-id: " + entry.request_id.encode() in answer.lower()
    assert_alive(address)


def test_traversal_never_reaches_a_placeholder(server: tuple[FakeIntercom, Address]) -> None:
    # ``GET /macros/{id}`` answers any id: a dot segment must not be taken for one.
    _, address = server
    assert exchange(address, get(b"/macros/abc"))[0] == 200
    for path in (b"/macros/..", b"/macros/%2e%2e", b"/macros/../me", b"/macros/..%2Fme"):
        status, head = exchange(address, get(path))
        assert status == 404, (path, head[:300])
