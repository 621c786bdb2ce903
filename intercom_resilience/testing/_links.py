"""Cross-resource operations: what links contacts, companies, tags, segments, subscriptions,
conversations, jobs and exports, kept consistent on both sides of every link.

Attaching a company to a contact shows in the contact's ``companies``, in the company's
``user_count`` and in ``GET /companies/{id}/contacts``; archiving a contact takes it out of
``GET /contacts`` and ``POST /contacts/search``; merging a lead into a user moves the lead's tags,
companies, subscriptions, notes, conversations and events to the user, and the lead then answers
``410 contact_merged`` with a ``Link`` to the user, as the 2.16 description documents for
``GET /contacts/{id}``; closing, snoozing, opening or assigning a conversation appends a part and
changes what find, list and search report.

Time-driven behaviour follows the fake's clock, so a ``VirtualClock`` test steps through it
without sleeping: a companies scroll expires after :data:`SCROLL_TTL_S` unused seconds, a job
reports ``success`` :data:`JOB_SECONDS` after it was queued, and a data export moves from
``pending`` to ``in_progress`` to ``completed`` over :data:`EXPORT_SECONDS`.
"""

from __future__ import annotations

import gzip
import math
import uuid
from collections.abc import Mapping
from typing import Any

from ._resources import STATEFUL
from ._responses import ApiFailure
from ._routes import Handler, Request, Result
from ._state import (
    Company,
    Contact,
    Conversation,
    Scroll,
    Segment,
    Stored,
    SubscriptionType,
    Workspace,
)

__all__ = ["EXPORT_SECONDS", "JOB_SECONDS", "LINKS", "SCROLL_PAGE", "SCROLL_TTL_S"]

JSON = dict[str, Any]

#: An unused scroll expires after a minute, as Intercom documents for ``GET /companies/scroll``.
SCROLL_TTL_S = 60
#: Companies per scroll page (Intercom's SDKs document 100 per ``scroll.next``).
SCROLL_PAGE = 100
#: Seconds after which a queued job (``POST /tickets/enqueue``) reports ``success``.
JOB_SECONDS = 1
#: Seconds a data export spends ``pending``, then until it is ``completed``.
EXPORT_SECONDS = (1, 10)
_API = "https://api.intercom.io"


def _invalid(message: str, field_name: str | None = None) -> ApiFailure:
    return ApiFailure(400, "parameter_invalid", message, field_name)


def _missing(code: str, message: str) -> ApiFailure:
    return ApiFailure(404, code, message)


def _number_pages(req: Request, total: int, default: int, maximum: int) -> tuple[int, int, JSON]:
    page = req.query_int("page", 1, 1_000_000)
    per_page = req.query_int("per_page", default, maximum)
    pages: JSON = {
        "type": "pages",
        "page": page,
        "per_page": per_page,
        "total_pages": max(1, math.ceil(total / per_page)),
        "next": None,
    }
    return (page - 1) * per_page, per_page, pages


# -- contacts and tags ---------------------------------------------------------------------------


def untag_contact(req: Request) -> Result:
    """``DELETE /contacts/{contact_id}/tags/{tag_id}``: the tag, no longer on the contact."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    tag = ws.tag(req.params["tag_id"])
    if tag.id in contact.tag_ids:
        contact.tag_ids.remove(tag.id)
    return Result(200, ws.tag_json(tag), True)


def delete_tag(req: Request) -> Result:
    """``DELETE /tags/{tag_id}``: gone from every contact, company and conversation too."""
    ws = req.workspace
    tag = ws.tag(req.params["tag_id"])
    del ws.tags[tag.id]
    holders: list[Contact | Company] = [*ws.contacts.values(), *ws.companies.values()]
    for holder in holders:
        if tag.id in holder.tag_ids:
            holder.tag_ids.remove(tag.id)
    for conversation in ws.conversations.values():
        conversation.tags = [t for t in conversation.tags if t["id"] != tag.id]
    return Result(200, None, True)


# -- contacts and companies ----------------------------------------------------------------------


def _company(ws: Workspace, company_id: Any) -> Company:
    found = ws.companies.get(str(company_id)) if isinstance(company_id, str | int) else None
    if found is None:
        raise _missing("company_not_found", "Company Not Found")
    return found


def list_contact_companies(req: Request) -> Result:
    """``GET /contacts/{contact_id}/companies``, page by page."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    start, per_page, pages = _number_pages(req, len(contact.company_ids), 50, 150)
    companies = [ws.companies[c] for c in contact.company_ids[start : start + per_page]]
    body = {
        "type": "list",
        "companies": [ws.company_json(c) for c in companies],
        "total_count": len(contact.company_ids),
        "pages": pages,
    }
    return Result(200, body)


