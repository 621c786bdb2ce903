"""What does a response say? Request ids, rate-limit headers and server-given waits.

Every parser here is total: whatever bytes or headers arrive (HTML from a gateway, an empty body,
``Retry-After: soon``, a reset time in 1970 or in 3000), it returns a value or ``None`` and never
raises. The network is not to be trusted, and a broken header must never crash the pipeline or make
a client sleep for hours.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from .record import record

__all__ = [
    "OBJECT_DATA_TEMPLATES",
    "READ_HEADERS",
    "RateLimitInfo",
    "error_codes",
    "malformed_json",
    "parse_json_body",
    "parse_rate_limit",
    "parse_retry_after",
    "read_headers",
    "request_id_from",
]

#: Every response header a decision reads (lower case): the content type (judging a body, the
#: cached copy), the request id, the rate-limit headers and ``Retry-After``. An outcome keeps
#: these and no others (:func:`read_headers`).
READ_HEADERS: frozenset[str] = frozenset(
    {
        "content-type",
        "x-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    }
)
_READ_NAMES = {name.encode("ascii"): name for name in READ_HEADERS}


def read_headers(
    triples: Iterable[tuple[bytes, bytes, bytes]], encoding: str = "ascii"
) -> dict[str, str]:
    """The :data:`READ_HEADERS` among *triples* (``(raw name, lower-case name, raw value)``, as
    ``httpx.Headers`` keeps them), as a dict with lower-case names, repeated ones joined with
    ``", "`` as ``httpx.Headers.items()`` joins them; values decoded with *encoding*
    (``httpx.Headers.encoding``).

    Every response passes here: a plain dict because several decisions look headers up and each
    ``httpx.Headers`` lookup scans the whole list, and only the names read because a response
    carries twice as many headers as any decision looks at (decoding the rest was most of the
    cost).
    """
    names = _READ_NAMES
    # Headers httpx found to be ASCII decode the same as UTF-8, whose decoder needs no lookup.
    utf8 = encoding in ("ascii", "utf-8")
    plain: dict[str, str] = {}
    for _, lowered, raw_value in triples:
        name = names.get(lowered)
        if name is not None:
            value = raw_value.decode() if utf8 else raw_value.decode(encoding)
            plain[name] = f"{plain[name]}, {value}" if name in plain else value
    return plain


_MAX_REQUEST_ID_LENGTH = 128
_MAX_UNIX_SECONDS = 95_617_584_000.0  # 5000-01-01T00:00:00Z


def parse_json_body(content: bytes) -> Any | None:
    """The decoded JSON of *content*, or ``None`` when it is empty, not JSON, or not UTF-8."""
    # Gateways answer with HTML: skip the decoder for anything that cannot be a JSON document.
    if content.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


#: Brackets a body may hold and still be known to parse without hitting Python's recursion
#: limit (nesting depth can never exceed the number of opening brackets).
_SAFE_BRACKETS = 256


#: Operations whose success is documented with no body (OpenAPI 2.16): for every other one an
#: empty 200/201 body is a broken answer, not "no data".
EMPTY_SUCCESSES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/events"),
        ("POST", "/events/summaries"),
        ("DELETE", "/tags/{id}"),
        ("DELETE", "/audiences/{id}"),
        ("DELETE", "/content_snippets/{id}"),
        ("DELETE", "/ai/content_import_sources/{id}"),
    }
)

#: The operations whose ``data`` is an object, not a list (from the 2.16 description's response
#: schemas: ``article_search_response``, ``internal_article_search_response``).
OBJECT_DATA_TEMPLATES = frozenset(
    {("GET", "/articles/search"), ("GET", "/internal_articles/search")}
)

#: Content types whose bodies are files, not JSON (export downloads): never judged.
_FILE_TYPES = ("application/octet-stream", "application/gzip", "application/zip", "text/csv")


def malformed_json(
    status: int,
    content: bytes,
    *,
    is_list: bool = False,
    expects_body: bool = False,
    content_type: str = "",
    data_is_object: bool = False,
) -> str | None:
    """Why a JSON response cannot be handed to the SDK as it is, or ``None`` when it can.

    python-intercom catches only ``JSONDecodeError`` around its parsing, so JSON it cannot model
    escapes as ``TypeError`` (a success body that is not an object; a list envelope whose
    ``data`` is not a list) or ``RecursionError`` (absurdly deep nesting). Bodies that are not
    JSON at all (HTML, text, files) are not judged here: the SDK reports those itself. The
    declared content type decides nothing: the SDK parses every body as JSON whatever it says.

    Every response passes here, so the common case is settled by byte checks done in C: an
    object body (``{`` … ``}``) with few brackets is only parsed when *is_list* says the SDK will
    iterate its ``data`` (or *data_is_object* says it reads it as an object): a record's body is
    never parsed here, whatever it nests.

    A success is also judged for being JSON at all: a 2xx that is truncated, has trailing bytes
    or is an HTML page did not come from Intercom intact (a committed create with such an answer
    must be reported as of unknown outcome, never re-sent as if it had failed), unless its
    *content_type* says it is a file. With *expects_body*, an empty 2xx body is broken too.
    With *data_is_object*, a success's ``data`` must be an object (see
    :data:`OBJECT_DATA_TEMPLATES`) rather than a list.
    """
    stripped = content.strip()
    if not stripped:
        if expects_body and 200 <= status < 300:
            return f"a {status} response with an empty body"
        return None
    # Only a page's ``data`` (or a search's, an object) is looked into: a record's body may hold
    # a nested ``"data"`` (a contact's tags, notes, companies) that the SDK models as it is. A
    # record cut short after a nested object still ends in "}", but its outermost brace is still
    # open (whatever lists it holds): braces that do not balance (or that a string holds) send
    # it to the parser. Lists are counted only for the nesting bound, and only then: each count
    # is a byte-by-byte pass over the body, on every response.
    if stripped[:1] == b"{" and stripped[-1:] == b"}" and not (is_list or data_is_object):
        opened = content.count(b"{")
        if opened == content.count(b"}") and opened + content.count(b"[") <= _SAFE_BRACKETS:
            return None
    try:
        parsed = json.loads(content)
    except RecursionError:
        return "JSON nested too deeply to parse"
    except (ValueError, UnicodeDecodeError):
        if 200 <= status < 300 and not content_type.lower().startswith(_FILE_TYPES):
            return f"a {status} response whose body is not valid JSON"
        return None  # an error page that is not JSON: the SDK raises an ApiError with the text
    if not 200 <= status < 300:
        return None
    if not isinstance(parsed, dict):
        return f"a {status} response whose JSON body is a {type(parsed).__name__}, not an object"
    # ``data`` is a list in every 2.16 response but the two article searches' (an object holding
    # ``articles``), and the SDK's pagers iterate it whatever the ``type`` says (a redirected
    # search page is parsed as a page too).
    data = parsed.get("data")
    expected = dict if data_is_object else list
    if data is not None and not isinstance(data, expected):
        return f"a response whose data is a {type(data).__name__}, not a {expected.__name__}"
    return None


def _clean_request_id(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > _MAX_REQUEST_ID_LENGTH or not value.isprintable():
        return None
    return value


def request_id_from(headers: Mapping[str, str], body: Any | None) -> str | None:
    """Intercom's request id: the ``request_id`` of an ``error.list`` body, else ``X-Request-Id``.

    The body wins because Intercom documents it there; the header is read because gateways and some
    endpoints send one. Values that are not short printable strings are ignored.
    """
    if body is not None and isinstance(body, Mapping):  # an ABC check: skipped for no body
        found = _clean_request_id(body.get("request_id"))
        if found is not None:
            return found
    return _clean_request_id(headers.get("x-request-id"))


def error_codes(body: Any | None) -> tuple[str, ...]:
    """The ``code`` of each error in an ``error.list`` body (empty for anything else)."""
    if not isinstance(body, Mapping):
        return ()
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(
        e["code"] for e in errors if isinstance(e, Mapping) and isinstance(e.get("code"), str)
    )


@record
class RateLimitInfo:
    """The ``X-RateLimit-*`` headers of one response, validated.

    Attributes:
        limit: requests allowed in the current window (Intercom sends the per-window figure).
        remaining: requests left in the current window.
        reset_at: Unix time at which the window resets.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None


