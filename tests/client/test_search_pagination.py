"""Iterating a search walks every page exactly once and stops (the SDK's pager does not)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import intercom
import pytest
from intercom.contacts.types.contact import Contact
from intercom.core.pagination import AsyncPager

from intercom_resilience import (
    AsyncResilientIntercom,
    IntercomResilienceError,
    PaginationLoopError,
    ResilientIntercom,
)
from intercom_resilience.testing import FakeIntercom

QUERY = {"field": "email", "operator": "$", "value": "@search.example"}


def _seed(raw: intercom.Intercom, n: int = 7) -> set[str]:
    ids = {raw.contacts.create(request={"email": f"p{i}@search.example"}).id for i in range(n)}
    raw.contacts.create(request={"email": "outsider@other.example"})
    return ids


def test_search_iterates_three_pages_once(
    fake: FakeIntercom, client: ResilientIntercom, raw: intercom.Intercom
) -> None:
    expected = _seed(raw)
    before = len(fake.journal.filter(method="POST", path="/contacts/search"))
    found = [c.id for c in client.contacts.search(query=QUERY, pagination={"per_page": 3})]
    assert sorted(found) == sorted(expected)
    assert len(found) == len(set(found)) == 7
    requests = len(fake.journal.filter(method="POST", path="/contacts/search")) - before
    assert requests == 3  # pages of 3, 3 and 1


def test_search_pages_can_be_walked_by_hand(
    client: ResilientIntercom, raw: intercom.Intercom
) -> None:
    _seed(raw)
    pages = list(client.contacts.search(query=QUERY, pagination={"per_page": 3}).iter_pages())
    assert [len(page.items or []) for page in pages] == [3, 3, 1]
    assert pages[-1].has_next is False


def test_conversation_search_is_fixed_too(
    client: ResilientIntercom, raw: intercom.Intercom
) -> None:
    contact = raw.contacts.create(request={"email": "c@search.example"})
    for i in range(5):
        raw.conversations.create(from_={"type": "user", "id": contact.id}, body=f"message {i}")
    query = {"field": "source.author.email", "operator": "=", "value": "c@search.example"}
    found = list(client.conversations.search(query=query, pagination={"per_page": 2}))
    assert len(found) == len({c.id for c in found}) == 5


async def test_async_search_iterates_three_pages_once(
    async_client: AsyncResilientIntercom, raw: intercom.Intercom
) -> None:
    expected = _seed(raw)
    pager = await async_client.contacts.search(query=QUERY, pagination={"per_page": 3})
    found = [c.id async for c in pager]
    assert sorted(found) == sorted(expected)


def test_the_raw_sdk_still_has_the_bug(raw: intercom.Intercom) -> None:
    """If python-intercom fixes its pager, this fails: then the wrapper can go."""
    _seed(raw)
    first_ten = [
        c.id
        for c in itertools.islice(raw.contacts.search(query=QUERY, pagination={"per_page": 3}), 10)
    ]
    assert len(first_ten) == 10
    assert len(set(first_ten)) == 3  # page 1, over and over


def test_walking_one_pager_twice_is_not_a_loop(
    client: ResilientIntercom, raw: intercom.Intercom
) -> None:
    _seed(raw)
    pager = client.contacts.search(query=QUERY, pagination={"per_page": 3})
    first = [len(page.items or []) for page in pager.iter_pages()]
    again = [len(page.items or []) for page in pager.iter_pages()]
    assert first == again == [3, 3, 1]


# A server whose cursors go round: each maps the cursor a request sent (None for the first page)
# to the one its answer hands back.
REPEATS = {None: "c1", "c1": "c1"}
CYCLES = {None: "c1", "c1": "c2", "c2": "c3", "c3": "c1"}
BOUNCES_BACK = {"c0": "c0"}


def looping_server(cursors: dict[str | None, str], sent: list[str | None]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/contacts/search")
        cursor = (json.loads(request.content).get("pagination") or {}).get("starting_after")
        sent.append(cursor)
        page = len(sent)
        return httpx.Response(
            200,
            json={
                "type": "list",
                "data": [{"type": "contact", "id": f"contact-{page}", "role": "user"}],
                "total_count": 100,
                "pages": {
                    "type": "pages",
                    "page": page,
                    "per_page": 1,
                    "total_pages": 100,
                    "next": {"per_page": 1, "starting_after": cursors[cursor]},
                },
            },
        )

    return httpx.MockTransport(handle)


LOOPS = [
    pytest.param(REPEATS, None, 2, "c1", id="same-cursor-twice"),
    pytest.param(CYCLES, None, 4, "c1", id="cycle"),
    pytest.param(BOUNCES_BACK, "c0", 1, "c0", id="back-to-the-callers-cursor"),
]


@pytest.mark.parametrize(("cursors", "start", "pages", "repeated"), LOOPS)
def test_a_repeated_cursor_ends_the_walk_with_a_clear_error(
    cursors: dict[str | None, str], start: str | None, pages: int, repeated: str
) -> None:
    sent: list[str | None] = []
    client = ResilientIntercom(token="t", transport=looping_server(cursors, sent))
    pagination = {"per_page": 1} if start is None else {"per_page": 1, "starting_after": start}
    pager = client.contacts.search(query=QUERY, pagination=pagination)
    seen: list[str | None] = []
    with pytest.raises(PaginationLoopError) as raised:
        # Bounded: the pager before the fix loops forever, which islice turns into a plain
        # "did not raise" failure.
        seen.extend(c.id for c in itertools.islice(pager, 50))
    error = raised.value
    assert isinstance(error, IntercomResilienceError)
    assert (error.endpoint, error.cursor, error.pages) == ("POST /contacts/search", repeated, pages)
    assert "POST /contacts/search" in str(error)
    assert len(sent) == pages  # the repeat itself is never fetched
    assert seen == [f"contact-{n}" for n in range(1, pages + 1)]  # every page read was yielded


@pytest.mark.parametrize(("cursors", "start", "pages", "repeated"), LOOPS)
async def test_a_repeated_cursor_ends_the_async_walk_too(
    cursors: dict[str | None, str], start: str | None, pages: int, repeated: str
) -> None:
    sent: list[str | None] = []
    client = AsyncResilientIntercom(token="t", transport=looping_server(cursors, sent))
    pagination = {"per_page": 1} if start is None else {"per_page": 1, "starting_after": start}
    pager = await client.contacts.search(query=QUERY, pagination=pagination)
    with pytest.raises(PaginationLoopError) as raised:
        await first_ids(pager, 50)  # bounded, as above
    assert (raised.value.cursor, raised.value.pages) == (repeated, pages)
    assert len(sent) == pages


async def first_ids(pager: AsyncPager[Contact, Any], limit: int) -> list[str | None]:
    ids: list[str | None] = []
    async for contact in pager:
        ids.append(contact.id)
        if len(ids) == limit:
            break
    return ids
