"""The pure request/response facts: templates, classification, request ids, headers."""

from __future__ import annotations

import email.utils
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._core.requests import classify, credentials_fingerprint, path_template
from intercom_resilience._core.responses import (
    error_codes,
    malformed_json,
    parse_json_body,
    parse_rate_limit,
    parse_retry_after,
    request_id_from,
)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/contacts/6a1b2c3d4e5f", "/contacts/{id}"),
        ("/contacts/search", "/contacts/search"),
        ("/contacts/find_by_external_id/alice", "/contacts/find_by_external_id/{id}"),
        ("/conversations/123/reply", "/conversations/{id}/reply"),
        ("/conversations/123/tags", "/conversations/{id}/tags"),
        ("/me", "/me"),
        ("/admins/991/away", "/admins/{id}/away"),
        ("/contacts?per_page=5", "/contacts"),
        ("/", "/"),
    ],
)
def test_path_template(path: str, template: str) -> None:
    assert path_template(path) == template


@pytest.mark.parametrize(
    ("method", "path", "read", "idempotent", "resource"),
    [
        ("GET", "/contacts/42", True, True, None),
        ("POST", "/contacts/search", True, True, None),
        ("POST", "/conversations/search", True, True, None),
        ("POST", "/contacts", False, False, "/contacts"),
        ("PUT", "/contacts/42", False, True, "/contacts/42"),
        ("DELETE", "/contacts/42", False, True, "/contacts/42"),
        ("POST", "/conversations/7/reply", False, False, "/conversations/7"),
        ("POST", "/events", False, False, "/events"),
        ("post", "/companies/list", True, True, None),
    ],
)
def test_classify(
    method: str, path: str, read: bool, idempotent: bool, resource: str | None
) -> None:
    kind = classify(method, path)
    assert (kind.is_read, kind.is_idempotent, kind.resource) == (read, idempotent, resource)


@given(st.text(min_size=1, max_size=80))
def test_fingerprint_never_contains_the_token(token: str) -> None:
    fingerprint = credentials_fingerprint(token, "https://api.intercom.io")
    assert len(fingerprint) == 16
    if len(token) >= 4:
        assert token not in fingerprint
    assert fingerprint != credentials_fingerprint(token, "https://api.eu.intercom.io")


def test_request_id_body_wins_over_header() -> None:
    body = {"type": "error.list", "request_id": "req_body", "errors": []}
    assert request_id_from({"x-request-id": "req_header"}, body) == "req_body"
    assert request_id_from({"x-request-id": "req_header"}, None) == "req_header"
    assert request_id_from({}, {"request_id": 12}) is None
    assert request_id_from({}, {"request_id": "x" * 500}) is None
    assert request_id_from({}, ["not", "a", "mapping"]) is None


def test_bodies_from_gateways_parse_to_none() -> None:
    assert parse_json_body(b"<html><body>502 Bad Gateway</body></html>") is None
    assert parse_json_body(b"") is None
    assert parse_json_body(b"{truncated") is None
    assert parse_json_body(b"\xff\xfe{") is None
    assert parse_json_body(b'  {"a": 1}') == {"a": 1}
    assert error_codes({"errors": [{"code": "not_found"}, {"nope": 1}, "junk"]}) == ("not_found",)
    assert error_codes("<html>") == ()


@given(st.binary(max_size=200))
def test_parse_json_body_is_total(content: bytes) -> None:
    parse_json_body(content)  # must not raise, whatever arrives


def test_rate_limit_headers() -> None:
    info = parse_rate_limit(
        {
            "x-ratelimit-limit": "1666",
            "x-ratelimit-remaining": "10",
            "x-ratelimit-reset": "1700000010",
        }
    )
    assert info is not None
    assert (info.limit, info.remaining, info.reset_at) == (1666, 10, 1700000010.0)
    clamped = parse_rate_limit({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "9999"})
    assert clamped is not None and clamped.remaining == 5
    assert parse_rate_limit({}) is None
    garbage = parse_rate_limit({"x-ratelimit-remaining": "-3", "x-ratelimit-reset": "soon"})
    assert garbage is None
    # found by the hardening suite: a reset near float max overflowed the limiter's arithmetic
    assert parse_rate_limit({"x-ratelimit-reset": "1.797693134862316e+302"}) is None