def attach_company(req: Request) -> Result:
    """``POST /contacts/{contact_id}/companies`` with ``{"id": company id}``."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    company = _company(ws, req.json().get("id"))
    if company.id not in contact.company_ids:
        contact.company_ids.append(company.id)
    contact.updated_at = req.now
    return Result(200, ws.company_json(company), True)


def detach_company(req: Request) -> Result:
    """``DELETE /contacts/{contact_id}/companies/{company_id}``."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    company = _company(ws, req.params["company_id"])
    if company.id not in contact.company_ids:
        raise _missing("not_found", "The contact is not attached to that company")
    contact.company_ids.remove(company.id)
    contact.updated_at = req.now
    return Result(200, ws.company_json(company), True)


def list_company_contacts(req: Request) -> Result:
    """``GET /companies/{company_id}/contacts``: the contacts attached to a company."""
    ws = req.workspace
    company = _company(ws, req.params["company_id"])
    contacts = [c for c in ws.contacts.values() if company.id in c.company_ids and not c.archived]
    body = {
        "type": "list",
        "data": [ws.contact_json(c) for c in contacts],
        "total_count": len(contacts),
        "pages": {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1},
    }
    return Result(200, body)


def update_company(req: Request) -> Result:
    """``PUT /companies/{company_id}`` (Intercom's id): the fields of ``POST /companies``."""
    ws = req.workspace
    company = _company(ws, req.params["company_id"])
    body = {k: v for k, v in req.json().items() if k not in {"company_id", "id"}}
    updated = ws.create_or_update_company({**body, "company_id": company.company_id}, req.now)
    return Result(200, ws.company_json(updated), True)


def delete_company(req: Request) -> Result:
    """``DELETE /companies/{company_id}``: detached from its contacts, then gone."""
    ws = req.workspace
    company = _company(ws, req.params["company_id"])
    del ws.companies[company.id]
    for contact in ws.contacts.values():
        if company.id in contact.company_ids:
            contact.company_ids.remove(company.id)
    return Result(200, {"id": company.id, "object": "company", "deleted": True}, True)


def scroll_companies(req: Request) -> Result:
    """``GET /companies/scroll``: one open scroll per app, expiring after a minute unused.

    A request without ``scroll_param`` opens a scroll (400 ``scroll_exists`` while another one of
    the app is open); each page answers the same ``scroll_param``; the page after the last
    company is empty, and the scroll is then closed.
    """
    ws = req.workspace
    now = req.now
    param = req.query("scroll_param")
    scroll = ws.scrolls.get(req.app)
    if scroll is not None and now - scroll.last_used >= SCROLL_TTL_S:
        del ws.scrolls[req.app]
        scroll = None
    if not param:
        if scroll is not None:
            raise ApiFailure(
                400,
                "scroll_exists",
                "Only one scroll per app can be open at a time: finish it, or wait a minute "
                "for it to expire",
            )
        scroll = Scroll(str(uuid.UUID(int=int(ws.hex_id(), 16), version=4)), 0, now)
        ws.scrolls[req.app] = scroll
    elif scroll is None or scroll.param != param:
        raise _invalid("scroll_param is unknown or has expired", "scroll_param")
    companies = list(ws.companies.values())[scroll.position : scroll.position + SCROLL_PAGE]
    scroll.position += len(companies)
    scroll.last_used = now
    if not companies:
        del ws.scrolls[req.app]
    body = {
        "type": "list",
        "data": [ws.company_json(c) for c in companies],
        "pages": None,
        "total_count": None,
        "scroll_param": scroll.param,
    }
    return Result(200, body)


# -- segments and subscriptions ------------------------------------------------------------------


def _members(ws: Workspace, segment: Segment) -> list[Contact]:
    return [c for c in ws.contacts.values() if c.role == segment.role and not c.archived]


