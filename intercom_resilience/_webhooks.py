"""Webhook signature verification: is this notification really from Intercom?

Intercom signs each webhook notification with the app's client secret and sends
``X-Hub-Signature: sha1=<hex>``, the HMAC-SHA1 of the raw request body. Verify the *raw* bytes,
before any JSON parsing: re-serialising the payload changes the bytes and so the signature::

    body = await request.body()
    if not client.verify_webhook(body, request.headers.get("x-hub-signature"), CLIENT_SECRET):
        return Response(status_code=401)  # counted by the health monitor (P3 alert)

:func:`verify_webhook_signature` is the same check without a client (nothing is counted).
"""

from __future__ import annotations

import hashlib
import hmac
import string

__all__ = ["SIGNATURE_HEADER", "verify_webhook_signature", "webhook_signature"]

#: The header Intercom puts the signature in.
SIGNATURE_HEADER = "X-Hub-Signature"

_ALGORITHM = "sha1"
_HEX_DIGITS = frozenset(string.hexdigits)
_SHA1_HEX_LENGTH = 40


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def webhook_signature(body: bytes | bytearray | memoryview, secret: str | bytes) -> str:
    """The ``X-Hub-Signature`` value Intercom would send for *body* (``sha1=<hex>``).

    Useful to sign test notifications, and what the fake backend sends.
    """
    return f"{_ALGORITHM}=" + hmac.new(_key(secret), bytes(body), hashlib.sha1).hexdigest()


def verify_webhook_signature(
    body: bytes | bytearray | memoryview, header: str | None, secret: str
) -> bool:
    """Does *header* carry a valid signature of *body* made with *secret*?

    Args:
        body: the raw request body, exactly as received (any bytes-like object).
        header: the ``X-Hub-Signature`` value (``sha1=<hex>``), or ``None`` when absent.
        secret: the app's client secret (an empty secret verifies nothing).

    Returns ``False`` for a missing, malformed or wrong-algorithm header, an empty secret or a body
    that is not bytes, and never raises, whatever it is given: a webhook handler can call it on
    untrusted input without a ``try``. The comparison takes constant time
    (:func:`hmac.compare_digest`), so a forger learns nothing from timing.
    """
    # Typed callers pass the right types; untyped ones may pass anything, so look at objects.
    raw: object = body
    value: object = header
    key: object = secret
    try:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            return False
        if isinstance(value, bytes):  # raw ASGI header values
            value = value.decode("ascii")
        if not isinstance(value, str) or not isinstance(key, (str, bytes)) or not key:
            return False
        algorithm, sep, digest = value.strip().partition("=")
        if not sep or algorithm.strip().lower() != _ALGORITHM:
            return False
        digest = digest.strip().lower()
        if len(digest) != _SHA1_HEX_LENGTH or not _HEX_DIGITS.issuperset(digest):
            return False
        expected = hmac.new(_key(key), bytes(raw), hashlib.sha1).hexdigest()
        return hmac.compare_digest(expected, digest)
    except Exception:  # e.g. a secret with lone surrogates cannot be encoded: it cannot match
        return False