@given(
    st.dictionaries(
        st.sampled_from(["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]),
        st.text(max_size=30),
    )
)
def test_parse_rate_limit_is_total(headers: dict[str, str]) -> None:
    info = parse_rate_limit(headers)
    if info is not None and info.limit is not None and info.remaining is not None:
        assert 0 <= info.remaining <= info.limit


def test_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("nan", now) is None
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 3600, usegmt=True)
    assert parse_retry_after(past, now) == 0.0


@given(st.text(max_size=60), st.floats(min_value=0, max_value=4e9))
def test_parse_retry_after_is_total(value: str, now: float) -> None:
    wait = parse_retry_after(value, now)
    assert wait is None or wait >= 0.0


@pytest.mark.parametrize(
    ("status", "content", "is_list", "malformed"),
    [
        (200, b'{"type": "contact", "id": "1"}', False, False),
        (200, b'  {"type": "contact"}\n', False, False),
        (200, b"", False, False),  # empty: the SDK returns None for 2xx, legitimately
        (200, b"<html>captive portal</html>", False, True),  # a success that is no JSON: broken
        (503, b"<html>bad gateway</html>", False, False),  # an error page: the SDK raises itself
        (200, b'{"type": "contact", "id": "1"', False, True),  # truncated
        (200, b'{"type": "contact"} and more', False, True),  # trailing bytes
        (200, b"[]", False, True),
        (200, b"1", False, True),
        (200, b'""', False, True),
        (200, b'{"type": "list", "data": 5}', True, True),
        (200, b'{"type": "list", "data": []}', True, False),
        (200, b'{"": "", "data": 0}', True, True),  # a page without a type: data still iterated
        (200, b'{"type": "conversation.list", "data": {"x": 1}}', True, True),
        (200, b"[" * 5000 + b"]" * 5000, False, True),  # absurd nesting
        (503, b"[" * 100_000, False, True),
        (503, b'{"type": "error.list"}', False, False),
        (404, b"[1, 2]", False, False),  # error bodies are only judged for nesting
    ],
)
def test_malformed_json(status: int, content: bytes, is_list: bool, malformed: bool) -> None:
    assert (malformed_json(status, content, is_list=is_list) is not None) is malformed


@given(st.binary(max_size=300), st.integers(100, 599), st.booleans())
def test_malformed_json_is_total(content: bytes, status: int, is_list: bool) -> None:
    malformed_json(status, content, is_list=is_list)  # never raises


def _parsed_afresh(headers: dict[str, str]) -> tuple[int | None, int | None, float | None] | None:
    """parse_rate_limit as it was before its window was memoised (issue #19): the reference."""

    def whole(raw: str | None) -> int | None:
        try:
            value = None if raw is None else int(raw)
        except ValueError:
            return None
        return value if value is None or value >= 0 else None

    limit = whole(headers.get("x-ratelimit-limit"))
    remaining = whole(headers.get("x-ratelimit-remaining"))
    reset_at = None
    if (reset_raw := headers.get("x-ratelimit-reset")) is not None:
        try:
            reset = float(reset_raw)
        except ValueError:
            reset = float("nan")
        if math.isfinite(reset) and 0 < reset < 95_617_584_000.0:
            reset_at = reset
    if limit is None and remaining is None and reset_at is None:
        return None
    if limit is not None and remaining is not None:
        remaining = min(remaining, limit)
    return (limit, remaining, reset_at)


_RATE_VALUES = st.one_of(
    st.sampled_from(["1666", "0", "-1", "1700000010", " 7 ", "1e3", "nan", "inf", "", "x"]),
    st.integers(-5, 10**12).map(str),
    st.floats(allow_nan=True).map(repr),
    st.text(max_size=6),
)


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]),
            _RATE_VALUES,
        ),
        max_size=6,
    )
)
def test_the_memoised_window_parses_as_a_fresh_parse_does(responses: list[dict[str, str]]) -> None:
    for headers in [*responses, *responses]:  # each twice: the second from the memo
        info = parse_rate_limit(headers)
        got = None if info is None else (info.limit, info.remaining, info.reset_at)
        assert got == _parsed_afresh(headers)