def _segment_json(ws: Workspace, segment: Segment, *, count: bool) -> JSON:
    return {
        "type": "segment",
        "id": segment.id,
        "name": segment.name,
        "created_at": segment.created_at,
        "updated_at": segment.created_at,
        "person_type": "user" if segment.role == "user" else "contact",
        "count": len(_members(ws, segment)) if count else None,
    }


def list_segments(req: Request) -> Result:
    """``GET /segments`` (``include_count=true`` counts the members)."""
    ws = req.workspace
    count = (req.query("include_count") or "").lower() == "true"
    segments = [_segment_json(ws, s, count=count) for s in ws.segments.values()]
    return Result(200, {"type": "segment.list", "segments": segments, "pages": {}})


def find_segment(req: Request) -> Result:
    """``GET /segments/{segment_id}``."""
    ws = req.workspace
    segment = ws.segments.get(req.params["segment_id"])
    if segment is None:
        raise _missing("not_found", "Segment Not Found")
    return Result(200, _segment_json(ws, segment, count=True))


def contact_segments(req: Request) -> Result:
    """``GET /contacts/{contact_id}/segments``: the segments the contact belongs to."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    found = [
        _segment_json(ws, s, count=False)
        for s in ws.segments.values()
        if s.role == contact.role and not contact.archived
    ]
    return Result(200, {"type": "list", "data": found})


def _subscription_json(kind: SubscriptionType) -> JSON:
    translation = {"name": kind.name, "description": kind.description, "locale": "en"}
    return {
        "type": "subscription",
        "id": kind.id,
        "state": "live",
        "default_translation": translation,
        "translations": [dict(translation)],
        "consent_type": kind.consent_type,
        "content_types": ["email"],
    }


def _subscription(ws: Workspace, subscription_id: Any) -> SubscriptionType:
    found = ws.subscription_types.get(str(subscription_id))
    if found is None:
        raise _missing("not_found", "Subscription type not found")
    return found


def list_subscription_types(req: Request) -> Result:
    """``GET /subscription_types``: the workspace's (two are seeded)."""
    kinds = [_subscription_json(k) for k in req.workspace.subscription_types.values()]
    return Result(200, {"type": "list", "data": kinds})


def contact_subscriptions(req: Request) -> Result:
    """``GET /contacts/{contact_id}/subscriptions``: the types the contact is attached to."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    kinds = [_subscription_json(ws.subscription_types[s]) for s in contact.subscription_ids]
    return Result(200, {"type": "list", "data": kinds})


def attach_subscription(req: Request) -> Result:
    """``POST /contacts/{contact_id}/subscriptions`` with ``{"id", "consent_type"}``."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    body = req.json()
    if body.get("consent_type") not in {"opt_in", "opt_out"}:
        raise _invalid("consent_type must be opt_in or opt_out", "consent_type")
    kind = _subscription(ws, body.get("id"))
    if kind.id not in contact.subscription_ids:
        contact.subscription_ids.append(kind.id)
    return Result(200, _subscription_json(kind), True)


def detach_subscription(req: Request) -> Result:
    """``DELETE /contacts/{contact_id}/subscriptions/{subscription_id}``."""
    ws = req.workspace
    contact = ws.contact(req.params["contact_id"])
    kind = _subscription(ws, req.params["subscription_id"])
    if kind.id in contact.subscription_ids:
        contact.subscription_ids.remove(kind.id)
    return Result(200, _subscription_json(kind), True)


# -- notes ---------------------------------------------------------------------------------------


def find_note(req: Request) -> Result:
    """``GET /notes/{note_id}``."""
    ws = req.workspace
    note = next((n for n in ws.notes if n.id == req.params["note_id"]), None)
    if note is None:
        raise _missing("not_found", "Note not found")
    return Result(200, ws.note_json(note))


# -- archive, merge ------------------------------------------------------------------------------


def _archive(req: Request, archived: bool) -> Result:
    contact = req.workspace.contact(req.params["contact_id"])
    contact.archived = archived
    contact.updated_at = req.now
    body = {
        "type": "contact",
        "id": contact.id,
        "external_id": contact.external_id,
        "archived": archived,
    }
    return Result(200, body, True)


def archive_contact(req: Request) -> Result:
    """``POST /contacts/{contact_id}/archive``: still found by id, gone from lists and search."""
    return _archive(req, True)


