"""Cache keys (pure): canonical, collision-free across every request field, token-free."""

from __future__ import annotations

import json
import random
import re
import string
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from intercom_resilience._core.cache import KEY_PREFIX, cache_key, read_resources
from intercom_resilience._core.requests import credentials_fingerprint

KEY_SHAPE = re.compile(r"ir:cache:[0-9a-f]{16}:[0-9a-f]{64}")
SCOPE = "0123456789abcdef"
BASE = "https://api.intercom.io"

scopes = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
base_urls = st.sampled_from(
    [
        "https://api.intercom.io",
        "https://api.eu.intercom.io",
        "https://api.au.intercom.io",
        "http://127.0.0.1:8000",
        "http://localhost:8000/proxy",
    ]
)
methods = st.sampled_from(["GET", "HEAD", "POST"])
segment = st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=12)
paths = st.lists(segment, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
param_names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
param_values = st.text(max_size=10)
params = st.dictionaries(param_names, param_values, max_size=5)
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
json_bodies = st.dictionaries(st.text(max_size=6), json_values, max_size=5)
tokens = st.text(alphabet=string.ascii_letters + string.digits + "_-=:", min_size=20, max_size=80)


def _shuffled(mapping: dict[str, object], seed: int) -> dict[str, object]:
    """The same mapping, recursively, with a different key insertion order."""
    items = list(mapping.items())
    random.Random(seed).shuffle(items)
    return {k: _shuffled(v, seed + 1) if isinstance(v, dict) else v for k, v in items}


def test_key_shape_and_scope_prefix() -> None:
    key = cache_key(SCOPE, BASE, "GET", "/contacts/42")
    assert KEY_SHAPE.fullmatch(key)
    assert key.startswith(f"{KEY_PREFIX}{SCOPE}:")


@given(scopes, base_urls, methods, paths, params, json_bodies, st.integers(0, 1000))
def test_equal_requests_give_equal_keys_whatever_the_order(
    scope: str,
    base_url: str,
    method: str,
    path: str,
    query: dict[str, str],
    body: dict[str, object],
    seed: int,
) -> None:
    query_a = urlencode(query)
    query_b = urlencode(_shuffled(query, seed))  # type: ignore[arg-type]
    body_a = json.dumps(body).encode()
    body_b = json.dumps(_shuffled(body, seed), separators=(",", ":"), indent=None).encode()
    assert cache_key(scope, base_url, method, path, query_a, body_a) == cache_key(
        scope, base_url + "/", method.lower(), path, query_b.encode(), body_b
    )


@given(
    st.tuples(scopes, base_urls, methods, paths, params, json_bodies),
    st.tuples(scopes, base_urls, methods, paths, params, json_bodies),
)
def test_any_difference_gives_a_different_key(
    a: tuple[str, str, str, str, dict[str, str], dict[str, object]],
    b: tuple[str, str, str, str, dict[str, str], dict[str, object]],
) -> None:
    assume(a != b)
    key_a = cache_key(a[0], a[1], a[2], a[3], urlencode(a[4]), json.dumps(a[5]).encode())
    key_b = cache_key(b[0], b[1], b[2], b[3], urlencode(b[4]), json.dumps(b[5]).encode())
    assert key_a != key_b


@given(scopes, base_urls, methods, paths, params, json_bodies, st.data())
def test_changing_one_field_changes_the_key(
    scope: str,
    base_url: str,
    method: str,
    path: str,
    query: dict[str, str],
    body: dict[str, object],
    data: st.DataObject,
) -> None:
    fields = [scope, base_url, method, path, query, body]
    index = data.draw(st.integers(0, 5), label="field")
    strategy = [scopes, base_urls, methods, paths, params, json_bodies][index]
    other = data.draw(strategy.filter(lambda v: v != fields[index]), label="other")
    changed = list(fields)
    changed[index] = other

    def key(f: list[object]) -> str:
        return cache_key(
            str(f[0]),
            str(f[1]),
            str(f[2]),
            str(f[3]),
            urlencode(f[4]),
            json.dumps(f[5]).encode(),  # type: ignore[arg-type]
        )

    assert key(fields) != key(changed)


@given(tokens, base_urls, paths, params, json_bodies)
def test_the_token_never_appears_in_a_key_or_tag(
    token: str, base_url: str, path: str, query: dict[str, str], body: dict[str, object]
) -> None:
    scope = credentials_fingerprint(token, base_url)
    for method in ("GET", "POST"):
        key = cache_key(scope, base_url, method, path, urlencode(query), json.dumps(body).encode())
        assert token not in key
        assert KEY_SHAPE.fullmatch(key)
        for tag in read_resources(scope, method, path):
            assert token not in tag


@given(tokens.filter(lambda t: not re.fullmatch(r"[0-9a-f]{8,64}", t)))
def test_a_token_passed_as_scope_by_mistake_is_hashed(token: str) -> None:
    key = cache_key(token, BASE, "GET", "/contacts")
    assert token not in key
    assert re.fullmatch(r"ir:cache:h[0-9a-f]{16}:[0-9a-f]{64}", key)


def test_repeated_query_values_keep_their_order() -> None:
    """``tag=a&tag=b`` may mean something else than ``tag=b&tag=a``: never merge them."""
    assert cache_key(SCOPE, BASE, "GET", "/x", "tag=a&tag=b") != cache_key(
        SCOPE, BASE, "GET", "/x", "tag=b&tag=a"
    )
    assert cache_key(SCOPE, BASE, "GET", "/x", "a=1&tag=a&b=2&tag=b") == cache_key(
        SCOPE, BASE, "GET", "/x", "tag=a&b=2&tag=b&a=1"
    )


def test_blank_and_missing_query_values_differ() -> None:
    assert cache_key(SCOPE, BASE, "GET", "/x", "a=") != cache_key(SCOPE, BASE, "GET", "/x", "")


@pytest.mark.parametrize(
    ("body_a", "body_b", "same"),
    [
        (b'{"a": 1, "b": [1, 2]}', b'{"b":[1,2],"a":1}', True),
        (b'{"a": 1}', b'{"a": 1.0}', False),  # not the same JSON text, so not the same request
        (b'{"b": [1, 2]}', b'{"b": [2, 1]}', False),
        (b"not json", b"not json", True),
        (b"not json", b"not  json", False),
        (b"\xff\xfe binary", b"\xff\xfe binary", True),
        (b'"x"', b"x", False),  # a JSON string is not the raw text it contains
        (b"", None, True),
        (b"", b"{}", False),
    ],
)
def test_body_canonicalisation(body_a: bytes, body_b: bytes | None, same: bool) -> None:
    key_a = cache_key(SCOPE, BASE, "POST", "/contacts/search", "", body_a)
    key_b = cache_key(SCOPE, BASE, "POST", "/contacts/search", "", body_b)
    assert (key_a == key_b) is same


def test_search_pages_are_different_keys() -> None:
    page = {"query": {"field": "email", "operator": "=", "value": "a@b.c"}}
    first = json.dumps({**page, "pagination": {"per_page": 50}}).encode()
    second = json.dumps({**page, "pagination": {"per_page": 50, "starting_after": "c1"}}).encode()
    assert cache_key(SCOPE, BASE, "POST", "/contacts/search", "", first) != cache_key(
        SCOPE, BASE, "POST", "/contacts/search", "", second
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            ("0123456789abcdef", "https://api.intercom.io", "GET", "/contacts/42", "", b""),
            "0123456789abcdef:212a1d4ae11907e3f5e01a9278598bbdd77d751ffeb42dfc2139b4893f53a49e",
        ),
        (
            (SCOPE, BASE + "/", "get", "/contacts", "per_page=50&starting_after=abc%3D%3D", b""),
            "0123456789abcdef:669b6941888117df031c0cad4f1942c9fcd162f3444c821027dd0a9e130d9d70",
        ),
        (
            (
                SCOPE,
                "https://api.eu.intercom.io",
                "POST",
                "/contacts/search",
                "",
                b'{"query":{"field":"email","operator":"~","value":"x"},'
                b'"pagination":{"per_page":50}}',
            ),
            "0123456789abcdef:47c2d2add6a2b931db63fb2d93ce541812ca19dc8e706913480655201b6011ef",
        ),
        (
            ("not-a-fingerprint", "http://127.0.0.1:8000", "GET", "/x", "tag=b&tag=a&a=", b""),
            "h6f5df3915662adb0:82783e598b5720f5e3d3e973d5f50117973667ebbc429f39ff25f653d7b7b218",
        ),
        (
            (SCOPE, BASE, "POST", "/conversations/search", "", b"not json \xff"),
            "0123456789abcdef:f77640ac8eab74bc6e4f81bbdfdf9d6a467d8b36d32f4fc0e8946002bb7a95e2",
        ),
    ],
)
def test_keys_are_stable_across_releases(
    fields: tuple[str, str, str, str, str, bytes], expected: str
) -> None:
    """Keys computed by the first release: entries already in Redis must still be found (the
    memoised, cheaper derivation must hash exactly what the original did)."""
    assert cache_key(*fields) == KEY_PREFIX + expected
    assert cache_key(*fields) == KEY_PREFIX + expected  # and again, from the memos
