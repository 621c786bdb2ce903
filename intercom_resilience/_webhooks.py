"""Webhook signature verification: is this notification really from Intercom?

Intercom signs each webhook notification with the app's client secret and sends
``X-Hub-Signature: sha1=<hex>``, the HMAC-SHA1 of the raw request body. Verify the *raw* bytes,
before any JSON parsing: re-serialising the payload changes the bytes and so the signature.

Most applications never call this module: :mod:`intercom_resilience.webhooks` receives
notifications (signature, replays, a queue to the handler, health), and a client builds one wired
to its health with ``client.webhook_receiver(secret=..., handler=...)``. To check a signature by
hand::

    body = await request.body()
    if not client.verify_webhook(body, request.headers.get("x-hub-signature"), CLIENT_SECRET):
        return Response(status_code=401)  # counted by the health monitor (P3 alert)

:func:`verify_webhook_signature` is the same check without a client (nothing is counted), and
:func:`check_webhook_signature` says *why* a signature failed (missing, malformed, mismatched).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import string

__all__ = [
    "SIGNATURE_HEADER",
    "SignatureCheck",
    "check_webhook_signature",
    "verify_webhook_signature",
    "webhook_signature",
]

#: The header Intercom puts the signature in.
SIGNATURE_HEADER = "X-Hub-Signature"

_ALGORITHM = "sha1"
_HEX_DIGITS = frozenset(string.hexdigits)
_SHA1_HEX_LENGTH = 40


class SignatureCheck(str, enum.Enum):
    """The outcome of checking one ``X-Hub-Signature`` (only ``VALID`` is a pass)."""

    VALID = "valid"
    #: No header at all.
    MISSING = "missing"
    #: A header that is not ``sha1=<40 hex digits>`` (another algorithm, wrong length, not hex).
    MALFORMED = "malformed"
    #: A well-formed signature of another body, or made with another secret.
    MISMATCH = "mismatch"
    #: Nothing can verify: no secret, or a body that is not bytes.
    UNUSABLE = "unusable"

    def __str__(self) -> str:
        return self.value


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def webhook_signature(body: bytes | bytearray | memoryview, secret: str | bytes) -> str:
    """The ``X-Hub-Signature`` value Intercom would send for *body* (``sha1=<hex>``).

    Useful to sign test notifications, and what the fake backend sends.
    """
    return f"{_ALGORITHM}=" + hmac.new(_key(secret), bytes(body), hashlib.sha1).hexdigest()


def check_webhook_signature(
    body: bytes | bytearray | memoryview, header: str | bytes | None, secret: str | bytes
) -> SignatureCheck:
    """Check *header* against *body* and *secret*, and say what was wrong with it.

    Args:
        body: the raw request body, exactly as received (any bytes-like object).
        header: the ``X-Hub-Signature`` value (``sha1=<hex>``; raw ASGI header bytes too), or
            ``None`` when absent.
        secret: the app's client secret (an empty secret verifies nothing).

    Never raises, whatever it is given. The digest comparison takes constant time
    (:func:`hmac.compare_digest`), so a forger learns nothing from timing; the format checks
    before it only look at the header, never at the expected digest.
    """
    # Typed callers pass the right types; untyped ones may pass anything, so look at objects.
    raw: object = body
    value: object = header
    key: object = secret
    try:
        if value is None:
            return SignatureCheck.MISSING
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            return SignatureCheck.UNUSABLE
        if not isinstance(key, (str, bytes)) or not key:
            return SignatureCheck.UNUSABLE
        if isinstance(value, bytes):  # raw ASGI header values
            value = value.decode("ascii")
        if not isinstance(value, str):
            return SignatureCheck.MALFORMED
        if not value.strip():
            return SignatureCheck.MISSING
        algorithm, sep, digest = value.strip().partition("=")
        if not sep or algorithm.strip().lower() != _ALGORITHM:
            return SignatureCheck.MALFORMED
        digest = digest.strip().lower()
        if len(digest) != _SHA1_HEX_LENGTH or not _HEX_DIGITS.issuperset(digest):
            return SignatureCheck.MALFORMED
        expected = hmac.new(_key(key), bytes(raw), hashlib.sha1).hexdigest()
        if hmac.compare_digest(expected, digest):
            return SignatureCheck.VALID
        return SignatureCheck.MISMATCH
    except UnicodeDecodeError:  # a header of non-ASCII bytes
        return SignatureCheck.MALFORMED
    except Exception:  # e.g. a secret with lone surrogates cannot be encoded: it cannot match
        return SignatureCheck.UNUSABLE


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
    :func:`check_webhook_signature` is the same check, saying why it failed.
    """
    return check_webhook_signature(body, header, secret) is SignatureCheck.VALID
