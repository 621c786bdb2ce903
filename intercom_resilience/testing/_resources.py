"""Stateful resource families built on the description: create, find, list, update, delete.

Most of Intercom's resources behave alike: ``POST /things`` creates one, ``GET /things/{id}``
finds it, ``PUT`` updates it, ``DELETE`` answers a "deleted object", ``GET /things`` lists them
page by page. A :class:`Family` names those operations; the generic handlers here keep the
records in the workspace (the workspace's records) and render every answer from the
operation's own response schema with the record's fields echoed (:func:`~._openapi.generate`), so
a created article is found, listed, searched, updated and deleted with its own title, and every
body stays valid against the 2.16 schema of the operation that answers it.

A record stores the full body the create operation answered, so generated fields (``url``,
``workspace_id``...) stay the same from one request to the next; updates merge the request's
fields; ``created_at``/``updated_at`` follow the fake's clock.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._openapi import Operation, check, generate, operations, resolve
from ._responses import ApiFailure
from ._routes import Handler, Request, Result, cursor_page, search_body
from ._search import SearchSpec, compile_query
from ._state import Stored, Workspace

__all__ = ["FAMILIES", "STATEFUL", "Family", "list_body", "render"]

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Family:
    """The operations of one resource kind (``"METHOD /template"`` keys; any may be absent)."""

    name: str
    create: str | None = None
    find: str | None = None
    update: str | None = None
    delete: str | None = None
    list: str | None = None
    not_found: str = "Resource Not Found"
    #: extra fields stamped on every new record
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: fields a request implies under another name (an article's ``parent_id`` is its answer's
    #: ``parent_ids``), derived on create and update
    derive: Callable[[Mapping[str, Any]], JSON] | None = None


def _article_parents(fields: Mapping[str, Any]) -> JSON:
    # Creation takes an integer parent_id, an update a string one (the 2.16 request schemas).
    parent = fields.get("parent_id")
    if isinstance(parent, str) and parent.isdigit():
        parent = int(parent)
    if isinstance(parent, int) and not isinstance(parent, bool):
        return {"parent_ids": [parent]}
    return {"parent_ids": []} if "parent_id" in fields else {}


FAMILIES: tuple[Family, ...] = (
    Family(
        "articles",
        "POST /articles",
        "GET /articles/{article_id}",
        "PUT /articles/{article_id}",
        "DELETE /articles/{article_id}",
        "GET /articles",
        "Article not found",
        derive=_article_parents,
    ),
    Family(
        "internal_articles",
        "POST /internal_articles",
        "GET /internal_articles/{internal_article_id}",
        "PUT /internal_articles/{internal_article_id}",
        "DELETE /internal_articles/{internal_article_id}",
        "GET /internal_articles",
        "Internal article not found",
    ),
    Family(
        "collections",
        "POST /help_center/collections",
        "GET /help_center/collections/{collection_id}",
        "PUT /help_center/collections/{collection_id}",
        "DELETE /help_center/collections/{collection_id}",
        "GET /help_center/collections",
        "Collection not found",
    ),
    Family(
        "news_items",
        "POST /news/news_items",
        "GET /news/news_items/{news_item_id}",
        "PUT /news/news_items/{news_item_id}",
        "DELETE /news/news_items/{news_item_id}",
        "GET /news/news_items",
        "News item not found",
    ),
    Family(
        "ticket_types",
        "POST /ticket_types",
        "GET /ticket_types/{ticket_type_id}",
        "PUT /ticket_types/{ticket_type_id}",
        None,
        "GET /ticket_types",
        "Ticket type not found",
    ),
    Family(
        "data_attributes",
        "POST /data_attributes",
        None,
        "PUT /data_attributes/{data_attribute_id}",
        None,
        "GET /data_attributes",
        "We couldn't find that data attribute to update",
    ),
    Family(
        "content_snippets",
        "POST /content_snippets",
        "GET /content_snippets/{id}",
        "PUT /content_snippets/{id}",
        "DELETE /content_snippets/{id}",
        "GET /content_snippets",
        "Content snippet not found",
    ),
    Family(
        "tickets",
        "POST /tickets",
        "GET /tickets/{ticket_id}",
        "PUT /tickets/{ticket_id}",
        "DELETE /tickets/{ticket_id}",
        None,
        "Ticket not found",
    ),
    Family(
        "ai_content_import_sources",
        "POST /ai/content_import_sources",
        "GET /ai/content_import_sources/{source_id}",
        "PUT /ai/content_import_sources/{source_id}",
        "DELETE /ai/content_import_sources/{source_id}",
        "GET /ai/content_import_sources",
    ),
    Family(
        "ai_external_pages",
        "POST /ai/external_pages",
        "GET /ai/external_pages/{page_id}",
        "PUT /ai/external_pages/{page_id}",
        "DELETE /ai/external_pages/{page_id}",
        "GET /ai/external_pages",
    ),
)


@functools.cache
def _ops() -> dict[str, Operation]:
    return {op.key: op for op in operations()}


def _op(key: str) -> Operation:
    return _ops()[key]


def _last_param(operation: Operation) -> str:
    return [s[1:-1] for s in operation.path.split("/") if s.startswith("{")][-1]


def render(operation: Operation, fields: Mapping[str, Any]) -> Any:
    """The success body of *operation*, echoing *fields* wherever they fit."""
    schema = operation.response_schema()
    return None if schema is None else generate(schema, fields)


def _array_key(schema: Any) -> tuple[str, JSON] | None:
    """The top-level array property of a list schema whose items are objects, and its item."""
    resolved = resolve(schema)
    for name, sub in resolved.get("properties", {}).items():
        prop = resolve(sub)
        kinds = prop.get("type")
        if kinds == "array" or (isinstance(kinds, list) and "array" in kinds):
            return name, prop.get("items", {})
    return None


def _pages(schema: Any, page: int, per_page: int, total: int, cursor: str | None) -> Any:
    pages: JSON = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": max(1, math.ceil(total / per_page)) if per_page else 1,
    }
    prop = resolve(schema)
    next_schema = resolve(prop.get("properties", {}).get("next", {}))
    if cursor is not None:
        kinds = next_schema.get("type")
        if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
            pages["next"] = f"https://api.intercom.io/?starting_after={cursor}"
        else:
            pages["next"] = {"per_page": per_page, "starting_after": cursor}
    # Keep only what this list's ``pages`` schema describes.
    allowed = prop.get("properties", {})
    trimmed = {k: v for k, v in pages.items() if k in allowed}
    return trimmed if check(schema, trimmed) is None else generate(schema)


def list_body(
    operation: Operation,
    records: Sequence[Stored],
    req: Request | None,
    *,
    per_page_default: int = 50,
    hints: Mapping[str, Any] | None = None,
    item: Callable[[Stored, JSON], Any] | None = None,
) -> JSON:
    """A list answer of *operation* holding *records*, paged by ``per_page`` and a cursor.

    ``page`` numbers pages where the operation or the caller uses a ``page`` parameter; else the
    ``starting_after`` cursor (query or body) pages it, as Intercom's cursor lists do.
    """
    schema = operation.response_schema()
    body = generate(schema, hints or {})
    found = _array_key(schema)
    if not isinstance(body, dict) or found is None:
        return body if isinstance(body, dict) else {}
    key, item_schema = found
    per_page = per_page_default
    page = 1
    cursor: str | None = None
    items: Sequence[Stored] = records
    if req is not None:
        # Page numbers where the operation documents them, or where the caller sends one (the
        # SDK's pagers do on lists whose description omits the parameter).
        numbered = any(p.name == "page" for p in operation.params) or req.query("page") is not None
        per_page = req.query_int("per_page", per_page_default, 150)
        if numbered:
            page = req.query_int("page", 1, 1_000_000)
            items = records[(page - 1) * per_page : page * per_page]
        else:
            items, pages = cursor_page(records, per_page, req.query("starting_after"))
            page = pages["page"]
            cursor = (pages.get("next") or {}).get("starting_after")
    if item is None:
        body[key] = [generate(item_schema, r.fields) for r in items]
    else:
        body[key] = [item(r, item_schema) for r in items]
    if "total_count" in body:
        body["total_count"] = len(records)
    if "pages" in body:
        pages_schema = resolve(schema).get("properties", {}).get("pages", {})
        body["pages"] = _pages(pages_schema, page, per_page, len(records), cursor)
    return body


def _not_found(operation: Operation, message: str) -> ApiFailure:
    codes = operation.responses.get("404", {}).get("codes", ())
    code = next((c for c in codes if c.endswith("not_found")), "not_found")
    return ApiFailure(404, code, message)


def find_record(
    ws: Workspace, family: str, record_id: str, operation: Operation, message: str
) -> Stored:
    """The record *record_id* of *family* (404 with the operation's documented code)."""
    found = ws.records.setdefault(family, {}).get(str(record_id))
    if found is None:
        raise _not_found(operation, message)
    return found


def _fields(req: Request) -> JSON:
    body = req.json() if req.body.strip() else {}
    return dict(body)


def _create(family: Family, operation: Operation) -> Handler:
    def handle(req: Request) -> Result:
        ws = req.workspace
        record_id = ws.number_id()
        fields: JSON = {**family.defaults, **_fields(req), **req.params}
        if family.derive is not None:
            fields.update(family.derive(fields))
        fields.update(id=record_id, created_at=req.now, updated_at=req.now)
        stored = Stored(record_id, req.now, {})
        body = render(operation, fields)
        stored.fields = {**fields, **body} if isinstance(body, dict) else fields
        ws.records.setdefault(family.name, {})[record_id] = stored
        return Result(int(operation.success), body, True)

    return handle


def _find(family: Family, operation: Operation) -> Handler:
    name = _last_param(operation)

    def handle(req: Request) -> Result:
        stored = find_record(
            req.workspace, family.name, req.params[name], operation, family.not_found
        )
        return Result(int(operation.success), render(operation, stored.fields))

    return handle


def _update(family: Family, operation: Operation) -> Handler:
    name = _last_param(operation)

    def handle(req: Request) -> Result:
        stored = find_record(
            req.workspace, family.name, req.params[name], operation, family.not_found
        )
        changes = {k: v for k, v in _fields(req).items() if k != "id"}
        if family.derive is not None:
            changes.update(family.derive(changes))
        stored.fields.update(changes, updated_at=req.now)
        return Result(int(operation.success), render(operation, stored.fields), True)

    return handle


def _delete(family: Family, operation: Operation) -> Handler:
    name = _last_param(operation)

    def handle(req: Request) -> Result:
        ws = req.workspace
        stored = find_record(ws, family.name, req.params[name], operation, family.not_found)
        del ws.records[family.name][stored.id]
        body = render(operation, {**stored.fields, "deleted": True})
        return Result(int(operation.success), body, True)

    return handle


def _list(family: Family, operation: Operation) -> Handler:
    def handle(req: Request) -> Result:
        records = list(req.workspace.records.setdefault(family.name, {}).values())
        return Result(200, list_body(operation, records, req))

    return handle


def _family_handlers() -> dict[str, Handler]:
    out: dict[str, Handler] = {}
    for family in FAMILIES:
        for key, build in (
            (family.create, _create),
            (family.find, _find),
            (family.update, _update),
            (family.delete, _delete),
            (family.list, _list),
        ):
            if key is not None:
                out[key] = build(family, _op(key))
    return out


# -- searches ------------------------------------------------------------------------------------


def search_articles(req: Request) -> Result:
    """``GET /articles/search?phrase=...``: articles whose title or body contains the phrase."""
    operation = _op("GET /articles/search")
    phrase = (req.query("phrase") or "").lower()
    state = req.query("state")
    found = [
        r
        for r in req.workspace.records.setdefault("articles", {}).values()
        if phrase in f"{r.fields.get('title') or ''} {r.fields.get('body') or ''}".lower()
        and (state is None or r.fields.get("state") == state)
    ]
    body = generate(operation.response_schema())
    item_schema = resolve(resolve(_op("GET /articles/search").response_schema()))
    data_schema = resolve(item_schema.get("properties", {}).get("data", {}))
    articles_schema = resolve(data_schema.get("properties", {}).get("articles", {}))
    body["total_count"] = len(found)
    body["data"]["articles"] = [generate(articles_schema.get("items", {}), r.fields) for r in found]
    if "highlights" in body["data"]:
        body["data"]["highlights"] = []
    return Result(200, body)


def _dotted(record: Mapping[str, Any], name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# Ticket search accepts any field of the stored ticket (``ticket_attributes.x``, ``state``...).
_ANY_FIELD = SearchSpec(frozenset(), ("",), frozenset(), _dotted)


def search_tickets(req: Request) -> Result:
    """``POST /tickets/search``: Intercom's query language over the stored tickets."""
    operation = _op("POST /tickets/search")
    # "The default is `20` results per page" (the description of POST /tickets/search).
    query, per_page, starting_after = search_body(req, 20)
    predicate = compile_query(query, _ANY_FIELD)
    tickets = [
        r for r in req.workspace.records.setdefault("tickets", {}).values() if predicate(r.fields)
    ]
    page, pages = cursor_page(tickets, per_page, starting_after)
    out = list_body(operation, page, None)
    out["total_count"] = len(tickets)
    pages_schema = resolve(operation.response_schema()).get("properties", {}).get("pages", {})
    cursor = (pages.get("next") or {}).get("starting_after")
    out["pages"] = _pages(pages_schema, pages["page"], per_page, len(tickets), cursor)
    return Result(200, out)


def _all_handlers() -> dict[str, Handler]:
    handlers = _family_handlers()
    handlers["GET /articles/search"] = search_articles
    handlers["POST /tickets/search"] = search_tickets
    return handlers


#: ``"METHOD /template"`` to handler, for operations that keep state.
STATEFUL: dict[str, Handler] = _all_handlers()
