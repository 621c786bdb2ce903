"""The stale cache's decisions: which key a read is stored under, which tags it carries, which
tags a write drops, and when a failure may be answered from the cache.

Everything here is pure: no I/O, no clock. The storage lives in ``_backends`` (memory or Redis);
the transport decides when to consult it.

Keys
    ``ir:cache:<scope>:<sha256>`` where the digest covers the base URL, the method, the path, the
    query (parameters sorted by name, the order of repeated values kept) and the body (JSON bodies
    canonicalised with sorted keys and compact separators; anything else hashed raw). The scope is
    the credentials fingerprint, kept readable so an operator can find one workspace's entries;
    the token itself never reaches a key.

Tags (all prefixed ``<scope>|``, so one workspace's write never drops another's reads)
    * ``/contacts/42`` — *instance*: every read at or under ``/contacts/42``.
    * ``/contacts*`` — *collection*: every read of ``/contacts`` not addressed to one instance
      (list, search, ``find_by_external_id``, query lookups), and nested reads that list
      contacts (``/companies/7/contacts``).
    * ``/contacts/**`` — *family*: every read under ``/contacts``.

    A write to ``/contacts/42`` (or under it) drops the instance tag and the collection tag: other
    contacts' entries stay. A write whose path does not name the instances it changes
    (``POST /contacts/merge``, ``POST /companies`` which is an upsert, ``POST /tags`` which tags
    companies and contacts in bulk) drops the whole family, because being wrong there would
    serve data from before the caller's own update. Over-invalidating costs a cache miss during
    an outage; under-invalidating serves a lie.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from urllib.parse import parse_qsl

from .requests import LITERAL_SEGMENTS, classify
from .status import Network, StaleReason, meaning

__all__ = [
    "KEY_PREFIX",
    "READ_HORIZON_S",
    "StaleReason",
    "cache_key",
    "entry_size",
    "is_servable",
    "read_resources",
    "scope_tag",
    "serve_stale_for",
    "stale_reason_for",
    "write_invalidations",
]

#: Every stale-cache key starts with this (Redis operators can ``SCAN`` for it).
KEY_PREFIX = "ir:cache:"

#: How long a read may have been in flight and still store its answer, in seconds. Writes are
#: remembered (as write generations in a process, as invalidation marks in Redis) this long, so
#: a read older than this cannot prove that no write overtook it. Far longer than any deadline
#: spends on one read (interactive 8 s, background 5 min).
READ_HORIZON_S = 600.0

#: Bumped when the key derivation changes, so old Redis entries are never misread.
_KEY_VERSION = b"v1"

#: A scope that looks like a fingerprint (hex digits) is kept readable in keys; anything else is
#: hashed, so even a caller passing something token-like by mistake never leaks it into Redis.
_FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")

#: The first segments of Intercom's routes (OpenAPI 2.16): the collections a tag can name.
_COLLECTIONS: frozenset[str] = frozenset(
    {
        "admins", "ai", "articles", "audiences", "away_status_reasons", "brands", "calls",
        "companies", "contacts", "content", "content_snippets", "conversations",
        "custom_object_instances", "data_attributes", "data_connectors", "download", "emails",
        "events", "export", "fin", "fin_voice", "help_center", "internal_articles",
        "ip_allowlist", "jobs", "macros", "me", "messages", "news", "notes",
        "office_hours_schedules", "phone_call_redirects", "segments", "subscription_types", "tags",
        "teams", "ticket_states", "ticket_types", "tickets", "visitors",
    }
)  # fmt: skip

#: Segments that look an instance up by something other than its id: the read cannot know which
#: instance it returns, so it is tagged at collection level (any write to the collection drops it).
_LOOKUPS: frozenset[str] = frozenset({"find_by_external_id", "external_id", "phone_number"})

#: Writes whose effects reach collections their path does not name. Values: ``(collection,
#: whole_family)``; ``whole_family`` when the changed instances are named only in the body.
_ALSO_TOUCHES: dict[str, tuple[tuple[str, bool], ...]] = {
    # create/update a tag, and tag or untag companies and contacts in bulk
    "/tags": (("companies", True), ("contacts", True)),
    # a new message starts a conversation
    "/messages": (("conversations", False),),
    # a visitor becomes a contact
    "/visitors/convert": (("contacts", False),),
}

#: Admin writes change what ``GET /me`` answers (away status): the current admin is an admin.
_ALIASES: dict[str, tuple[str, ...]] = {"admins": ("me",)}

#: Collection-level ``POST``s that may *update* existing instances named only in the body.
_UPSERTS: frozenset[str] = frozenset({"/companies", "/tags"})

_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def stale_reason_for(status: int | None, *, timed_out: bool = False) -> StaleReason | None:
    """The stale reason of a failed attempt, from its status (``None``: no response arrived).

    Args:
        status: the final HTTP status, or ``None`` when the request never got a response.
        timed_out: with ``status=None``, the failure was a timeout rather than a connection error.

    Returns ``None`` for successes and for statuses that are answers (every 4xx but 408 and 429).
    The status table (:mod:`.status`) decides.
    """
    return meaning(status, Network.TIMEOUT if timed_out else Network.AMBIGUOUS).stale


def serve_stale_for(status: int | None, reason: StaleReason | None = None) -> bool:
    """May a read that ended with *status* (and/or *reason*) be answered from the stale cache?

    *reason* is what stopped the call before or instead of a response (breaker, kill switch,
    limiter wait, timeout); *status* is the last HTTP status, if any. A status that is Intercom's
    answer (400/401/403/404/409/410/422, …) always wins: no reason overrides it. Without a
    reason, the status alone decides (429, 408 and 5xx are outages).
    """
    if status is None:
        return reason is not None  # nothing happened that we know of: no failure to mask
    table = meaning(status)
    if table.ok:
        return reason is not None
    return table.stale is not None


def is_servable(stored_at: float, now: float, stale_window: float) -> bool:
    """Is an entry stored at *stored_at* (Unix time) still young enough to serve at *now*?

    An entry from the future (clock skew between processes sharing Redis) counts as age zero.
    """
    return now - stored_at <= stale_window


def entry_size(content: bytes, headers: tuple[tuple[str, str], ...], request_id: str | None) -> int:
    """The bytes an entry is charged against the byte budget and the per-entry cap.

    Body plus header names and values plus the request id: what the entry carries, and the same
    figure in every backend so that one policy means the same thing in memory and in Redis.
    """
    size = len(content) + len(request_id or "")
    for name, value in headers:
        size += len(name) + len(value)
    return size


# --------------------------------------------------------------------------------------- keys


def cache_key(
    scope: str,
    base_url: str,
    method: str,
    path: str,
    query: str | bytes = "",
    body: bytes | str | None = None,
) -> str:
    """The stale-cache key of a read: ``ir:cache:<scope>:<sha256 hex>``.

    Args:
        scope: the credentials fingerprint (see ``credentials_fingerprint``).
        base_url: the API's base URL (a trailing ``/`` is not a difference).
        method: the HTTP method (case-insensitive).
        path: the URL path, without query string.
        query: the raw query string (without ``?``); parameter order does not matter, the order
            of repeated values of one parameter does.
        body: the request body (search and list ``POST``s); JSON is canonicalised first.
    """
    if not query and not body:
        return _plain_key(scope, base_url, method, path)
    return _key(scope, base_url, method, path, query, body)


@lru_cache(maxsize=4096)
def _plain_key(scope: str, base_url: str, method: str, path: str) -> str:
    """The key of a read with neither query nor body (a record's ``GET``), memoised per path
    like its tags (:func:`read_resources`): a hot record is keyed on every read."""
    return _key(scope, base_url, method, path, "", None)


def _key(
    scope: str, base_url: str, method: str, path: str, query: str | bytes, body: bytes | str | None
) -> str:
    readable, prefix = _key_prefix(scope, base_url, method)
    digest = prefix.copy()
    # The fields after the memoised prefix, length-prefixed like it, in one update.
    tail = (
        path.encode(),
        _canonical_query(query) if query else _NO_QUERY,
        _canonical_body(body) if body else _NO_BODY,
    )
    digest.update(b"".join([len(part).to_bytes(8, "big") + part for part in tail]))
    return f"{KEY_PREFIX}{readable}:{digest.hexdigest()}"


#: The canonical forms of an absent query and body (what the general cases give for them).
_NO_QUERY = b"[]"
_NO_BODY = b"n"


@lru_cache(maxsize=256)
def _key_prefix(scope: str, base_url: str, method: str) -> tuple[str, hashlib._Hash]:
    """The readable scope, and the digest over the fields every read of one client shares.

    A client sends with one scope and base URL and a handful of methods, so the first four
    fields are hashed once and the digest copied per key (the key is unchanged by this).
    """
    digest = hashlib.sha256()
    for part in (
        _KEY_VERSION,
        scope.encode(),
        base_url.rstrip("/").encode(),
        method.upper().encode(),
    ):
        # Length-prefixed fields: no two different requests can concatenate to the same input.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return _readable_scope(scope), digest


def _readable_scope(scope: str) -> str:
    if _FINGERPRINT.fullmatch(scope):
        return scope
    return "h" + hashlib.sha256(b"intercom-resilience-scope\x00" + scope.encode()).hexdigest()[:16]


def _canonical_query(query: str | bytes) -> bytes:
    if isinstance(query, bytes):
        query = query.decode("utf-8", "surrogateescape")
    pairs = parse_qsl(query, keep_blank_values=True)
    # Sort by name only: stable, so ``tag=a&tag=b`` and ``tag=b&tag=a`` stay different requests.
    pairs.sort(key=lambda pair: pair[0])
    return json.dumps(pairs, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogateescape"
    )


def _canonical_body(body: bytes | str | None) -> bytes:
    if not body:
        return _NO_BODY
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    if len(raw) <= _MEMO_BODY_BYTES:
        return _memo_canonical_body(raw)
    return _canonical_raw_body(raw)


#: Bodies up to this size have their canonical form memoised (searches are a few hundred bytes).
_MEMO_BODY_BYTES = 4096


def _canonical_raw_body(raw: bytes) -> bytes:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return b"r" + raw
    try:
        canonical = json.dumps(
            parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
        )
    except ValueError:  # pragma: no cover - json.loads output always dumps back
        return b"r" + raw
    # The kind byte keeps a raw body from colliding with a JSON body that canonicalises to it.
    return b"j" + canonical.encode("utf-8", "surrogateescape")


#: A search repeated (a dashboard, a poller, the pages of one search) is canonicalised once.
_memo_canonical_body = lru_cache(maxsize=1024)(_canonical_raw_body)


# --------------------------------------------------------------------------------------- tags


def _segments(path: str) -> list[str]:
    return [s for s in path.split("?", 1)[0].split("/") if s]


def _first_identifier(segments: list[str]) -> int | None:
    for i, segment in enumerate(segments):
        if segment not in LITERAL_SEGMENTS:
            return i
    return None


def _instance(scope: str, prefix: str) -> str:
    return f"{scope}|{prefix}"


def _collection(scope: str, name: str) -> str:
    return f"{scope}|/{name}*"


def _family(scope: str, name: str) -> str:
    return f"{scope}|/{name}/**"


def scope_tag(scope: str) -> str:
    """The tag every cached read of one set of credentials carries (``<scope>|*``): a 401 or 403
    for those credentials drops all of it."""
    return f"{scope}|*"


@lru_cache(maxsize=4096)
def read_resources(scope: str, method: str, path: str) -> tuple[str, ...]:
    """The tags a cached read carries (empty for a method that does not read).

    ``GET /contacts/42`` → ``(<scope>|/contacts/42, <scope>|/contacts/**)``;
    ``GET /contacts`` and ``POST /contacts/search`` →
    ``(<scope>|/contacts*, <scope>|/contacts/**)``;
    ``GET /companies/7/contacts`` also carries ``<scope>|/contacts*`` (it lists contacts).
    """
    segments = _segments(path)
    if not segments or not classify(method, path).is_read:
        return ()
    collection = segments[0]
    tags: list[str] = []
    ident = _first_identifier(segments)
    if ident is None or ident == 0 or segments[ident - 1] in _LOOKUPS:
        # Not addressed to one instance by its id: any write to the collection may change it.
        tags.append(_collection(scope, collection))
    else:
        tags.append(_instance(scope, "/" + "/".join(segments[: ident + 1])))
        # A nested list of another collection (``/companies/7/contacts``) shows that collection's
        # instances: a write to any of them may change it.
        tags.extend(
            _collection(scope, s)
            for s in segments[ident + 1 :]
            if s in _COLLECTIONS and s != collection
        )
    tags.append(_family(scope, collection))
    return tuple(dict.fromkeys(tags))


@lru_cache(maxsize=4096)
def write_invalidations(scope: str, method: str, path: str) -> tuple[str, ...]:
    """The tags a *successful* write drops (empty for a read).

    ``PUT /contacts/42`` → ``(<scope>|/contacts/42, <scope>|/contacts*)``: contact 42, anything
    under it, and every list or search of contacts; other contacts stay. ``POST /contacts`` (a
    create) → ``(<scope>|/contacts*,)``. A write that changes instances its path does not name
    (``POST /contacts/merge``, ``PUT /visitors``) drops the whole family.
    """
    segments = _segments(path)
    if not segments or method.upper() not in _WRITE_METHODS or classify(method, path).is_read:
        return ()
    collection = segments[0]
    tags: list[str] = []
    ident = _first_identifier(segments)
    if ident is not None and ident > 0 and segments[ident - 1] not in _LOOKUPS:
        tags.append(_instance(scope, "/" + "/".join(segments[: ident + 1])))
        tags.append(_collection(scope, collection))
        # Attaching or detaching across collections (``POST /contacts/42/companies``) changes the
        # other side too (the company's user count), and the body names which one.
        for s in segments[ident + 1 :]:
            if s in _COLLECTIONS and s != collection:
                tags += (_collection(scope, s), _family(scope, s))
    elif method.upper() == "POST" and len(segments) == 1 and f"/{collection}" not in _UPSERTS:
        # A plain create: a new instance appears in lists; no existing instance changed.
        tags.append(_collection(scope, collection))
    else:
        # The path does not say which instances changed (merge, redact, upsert, PUT by body).
        tags += (_collection(scope, collection), _family(scope, collection))
    for name, whole in _ALSO_TOUCHES.get("/" + "/".join(segments), ()):
        tags.append(_collection(scope, name))
        if whole:
            tags.append(_family(scope, name))
    for alias in _ALIASES.get(collection, ()):
        tags.append(_collection(scope, alias))
    return tuple(dict.fromkeys(tags))
