"""Requests are validated against the 2.16 description, answering Intercom's documented codes.

Fifty malformed requests across the API, each with the status, code and ``field`` the description
implies: a wrong type or value is ``400 parameter_invalid`` naming the field; a missing required
field is ``parameter_invalid`` too, except where the description's examples answer it with
``parameter_not_found`` (articles, help-center collections and redirects, contact companies);
malformed JSON is ``400 parameter_invalid``; an unknown ``Intercom-Version`` is
``400 intercom_version_invalid``, and so is a known one older than an operation
(``GET /conversations/deleted`` before 2.16). Every error carries the request id of its
``X-Request-Id``.
"""

from __future__ import annotations

import httpx
import pytest
from fake_schemas import validator

from intercom_resilience.testing import FakeIntercom

P_INVALID = "parameter_invalid"
P_NOT_FOUND = "parameter_not_found"

CASES: list[tuple[str, str, bytes, str, str | None]] = [
    # malformed JSON, wherever a body is expected
    ("POST", "/tags", b"[1", P_INVALID, None),
    ("POST", "/contacts", b"\xff\xfe", P_INVALID, None),
    ("POST", "/articles", b'{"title": "x",', P_INVALID, None),
    ("POST", "/contacts", b"[1, 2]", P_INVALID, None),
    # wrong types
    ("POST", "/tags", b'{"name": 5}', P_INVALID, "name"),
    ("POST", "/help_center/collections", b'{"name": 3}', P_INVALID, "name"),
    ("POST", "/articles", b'{"title": 1, "author_id": 1}', P_INVALID, "title"),
    ("POST", "/tickets", b'{"ticket_type_id": 1, "contacts": []}', P_INVALID, "ticket_type_id"),
    ("PUT", "/tickets/1", b'{"open": "yes"}', P_INVALID, "open"),
    ("PUT", "/data_attributes/1", b'{"archived": "no"}', P_INVALID, "archived"),
    ("POST", "/events/summaries", b'{"event_summaries": "x"}', P_INVALID, "event_summaries"),
    ("POST", "/contacts/merge", b'{"from": 1, "into": "x"}', P_INVALID, "from"),
    ("POST", "/ticket_types", b'{"name": 5}', P_INVALID, "name"),
    ("POST", "/custom_object_instances/Order", b'{"external_id": 5}', P_INVALID, "external_id"),
    (
        "POST",
        "/export/content/data",
        b'{"created_at_after": "yday"}',
        P_INVALID,
        "created_at_after",
    ),
    ("PUT", "/admins/1/away", b'{"away_mode_enabled": "yes"}', P_INVALID, "away_mode_enabled"),
    ("POST", "/companies", b'{"company_id": 5}', P_INVALID, "company_id"),
    ("POST", "/contacts", b'{"email": 42}', P_INVALID, "email"),
    ("PUT", "/ip_allowlist", b'{"enabled": "yes"}', P_INVALID, "enabled"),
    ("POST", "/calls/search", b'{"conversation_ids": "1"}', P_INVALID, "conversation_ids"),
    ("POST", "/content_snippets", b'{"title": 1}', P_INVALID, "title"),
    ("PUT", "/contacts/x", b'{"custom_attributes": [1]}', P_INVALID, "custom_attributes"),
    ("POST", "/conversations", b'{"from": "me", "body": "x"}', P_INVALID, "from"),
    ("POST", "/events", b'{"event_name": "x", "created_at": "now"}', P_INVALID, "created_at"),
    # values outside an enum
    ("POST", "/articles", b'{"title": "t", "author_id": 1, "state": "bogus"}', P_INVALID, "state"),
    (
        "POST",
        "/data_attributes",
        b'{"name": "x", "model": "bogus", "data_type": "string"}',
        P_INVALID,
        "model",
    ),
    (
        "POST",
        "/conversations/1/reply",
        b'{"type": "robot", "message_type": "comment", "body": "x"}',
        P_INVALID,
        "type",
    ),
    # missing required fields
    ("POST", "/tags", b"{}", P_INVALID, "name"),
    ("POST", "/contacts/1/notes", b"{}", P_INVALID, "body"),
    ("POST", "/help_center/collections", b"{}", P_NOT_FOUND, "name"),
    ("POST", "/help_center/help_centers/1/redirects", b"{}", P_NOT_FOUND, "from_url"),
    ("POST", "/articles", b'{"title": "x"}', P_NOT_FOUND, "author_id"),
    ("POST", "/contacts/1/companies", b"{}", P_NOT_FOUND, "id"),
    ("POST", "/tickets", b'{"ticket_type_id": "1"}', P_INVALID, "contacts"),
    ("POST", "/conversations/1/parts", b'{"message_type": "close"}', P_INVALID, "type"),
    ("POST", "/messages", b"{}", P_INVALID, "message_type"),
    ("PUT", "/visitors", b"{}", P_INVALID, "id"),
    ("POST", "/visitors/convert", b'{"type": "user"}', P_INVALID, "user"),
    ("POST", "/contacts/1/subscriptions", b'{"id": "1"}', P_INVALID, "consent_type"),
    ("POST", "/ticket_types/1/attributes", b'{"name": "x"}', P_INVALID, "description"),
    ("POST", "/phone_call_redirects", b"{}", P_INVALID, "phone"),
    ("POST", "/news/news_items", b'{"title": "t"}', P_INVALID, "sender_id"),
    ("PUT", "/admins/1/away", b"{}", P_INVALID, "away_mode_enabled"),
    ("POST", "/fin/start", b"{}", P_INVALID, "conversation_id"),
    ("POST", "/tickets/1/reply", b'{"message_type": "comment"}', P_INVALID, "intercom_user_id"),
    # query parameters
    ("GET", "/companies?page=x", b"", P_INVALID, "page"),
    ("GET", "/admins/activity_logs", b"", P_INVALID, "created_at_after"),
    ("GET", "/conversations/deleted?per_page=lots", b"", P_INVALID, "per_page"),
    ("GET", "/macros?per_page=-1", b"", P_INVALID, "per_page"),
    ("GET", "/contacts?per_page=0", b"", P_INVALID, "per_page"),
    # a required header
    ("GET", "/download/reporting_data/j1?app_id=a&job_identifier=j", b"", P_INVALID, "Accept"),
]