def unarchive_contact(req: Request) -> Result:
    """``POST /contacts/{contact_id}/unarchive``."""
    return _archive(req, False)


def _canonical(ws: Workspace, contact_id: str) -> str | None:
    # The description: the Link header names the final target, "resolving multi-hop merge
    # chains (up to 3 hops)".
    target = ws.merged_into.get(contact_id)
    for _ in range(2):
        if target is None or target not in ws.merged_into:
            break
        target = ws.merged_into[target]
    return target


def _gone_if_merged(ws: Workspace, contact_id: str) -> None:
    target = _canonical(ws, contact_id)
    if target is not None:
        raise ApiFailure(
            410,
            "contact_merged",
            "This contact has been merged. See the 'Link' header for the canonical contact.",
            headers=(("Link", f'</contacts/{target}>; rel="canonical"'),),
        )


def show_contact(req: Request) -> Result:
    """``GET /contacts/{contact_id}``: a merged lead answers ``410 contact_merged``."""
    ws = req.workspace
    _gone_if_merged(ws, req.params["contact_id"])
    contact = ws.contact(req.params["contact_id"])
    return Result(200, _with_history(ws, contact, req))


def _with_history(ws: Workspace, contact: Contact, req: Request) -> JSON:
    body = ws.contact_json(contact)
    if (req.query("include_merge_history") or "").lower() == "true" and contact.role == "user":
        body["merge_history"] = [_history_item(lead, at) for lead, at in contact.merged_from]
    return body


def _history_item(lead_id: str, merged_at: int) -> JSON:
    return {
        "type": "merge_history",
        "source_contact_id": lead_id,
        "source_contact_role": "lead",
        "merged_at": merged_at,
    }


def merge_contacts(req: Request) -> Result:
    """``POST /contacts/merge``: a lead (``from``) into a user (``into``).

    The user keeps its own values and gains what it lacks from the lead; the lead's tags,
    companies, subscriptions, notes, conversations and events move to the user; the lead is
    gone (``410`` on ``GET /contacts/{id}``, absent from lists and search).
    """
    ws = req.workspace
    body = req.json()
    lead = ws.contacts.get(str(body.get("from")))
    user = ws.contacts.get(str(body.get("into")))
    if lead is None or lead.role != "lead":
        raise ApiFailure(400, "invalid_merge", "from must be the id of a lead", "from")
    if user is None or user.role != "user":
        raise ApiFailure(400, "invalid_merge", "into must be the id of a user", "into")
    for name in ("email", "phone", "name", "avatar", "language_override"):
        if getattr(user, name) is None:
            setattr(user, name, getattr(lead, name))
    for key, value in lead.custom_attributes.items():
        user.custom_attributes.setdefault(key, value)
    for ids_of_user, ids_of_lead in (
        (user.tag_ids, lead.tag_ids),
        (user.company_ids, lead.company_ids),
        (user.subscription_ids, lead.subscription_ids),
    ):
        ids_of_user.extend(i for i in ids_of_lead if i not in ids_of_user)
    for note in ws.notes:
        if note.contact_id == lead.id:
            note.contact_id = user.id
    for event in ws.events:
        if event.contact_id == lead.id:
            event.contact_id = user.id
    for conversation in ws.conversations.values():
        if lead.id in conversation.contact_ids:
            conversation.contact_ids = [
                user.id if c == lead.id else c for c in conversation.contact_ids
            ]
            conversation.contact_ids = list(dict.fromkeys(conversation.contact_ids))
    del ws.contacts[lead.id]
    ws.merged_into[lead.id] = user.id
    user.merged_from.append((lead.id, req.now))
    user.updated_at = req.now
    return Result(200, _with_history(ws, user, req), True)


def merge_history(req: Request) -> Result:
    """``GET /contacts/{id}/merge_history``: the leads merged into a user, oldest first."""
    ws = req.workspace
    contact = ws.contact(req.params["id"])
    items = [_history_item(lead, at) for lead, at in contact.merged_from]
    if (req.query("order") or "asc") == "desc":
        items.reverse()
    return Result(200, {"type": "list", "data": items, "next_cursor": None, "has_more": False})


# -- conversations -------------------------------------------------------------------------------


