"""Page sizes as Intercom documents them: search caps ``per_page`` at 150 on every search with a
body cursor (contacts, conversations, tickets), each search and ``GET /contacts`` has its
documented default, and the official SDK's first page holds that many.
"""

from __future__ import annotations

from typing import Any

import httpx
import intercom
import pytest

from intercom_resilience.testing import FakeIntercom

RECORDS = 160  # more than the largest page
NOW = 1_700_000_000


def _seed(fake: FakeIntercom, raw: httpx.Client) -> None:
    ws = fake.workspace()
    contact = ws.create_contact({"email": "many@example.com"}, NOW)
    for index in range(RECORDS - 1):
        ws.create_contact({"email": f"c{index}@example.com"}, NOW)
    for index in range(RECORDS):
        ws.create_conversation(
            {"from": {"type": "user", "id": contact.id}, "body": f"#{index}"}, NOW
        )
    ticket_type = raw.post("/ticket_types", json={"name": "Bug"}).json()["id"]
    for _ in range(RECORDS):
        created = raw.post(
            "/tickets", json={"ticket_type_id": ticket_type, "contacts": [{"id": contact.id}]}
        )
        assert created.status_code == 200, created.text


# path, the list's key, the documented default page size
SEARCHES = [
    ("/contacts/search", "data", 50),
    ("/conversations/search", "conversations", 20),
    ("/tickets/search", "tickets", 20),
]
EVERYTHING = {"field": "created_at", "operator": ">", "value": 0}


@pytest.fixture
def seeded(fake: FakeIntercom, raw: httpx.Client) -> httpx.Client:
    _seed(fake, raw)
    return raw


@pytest.mark.parametrize(("path", "key", "default"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_search_page_sizes(seeded: httpx.Client, path: str, key: str, default: int) -> None:
    plain = seeded.post(path, json={"query": EVERYTHING}).json()
    assert (len(plain[key]), plain["pages"]["per_page"]) == (default, default)
    assert plain["total_count"] == RECORDS
    widest = seeded.post(path, json={"query": EVERYTHING, "pagination": {"per_page": 150}})
    assert len(widest.json()[key]) == 150
    for too_many in (151, 0, 10_000):
        refused = seeded.post(
            path, json={"query": EVERYTHING, "pagination": {"per_page": too_many}}
        )
        assert refused.status_code == 400, (too_many, refused.text)
        error = refused.json()["errors"][0]
        assert (error["code"], error["field"]) == ("parameter_invalid", "per_page")
        assert "150" in error["message"]


def test_list_contacts_default_and_cap(seeded: httpx.Client) -> None:
    plain = seeded.get("/contacts").json()
    assert (len(plain["data"]), plain["pages"]["per_page"]) == (50, 50)
    assert len(seeded.get("/contacts", params={"per_page": 150}).json()["data"]) == 150
    refused = seeded.get("/contacts", params={"per_page": 151})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "per_page"


def test_the_sdk_sees_the_documented_defaults(
    sdk: intercom.Intercom, fake: FakeIntercom, raw: httpx.Client
) -> None:
    _seed(fake, raw)
    query: Any = EVERYTHING
    assert len(sdk.contacts.list().items or []) == 50
    assert len(sdk.contacts.search(query=query).items or []) == 50
    assert len(sdk.conversations.search(query=query).items or []) == 20
    assert len(sdk.tickets.search(query=query).items or []) == 20
    # (Not iterated: the SDK's search pager re-sends the first page's request forever, a defect
    # of python-intercom 5.0.1 that the library's own pager loop detection guards against.)
    widest = sdk.contacts.search(query=query, pagination={"per_page": 150})
    assert len(widest.items or []) == 150
