"""What the hot path reads of each response, and no more (issue #19).

A record's body (``contacts.find``) only needs a shape check: it is never parsed by the
pipeline, whatever it nests, while a page's ``data`` is still looked into. Response headers are
read into one plain dict, exactly as ``httpx.Headers.items()`` gives them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._core import responses
from intercom_resilience._core.responses import malformed_json
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


_NAMES = st.sampled_from(["Content-Type", "X-Request-Id", "x-request-id", "Set-Cookie", "Vary"])
_VALUES = st.binary(max_size=12).filter(lambda v: b"\r" not in v and b"\n" not in v)


@given(st.lists(st.tuples(_NAMES.map(str.encode), _VALUES), max_size=8))
def test_the_header_dict_is_what_headers_items_gives(pairs: list[tuple[bytes, bytes]]) -> None:
    headers = httpx.Headers(pairs)
    assert _header_dict(headers) == dict(headers.items())
