"""The API surface: which (method, path template) does what, and the JSON it answers.

Templates use the OpenAPI 2.16 names (``/contacts/{contact_id}``), which is also what the journal
records as ``template``. Handlers receive a :class:`Request` bound to the caller's workspace and
return a :class:`Result`; anything wrong is an :class:`ApiFailure`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from ._openapi import Operation
from ._responses import ApiFailure
from ._search import SearchSpec, compile_query
from ._state import Company, Contact, Conversation, Workspace

__all__ = ["ROUTES", "Request", "Result", "Route", "Router", "cursor_page"]

JSON = dict[str, Any]


def _invalid(message: str, field_name: str | None = None) -> ApiFailure:
    return ApiFailure(400, "parameter_invalid", message, field_name)


@dataclass(slots=True)
class Request:
    """One authenticated request, bound to the caller's workspace."""

    method: str
    path: str
    query_string: str
    body: bytes
    params: dict[str, str]
    workspace: Workspace
    app: str
    now: int
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def query(self, name: str) -> str | None:
        """The first value of query parameter *name*."""
        if not self.query_string:
            return None
        values = parse_qs(self.query_string, keep_blank_values=True).get(name)
        return values[0] if values else None

    def query_int(self, name: str, default: int, maximum: int) -> int:
        """An integer query parameter within ``1..maximum``."""
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(f"{name} must be an integer", name) from None
        if not 1 <= value <= maximum:
            raise _invalid(f"{name} must be between 1 and {maximum}", name)
        return value

    def preset_json(self, value: Any) -> None:
        """Hand over the body already parsed by validation, so it is parsed once."""
        self._json = value
        self._parsed = True

    def json(self) -> JSON:
        """The body as a JSON object (an empty body is ``{}``); 400 when malformed."""
        if not self._parsed:
            self._parsed = True
            if self.body.strip():
                try:
                    self._json = json.loads(self.body)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    raise _invalid("Request body is not valid JSON") from None
            else:
                self._json = {}
        if not isinstance(self._json, dict):
            raise _invalid("Request body must be a JSON object")
        return self._json


@dataclass(frozen=True, slots=True)
class Result:
    """A handler's answer: status, JSON body (``None`` for an empty body), and whether it wrote.

    ``raw`` (with ``content_type``) replaces the JSON body for the few operations that answer
    something else (a transcript, a download); ``headers`` adds response headers (``Location``).
    """

    status: int
    body: Any
    changed_state: bool = False
    raw: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Result]


@dataclass(frozen=True, slots=True)
class Route:
    """A method and path template bound to a handler (and to its operation of the description)."""

    method: str
    template: str
    handler: Handler
    operation: Operation | None = field(default=None, compare=False)
    segments: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.template.strip("/").split("/")))


class _Node:
    __slots__ = ("literal", "param", "param_name", "routes", "template")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name: list[str] = []
        self.routes: dict[str, Route] = {}
        self.template: str | None = None


class Router:
    """Finds the route for a request; literal segments win over placeholders.

    A tree of path segments: matching costs one dictionary look-up per segment whatever the size
    of the table (the 231 operations of the description cost what the first 29 did), with
    backtracking to a placeholder when a literal branch dead-ends.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self._root = _Node()
        for route in routes:
            node = self._root
            names: list[str] = []
            for segment in route.segments:
                if segment.startswith("{") and segment.endswith("}"):
                    if node.param is None:
                        node.param = _Node()
                    node = node.param
                    names.append(segment[1:-1])
                else:
                    node = node.literal.setdefault(segment, _Node())
            # Two templates may name the same placeholder differently per method
            # (``/articles/{article_id}`` and ``/articles/{id}/draft`` share a segment); the
            # names are kept per route.
            if route.method not in node.routes:
                node.routes[route.method] = route
            node.template = node.template or route.template

    def _walk(self, segments: list[str], method: str | None) -> list[tuple[_Node, list[str]]]:
        found: list[tuple[_Node, list[str]]] = []

        def visit(node: _Node, index: int, values: list[str]) -> bool:
            if index == len(segments):
                if (method in node.routes) if method is not None else bool(node.routes):
                    found.append((node, values))
                    return True
                return False
            segment = segments[index]
            child = node.literal.get(segment)
            if child is not None and visit(child, index + 1, values):
                return True
            if node.param is not None and segment:
                return visit(node.param, index + 1, [*values, segment])
            return False

        visit(self._root, 0, [])
        return found

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and path parameters for *method* and *path*, or ``None``."""
        found = self._walk(path.strip("/").split("/"), method)
        if not found:
            return None
        node, values = found[0]
        route = node.routes[method]
        names = [s[1:-1] for s in route.segments if s.startswith("{")]
        return route, dict(zip(names, values, strict=True))

    def template_for(self, path: str) -> str | None:
        """The template of any route matching *path*, whatever the method (for the journal)."""
        found = self._walk(path.strip("/").split("/"), None)
        return found[0][0].template if found else None