def test_the_sample_has_fifty_cases() -> None:
    assert len(CASES) >= 50
    assert len({(m, p, b) for m, p, b, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("method", "path", "body", "code", "field"), CASES)
def test_malformed_request(
    raw: httpx.Client, method: str, path: str, body: bytes, code: str, field: str | None
) -> None:
    response = raw.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    payload = response.json()
    validator("GET /me", "401").validate(payload)  # the error.list schema
    error = payload["errors"][0]
    assert (error["code"], error.get("field")) == (code, field), error
    assert error["message"]
    assert payload["request_id"] == response.headers["x-request-id"]


def test_a_rejected_write_changes_nothing(fake: FakeIntercom, raw: httpx.Client) -> None:
    assert raw.post("/tags", json={"name": 5}).status_code == 400
    assert fake.journal.last() is not None
    assert fake.journal.count(changed_state=True) == 0
    assert fake.workspace().tags == {}


def test_discriminator_errors_name_every_accepted_value(raw: httpx.Client) -> None:
    response = raw.post(
        "/conversations/1/reply", json={"type": "robot", "message_type": "comment", "body": "x"}
    )
    assert "user" in response.json()["errors"][0]["message"]
    assert "admin" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("version", ["9.9", "", "latest", "2.17"])
def test_unknown_versions_are_refused(raw: httpx.Client, version: str) -> None:
    response = raw.get("/macros", headers={"Intercom-Version": version})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "intercom_version_invalid"


@pytest.mark.parametrize("version", ["2.16", "2.7", "1.4", "Unstable"])
def test_documented_versions_are_accepted(raw: httpx.Client, version: str) -> None:
    assert raw.get("/macros", headers={"Intercom-Version": version}).status_code == 200


def test_the_download_accepts_its_documented_accept_header(raw: httpx.Client) -> None:
    response = raw.get(
        "/download/reporting_data/j1",
        params={"app_id": "a", "job_identifier": "j"},
        headers={"Accept": "application/octet-stream"},
    )
    assert response.status_code == 200


def test_every_response_carries_its_request_id(raw: httpx.Client) -> None:
    for response in (raw.get("/macros/1"), raw.get("/nowhere"), raw.post("/tags", content=b"{")):
        request_id = response.headers["x-request-id"]
        body = response.json()
        assert body.get("request_id", request_id) == request_id


@pytest.mark.parametrize("version", ["2.15", "2.7", "1.4"])
def test_deleted_conversations_need_version_2_16(raw: httpx.Client, version: str) -> None:
    # GET /conversations/deleted first appears in the 2.16 description, which documents this
    # answer for versions without it.
    response = raw.get("/conversations/deleted", headers={"Intercom-Version": version})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "intercom_version_invalid"
    assert error["message"] == "Requested resource is not available in current API version."
    validator("GET /conversations/deleted", "400").validate(response.json())


@pytest.mark.parametrize("version", [None, "2.16", "Preview", "Unstable"])
def test_deleted_conversations_answer_from_2_16(
    fake: FakeIntercom, raw: httpx.Client, version: str | None
) -> None:
    ws = fake.workspace()
    contact = ws.create_contact({"email": "gone@example.com"}, 0)
    conversation, _ = ws.create_conversation(
        {"from": {"type": "user", "id": contact.id}, "body": "Hi"}, 0
    )
    assert raw.delete(f"/conversations/{conversation.id}").status_code == 200
    headers = {} if version is None else {"Intercom-Version": version}
    response = raw.get("/conversations/deleted", headers=headers)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["conversations"]] == [conversation.id]
    validator("GET /conversations/deleted", "200").validate(response.json())
    # The same version header changes nothing where the API did not change.
    assert raw.get("/macros", headers={"Intercom-Version": "2.15"}).status_code == 200
