"""The search query language: every operator, nested groups, limits, and cursor pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import intercom
import pytest

from intercom_resilience.testing import FakeIntercom

DAY = 86_400
PEOPLE = [
    # name, email, role, signed_up_at (days after the epoch start below), plan
    ("Ada", "ada@acme.com", "user", 0, "pro"),
    ("Bob", "bob@beta.io", "user", 2, "free"),
    ("Cleo", "cleo@acme.com", "lead", 5, None),
    ("Dan", "dan@gamma.org", "user", 9, "pro"),
]


@pytest.fixture
def people(fake: FakeIntercom) -> dict[str, str]:
    ws = fake.workspace()
    start = 1_700_000_000 // DAY * DAY
    ids = {}
    for name, email, role, day, plan in PEOPLE:
        body: dict[str, Any] = {
            "name": name,
            "email": email,
            "role": role,
            "signed_up_at": start + day * DAY + 3600,
        }
        if plan:
            body["custom_attributes"] = {"plan": plan}
        ids[name] = ws.create_contact(body, 0).id
    ws.tag_contact(ids["Bob"], ws.create_or_update_tag({"name": "vip"})[0].id)
    return ids


def _names(raw: httpx.Client, query: dict[str, Any]) -> list[str]:
    response = raw.post("/contacts/search", json={"query": query})
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["data"]]


START = 1_700_000_000 // DAY * DAY


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"field": "email", "operator": "=", "value": "bob@beta.io"}, ["Bob"]),
        ({"field": "role", "operator": "!=", "value": "user"}, ["Cleo"]),
        ({"field": "name", "operator": "IN", "value": ["Ada", "Dan", "Zed"]}, ["Ada", "Dan"]),
        ({"field": "name", "operator": "NIN", "value": ["Ada", "Dan"]}, ["Bob", "Cleo"]),
        ({"field": "signed_up_at", "operator": ">", "value": START + 2 * DAY}, ["Cleo", "Dan"]),
        ({"field": "signed_up_at", "operator": "<", "value": START + 2 * DAY}, ["Ada"]),
        # Timestamps compare by day: any time on day 2 equals Bob's sign-up day.
        ({"field": "signed_up_at", "operator": "=", "value": START + 2 * DAY + 80_000}, ["Bob"]),
        ({"field": "email", "operator": "~", "value": "ACME"}, ["Ada", "Cleo"]),
        ({"field": "email", "operator": "!~", "value": "acme"}, ["Bob", "Dan"]),
        ({"field": "name", "operator": "^", "value": "c"}, ["Cleo"]),
        ({"field": "email", "operator": "$", "value": ".org"}, ["Dan"]),
        ({"field": "custom_attributes.plan", "operator": "=", "value": "pro"}, ["Ada", "Dan"]),
        ({"field": "tag_id", "operator": "IN", "value": ["nope"]}, []),
        (
            {
                "operator": "AND",
                "value": [
                    {"field": "role", "operator": "=", "value": "user"},
                    {"field": "email", "operator": "~", "value": "acme"},
                ],
            },
            ["Ada"],
        ),
        (
            {
                "operator": "OR",
                "value": [
                    {"field": "name", "operator": "=", "value": "Bob"},
                    {
                        "operator": "AND",
                        "value": [
                            {"field": "custom_attributes.plan", "operator": "=", "value": "pro"},
                            {"field": "email", "operator": "$", "value": ".org"},
                        ],
                    },
                ],
            },
            ["Bob", "Dan"],
        ),
    ],
)
def test_operators(
    raw: httpx.Client, people: dict[str, str], query: dict[str, Any], expected: list[str]
) -> None:
    assert _names(raw, query) == expected


def test_tag_search_finds_tagged_contacts(
    fake: FakeIntercom, raw: httpx.Client, people: dict[str, str]
) -> None:
    tag_id = next(iter(fake.workspace().tags))
    assert _names(raw, {"field": "tag_id", "operator": "=", "value": tag_id}) == ["Bob"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"field": "name", "operator": "IN", "value": "Ada"}, "array"),
        ({"field": "name", "operator": ">", "value": "Ada"}, "numeric"),
        ({"field": "name", "operator": "~", "value": 3}, "string"),
        ({"field": "name", "operator": "LIKE", "value": "A"}, "not supported"),
        ({"field": "password", "operator": "=", "value": "x"}, "not a searchable field"),
        ({"field": "name", "operator": "="}, "value"),
        ({"operator": "AND", "value": []}, "non-empty"),
        (
            {
                "operator": "OR",
                "value": [{"field": "name", "operator": "=", "value": str(i)} for i in range(16)],
            },
            "at most 15",
        ),
        (
            {
                "operator": "AND",
                "value": [
                    {
                        "operator": "OR",
                        "value": [
                            {
                                "operator": "AND",
                                "value": [{"field": "id", "operator": "=", "value": "x"}],
                            }
                        ],
                    }
                ],
            },
            "nest",
        ),
        ("name = Ada", "object"),
    ],
)
def test_invalid_queries_are_parameter_invalid(raw: httpx.Client, query: Any, message: str) -> None:
    response = raw.post("/contacts/search", json={"query": query})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "parameter_invalid"
    assert message in error["message"]


def _walk(client: httpx.Client, per_page: int) -> Iterator[dict[str, Any]]:
    query = {"field": "role", "operator": "=", "value": "user"}
    cursor = None
    while True:
        pagination: dict[str, Any] = {"per_page": per_page}
        if cursor:
            pagination["starting_after"] = cursor
        page = client.post("/contacts/search", json={"query": query, "pagination": pagination})
        assert page.status_code == 200
        body = page.json()
        yield body
        cursor = body["pages"].get("next", {}).get("starting_after")
        if cursor is None:
            return


def test_three_page_cursor_walk_over_real_http(fake: FakeIntercom) -> None:
    ws = fake.workspace()
    ids = [ws.create_contact({"email": f"p{i}@example.com"}, i).id for i in range(7)]
    ws.create_contact({"role": "lead", "email": "lead@example.com"}, 8)
    with (
        fake.serve_in_thread() as url,
        httpx.Client(base_url=url, headers={"Authorization": "Bearer fake-token"}) as client,
    ):
        pages = list(_walk(client, per_page=3))
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert [p["pages"]["page"] for p in pages] == [1, 2, 3]
    assert {p["pages"]["total_pages"] for p in pages} == {3}
    assert {p["total_count"] for p in pages} == {7}
    assert [c["id"] for p in pages for c in p["data"]] == ids
    # The cursor travels in the body: the journal shows three POSTs with no query string.
    assert [e.query for e in fake.journal.filter(path="/contacts/search")] == ["", "", ""]


def test_conversation_search(fake: FakeIntercom, raw: httpx.Client) -> None:
    ws = fake.workspace()
    a = ws.create_contact({"email": "a@example.com"}, 0)
    b = ws.create_contact({"email": "b@example.com"}, 0)
    first, _ = ws.create_conversation({"from": {"type": "user", "id": a.id}, "body": "refund"}, 10)
    ws.create_conversation({"from": {"type": "user", "id": b.id}, "body": "hello"}, 20)
    admin_id = next(iter(ws.admins))
    ws.reply(
        first.id,
        {"type": "admin", "admin_id": admin_id, "message_type": "comment", "body": "ok"},
        30,
    )

    def ids(query: dict[str, Any]) -> list[str]:
        response = raw.post("/conversations/search", json={"query": query})
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "conversation.list"
        return [c["id"] for c in response.json()["conversations"]]

    assert ids({"field": "contact_ids", "operator": "=", "value": a.id}) == [first.id]
    assert ids({"field": "source.body", "operator": "~", "value": "refund"}) == [first.id]
    assert ids({"field": "teammate_ids", "operator": "IN", "value": [admin_id]}) == [first.id]
    assert len(ids({"field": "created_at", "operator": ">", "value": 5})) == 2


def test_sdk_search_returns_typed_contacts(fake: FakeIntercom, people: dict[str, str]) -> None:
    with httpx.Client(transport=fake.transport()) as http:
        sdk = intercom.Intercom(token="fake-token", httpx_client=http)
        page = sdk.contacts.search(
            query={"field": "email", "operator": "~", "value": "acme"}, pagination={"per_page": 1}
        )
    assert [c.name for c in page.items or []] == ["Ada"]
    assert page.response is not None
    assert page.response.pages is not None
    assert page.response.pages.next is not None
    assert page.response.pages.next.starting_after
