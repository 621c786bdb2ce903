"""Description-driven resource families keep state: create → find → list → search → update → delete.

Each round trip goes through the official SDK (in process and over real HTTP, via the ``sdk``
fixture, whose hook validates every body against the 2.16 schemas).
"""

from __future__ import annotations

import intercom
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience.testing import FakeIntercom


def test_articles_round_trip(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    admin = next(iter(fake.workspace().admins))
    created = sdk.articles.create(
        request={"title": "Reset your password", "author_id": int(admin), "state": "draft"}
    )
    other = sdk.articles.create(
        request={"title": "Billing", "author_id": int(admin), "body": "<p>Invoices</p>"}
    )
    assert created.title == "Reset your password"
    assert created.state == "draft"
    found = sdk.articles.find(created.id)
    assert (found.id, found.title) == (created.id, "Reset your password")
    listed = [a.id for a in sdk.articles.list()]
    assert listed == [created.id, other.id]
    hits = sdk.articles.search(phrase="password")
    assert hits.total_count == 1
    assert [a.id for a in (hits.data.articles if hits.data else None) or []] == [created.id]
    updated = sdk.articles.update(created.id, title="Reset it", state="published")
    assert (updated.title, updated.state) == ("Reset it", "published")
    assert sdk.articles.find(created.id).title == "Reset it"
    deleted = sdk.articles.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(ApiError) as gone:
        sdk.articles.find(created.id)
    assert gone.value.status_code == 404
    assert [a.id for a in sdk.articles.list()] == [other.id]


def test_help_center_collections_round_trip(sdk: intercom.Intercom) -> None:
    collection = sdk.help_centers.collections.create(name="Getting started")
    assert collection.name == "Getting started"
    assert sdk.help_centers.collections.find(collection.id).name == "Getting started"
    assert [c.id for c in sdk.help_centers.collections.list()] == [collection.id]
    renamed = sdk.help_centers.collections.update(collection.id, name="Start here")
    assert renamed.name == "Start here"
    deleted = sdk.help_centers.collections.delete(collection.id)
    assert deleted.deleted is True
    assert list(sdk.help_centers.collections.list()) == []


def test_internal_articles_and_news_items(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    admin = int(next(iter(fake.workspace().admins)))
    article = sdk.internal_articles.create_internal_article(
        request={"title": "On-call runbook", "author_id": admin, "owner_id": admin}
    )
    assert sdk.internal_articles.retrieve_internal_article(article.id).title == "On-call runbook"
    item = sdk.news.items.create(title="Launch", sender_id=admin, state="live")
    assert sdk.news.items.find(item.id).title == "Launch"
    assert sdk.news.items.update(item.id, title="Launched", sender_id=admin).title == "Launched"
    assert sdk.news.items.delete(item.id).deleted is True
    with pytest.raises(ApiError):
        sdk.news.items.find(item.id)


def test_ticket_types_and_tickets_round_trip(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    contact = sdk.contacts.create(request={"email": "t@example.com"})
    ticket_type = sdk.ticket_types.create(request={"name": "Bug", "description": "Broken"})
    assert ticket_type is not None
    assert ticket_type.id is not None
    found_type = sdk.ticket_types.get(ticket_type.id)
    assert found_type is not None
    assert found_type.name == "Bug"
    assert [t.id for t in sdk.ticket_types.list().data or []] == [ticket_type.id]
    ticket = sdk.tickets.create(ticket_type_id=ticket_type.id, contacts=[{"id": contact.id}])
    assert ticket is not None
    assert ticket.ticket_type is not None
    found = sdk.tickets.get(ticket.id)
    assert found is not None
    assert found.id == ticket.id
    sdk.tickets.update(ticket.id, open=False)
    hits = list(sdk.tickets.search(query={"field": "open", "operator": "=", "value": "false"}))
    assert [t.id for t in hits] == [ticket.id]
    assert list(sdk.tickets.search(query={"field": "open", "operator": "=", "value": "true"})) == []
    assert sdk.tickets.delete_ticket(ticket.id).deleted is True
    with pytest.raises(ApiError):
        sdk.tickets.get(ticket.id)


def test_data_attributes(sdk: intercom.Intercom) -> None:
    created = sdk.data_attributes.create(
        request={"name": "plan_tier", "model": "contact", "data_type": "string"}
    )
    assert created.name == "plan_tier"
    listed = sdk.data_attributes.list().data or []
    assert [a.name for a in listed] == ["plan_tier"]
    assert created.id is not None
    archived = sdk.data_attributes.update(
        created.id, request={"archived": True, "description": "Old"}
    )
    assert archived.archived is True
    with pytest.raises(ApiError) as missing:
        sdk.data_attributes.update(999, request={"archived": True})
    assert missing.value.status_code == 404


def test_families_are_per_workspace(fake: FakeIntercom) -> None:
    fake.add_token("eu-token", app="eu-app", workspace="eu")
    home = intercom.Intercom(token="fake-token", httpx_client=_client(fake))
    away = intercom.Intercom(token="eu-token", httpx_client=_client(fake))
    home.help_centers.collections.create(name="Home")
    assert list(away.help_centers.collections.list()) == []


def _client(fake: FakeIntercom):  # type: ignore[no-untyped-def]
    import httpx

    return httpx.Client(transport=fake.transport())


def test_an_articles_parent_id_is_answered_as_parent_ids(
    sdk: intercom.Intercom, fake: FakeIntercom
) -> None:
    # Regression: the request's parent_id was dropped and the answer's parent_ids made up.
    admin = int(next(iter(fake.workspace().admins)))
    collection = sdk.help_centers.collections.create(name="Start")
    parent = int(collection.id)
    article = sdk.articles.create(
        request={"title": "Install", "author_id": admin, "parent_id": parent}
    )
    assert article.parent_ids == [parent]
    assert [a.parent_ids for a in sdk.articles.list()] == [[parent]]
    moved = sdk.articles.update(int(article.id), parent_id=str(parent + 1))
    assert moved.parent_ids == [parent + 1]
