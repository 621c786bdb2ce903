"""The in-memory Intercom: one :class:`Workspace` per workspace, holding its resources.

Methods take API-shaped input (the JSON bodies clients send), validate it the way Intercom does
(raising :class:`ApiFailure`) and keep every resource consistent: tagging a contact shows up in
the contact's ``tags``, a reply shows up in the conversation's parts and timestamps, deleting a
contact makes it unfindable. ``*_json`` methods render records exactly as the 2.16 API returns
them. Tests may call these methods directly to seed data without spending quota.
"""

from __future__ import annotations

import dataclasses
import html
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ._responses import ApiFailure

__all__ = [
    "Admin",
    "Company",
    "Contact",
    "Conversation",
    "DataEvent",
    "Stored",
    "Tag",
    "Team",
    "Workspace",
]

JSON = dict[str, Any]

_CONTACT_STRINGS = ("external_id", "email", "phone", "name", "avatar", "language_override")
_CONTACT_INTS = ("signed_up_at", "last_seen_at", "owner_id")


def _invalid(message: str, field_name: str | None = None) -> ApiFailure:
    return ApiFailure(400, "parameter_invalid", message, field_name)


def _not_found(message: str) -> ApiFailure:
    return ApiFailure(404, "not_found", message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if kind is int and not _is_int(value):
        raise _invalid(f"{name} must be an integer", name)
    if not isinstance(value, kind):
        raise _invalid(f"{name} has the wrong type", name)
    return value


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(f"{name} is required and must be a non-empty string", name)
    return value


def _attributes(value: Any, name: str = "custom_attributes") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{name} must be an object", name)
    for key, item in value.items():
        if item is not None and not isinstance(item, str | int | float | bool):
            raise _invalid(f"{name}.{key} must be a string, number or boolean", f"{name}.{key}")
    return dict(value)


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


@dataclass(slots=True)
class Admin:
    """A teammate of the workspace."""

    id: str
    name: str
    email: str
    job_title: str = ""
    team_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Team:
    """A team of admins."""

    id: str
    name: str
    admin_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Tag:
    """A tag, applicable to contacts, conversations and companies."""

    id: str
    name: str


@dataclass(slots=True)
class Contact:
    """A user or lead."""

    id: str
    role: str
    created_at: int
    updated_at: int
    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    avatar: str | None = None
    language_override: str | None = None
    owner_id: int | None = None
    signed_up_at: int | None = None
    last_seen_at: int | None = None
    last_replied_at: int | None = None
    last_contacted_at: int | None = None
    unsubscribed_from_emails: bool = False
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    tag_ids: list[str] = field(default_factory=list)
    company_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Company:
    """A company, created or updated by its ``company_id``."""

    id: str
    company_id: str
    created_at: int
    updated_at: int
    name: str | None = None
    plan: str | None = None
    size: int | None = None
    website: str | None = None
    industry: str | None = None
    monthly_spend: float | None = None
    remote_created_at: int | None = None
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    tag_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Conversation:
    """A conversation started by a contact."""

    id: str
    created_at: int
    updated_at: int
    source: JSON
    contact_ids: list[str]
    parts: list[JSON] = field(default_factory=list)
    tags: list[JSON] = field(default_factory=list)
    teammate_ids: list[str] = field(default_factory=list)
    state: str = "open"
    read: bool = False
    waiting_since: int | None = None
    admin_assignee_id: int | None = None
    first_contact_reply_at: int | None = None


@dataclass(slots=True)
class Stored:
    """A record of a description-driven resource family: its id, creation time and fields."""

    id: str
    created_at: int
    fields: JSON


@dataclass(slots=True)
class Note:
    """A note an admin added to a contact."""

    id: str
    contact_id: str
    admin_id: str
    body: str
    created_at: int


@dataclass(slots=True)
class DataEvent:
    """A data event submitted for a contact."""

    event_name: str
    created_at: int
    contact_id: str
    metadata: dict[str, Any]


_ADMIN_SEED = (("Ada Lovelace", "ada", "Support lead"), ("Grace Hopper", "grace", "Engineer"))


class Workspace:
    """All resources of one Intercom workspace.

    Args:
        name: the workspace id (``app.id_code`` in ``GET /me``).
        seed: seeds the identifiers, so two fakes built alike hand out the same ids.
        created_at: Unix time stamped on the seeded admins' app.
    """

    def __init__(self, name: str, *, seed: int = 0, created_at: int = 0) -> None:
        self.name = name
        self.created_at = created_at
        rng = random.Random(f"{seed}:{name}")
        self._hex_prefix = f"{rng.getrandbits(32):08x}"
        self._number = 1_000_000_000 + rng.randrange(100_000_000)
        self._hex_counter = 0
        self.admins: dict[str, Admin] = {}
        self.teams: dict[str, Team] = {}
        self.contacts: dict[str, Contact] = {}
        self.conversations: dict[str, Conversation] = {}
        self.companies: dict[str, Company] = {}
        self.tags: dict[str, Tag] = {}
        self.events: list[DataEvent] = []
        #: records of the description-driven resource families, by family then id
        self.records: dict[str, dict[str, Stored]] = {}
        self.notes: list[Note] = []
        admins = [
            self.add_admin(name=n, email=f"{e}@{name}.example", job_title=j)
            for n, e, j in _ADMIN_SEED
        ]
        self.add_team("Support", [a.id for a in admins])
        self.add_team("Escalations", [admins[1].id])

    # -- identifiers -----------------------------------------------------------------------------

    def hex_id(self) -> str:
        """A 24-hex-digit id like Intercom's contact and company ids, increasing."""
        self._hex_counter += 1
        return f"{self._hex_prefix}{self._hex_counter:016x}"

    def number_id(self) -> str:
        """A numeric id like Intercom's conversation, admin, team and tag ids, increasing."""
        self._number += 1
        return str(self._number)

    # -- admins and teams ------------------------------------------------------------------------

    def add_admin(self, *, name: str, email: str, job_title: str = "") -> Admin:
        """Add a teammate."""
        admin = Admin(self.number_id(), name, email, job_title)
        self.admins[admin.id] = admin
        return admin

    def add_team(self, name: str, admin_ids: list[str]) -> Team:
        """Add a team of existing admins."""
        team = Team(self.number_id(), name, list(admin_ids))
        self.teams[team.id] = team
        for admin_id in admin_ids:
            self.admins[admin_id].team_ids.append(team.id)
        return team

    def admin(self, admin_id: str) -> Admin:
        """The admin *admin_id* (404 when unknown)."""
        found = self.admins.get(str(admin_id))
        if found is None:
            raise _not_found("Admin not found")
        return found

    def admin_json(self, admin: Admin) -> JSON:
        """``admin`` schema."""
        return {
            "type": "admin",
            "id": admin.id,
            "name": admin.name,
            "email": admin.email,
            "job_title": admin.job_title,
            "away_mode_enabled": False,
            "away_mode_reassign": False,
            "away_status_reason_id": None,
            "has_inbox_seat": True,
            "team_ids": [int(t) for t in admin.team_ids],
            "avatar": None,
        }

    def me_json(self, admin: Admin, *, app: str) -> JSON:
        """``admin_with_app`` schema: the admin behind a token, with the workspace as ``app``."""
        return {
            "type": "admin",
            "id": admin.id,
            "name": admin.name,
            "email": admin.email,
            "job_title": admin.job_title,
            "away_mode_enabled": False,
            "away_mode_reassign": False,
            "has_inbox_seat": True,
            "team_ids": [int(t) for t in admin.team_ids],
            "avatar": {"type": "avatar", "image_url": None},
            "email_verified": True,
            "app": {
                "type": "app",
                "id_code": self.name,
                "name": app,
                "region": "US",
                "timezone": "Etc/UTC",
                "created_at": self.created_at,
                "identity_verification": False,
            },
        }

    def team(self, team_id: str) -> Team:
        """The team *team_id* (404 when unknown)."""
        found = self.teams.get(team_id)
        if found is None:
            raise _not_found("Team not found")
        return found

    def team_json(self, team: Team) -> JSON:
        """``team`` schema."""
        return {
            "type": "team",
            "id": team.id,
            "name": team.name,
            "admin_ids": [int(a) for a in team.admin_ids],
            "admin_priority_level": {
                "primary_admin_ids": [int(a) for a in team.admin_ids],
                "secondary_admin_ids": [],
            },
            "assignment_limit": None,
            "distribution_method": "round_robin",
        }

    # -- contacts --------------------------------------------------------------------------------

    def _apply_contact_fields(self, contact: Contact, body: Mapping[str, Any]) -> None:
        role = body.get("role")
        if role is not None:
            if role not in {"user", "lead"}:
                raise _invalid("role must be 'user' or 'lead'", "role")
            contact.role = role
        for name in _CONTACT_STRINGS:
            if name in body:
                setattr(contact, name, _optional(body, name, str))
        for name in _CONTACT_INTS:
            if name in body:
                setattr(contact, name, _optional(body, name, int))
        if "unsubscribed_from_emails" in body:
            contact.unsubscribed_from_emails = bool(
                _optional(body, "unsubscribed_from_emails", bool)
            )
        if "custom_attributes" in body:
            contact.custom_attributes.update(_attributes(body["custom_attributes"]))
        if contact.email is not None and "@" not in contact.email:
            raise _invalid("email is not a valid email address", "email")

    def _check_unique(self, contact: Contact) -> None:
        if contact.role != "user":
            return
        for other in self.contacts.values():
            if other.id == contact.id or other.role != "user":
                continue
            same_external = (
                contact.external_id is not None and other.external_id == contact.external_id
            )
            same_email = contact.email is not None and (
                (other.email or "").lower() == contact.email.lower()
            )
            if same_external or same_email:
                raise ApiFailure(
                    409,
                    "conflict",
                    f"A contact matching those details already exists with id={other.id}",
                )

    def create_contact(self, body: Mapping[str, Any], now: int) -> Contact:
        """``POST /contacts``: a user (or a lead with ``role: lead``)."""
        if not any(body.get(k) is not None for k in ("email", "external_id", "role")):
            raise _invalid("At least one of email, external_id or role is required")
        contact = Contact(self.hex_id(), "user", now, now)
        self._apply_contact_fields(contact, body)
        self._check_unique(contact)
        self.contacts[contact.id] = contact
        return contact

    def contact(self, contact_id: str) -> Contact:
        """The contact *contact_id* (404 when unknown or deleted)."""
        found = self.contacts.get(contact_id)
        if found is None:
            raise _not_found("User Not Found")
        return found

    def contact_by_external_id(self, external_id: str) -> Contact:
        """The user with *external_id* (leads are not found, as on Intercom)."""
        for contact in self.contacts.values():
            if contact.external_id == external_id and contact.role == "user":
                return contact
        raise _not_found("User Not Found")

    def contact_by_email(self, email: str) -> Contact:
        """The first contact with *email* (case-insensitive)."""
        for contact in self.contacts.values():
            if (contact.email or "").lower() == email.lower():
                return contact
        raise _not_found("User Not Found")

    def update_contact(self, contact_id: str, body: Mapping[str, Any], now: int) -> Contact:
        """``PUT /contacts/{id}``: all-or-nothing, like Intercom."""
        contact = self.contact(contact_id)
        draft = dataclasses.replace(
            contact,
            custom_attributes=dict(contact.custom_attributes),
            tag_ids=list(contact.tag_ids),
            company_ids=list(contact.company_ids),
        )
        self._apply_contact_fields(draft, body)
        self._check_unique(draft)
        draft.updated_at = now
        self.contacts[contact_id] = draft
        return draft

    def delete_contact(self, contact_id: str) -> Contact:
        """``DELETE /contacts/{id}``; the contact's events go with it."""
        contact = self.contact(contact_id)
        del self.contacts[contact_id]
        self.events = [e for e in self.events if e.contact_id != contact_id]
        return contact

    def contact_json(self, contact: Contact) -> JSON:
        """``contact`` schema (plus ``enabled_push_messaging``, as the contact endpoints add)."""
        email = contact.email or ""
        base = f"/contacts/{contact.id}"
        return {
            "type": "contact",
            "id": contact.id,
            "workspace_id": self.name,
            "external_id": contact.external_id,
            "role": contact.role,
            "email": email,
            "email_domain": email.partition("@")[2],
            "phone": contact.phone,
            "name": contact.name,
            "owner_id": None if contact.owner_id is None else str(contact.owner_id),
            "has_hard_bounced": False,
            "marked_email_as_spam": False,
            "unsubscribed_from_emails": contact.unsubscribed_from_emails,
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
            "signed_up_at": contact.signed_up_at,
            "last_seen_at": contact.last_seen_at,
            "last_replied_at": contact.last_replied_at,
            "last_contacted_at": contact.last_contacted_at,
            "last_email_opened_at": None,
            "last_email_clicked_at": None,
            "language_override": contact.language_override,
            "browser": None,
            "browser_version": None,
            "browser_language": None,
            "os": None,
            "android_app_name": None,
            "android_app_version": None,
            "android_device": None,
            "android_os_version": None,
            "android_sdk_version": None,
            "android_last_seen_at": None,
            "ios_app_name": None,
            "ios_app_version": None,
            "ios_device": None,
            "ios_os_version": None,
            "ios_sdk_version": None,
            "ios_last_seen_at": None,
            "custom_attributes": dict(contact.custom_attributes),
            "avatar": None
            if contact.avatar is None
            else {"type": "avatar", "image_url": contact.avatar},
            "tags": {
                "type": "list",
                "data": [{"type": "tag", "id": t, "url": f"/tags/{t}"} for t in contact.tag_ids],
                "url": f"{base}/tags",
                "total_count": len(contact.tag_ids),
                "has_more": False,
            },
            "notes": {
                "type": "list",
                "data": [],
                "url": f"{base}/notes",
                "total_count": 0,
                "has_more": False,
            },
            "companies": {
                "type": "list",
                "data": [
                    {"type": "company", "id": c, "url": f"/companies/{c}"}
                    for c in contact.company_ids
                ],
                "url": f"{base}/companies",
                "total_count": len(contact.company_ids),
                "has_more": False,
            },
            "location": {"type": "location", "country": None, "region": None, "city": None},
            "social_profiles": {"type": "list", "data": []},
            "enabled_push_messaging": None,
        }

    # -- tags ------------------------------------------------------------------------------------

    def tag(self, tag_id: Any) -> Tag:
        """The tag *tag_id* (404 when unknown)."""
        found = self.tags.get(str(tag_id)) if isinstance(tag_id, str | int) else None
        if found is None:
            raise _not_found("Tag not found")
        return found

    def create_or_update_tag(self, body: Mapping[str, Any]) -> tuple[Tag, JSON]:
        """``POST /tags``: create, rename (with ``id``), or tag/untag ``users``/``companies``."""
        name = _required_str(body, "name")
        if body.get("id") is not None:
            tag = self.tag(body["id"])
            tag.name = name
        else:
            tag = next((t for t in self.tags.values() if t.name == name), None) or Tag(
                self.number_id(), name
            )
            self.tags[tag.id] = tag
        extra: JSON = {}
        users = body.get("users")
        if users is not None:
            if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
                raise _invalid("users must be an array of objects", "users")
            extra["users"] = []
            for user in users:
                contact = self.contact(str(user.get("id")))
                if tag.id not in contact.tag_ids:
                    contact.tag_ids.append(tag.id)
                extra["users"].append({"id": contact.id, "tagged": True})
        companies = body.get("companies")
        if companies is not None:
            if not isinstance(companies, list) or not all(isinstance(c, dict) for c in companies):
                raise _invalid("companies must be an array of objects", "companies")
            extra["companies"] = []
            for item in companies:
                company = (
                    self.company(str(item["id"]))
                    if item.get("id") is not None
                    else self.company_by_company_id(str(item.get("company_id")))
                )
                untag = bool(item.get("untag"))
                if untag and tag.id in company.tag_ids:
                    company.tag_ids.remove(tag.id)
                elif not untag and tag.id not in company.tag_ids:
                    company.tag_ids.append(tag.id)
                extra["companies"].append({"id": company.id, "tagged": not untag})
        return tag, extra

    @staticmethod
    def tag_json(tag: Tag) -> JSON:
        """``tag`` schema."""
        return {"type": "tag", "id": tag.id, "name": tag.name}

    def tag_contact(self, contact_id: str, tag_id: Any) -> Tag:
        """``POST /contacts/{id}/tags``."""
        contact = self.contact(contact_id)
        tag = self.tag(tag_id)
        if tag.id not in contact.tag_ids:
            contact.tag_ids.append(tag.id)
        return tag

    def tag_conversation(self, conversation_id: str, tag_id: Any, admin_id: Any, now: int) -> Tag:
        """``POST /conversations/{id}/tags`` (applied by an admin)."""
        conversation = self.conversation(conversation_id)
        tag = self.tag(tag_id)
        admin = self.admin(str(admin_id))
        if all(t["id"] != tag.id for t in conversation.tags):
            conversation.tags.append(
                {
                    "type": "tag",
                    "id": tag.id,
                    "name": tag.name,
                    "applied_at": now,
                    "applied_by": {"type": "admin", "id": admin.id},
                }
            )
        return tag

    # -- companies -------------------------------------------------------------------------------

    def create_or_update_company(self, body: Mapping[str, Any], now: int) -> Company:
        """``POST /companies``: keyed by your ``company_id``."""
        company_id = _required_str(body, "company_id")
        company = next((c for c in self.companies.values() if c.company_id == company_id), None)
        fields: JSON = {}
        for name in ("name", "plan", "website", "industry"):
            if name in body:
                fields[name] = _optional(body, name, str)
        for name in ("size", "remote_created_at"):
            if name in body:
                fields[name] = _optional(body, name, int)
        if "monthly_spend" in body:
            fields["monthly_spend"] = _optional(body, "monthly_spend", (int, float))
        attributes = _attributes(body.get("custom_attributes"))
        if company is None:
            company = Company(self.hex_id(), company_id, now, now)
            self.companies[company.id] = company
        for name, value in fields.items():
            setattr(company, name, value)
        company.custom_attributes.update(attributes)
        company.updated_at = now
        return company

    def company(self, company_id: str) -> Company:
        """The company with Intercom id *company_id* (404 when unknown)."""
        found = self.companies.get(company_id)
        if found is None:
            raise _not_found("Company Not Found")
        return found

    def company_by_company_id(self, company_id: str) -> Company:
        """The company with your *company_id* (404 when unknown)."""
        for company in self.companies.values():
            if company.company_id == company_id:
                return company
        raise _not_found("Company Not Found")

    def company_json(self, company: Company) -> JSON:
        """``company`` schema."""
        out: JSON = {
            "type": "company",
            "id": company.id,
            "app_id": self.name,
            "company_id": company.company_id,
            "created_at": company.created_at,
            "updated_at": company.updated_at,
        }
        for name in ("name", "website", "industry", "size", "remote_created_at"):
            value = getattr(company, name)
            if value is not None:
                out[name] = value
        out["plan"] = (
            {}
            if company.plan is None
            else {"type": "plan", "id": company.plan, "name": company.plan}
        )
        out["monthly_spend"] = int(company.monthly_spend or 0)
        out["session_count"] = 0
        out["user_count"] = sum(company.id in c.company_ids for c in self.contacts.values())
        out["custom_attributes"] = dict(company.custom_attributes)
        out["tags"] = {
            "type": "tag.list",
            "tags": [self.tag_json(self.tags[t]) for t in company.tag_ids],
        }
        out["segments"] = {"type": "segment.list", "segments": []}
        return out

    # -- conversations ---------------------------------------------------------------------------

    def conversation(self, conversation_id: str) -> Conversation:
        """The conversation *conversation_id* (404 when unknown)."""
        found = self.conversations.get(conversation_id)
        if found is None:
            raise _not_found("Resource Not Found")
        return found

    def _author(self, contact: Contact) -> JSON:
        return {
            "type": contact.role,
            "id": contact.id,
            "name": contact.name,
            "email": contact.email or "",
        }

    def create_conversation(self, body: Mapping[str, Any], now: int) -> tuple[Conversation, JSON]:
        """``POST /conversations``: a contact writes in; returns the conversation and message."""
        sender = body.get("from")
        if not isinstance(sender, dict):
            raise _invalid("from is required and must be an object", "from")
        if sender.get("type") not in {"user", "lead", "contact"}:
            raise _invalid("from.type must be one of user, lead, contact", "from.type")
        if not isinstance(sender.get("id"), str):
            raise _invalid("from.id is required and must be a string", "from.id")
        text = _required_str(body, "body")
        created_at = _optional(body, "created_at", int) or now
        contact = self.contact(sender["id"])
        message_id = self.number_id()
        conversation = Conversation(
            id=self.number_id(),
            created_at=created_at,
            updated_at=created_at,
            source={
                "type": "conversation",
                "id": message_id,
                "delivered_as": "customer_initiated",
                "subject": "",
                "body": _paragraph(text),
                "author": self._author(contact),
                "attachments": [],
                "url": None,
                "redacted": False,
            },
            contact_ids=[contact.id],
            waiting_since=created_at,
            first_contact_reply_at=created_at,
        )
        self.conversations[conversation.id] = conversation
        contact.last_contacted_at = created_at
        message = {
            "type": "user_message",
            "id": message_id,
            "created_at": created_at,
            "body": text,
            "message_type": "inapp",
            "conversation_id": conversation.id,
        }
        return conversation, message

    def reply(self, conversation_id: str, body: Mapping[str, Any], now: int) -> Conversation:
        """``POST /conversations/{id}/reply`` as an admin or as a contact."""
        conversation = self.conversation(conversation_id)
        kind = body.get("type")
        message_type = body.get("message_type")
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise _invalid("body must be a string", "body")
        if kind == "admin":
            if message_type not in {"comment", "note", "quick_reply"}:
                raise _invalid("message_type must be comment, note or quick_reply", "message_type")
            admin = self.admin(str(body.get("admin_id")))
            author: JSON = {
                "type": "admin",
                "id": admin.id,
                "name": admin.name,
                "email": admin.email,
            }
            if admin.id not in conversation.teammate_ids:
                conversation.teammate_ids.append(admin.id)
            if message_type != "note":
                conversation.waiting_since = None
                conversation.read = True
                for contact_id in conversation.contact_ids:
                    if contact_id in self.contacts:
                        self.contacts[contact_id].last_contacted_at = now
        elif kind == "user":
            if message_type != "comment":
                raise _invalid("message_type must be comment", "message_type")
            contact = self._reply_contact(body)
            author = self._author(contact)
            if contact.id not in conversation.contact_ids:
                conversation.contact_ids.append(contact.id)
            conversation.waiting_since = conversation.waiting_since or now
            contact.last_replied_at = now
        else:
            raise _invalid("type must be admin or user", "type")
        if not text:
            raise _invalid("body is required", "body")
        created_at = _optional(body, "created_at", int) or now
        conversation.parts.append(
            {
                "type": "conversation_part",
                "id": self.number_id(),
                "part_type": "note" if message_type == "note" else "comment",
                "body": _paragraph(text),
                "created_at": created_at,
                "updated_at": created_at,
                "notified_at": created_at,
                "assigned_to": None,
                "author": {**author, "from_ai_agent": False, "is_ai_answer": False},
                "attachments": [],
                "external_id": None,
                "redacted": False,
                "state": "open",
            }
        )
        conversation.updated_at = max(conversation.updated_at, created_at)
        if conversation.state != "open":
            conversation.state = "open"
        return conversation

    def _reply_contact(self, body: Mapping[str, Any]) -> Contact:
        if isinstance(body.get("intercom_user_id"), str):
            return self.contact(body["intercom_user_id"])
        if isinstance(body.get("user_id"), str):
            return self.contact_by_external_id(body["user_id"])
        if isinstance(body.get("email"), str):
            return self.contact_by_email(body["email"])
        raise _invalid("One of intercom_user_id, user_id or email is required")

    def conversation_json(self, conversation: Conversation, *, parts: bool = True) -> JSON:
        """``conversation`` schema; ``parts=False`` gives ``conversation_list_item``."""
        out: JSON = {
            "type": "conversation",
            "id": conversation.id,
            "title": None,
            "created_at": conversation.created_at,
            "updated_at": conversation.updated_at,
            "waiting_since": conversation.waiting_since,
            "snoozed_until": None,
            "open": conversation.state == "open",
            "state": conversation.state,
            "read": conversation.read,
            "priority": "none",
        }
        if conversation.admin_assignee_id is not None:
            out["admin_assignee_id"] = conversation.admin_assignee_id
        out.update(
            {
                "tags": {"type": "tag.list", "tags": [dict(t) for t in conversation.tags]},
                "conversation_rating": None,
                "source": {**conversation.source, "author": dict(conversation.source["author"])},
                "contacts": {
                    "type": "contact.list",
                    "contacts": [
                        {
                            "type": "contact",
                            "id": c,
                            "external_id": self.contacts[c].external_id
                            if c in self.contacts
                            else None,
                        }
                        for c in conversation.contact_ids
                    ],
                },
                "teammates": {
                    "type": "admin.list",
                    "teammates": [{"type": "admin", "id": a} for a in conversation.teammate_ids],
                },
                "custom_attributes": {},
                "first_contact_reply": {
                    "created_at": conversation.first_contact_reply_at,
                    "type": "conversation",
                    "url": None,
                },
                "sla_applied": None,
                "statistics": None,
                "linked_objects": {"type": "list", "total_count": 0, "has_more": False, "data": []},
                "ai_agent_participated": False,
            }
        )
        if parts:
            out["conversation_parts"] = {
                "type": "conversation_part.list",
                "conversation_parts": [
                    {**p, "author": dict(p["author"])} for p in conversation.parts
                ],
                "total_count": len(conversation.parts),
            }
        return out

    # -- notes ---------------------------------------------------------------------------------

    def create_note(self, contact_id: str, body: Mapping[str, Any], now: int) -> Note:
        """``POST /contacts/{id}/notes``: an admin's note (``body``, ``admin_id``)."""
        contact = self.contact(contact_id)
        text = _required_str(body, "body")
        admin_id = body.get("admin_id")
        admin = (
            self.admin(str(admin_id)) if admin_id is not None else next(iter(self.admins.values()))
        )
        note = Note(self.number_id(), contact.id, admin.id, _paragraph(text), now)
        self.notes.append(note)
        return note

    def note_json(self, note: Note) -> JSON:
        """``note`` schema."""
        admin = self.admins.get(note.admin_id)
        return {
            "type": "note",
            "id": note.id,
            "created_at": note.created_at,
            "contact": {"type": "contact", "id": note.contact_id},
            "author": None if admin is None else self.admin_json(admin),
            "body": note.body,
        }

    # -- data events -----------------------------------------------------------------------------

    def create_event(self, body: Mapping[str, Any]) -> DataEvent:
        """``POST /events``: identified by ``id``, ``user_id`` or ``email``."""
        event_name = _required_str(body, "event_name")
        created_at: Any = body.get("created_at")
        if not _is_int(created_at):
            raise _invalid("created_at is required and must be an integer", "created_at")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _invalid("metadata must be an object", "metadata")
        contact = self.identify(body.get("id"), body.get("user_id"), body.get("email"))
        event = DataEvent(event_name, created_at, contact.id, dict(metadata))
        self.events.append(event)
        return event

    def identify(self, intercom_id: Any, user_id: Any, email: Any) -> Contact:
        """Find a contact by Intercom id, external ``user_id`` or email (the first one given)."""
        for value, finder in (
            (intercom_id, self.contact),
            (user_id, self.contact_by_external_id),
            (email, self.contact_by_email),
        ):
            if value is not None:
                if not isinstance(value, str):
                    raise _invalid("user identifiers must be strings")
                return finder(value)
        raise _invalid("One of id, user_id, intercom_user_id or email is required")

    def events_json(self, contact: Contact, *, summary: bool) -> JSON:
        """``data_event_summary`` schema: per-name summaries, or the events themselves."""
        mine = [e for e in self.events if e.contact_id == contact.id]
        out: JSON = {"type": "event.summary", "intercom_user_id": contact.id}
        if contact.email:
            out["email"] = contact.email
        if contact.external_id is not None:
            out["user_id"] = contact.external_id
        if summary:
            names: dict[str, list[DataEvent]] = {}
            for event in mine:
                names.setdefault(event.event_name, []).append(event)
            out["events"] = [
                {
                    "name": name,
                    "first": _iso(min(e.created_at for e in group)),
                    "last": _iso(max(e.created_at for e in group)),
                    "count": len(group),
                }
                for name, group in names.items()
            ]
        else:
            out["events"] = [
                {
                    "type": "event",
                    "event_name": e.event_name,
                    "created_at": e.created_at,
                    "intercom_user_id": contact.id,
                    "user_id": contact.external_id,
                    "email": contact.email,
                    "metadata": dict(e.metadata),
                }
                for e in sorted(mine, key=lambda e: e.created_at, reverse=True)
            ]
        return out
