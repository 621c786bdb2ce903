"""Iterating a search walks every page exactly once and stops (the SDK's pager does not)."""

from __future__ import annotations

import itertools

import intercom

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom
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