def _part(ws: Workspace, part_type: str, author: JSON, now: int, **extra: Any) -> JSON:
    body = extra.pop("body", None)
    return {
        "type": "conversation_part",
        "id": ws.number_id(),
        "part_type": part_type,
        "body": None if not body else f"<p>{body}</p>",
        "created_at": now,
        "updated_at": now,
        "notified_at": now,
        "assigned_to": extra.pop("assigned_to", None),
        "author": {**author, "from_ai_agent": False, "is_ai_answer": False},
        "attachments": [],
        "external_id": None,
        "redacted": False,
        "state": extra.pop("state", "open"),
    }


def _admin_author(ws: Workspace, admin_id: Any) -> JSON:
    admin = ws.admin(str(admin_id))
    return {"type": "admin", "id": admin.id, "name": admin.name, "email": admin.email}


def manage_conversation(req: Request) -> Result:
    """``POST /conversations/{conversation_id}/parts``: close, snooze, open or assign.

    Each appends a part (``close``, ``snoozed``, ``open``, ``assignment``) and changes the
    conversation's ``state``, ``open``, ``snoozed_until`` or assignees accordingly.
    """
    ws = req.workspace
    conversation = ws.conversation(req.params["conversation_id"])
    body = req.json()
    kind = body.get("message_type")
    author = _admin_author(ws, body.get("admin_id"))
    now = req.now
    if kind == "close":
        conversation.state, conversation.snoozed_until = "closed", None
        part = _part(ws, "close", author, now, body=body.get("body"), state="closed")
    elif kind == "snoozed":
        until = body.get("snoozed_until")
        if not isinstance(until, int) or isinstance(until, bool) or until <= now:
            raise _invalid("snoozed_until must be a time in the future", "snoozed_until")
        conversation.state, conversation.snoozed_until = "snoozed", until
        part = _part(ws, "snoozed", author, now, state="snoozed")
    elif kind == "open":
        conversation.state, conversation.snoozed_until = "open", None
        part = _part(ws, "open", author, now)
    elif kind == "assignment":
        target = _assign(ws, conversation, body)
        part = _part(
            ws,
            "assignment",
            author,
            now,
            body=body.get("body"),
            assigned_to=target,
            state=conversation.state,
        )
    else:  # pragma: no cover - the description's schema admits only the four kinds
        raise _invalid("message_type must be close, snoozed, open or assignment", "message_type")
    if author["id"] not in conversation.teammate_ids:
        conversation.teammate_ids.append(author["id"])
    conversation.parts.append(part)
    conversation.updated_at = max(conversation.updated_at, now)
    return Result(200, ws.conversation_json(conversation), True)


def _assign(ws: Workspace, conversation: Conversation, body: Mapping[str, Any]) -> JSON:
    assignee = str(body.get("assignee_id"))
    if body.get("type") == "team":
        if assignee != "0":
            ws.team(assignee)
        conversation.team_assignee_id = int(assignee) if assignee.isdigit() else None
        return {"type": "team", "id": assignee}
    if assignee != "0":  # 0 unassigns, as Intercom documents
        ws.admin(assignee)
    conversation.admin_assignee_id = int(assignee) if assignee.isdigit() else None
    return {"type": "admin", "id": assignee}


def untag_conversation(req: Request) -> Result:
    """``DELETE /conversations/{conversation_id}/tags/{tag_id}`` (by an admin)."""
    ws = req.workspace
    conversation = ws.conversation(req.params["conversation_id"])
    ws.admin(str(req.json().get("admin_id")))
    tag = ws.tags.get(req.params["tag_id"])
    if tag is None:
        raise _missing("tag_not_found", "Tag not found")
    conversation.tags = [t for t in conversation.tags if t["id"] != tag.id]
    return Result(200, ws.tag_json(tag), True)


def update_conversation(req: Request) -> Result:
    """``PUT /conversations/{conversation_id}``: ``read``, ``title``, ``custom_attributes``."""
    ws = req.workspace
    conversation = ws.conversation(req.params["conversation_id"])
    body = req.json()
    if "read" in body:
        conversation.read = bool(body["read"])
    if "title" in body:
        conversation.title = body["title"]
    attributes = body.get("custom_attributes")
    if isinstance(attributes, dict):
        conversation.custom_attributes.update(attributes)
    conversation.updated_at = max(conversation.updated_at, req.now)
    return Result(200, ws.conversation_json(conversation), True)


