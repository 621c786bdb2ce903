"""Webhook signatures: known vectors, an independent HMAC, and no exception on any input."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intercom_resilience._webhooks import verify_webhook_signature, webhook_signature


def reference_hmac_sha1(key: bytes, message: bytes) -> str:
    """HMAC-SHA1 written out from RFC 2104 with hashlib only (independent of the hmac module)."""
    block = 64
    if len(key) > block:
        key = hashlib.sha1(key, usedforsecurity=False).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha1(bytes(k ^ 0x36 for k in key) + message, usedforsecurity=False).digest()
    return hashlib.sha1(bytes(k ^ 0x5C for k in key) + inner, usedforsecurity=False).hexdigest()


def test_reference_matches_rfc_2202_vector() -> None:
    # RFC 2202, test case 2: proves the reference itself before it judges the library.
    assert (
        reference_hmac_sha1(b"Jefe", b"what do ya want for nothing?")
        == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    )


def test_known_vector_verifies() -> None:
    header = "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    assert verify_webhook_signature(b"what do ya want for nothing?", header, "Jefe")


def test_intercom_style_payload() -> None:
    body = b'{"type":"notification_event","topic":"ping","data":{"item":{"message":"hi"}}}'
    secret = "client-secret-123"  # intercom-resilience: allow-token
    header = "sha1=" + reference_hmac_sha1(secret.encode(), body)
    assert webhook_signature(body, secret) == header
    assert verify_webhook_signature(body, header, secret)
    assert not verify_webhook_signature(body + b" ", header, secret)
    assert not verify_webhook_signature(body, header, "another-secret")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha1",
        "sha1=",
        "=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",  # no algorithm
        "sha256=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        "md5=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c7",  # one digit short
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c790",  # one digit long
        "sha1=gffcdf6ae5eb2fa2d27416d5f184df9c259a7c79",  # not hex
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c78",  # wrong digest
        "sha1=éffcdf6ae5eb2fa2d27416d5f184df9c259a7c7",  # non-ASCII
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79,sha1=00",
    ],
)
def test_bad_headers_are_refused(header: str | None) -> None:
    assert verify_webhook_signature(b"what do ya want for nothing?", header, "Jefe") is False


@pytest.mark.parametrize(
    "header",
    [
        "SHA1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        "sha1=EFFCDF6AE5EB2FA2D27416D5F184DF9C259A7C79",
        "  sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79  ",
    ],
)
def test_case_and_surrounding_space_are_tolerated(header: str) -> None:
    assert verify_webhook_signature(b"what do ya want for nothing?", header, "Jefe")


def test_bytes_like_bodies_and_raw_header_bytes() -> None:
    body = b"payload"
    header = webhook_signature(body, "s")
    assert verify_webhook_signature(bytearray(body), header, "s")
    assert verify_webhook_signature(memoryview(body), header, "s")
    assert verify_webhook_signature(body, header.encode(), "s")  # type: ignore[arg-type]


def test_empty_secret_verifies_nothing() -> None:
    body = b"payload"
    assert not verify_webhook_signature(body, "sha1=" + reference_hmac_sha1(b"", body), "")


def test_wrong_types_return_false() -> None:
    header = webhook_signature(b"x", "s")
    assert verify_webhook_signature("x", header, "s") is False  # type: ignore[arg-type]
    assert verify_webhook_signature(b"x", 42, "s") is False  # type: ignore[arg-type]
    assert verify_webhook_signature(b"x", header, None) is False  # type: ignore[arg-type]
    assert verify_webhook_signature(b"x", b"\xff\xfe", "s") is False  # type: ignore[arg-type]
    assert verify_webhook_signature(b"x", header, "\udcff") is False


anything = st.one_of(
    st.none(), st.text(), st.binary(), st.integers(), st.floats(), st.lists(st.integers())
)


@given(body=st.one_of(st.binary(), anything), header=anything, secret=anything)
def test_never_raises(body: object, header: object, secret: object) -> None:
    result = verify_webhook_signature(body, header, secret)  # type: ignore[arg-type]
    assert isinstance(result, bool)


@given(body=st.binary(), secret=st.text(min_size=1), other=st.binary())
def test_round_trip_against_reference(body: bytes, secret: str, other: bytes) -> None:
    header = "sha1=" + reference_hmac_sha1(secret.encode("utf-8", "surrogatepass"), body)
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        assert verify_webhook_signature(body, header, secret) is False
        return
    assert verify_webhook_signature(body, header, secret)
    assert verify_webhook_signature(other, header, secret) == (other == body)