# -- pagination ----------------------------------------------------------------------------------


def _encode_cursor(created_at: int, item_id: str) -> str:
    # Intercom's cursors are base64 of a JSON pair like [1719493757.0,"667d60a0..."]: opaque to
    # clients, and a cursor from one list is meaningless to another.
    return base64.b64encode(json.dumps([float(created_at), item_id]).encode()).decode()


def _decode_cursor(cursor: Any) -> str:
    if not isinstance(cursor, str):
        raise _invalid("starting_after must be a string", "starting_after")
    try:
        pair = json.loads(base64.b64decode(cursor.encode(), validate=True))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _invalid("starting_after is not a valid cursor", "starting_after") from None
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
        raise _invalid("starting_after is not a valid cursor", "starting_after")
    return pair[1]


def _cursor_page(
    items: Sequence[Any], per_page: int, starting_after: Any
) -> tuple[list[Any], JSON]:
    """Slice a list ordered by increasing id after the cursor; build the ``pages`` object."""
    remaining = list(items)
    if starting_after is not None and starting_after != "":
        after = _decode_cursor(starting_after)
        remaining = [item for item in items if _id_key(item.id) > _id_key(after)]
    before = len(items) - len(remaining)
    page_items = remaining[:per_page]
    pages: JSON = {
        "type": "pages",
        "page": before // per_page + 1,
        "per_page": per_page,
        "total_pages": max(1, math.ceil(len(items) / per_page)),
    }
    if len(remaining) > per_page:
        last = page_items[-1]
        pages["next"] = {
            "per_page": per_page,
            "starting_after": _encode_cursor(last.created_at, last.id),
        }
    return page_items, pages


#: Cursor paging for any list of records with ``id`` and ``created_at`` (the resource families).
cursor_page = _cursor_page


def _id_key(item_id: str) -> tuple[int, str]:
    # Ids of one kind share a length, and are handed out in increasing order.
    return len(item_id), item_id


def _numbered_page(items: Sequence[Any], page: int, per_page: int) -> tuple[list[Any], JSON]:
    start = (page - 1) * per_page
    pages: JSON = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": max(1, math.ceil(len(items) / per_page)),
    }
    return list(items[start : start + per_page]), pages


# -- admins, teams -------------------------------------------------------------------------------


def me(req: Request) -> Result:
    """``GET /me``: the workspace's first admin stands behind every token."""
    admin = next(iter(req.workspace.admins.values()))
    return Result(200, req.workspace.me_json(admin, app=req.app))


def list_admins(req: Request) -> Result:
    """``GET /admins``."""
    ws = req.workspace
    return Result(
        200, {"type": "admin.list", "admins": [ws.admin_json(a) for a in ws.admins.values()]}
    )


def find_admin(req: Request) -> Result:
    """``GET /admins/{admin_id}``."""
    ws = req.workspace
    return Result(200, ws.admin_json(ws.admin(req.params["admin_id"])))


def list_teams(req: Request) -> Result:
    """``GET /teams``."""
    ws = req.workspace
    return Result(200, {"type": "team.list", "teams": [ws.team_json(t) for t in ws.teams.values()]})


def find_team(req: Request) -> Result:
    """``GET /teams/{team_id}``."""
    ws = req.workspace
    return Result(200, ws.team_json(ws.team(req.params["team_id"])))


# -- contacts ------------------------------------------------------------------------------------

_CONTACT_DAY_FIELDS = frozenset(
    {
        "created_at",
        "signed_up_at",
        "updated_at",
        "last_seen_at",
        "last_contacted_at",
        "last_replied_at",
        "last_email_opened_at",
        "last_email_clicked_at",
        "ios_last_seen_at",
        "android_last_seen_at",
    }
)
_CONTACT_FIELDS = (
    frozenset(
        {
            "id",
            "role",
            "name",
            "avatar",
            "owner_id",
            "email",
            "email_domain",
            "phone",
            "external_id",
            "language_override",
            "browser",
            "browser_language",
            "os",
            "location.country",
            "location.region",
            "location.city",
            "unsubscribed_from_emails",
            "marked_email_as_spam",
            "has_hard_bounced",
            "ios_app_version",
            "ios_device",
            "ios_app_device",
            "ios_os_version",
            "ios_app_name",
            "ios_sdk_version",
            "android_app_version",
            "android_device",
            "android_app_name",
            "andoid_sdk_version",
            "segment_id",
            "tag_id",
            "company_id",
        }
    )
    | _CONTACT_DAY_FIELDS
)