def _non_negative_int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)  # int() ignores surrounding whitespace itself
    except ValueError:
        return None
    return value if value >= 0 else None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """Parse ``X-RateLimit-Limit/-Remaining/-Reset``; ``None`` when none of them is usable.

    A remaining count above the limit is clamped to the limit (a header never creates quota).
    """
    limit_raw = headers.get("x-ratelimit-limit")
    remaining_raw = headers.get("x-ratelimit-remaining")
    reset_raw = headers.get("x-ratelimit-reset")
    if limit_raw is None and remaining_raw is None and reset_raw is None:
        return None  # the common case for responses without them: nothing to parse
    limit, reset_at = _window(limit_raw, reset_raw)
    remaining = _non_negative_int(remaining_raw)
    if limit is None and remaining is None and reset_at is None:
        return None
    if limit is not None and remaining is not None and remaining > limit:
        remaining = limit
    return RateLimitInfo(limit, remaining, reset_at)


@lru_cache(maxsize=16)  # a window or two at a time; garbage values cannot grow it
def _window(limit_raw: str | None, reset_raw: str | None) -> tuple[int | None, float | None]:
    """The limit and reset time of a window, validated. Memoised: every response of a window
    repeats them (only the remaining count changes), and parsing both cost twice the lookup."""
    reset_at: float | None = None
    if reset_raw is not None:
        try:
            reset = float(reset_raw)  # float() ignores surrounding whitespace itself
        except ValueError:
            reset = math.nan
        # Unix seconds before the year 5000: anything beyond is garbage (and would overflow
        # integer arithmetic downstream), not a window that resets in three thousand years.
        if math.isfinite(reset) and 0 < reset < _MAX_UNIX_SECONDS:
            reset_at = reset
    return _non_negative_int(limit_raw), reset_at


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns ``None`` for a missing or unparseable value and ``0.0`` for a date in the past. The
    result is not capped here: callers clamp it to their policy's maximum.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:
            return None
        try:
            seconds = parsed.timestamp() - now
        except (OverflowError, OSError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
