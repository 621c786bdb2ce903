"""What the hot path reads of each response, and no more (issue #19).

A record's body (``contacts.find``) only needs a shape check: it is never parsed by the
pipeline, whatever it nests, while a page's ``data`` is still looked into. Of the response
headers, only those a decision reads are decoded, into one plain dict, each exactly as
``httpx.Headers.items()`` gives it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercom_resilience import ResilientIntercom
from intercom_resilience._core import responses
from intercom_resilience._core.requests import credentials_fingerprint
from intercom_resilience._core.responses import READ_HEADERS, malformed_json, read_headers
from intercom_resilience._pipeline import headers as header_reading
from intercom_resilience._pipeline.attempt import _header_dict

CONTACT = json.dumps(
    {
        "type": "contact",
        "id": "1",
        "tags": {"type": "list", "data": [{"type": "tag", "id": "7"}]},
        "companies": {"type": "list", "data": [], "has_more": False},
    }
).encode()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the bodies ``malformed_json`` parses."""
    seen: list[int] = []
    real = json.loads

    def counting(content: Any, **kwargs: Any) -> Any:
        seen.append(len(content))
        return real(content, **kwargs)

    monkeypatch.setattr(responses.json, "loads", counting)
    return seen


def test_a_record_with_nested_lists_is_not_parsed(parses: list[int]) -> None:
    assert malformed_json(200, CONTACT, expects_body=True) is None
    assert parses == []


def test_a_page_is_still_looked_into(parses: list[int]) -> None:
    page = b'{"type": "list", "data": {"not": "a list"}}'
    assert malformed_json(200, page, is_list=True) is not None
    assert malformed_json(200, page, is_list=True, data_is_object=True) is None
    assert len(parses) == 2


def test_a_broken_record_is_still_caught() -> None:
    # Cut short just after a nested object: it still ends in "}", one bracket short.
    assert CONTACT[:-1].endswith(b"}")
    assert malformed_json(200, CONTACT[:-1], expects_body=True) is not None
    assert malformed_json(200, b"[" + CONTACT + b"]", expects_body=True) is not None


def test_a_record_whose_strings_hold_brackets_is_parsed_and_passes(parses: list[int]) -> None:
    body = b'{"type": "contact", "name": "a} [b"}'
    assert malformed_json(200, body, expects_body=True) is None
    assert parses == [len(body)]


_NAMES = st.sampled_from(
    [
        *("Content-Type", "X-Request-Id", "x-request-id", "X-RateLimit-Remaining", "RETRY-AFTER"),
        *("Set-Cookie", "Vary", "X-Ratelimit", "content-typ"),  # never read
    ]
)
_VALUES = st.binary(max_size=12).filter(lambda v: b"\r" not in v and b"\n" not in v)


@given(st.lists(st.tuples(_NAMES.map(str.encode), _VALUES), max_size=8))
def test_the_header_dict_is_what_headers_items_gives_for_the_names_read(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    headers = httpx.Headers(pairs)
    everything = dict(headers.items())
    expected = {name: value for name, value in everything.items() if name in READ_HEADERS}
    assert _header_dict(headers) == expected


def test_the_installed_httpx_lets_headers_be_read_in_place() -> None:
    """Else every call copies its headers twice: an httpx that changed ``Headers._list``."""
    assert header_reading._KEEPS_TRIPLES
    headers = httpx.Headers([("X-A", "1")])
    assert header_reading.header_triples(headers) is headers._list


@given(st.lists(st.tuples(_NAMES.map(str.encode), _VALUES), max_size=8))
def test_without_the_list_in_place_the_triples_are_the_same(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    headers = httpx.Headers(pairs)
    in_place = list(header_reading.header_triples(headers))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(header_reading, "_KEEPS_TRIPLES", False)
        built = list(header_reading.header_triples(headers))
        assert _header_dict(headers) == read_headers(in_place, headers.encoding)
    assert built == in_place


@functools.cache
def _pipeline(base_url: str) -> Any:
    client = ResilientIntercom(token="t", base_url=base_url)  # intercom-resilience: allow-token
    return client._client_wrapper.httpx_client.httpx_client._transport.pipeline


_AUTH_NAMES = st.sampled_from([b"Authorization", b"authorization", b"AUTHORIZATION", b"Accept"])
_AUTH_VALUES = st.sampled_from([b"Bearer one", b"Bearer two", b"", b"Bearer \xc3\xa9"])


@settings(deadline=None)  # the first example builds the client
@given(st.lists(st.lists(st.tuples(_AUTH_NAMES, _AUTH_VALUES), max_size=3), max_size=6))
def test_the_scope_is_the_fingerprint_of_the_authorization_header_as_headers_get_reads_it(
    requests: list[list[tuple[bytes, bytes]]],
) -> None:
    # The scope is memoised by the header's raw value; a request that repeats the header (joined
    # by Headers.get) or lacks it must still get the fingerprint of what Headers.get returns.
    base_url = "https://api.intercom.io"
    admission = _pipeline(base_url).admission
    for headers in [*requests, *requests]:  # each twice: the second from the memo
        request = httpx.Request("GET", f"{base_url}/contacts/1", headers=headers)
        expected = credentials_fingerprint(request.headers.get("authorization", ""), base_url)
        assert admission.scope_of(request) == expected


_TIMEOUT = st.one_of(st.none(), st.floats(0.001, 120.0))


@settings(deadline=None)  # the first example builds the client
@given(
    st.lists(
        st.fixed_dictionaries(
            {}, optional=dict.fromkeys(("connect", "read", "write", "pool"), _TIMEOUT)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_request_timeouts_are_bounded_by_the_policy_memoised_or_not(
    requested: list[dict[str, float | None]],
) -> None:
    attempt = _pipeline("https://api.intercom.io").attempt
    policy = attempt._shared.config.timeouts
    for current in [*requested, *requested]:  # each twice: the second from the memo
        base, longest = attempt._policy_bounded(current)
        for name in ("connect", "read", "write", "pool"):
            value, limit = current.get(name), getattr(policy, name)
            assert base[name] == (limit if value is None else min(value, limit))
        assert longest == max(base.values())


# Strings without brackets: a string that holds them can balance a cut body's count by chance
# (then the SDK's own parser reports it), with lists counted or not.
_TEXT = st.text(alphabet='ab:,"', max_size=4)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(_TEXT, _JSON, max_size=4))
def test_a_record_is_passed_whole_and_flagged_when_cut_after_any_closing_brace(
    record: dict[str, Any],
) -> None:
    """A cut record that still ends in "}" is caught by its braces alone (lists never need
    counting for it): the outermost brace of a prefix is open whatever the body nests."""
    body = json.dumps(record).encode()
    assert malformed_json(200, body, expects_body=True) is None
    for end in range(1, len(body)):
        if body[end - 1 : end] == b"}":
            assert malformed_json(200, body[:end], expects_body=True) is not None, body[:end]
