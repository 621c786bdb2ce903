"""Bodies the official SDK can digest: what python-intercom does with odd responses, mended.

python-intercom parses every response with ``response.json()``, catches only
``JSONDecodeError``, and returns ``None`` for any empty body. The functions here hand it a
response it turns into either a typed result or one of its own exceptions, never a silent
``None`` for a failure and never a raw ``UnicodeDecodeError``.
"""

from __future__ import annotations

import json

import httpx

__all__ = ["ensure_error_body", "sdk_readable"]


def ensure_error_body(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """A failed response the SDK will raise for, even when its body is empty or odd JSON.

    python-intercom returns ``None`` instead of raising when *any* response, 502 included, has an
    empty body (``if not _response.text.strip(): return None`` in 74 places), so a gateway failure
    would look like a successful call with no data. And it models the error bodies of 400, 401,
    403, 404 and 422 with ``construct_type(Error, json)``, which raises a raw ``TypeError`` for JSON
    that is not an object (``[]``, ``1``, ``"denied"``). Either body is replaced by an
    ``error.list`` that says what happened, which the SDK turns into its ``ApiError`` (status kept).
    """
    content = response.content
    if not content.strip():
        code, message = "empty_response", f"HTTP {response.status_code} with an empty body"
    else:
        try:  # the error path only: the extra parse costs nothing on successes
            parsed = json.loads(content)
        except (ValueError, RecursionError):
            return response  # not JSON: the SDK reports it with the text
        if isinstance(parsed, dict):
            return response
        what = "null" if parsed is None else type(parsed).__name__
        code = "malformed_error_body"
        message = f"HTTP {response.status_code} with a JSON {what} body, not an error object"
    body = json.dumps(
        {
            "type": "error.list",
            "request_id": response.headers.get("x-request-id"),
            "errors": [{"code": code, "message": message}],
        }
    ).encode()
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-length", "content-encoding", "content-type")
    ]
    headers.append(("content-type", "application/json"))
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=request,
        extensions=response.extensions,
    )


def sdk_readable(
    response: httpx.Response, request: httpx.Request, *, content_type: str | None = None
) -> httpx.Response:
    """*response* with a body that python-intercom can at least try to parse.

    The SDK parses every body with ``response.json()`` and catches only ``JSONDecodeError``, then
    reads ``response.text`` for the error. Two kinds of bytes escaped to the caller raw, for any
    status: a body that is not UTF-8/16/32 (a gateway's Latin-1 error page, a corrupted body:
    ``json.loads`` raises ``UnicodeDecodeError``), and a body whose declared charset cannot decode
    it (``charset=utf-16`` without a BOM: ``response.text`` raises ``UnicodeError``). Such a body
    is handed on decoded the way ``json.loads`` would, with U+FFFD for undecodable bytes, as UTF-8
    and labelled so: non-JSON then becomes the SDK's ``ApiError`` carrying the text.

    *content_type*, when given, is the response's ``Content-Type`` (read from its headers
    otherwise).
    """
    content = response.content
    if content_type is None:  # the caller may have the headers at hand already (the pipeline)
        content_type = response.headers.get("content-type", "")
    content_type = content_type.lower()
    # The common case: ASCII that json.detect_encoding reads as UTF-8 (it looks for NULs in the
    # first four bytes) decodes under every reading the SDK tries.
    plain = content.isascii() and b"\x00" not in content[:4]
    if plain and ("charset" not in content_type or "utf-8" in content_type):
        return response
    encoding = json.detect_encoding(content)
    try:
        content.decode(encoding, "surrogatepass")  # exactly what json.loads(bytes) does
        json_ok = True
    except UnicodeDecodeError:
        json_ok = False
    text_ok = True
    charset = response.charset_encoding
    # UTF-8 with errors="replace" (httpx's .text) cannot fail: only other charsets need a look.
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        try:
            response.text  # noqa: B018 - decoding is the check
        except (UnicodeError, LookupError):
            text_ok = False
    if json_ok and text_ok:
        return response
    mime = response.headers.get("content-type", "").split(";")[0].strip() or "text/plain"
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-length", "content-encoding", "content-type")
    ]
    headers.append(("content-type", f"{mime}; charset=utf-8"))
    return httpx.Response(
        response.status_code,
        headers=headers,
        # NULs go too: leading zero bytes make json.loads guess UTF-16/32 again, and no JSON
        # document holds a raw NUL.
        content=content
        if json_ok
        else content.decode(encoding, "replace").replace("\x00", "\ufffd").encode("utf-8"),
        request=request,
        extensions=response.extensions,
    )
