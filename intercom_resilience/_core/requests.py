"""What kind of request is this? Path templates, read/write and idempotency classification.

One place holds the facts about Intercom's endpoints that the pipeline's decisions depend on:
which segments of a path are identifiers (for log-friendly templates such as ``/contacts/{id}``),
which ``POST`` endpoints are read-only (search and list), and which resource a write touches (so
the stale cache can drop what the write made obsolete).
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import lru_cache

__all__ = [
    "IDEMPOTENT_METHODS",
    "LITERAL_SEGMENTS",
    "READ_ONLY_POSTS",
    "RequestKind",
    "classify",
    "is_collection_read",
    "credentials_fingerprint",
    "path_template",
]

#: Every literal path segment of Intercom's REST API (OpenAPI description 2.16). Any other segment
#: is an identifier. Deriving templates from the real route table, rather than guessing from the
#: shape of a segment, keeps external ids such as ``/contacts/find_by_external_id/alice`` right.
LITERAL_SEGMENTS: frozenset[str] = frozenset(
    {
        "activity_log_event_types", "activity_logs", "admins", "ai", "archive", "articles",
        "attributes", "audiences", "away", "away_status_reasons", "banners", "block", "brands",
        "bulk_actions", "calls", "cancel", "change_type", "collect", "collections", "companies",
        "contacts", "content", "content_import_sources", "content_snippets", "conversation",
        "conversations", "convert", "csat", "custom_object_instances", "customers", "data",
        "data_attributes", "data_connectors", "deleted", "dismiss", "download", "draft", "emails",
        "enqueue", "events", "execution_results", "export", "external_id", "external_pages", "fin",
        "fin_voice", "find_by_external_id", "get_datasets", "handling_events", "help_center",
        "help_centers", "internal_articles", "ip_allowlist", "items", "jobs",
        "linked_conversations", "list", "macros", "me", "merge", "merge_history", "messages",
        "metrics", "news", "news_items", "newsfeeds", "notes", "office_hours_exceptions",
        "office_hours_schedules", "options", "parts", "phone_call_redirects", "phone_number",
        "publish", "recording", "redact", "redirects", "register", "reply", "reporting_data",
        "scroll", "search", "segments", "side_conversations", "start", "status",
        "subscription_types", "subscriptions", "summaries", "tags", "teams", "ticket_states",
        "ticket_types", "tickets", "transcript", "unarchive", "versions", "visitors", "whatsapp",
        "workflows",
    }
)  # fmt: skip

#: Methods whose repetition cannot change the outcome (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: ``POST`` endpoints that only read: safe to retry after an ambiguous failure, and cacheable.
READ_ONLY_POSTS: frozenset[str] = frozenset(
    {
        "/contacts/search",
        "/conversations/search",
        "/tickets/search",
        "/calls/search",
        "/companies/list",
        "/admins/activity_logs/search",
    }
)

_READ_METHODS = frozenset({"GET", "HEAD"})


@lru_cache(maxsize=4096)
def path_template(path: str) -> str:
    """Replace identifier segments of *path* by ``{id}``: ``/contacts/6a1b`` → ``/contacts/{id}``.

    Query strings are dropped. The template is what logs, metrics and postmortems group by, so it
    must never carry an identifier (or anything else of a customer's) in clear.
    """
    path = path.split("?", 1)[0]
    segments = [s for s in path.split("/") if s]
    return "/" + "/".join(s if s in LITERAL_SEGMENTS else "{id}" for s in segments)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestKind:
    """The facts about one request that the pipeline's decisions need.

    Attributes:
        method: upper-case HTTP method.
        template: the path template (``/contacts/{id}``).
        is_read: the request only reads (GET/HEAD or a read-only POST): cacheable.
        is_idempotent: repeating it cannot change the outcome: safe to retry after an ambiguous
            failure (5xx, read timeout, dropped connection).
        resource: for writes, the path prefix whose cached reads the write makes obsolete
            (``/contacts/42`` for ``PUT /contacts/42``; ``/contacts`` for ``POST /contacts``).
    """

    method: str
    template: str
    is_read: bool
    is_idempotent: bool
    resource: str | None


@lru_cache(maxsize=4096)
def classify(method: str, path: str) -> RequestKind:
    """Classify a request by its method and path (without query string).

    Memoised like :func:`path_template` (a hot record's every read classifies the same path,
    twice for a cached read); a :class:`RequestKind` is immutable, so one may be shared.
    """
    method = method.upper()
    path = "/" + path.split("?", 1)[0].strip("/")
    template = path_template(path)
    read_only_post = method == "POST" and template in READ_ONLY_POSTS
    is_read = method in _READ_METHODS or read_only_post
    is_idempotent = method in IDEMPOTENT_METHODS or read_only_post
    return RequestKind(
        method=method,
        template=template,
        is_read=is_read,
        is_idempotent=is_idempotent,
        resource=None if is_read else _written_resource(path),
    )


def _written_resource(path: str) -> str:
    """The resource a write touches: the first identifier-bearing prefix, else the collection.

    ``PUT /contacts/42`` and ``POST /contacts/42/tags`` both touch ``/contacts/42``;
    ``POST /contacts`` touches ``/contacts`` (list and search results of the collection).
    """
    segments = [s for s in path.split("/") if s]
    for i, segment in enumerate(segments):
        if segment not in LITERAL_SEGMENTS:
            return "/" + "/".join(segments[: i + 1])
    return "/" + "/".join(segments[:1])


def credentials_fingerprint(token: str, base_url: str = "") -> str:
    """A stable, non-reversible name for a set of credentials (never the token itself).

    Used in cache and limiter keys and in logs, so that two clients with different tokens never
    share data and a fleet with the same token shares one budget. SHA-256 over a domain-separated
    string; 16 hex digits are plenty to tell workspaces apart and too few to brute-force anything.
    """
    digest = hashlib.sha256(f"intercom-resilience\x00{base_url}\x00{token}".encode())
    return digest.hexdigest()[:16]


def is_collection_read(kind: RequestKind) -> bool:
    """A search or a list (``POST /contacts/search``, ``GET /contacts``, ``GET
    /contacts/{id}/notes``): the reads worth coalescing across the fleet. Reads of one record
    (``GET /contacts/{id}``, ``GET /me``) are cheap and excluded."""
    if not kind.is_read:
        return False
    if kind.method == "POST":  # the read-only POSTs are searches
        return True
    return not kind.template.endswith("}") and kind.template != "/me"