def delete_conversation(req: Request) -> Result:
    """``DELETE /conversations/{conversation_id}``: gone; ``/conversations/deleted`` lists it."""
    ws = req.workspace
    conversation = ws.conversation(req.params["conversation_id"])
    del ws.conversations[conversation.id]
    retain = (req.query("retain_metrics") or "true").lower() != "false"
    ws.deleted_conversations[conversation.id] = (req.now, retain)
    return Result(200, {"id": conversation.id, "object": "conversation", "deleted": True}, True)


# ``GET /conversations/deleted`` is in the 2.16 description (and Unstable) but in no earlier
# one (Intercom-OpenAPI descriptions/2.15/api.intercom.io.yaml has no such path), and the 2.16
# description documents its answer to older versions: 400 ``intercom_version_invalid``,
# "Requested resource is not available in current API version."
_DELETED_SINCE = (2, 16)


def _older_than(version: str | None, since: tuple[int, int]) -> bool:
    if version is None or not version[:1].isdigit():
        return False  # the app's default (2.16 here), Preview and Unstable have it
    major, _, minor = version.partition(".")
    return (int(major), int(minor or 0)) < since


def list_deleted_conversations(req: Request) -> Result:
    """``GET /conversations/deleted``: the ids of deleted conversations, newest first."""
    if _older_than(req.version, _DELETED_SINCE):
        raise ApiFailure(
            400,
            "intercom_version_invalid",
            "Requested resource is not available in current API version.",
        )
    ws = req.workspace
    deleted = sorted(
        ws.deleted_conversations.items(),
        key=lambda item: (item[1][0], int(item[0])),
        reverse=(req.query("order") or "desc") != "asc",
    )
    start, per_page, pages = _number_pages(req, len(deleted), 20, 60)
    items = [
        {"type": "conversation", "id": cid, "metrics_retained": kept, "deleted_at": at}
        for cid, (at, kept) in deleted[start : start + per_page]
    ]
    body = {
        "type": "conversations.list",
        "conversations": items,
        "total_count": len(deleted),
        "pages": pages,
    }
    return Result(200, body)


# -- jobs and data exports -----------------------------------------------------------------------


def _store(ws: Workspace, family: str, record_id: str, now: int, fields: JSON) -> Stored:
    stored = Stored(record_id, now, fields)
    ws.records.setdefault(family, {})[record_id] = stored
    return stored


def _job_json(job: Stored, now: int) -> JSON:
    done = now - job.created_at >= JOB_SECONDS
    ticket = job.fields["resource_id"]
    return {
        "type": "job",
        "id": job.id,
        "url": f"{_API}/jobs/status/{job.id}",
        "status": "success" if done else "pending",
        "resource_type": "ticket",
        "resource_id": ticket if done else None,
        "resource_url": f"{_API}/tickets/{ticket}" if done else None,
    }


def enqueue_ticket(create: Handler) -> Handler:
    """``POST /tickets/enqueue``: the ticket is created by *create*, its job reports it later."""

    def handle(req: Request) -> Result:
        created = create(req)
        ws = req.workspace
        job = _store(ws, "jobs", ws.number_id(), req.now, {"resource_id": created.body["id"]})
        return Result(200, _job_json(job, req.now), True)

    handle.__doc__ = enqueue_ticket.__doc__
    return handle


def job_status(req: Request) -> Result:
    """``GET /jobs/status/{job_id}``: ``pending``, then ``success`` with the ticket's id."""
    job = req.workspace.records.get("jobs", {}).get(req.params["job_id"])
    if job is None:
        raise _missing("job_not_found", "Job Not Found")
    return Result(200, _job_json(job, req.now))


def _export_status(export: Stored, now: int) -> str:
    if export.fields.get("canceled"):
        return "canceled"
    age = now - export.created_at
    pending, total = EXPORT_SECONDS
    return "pending" if age < pending else "in_progress" if age < total else "completed"


def _export_json(export: Stored, now: int) -> JSON:
    status = _export_status(export, now)
    done = status == "completed"
    return {
        "job_identifier": export.id,
        "status": status,
        "download_expires_at": str(export.created_at + EXPORT_SECONDS[1] + 86_400) if done else "",
        "download_url": f"{_API}/download/content/data/{export.id}" if done else "",
    }


