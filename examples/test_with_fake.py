"""An example test suite for *your* service, using the fake Intercom's pytest fixtures.

The fixtures come with intercom-resilience (registered through a pytest11 entry point), so
nothing needs importing: ``intercom_fake`` is a fresh fake on a virtual clock and
``intercom_client`` is a ``ResilientIntercom`` wired to it. Run with ``pytest examples/``.
"""

from __future__ import annotations

from typing import Any

import pytest

from intercom_resilience.testing import FakeIntercom

# --- the code under test: what your service would do ---------------------------------------------


def open_ticket(client: Any, email: str, text: str) -> str:
    """Find or create the contact for *email* and open a conversation; returns its id."""
    found = client.contacts.search(query={"field": "email", "operator": "=", "value": email})
    contact = found.items[0] if found.items else client.contacts.create(request={"email": email})
    message = client.conversations.create(from_={"type": "user", "id": contact.id}, body=text)
    return str(message.conversation_id)


# --- the tests ------------------------------------------------------------------------------------


def test_opens_a_ticket_for_a_new_customer(
    intercom_fake: FakeIntercom, intercom_client: Any
) -> None:
    conversation_id = open_ticket(intercom_client, "new@example.com", "My order is late")

    stored = intercom_fake.workspace().conversation(conversation_id)
    assert stored.source["body"] == "<p>My order is late</p>"
    assert intercom_fake.journal.count(method="POST", path="/contacts", changed_state=True) == 1


def test_reuses_an_existing_contact(intercom_fake: FakeIntercom, intercom_client: Any) -> None:
    # Seed state directly: no HTTP, no quota spent, no journal entries.
    intercom_fake.workspace().create_contact({"email": "known@example.com"}, now=0)

    open_ticket(intercom_client, "known@example.com", "Hello again")

    assert intercom_fake.journal.count(method="POST", path="/contacts") == 0


def test_survives_a_short_outage(intercom_fake: FakeIntercom, intercom_client: Any) -> None:
    # Two 503s on the search: the client retries (on the virtual clock, so instantly).
    intercom_fake.faults.fail_next(2, status=503, path="/contacts/search")

    open_ticket(intercom_client, "patient@example.com", "Still there?")

    assert intercom_fake.journal.count(path="/contacts/search", status=503) == 2
    assert intercom_fake.journal.count(path="/conversations", changed_state=True) == 1


def test_a_lost_reply_is_never_sent_twice(
    intercom_fake: FakeIntercom, intercom_client: Any
) -> None:
    # Intercom creates the conversation but the response never arrives: a careless retry would
    # open a second ticket. The journal proves the write happened exactly once.
    intercom_fake.faults.lose_response(path="/conversations", method="POST")

    with pytest.raises(Exception):  # noqa: B017, PT011 - the facade's "outcome unknown" error
        open_ticket(intercom_client, "unlucky@example.com", "Hello?")

    assert intercom_fake.journal.count(path="/conversations", changed_state=True) == 1


def test_revoked_token_is_reported(intercom_fake: FakeIntercom, intercom_client: Any) -> None:
    intercom_fake.revoke_token("fake-token")

    with pytest.raises(Exception):  # noqa: B017, PT011 - intercom.errors.UnauthorizedError
        open_ticket(intercom_client, "anyone@example.com", "Hi")

    assert intercom_fake.journal.count(status=401) >= 1