def _dotted(record: Any, name: str) -> Any:
    value = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _contact_lookup(record: Any, name: str) -> Any:
    if name == "tag_id":
        return [t["id"] for t in record["tags"]["data"]]
    if name == "company_id":
        return [c["id"] for c in record["companies"]["data"]]
    if name == "segment_id":
        return []
    if name == "avatar":
        return (record.get("avatar") or {}).get("image_url")
    if name == "email" and record.get("email") == "":
        return None
    return _dotted(record, name)


CONTACT_SEARCH = SearchSpec(
    _CONTACT_FIELDS, ("custom_attributes.",), _CONTACT_DAY_FIELDS, _contact_lookup
)

_CONVERSATION_FIELDS = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "title",
        "source.type",
        "source.id",
        "source.delivered_as",
        "source.subject",
        "source.body",
        "source.author.id",
        "source.author.type",
        "source.author.name",
        "source.author.email",
        "source.url",
        "contact_ids",
        "teammate_ids",
        "admin_assignee_id",
        "team_assignee_id",
        "channel_initiated",
        "open",
        "read",
        "state",
        "waiting_since",
        "snoozed_until",
        "tag_ids",
        "priority",
        "ai_agent_participated",
    }
)


def _conversation_lookup(record: Any, name: str) -> Any:
    if name == "contact_ids":
        return [c["id"] for c in record["contacts"]["contacts"]]
    if name == "teammate_ids":
        return [t["id"] for t in record["teammates"]["teammates"]]
    if name == "tag_ids":
        return [t["id"] for t in record["tags"]["tags"]]
    return _dotted(record, name)


CONVERSATION_SEARCH = SearchSpec(
    _CONVERSATION_FIELDS,
    ("custom_attributes.", "statistics.", "conversation_rating."),
    frozenset(),
    _conversation_lookup,
)


def _search_body(req: Request) -> tuple[Any, int, Any]:
    body = req.json()
    if "query" not in body:
        raise _invalid("query is required", "query")
    pagination = body.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise _invalid("pagination must be an object", "pagination")
    per_page = pagination.get("per_page", 50)
    if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= 150:
        raise _invalid("per_page must be an integer between 1 and 150", "per_page")
    return body["query"], per_page, pagination.get("starting_after")


def list_contacts(req: Request) -> Result:
    """``GET /contacts`` with ``per_page`` and a ``starting_after`` cursor."""
    ws = req.workspace
    per_page = req.query_int("per_page", 50, 150)
    contacts = list(ws.contacts.values())
    page, pages = _cursor_page(contacts, per_page, req.query("starting_after"))
    return Result(
        200,
        {
            "type": "list",
            "data": [ws.contact_json(c) for c in page],
            "total_count": len(contacts),
            "pages": pages,
        },
    )


def search_contacts(req: Request) -> Result:
    """``POST /contacts/search``: the cursor travels in the body, not the query string."""
    ws = req.workspace
    query, per_page, starting_after = _search_body(req)
    predicate = compile_query(query, CONTACT_SEARCH)
    rendered = [(c, ws.contact_json(c)) for c in ws.contacts.values()]
    found: list[Contact] = [c for c, doc in rendered if predicate(doc)]
    page, pages = _cursor_page(found, per_page, starting_after)
    by_id = {c.id: doc for c, doc in rendered}
    return Result(
        200,
        {
            "type": "list",
            "data": [by_id[c.id] for c in page],
            "total_count": len(found),
            "pages": pages,
        },
    )


def create_contact(req: Request) -> Result:
    """``POST /contacts``."""
    ws = req.workspace
    return Result(200, ws.contact_json(ws.create_contact(req.json(), req.now)), True)


def find_contact(req: Request) -> Result:
    """``GET /contacts/{contact_id}``."""
    ws = req.workspace
    return Result(200, ws.contact_json(ws.contact(req.params["contact_id"])))


def find_contact_by_external_id(req: Request) -> Result:
    """``GET /contacts/find_by_external_id/{external_id}``."""
    ws = req.workspace
    return Result(200, ws.contact_json(ws.contact_by_external_id(req.params["external_id"])))