def _export(req: Request) -> Stored:
    found = req.workspace.records.get("data_exports", {}).get(req.params["job_identifier"])
    if found is None:
        raise _missing("not_found", "Export job not found")
    return found


def create_export(req: Request) -> Result:
    """``POST /export/content/data``: one active job per workspace, as Intercom documents."""
    ws = req.workspace
    body = req.json()
    if body["created_at_after"] > body["created_at_before"]:
        raise _invalid("created_at_after must not be later than created_at_before")
    active = [
        e
        for e in ws.records.get("data_exports", {}).values()
        if _export_status(e, req.now) in {"pending", "in_progress"}
    ]
    if active:
        raise ApiFailure(
            429,
            "rate_limit_exceeded",
            "Exceeded rate limit of 1 pending message data export jobs",
        )
    identifier = f"{int(ws.hex_id(), 16):x}"[-16:]
    export = _store(ws, "data_exports", identifier, req.now, dict(body))
    return Result(200, _export_json(export, req.now), True)


def find_export(req: Request) -> Result:
    """``GET /export/content/data/{job_identifier}``: where the export stands."""
    return Result(200, _export_json(_export(req), req.now))


def cancel_export(req: Request) -> Result:
    """``POST /export/cancel/{job_identifier}``: a job not yet completed is ``canceled``."""
    export = _export(req)
    if _export_status(export, req.now) != "completed":
        export.fields["canceled"] = True
    return Result(200, _export_json(export, req.now), True)


def download_export(req: Request) -> Result:
    """``GET /download/content/data/{job_identifier}``: the gzipped CSV, once completed."""
    export = _export(req)
    if _export_status(export, req.now) != "completed":
        raise _missing("not_found", "The export is not completed")
    csv = b"ruleset_id,content_id,content_type,content_title,user_id,receipt_id,received_at\n"
    return Result(200, None, raw=gzip.compress(csv, mtime=0), content_type="application/gzip")


def _links() -> dict[str, Handler]:
    return {
        "DELETE /contacts/{contact_id}/tags/{tag_id}": untag_contact,
        "DELETE /tags/{tag_id}": delete_tag,
        "GET /contacts/{contact_id}/companies": list_contact_companies,
        "POST /contacts/{contact_id}/companies": attach_company,
        "DELETE /contacts/{contact_id}/companies/{company_id}": detach_company,
        "GET /companies/{company_id}/contacts": list_company_contacts,
        "PUT /companies/{company_id}": update_company,
        "DELETE /companies/{company_id}": delete_company,
        "GET /companies/scroll": scroll_companies,
        "GET /segments": list_segments,
        "GET /segments/{segment_id}": find_segment,
        "GET /contacts/{contact_id}/segments": contact_segments,
        "GET /subscription_types": list_subscription_types,
        "GET /contacts/{contact_id}/subscriptions": contact_subscriptions,
        "POST /contacts/{contact_id}/subscriptions": attach_subscription,
        "DELETE /contacts/{contact_id}/subscriptions/{subscription_id}": detach_subscription,
        "GET /notes/{note_id}": find_note,
        "POST /contacts/{contact_id}/archive": archive_contact,
        "POST /contacts/{contact_id}/unarchive": unarchive_contact,
        "GET /contacts/{contact_id}": show_contact,
        "POST /contacts/merge": merge_contacts,
        "GET /contacts/{id}/merge_history": merge_history,
        "POST /conversations/{conversation_id}/parts": manage_conversation,
        "DELETE /conversations/{conversation_id}/tags/{tag_id}": untag_conversation,
        "PUT /conversations/{conversation_id}": update_conversation,
        "DELETE /conversations/{conversation_id}": delete_conversation,
        "GET /conversations/deleted": list_deleted_conversations,
        "POST /tickets/enqueue": enqueue_ticket(STATEFUL["POST /tickets"]),
        "GET /jobs/status/{job_id}": job_status,
        "POST /export/content/data": create_export,
        "GET /export/content/data/{job_identifier}": find_export,
        "POST /export/cancel/{job_identifier}": cancel_export,
        "GET /download/content/data/{job_identifier}": download_export,
    }


#: ``"METHOD /template"`` to handler, for the cross-resource operations (these win over
#: :data:`~._routes.ROUTES`, whose ``GET /contacts/{contact_id}`` knows nothing of merges).
LINKS: Mapping[str, Handler] = _links()