def update_contact(req: Request) -> Result:
    """``PUT /contacts/{contact_id}``."""
    ws = req.workspace
    contact = ws.update_contact(req.params["contact_id"], req.json(), req.now)
    return Result(200, ws.contact_json(contact), True)


def delete_contact(req: Request) -> Result:
    """``DELETE /contacts/{contact_id}``."""
    contact = req.workspace.delete_contact(req.params["contact_id"])
    return Result(
        200,
        {"type": "contact", "id": contact.id, "external_id": contact.external_id, "deleted": True},
        True,
    )


def list_contact_tags(req: Request) -> Result:
    """``GET /contacts/{contact_id}/tags``."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    return Result(200, {"type": "list", "data": [ws.tag_json(ws.tags[t]) for t in contact.tag_ids]})


def tag_contact(req: Request) -> Result:
    """``POST /contacts/{contact_id}/tags`` with ``{"id": tag_id}``."""
    ws = req.workspace
    body = req.json()
    if body.get("id") is None:
        raise _invalid("id is required", "id")
    return Result(200, ws.tag_json(ws.tag_contact(req.params["contact_id"], body["id"])), True)


def create_note(req: Request) -> Result:
    """``POST /contacts/{contact_id}/notes``."""
    ws = req.workspace
    return Result(
        200, ws.note_json(ws.create_note(req.params["contact_id"], req.json(), req.now)), True
    )


def list_notes(req: Request) -> Result:
    """``GET /contacts/{contact_id}/notes``: the contact's notes, newest first."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    notes = [ws.note_json(n) for n in reversed(ws.notes) if n.contact_id == contact.id]
    return Result(200, {"type": "list", "data": notes, "total_count": len(notes)})


# -- conversations -------------------------------------------------------------------------------


def list_conversations(req: Request) -> Result:
    """``GET /conversations`` with ``per_page`` and a ``starting_after`` cursor."""
    ws = req.workspace
    per_page = req.query_int("per_page", 20, 150)
    conversations = list(ws.conversations.values())
    page, pages = _cursor_page(conversations, per_page, req.query("starting_after"))
    return Result(
        200,
        {
            "type": "conversation.list",
            "conversations": [ws.conversation_json(c, parts=False) for c in page],
            "total_count": len(conversations),
            "pages": pages,
        },
    )


def search_conversations(req: Request) -> Result:
    """``POST /conversations/search``."""
    ws = req.workspace
    query, per_page, starting_after = _search_body(req)
    predicate = compile_query(query, CONVERSATION_SEARCH)
    rendered = [(c, ws.conversation_json(c, parts=False)) for c in ws.conversations.values()]
    found: list[Conversation] = [c for c, doc in rendered if predicate(doc)]
    page, pages = _cursor_page(found, per_page, starting_after)
    by_id = {c.id: doc for c, doc in rendered}
    return Result(
        200,
        {
            "type": "conversation.list",
            "conversations": [by_id[c.id] for c in page],
            "total_count": len(found),
            "pages": pages,
        },
    )


def create_conversation(req: Request) -> Result:
    """``POST /conversations``: answers with the Message, as Intercom does."""
    _, message = req.workspace.create_conversation(req.json(), req.now)
    return Result(200, message, True)


def find_conversation(req: Request) -> Result:
    """``GET /conversations/{conversation_id}``."""
    ws = req.workspace
    return Result(200, ws.conversation_json(ws.conversation(req.params["conversation_id"])))


def reply_conversation(req: Request) -> Result:
    """``POST /conversations/{conversation_id}/reply``."""
    ws = req.workspace
    conversation = ws.reply(req.params["conversation_id"], req.json(), req.now)
    return Result(200, ws.conversation_json(conversation), True)


def tag_conversation(req: Request) -> Result:
    """``POST /conversations/{conversation_id}/tags`` with ``{"id", "admin_id"}``."""
    ws = req.workspace
    body = req.json()
    for name in ("id", "admin_id"):
        if body.get(name) is None:
            raise _invalid(f"{name} is required", name)
    tag = ws.tag_conversation(req.params["conversation_id"], body["id"], body["admin_id"], req.now)
    return Result(200, ws.tag_json(tag), True)


# -- companies -----------------------------------------------------------------------------------


def _company_list(ws: Workspace, companies: list[Company], page: int, per_page: int) -> JSON:
    items, pages = _numbered_page(companies, page, per_page)
    return {
        "type": "list",
        "data": [ws.company_json(c) for c in items],
        "total_count": len(companies),
        "pages": pages,
    }


def retrieve_companies(req: Request) -> Result:
    """``GET /companies``: by ``company_id`` or ``name``, or all, page by page."""
    ws = req.workspace
    companies = list(ws.companies.values())
    company_id, name, tag_id = req.query("company_id"), req.query("name"), req.query("tag_id")
    if company_id is not None:
        companies = [ws.company_by_company_id(company_id)]
    if name is not None:
        companies = [c for c in companies if c.name == name]
        if not companies:
            raise ApiFailure(404, "not_found", "Company Not Found")
    if tag_id is not None:
        companies = [c for c in companies if tag_id in c.tag_ids]
    page = req.query_int("page", 1, 1_000_000)
    return Result(200, _company_list(ws, companies, page, req.query_int("per_page", 15, 60)))


def list_companies(req: Request) -> Result:
    """``POST /companies/list``: page-numbered; a page past the end is empty."""
    ws = req.workspace
    companies = sorted(
        ws.companies.values(), key=lambda c: c.created_at, reverse=req.query("order") != "asc"
    )
    page = req.query_int("page", 1, 1_000_000)
    return Result(200, _company_list(ws, companies, page, req.query_int("per_page", 15, 60)))


def create_or_update_company(req: Request) -> Result:
    """``POST /companies``."""
    ws = req.workspace
    return Result(200, ws.company_json(ws.create_or_update_company(req.json(), req.now)), True)


def find_company(req: Request) -> Result:
    """``GET /companies/{company_id}`` (Intercom's id)."""
    ws = req.workspace
    return Result(200, ws.company_json(ws.company(req.params["company_id"])))


# -- tags, events --------------------------------------------------------------------------------


def list_tags(req: Request) -> Result:
    """``GET /tags``."""
    ws = req.workspace
    return Result(200, {"type": "list", "data": [ws.tag_json(t) for t in ws.tags.values()]})


def find_tag(req: Request) -> Result:
    """``GET /tags/{tag_id}``."""
    ws = req.workspace
    return Result(200, ws.tag_json(ws.tag(req.params["tag_id"])))


def create_tag(req: Request) -> Result:
    """``POST /tags``."""
    tag, extra = req.workspace.create_or_update_tag(req.json())
    return Result(200, {**req.workspace.tag_json(tag), **extra}, True)


def create_event(req: Request) -> Result:
    """``POST /events``: 202 with an empty body."""
    req.workspace.create_event(req.json())
    return Result(202, None, True)


def list_events(req: Request) -> Result:
    """``GET /events?type=user&intercom_user_id=...`` (or ``user_id``/``email``)."""
    if req.query("type") != "user":
        raise _invalid("type must be 'user'", "type")
    contact = req.workspace.identify(
        req.query("intercom_user_id"), req.query("user_id"), req.query("email")
    )
    summary = (req.query("summary") or "").lower() == "true"
    return Result(200, req.workspace.events_json(contact, summary=summary))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/me", me),
    Route("GET", "/admins", list_admins),
    Route("GET", "/admins/{admin_id}", find_admin),
    Route("GET", "/teams", list_teams),
    Route("GET", "/teams/{team_id}", find_team),
    Route("GET", "/contacts", list_contacts),
    Route("POST", "/contacts", create_contact),
    Route("POST", "/contacts/search", search_contacts),
    Route("GET", "/contacts/find_by_external_id/{external_id}", find_contact_by_external_id),
    Route("GET", "/contacts/{contact_id}", find_contact),
    Route("PUT", "/contacts/{contact_id}", update_contact),
    Route("DELETE", "/contacts/{contact_id}", delete_contact),
    Route("GET", "/contacts/{contact_id}/tags", list_contact_tags),
    Route("POST", "/contacts/{contact_id}/tags", tag_contact),
    Route("GET", "/contacts/{contact_id}/notes", list_notes),
    Route("POST", "/contacts/{contact_id}/notes", create_note),
    Route("GET", "/conversations", list_conversations),
    Route("POST", "/conversations", create_conversation),
    Route("POST", "/conversations/search", search_conversations),
    Route("GET", "/conversations/{conversation_id}", find_conversation),
    Route("POST", "/conversations/{conversation_id}/reply", reply_conversation),
    Route("POST", "/conversations/{conversation_id}/tags", tag_conversation),
    Route("GET", "/companies", retrieve_companies),
    Route("POST", "/companies", create_or_update_company),
    Route("POST", "/companies/list", list_companies),
    Route("GET", "/companies/{company_id}", find_company),
    Route("GET", "/tags", list_tags),
    Route("POST", "/tags", create_tag),
    Route("GET", "/tags/{tag_id}", find_tag),
    Route("GET", "/events", list_events),
    Route("POST", "/events", create_event),
)
