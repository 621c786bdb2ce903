"""Every resource of the fake, driven through the official SDK in process and over real HTTP.

The ``sdk`` fixture validates each response body against the vendored 2.16 schema of its
operation (see ``conftest.py``); the tests check that the SDK's typed models carry the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError
from intercom.errors import NotFoundError

from intercom_resilience.testing import FakeIntercom

if TYPE_CHECKING:
    from conftest import SchemaChecker


def _user(sdk: intercom.Intercom, email: str, **fields: object) -> intercom.Contact:
    return sdk.contacts.create(request={"email": email, **fields})  # type: ignore[arg-type,return-value]


def test_admins_and_teams(sdk: intercom.Intercom, checker: SchemaChecker) -> None:
    me = sdk.admins.identify()
    assert me is not None
    assert me.type == "admin"
    assert me.app is not None
    assert me.app.id_code == "fake-workspace"
    admins = sdk.admins.list().admins or []
    assert [a.name for a in admins if a] == ["Ada Lovelace", "Grace Hopper"]
    found = sdk.admins.find(int(admins[1].id))  # type: ignore[union-attr]
    assert found is not None
    assert found.email == "grace@fake-workspace.example"
    teams = sdk.teams.list().teams or []
    assert [t.name for t in teams] == ["Support", "Escalations"]
    support = sdk.teams.find(teams[0].id)
    assert support.admin_ids == [int(a.id) for a in admins if a]
    with pytest.raises(NotFoundError):
        sdk.teams.find("999")
    assert len(checker.validated) == 6


def test_contact_lifecycle(sdk: intercom.Intercom, checker: SchemaChecker) -> None:
    created = sdk.contacts.create(
        request={
            "email": "ada@example.com",
            "external_id": "u-1",
            "name": "Ada",
            "custom_attributes": {"plan": "pro"},
        }
    )
    assert created.id
    assert created.role == "user"
    assert created.email_domain == "example.com"
    found = sdk.contacts.find(created.id)
    assert found.name == "Ada"
    assert found.custom_attributes == {"plan": "pro"}
    by_external = sdk.contacts.show_contact_by_external_id("u-1")
    assert by_external.id == created.id
    updated = sdk.contacts.update(created.id, name="Ada L.", custom_attributes={"seats": 3})
    assert updated.name == "Ada L."
    assert updated.custom_attributes == {"plan": "pro", "seats": 3}
    assert sdk.contacts.find(created.id).name == "Ada L."
    deleted = sdk.contacts.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(ApiError) as error:  # the SDK has no typed 404 for this endpoint
        sdk.contacts.find(created.id)
    assert error.value.status_code == 404
    assert error.value.body["errors"][0]["code"] == "not_found"
    assert {status for _, _, status in checker.validated} == {200, 404}


def test_contact_list_walks_the_cursor(sdk: intercom.Intercom, checker: SchemaChecker) -> None:
    ids = [_user(sdk, f"user{i}@example.com").id for i in range(7)]
    first = sdk.contacts.list(per_page=3)
    assert first.response is not None
    assert first.response.total_count == 7
    assert first.response.pages is not None
    assert first.response.pages.total_pages == 3
    assert [c.id for c in first] == ids  # the SDK's pager follows pages.next.starting_after
    assert len([v for v in checker.validated if v[1] == "/contacts" and v[0] == "GET"]) == 3


def test_contact_errors(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    _user(sdk, "dup@example.com")
    with pytest.raises(ApiError) as conflict:
        _user(sdk, "DUP@example.com")
    assert conflict.value.status_code == 409
    with pytest.raises(ApiError) as invalid:
        sdk.contacts.create(request={"name": "nobody"})  # type: ignore[arg-type]
    assert invalid.value.status_code == 400
    assert invalid.value.body["errors"][0]["code"] == "parameter_invalid"
    with pytest.raises(ApiError) as wrong_type:
        sdk.contacts.create(request={"email": "x@example.com", "signed_up_at": "yesterday"})  # type: ignore[typeddict-item]
    assert wrong_type.value.status_code == 400
    assert wrong_type.value.body["errors"][0]["field"] == "signed_up_at"
    assert len(fake.workspace().contacts) == 1  # failed writes wrote nothing


def test_conversations(sdk: intercom.Intercom, fake: FakeIntercom, checker: SchemaChecker) -> None:
    contact = _user(sdk, "c@example.com", name="Cleo")
    admin = (sdk.admins.list().admins or [])[0]
    assert admin is not None
    message = sdk.conversations.create(from_={"type": "user", "id": contact.id}, body="Help!")
    assert message.conversation_id
    conversation = sdk.conversations.find(message.conversation_id)
    assert conversation.source is not None
    assert conversation.source.body == "<p>Help!</p>"
    assert conversation.contacts is not None
    assert [c.id for c in conversation.contacts.contacts or []] == [contact.id]
    replied = sdk.conversations.reply(
        message.conversation_id,
        request={"message_type": "comment", "type": "admin", "admin_id": admin.id, "body": "On it"},
    )
    parts = replied.conversation_parts.conversation_parts if replied.conversation_parts else []
    assert [p.body for p in parts or []] == ["<p>On it</p>"]
    sdk.conversations.reply(
        message.conversation_id,
        request={
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": contact.id,
            "body": "Thanks",
        },
    )
    tag = sdk.tags.create(request={"name": "vip"})
    tagged = sdk.tags.tag_conversation(message.conversation_id, tag_id=tag.id, admin_id=admin.id)
    assert tagged.name == "vip"
    again = sdk.conversations.find(message.conversation_id)
    assert again.conversation_parts is not None
    assert again.conversation_parts.total_count == 2
    assert again.tags is not None
    assert [t.name for t in again.tags.tags or []] == ["vip"]
    second = sdk.conversations.create(from_={"type": "user", "id": contact.id}, body="Again")
    listed = sdk.conversations.list(per_page=1)
    assert [c.id for c in listed] == [message.conversation_id, second.conversation_id]
    with pytest.raises(NotFoundError):
        sdk.conversations.find("123")
    with pytest.raises(NotFoundError):
        sdk.conversations.create(from_={"type": "user", "id": "nope"}, body="x")
    assert fake.journal.count(method="POST", path="/conversations/*/reply", changed_state=True) == 2
    assert any(t == "/conversations/{conversation_id}/reply" for _, t, _ in checker.validated)


def test_companies(sdk: intercom.Intercom) -> None:
    company = sdk.companies.create_or_update(
        request={
            "company_id": "acme",
            "name": "Acme",
            "plan": "pro",
            "size": 40,
            "custom_attributes": {"region": "eu"},
        }
    )
    assert company.name == "Acme"
    assert company.plan is not None
    assert company.plan.name == "pro"
    same = sdk.companies.create_or_update(request={"company_id": "acme", "size": 50})
    assert same.id == company.id
    assert same.size == 50
    assert same.name == "Acme"
    assert sdk.companies.find(company.id).company_id == "acme"
    retrieved = sdk.companies.retrieve(company_id="acme")
    assert [c.id for c in retrieved.data or []] == [company.id]  # type: ignore[union-attr]
    for i in range(3):
        sdk.companies.create_or_update(request={"company_id": f"c{i}", "name": f"C{i}"})
    pager = sdk.companies.list(per_page=2)
    assert len(list(pager)) == 4  # page by page until an empty page
    with pytest.raises(NotFoundError):
        sdk.companies.find("000000000000000000000000")
    with pytest.raises(ApiError) as error:
        sdk.companies.create_or_update(request={"name": "no id"})
    assert error.value.status_code == 400


def test_tags(sdk: intercom.Intercom) -> None:
    contact = _user(sdk, "t@example.com")
    tag = sdk.tags.create(request={"name": "beta"})
    assert sdk.tags.create(request={"name": "beta"}).id == tag.id  # create is idempotent by name
    assert [t.name for t in sdk.tags.list().data or []] == ["beta"]
    applied = sdk.tags.tag_contact(contact.id, tag_id=tag.id)
    assert applied.id == tag.id
    assert [t.id for t in sdk.contacts.list_attached_tags(contact.id).data or []] == [tag.id]
    found = sdk.contacts.find(contact.id)
    assert found.tags is not None
    assert [t.id for t in found.tags.data or []] == [tag.id]
    with pytest.raises(NotFoundError):
        sdk.tags.tag_contact(contact.id, tag_id="404")


def test_data_events(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    contact = _user(sdk, "e@example.com", external_id="ext-e")
    now = int(fake.clock.time())
    for offset in (0, 60, 120):
        sdk.events.create(
            request={
                "event_name": "ordered",
                "created_at": now + offset,
                "id": contact.id,
                "metadata": {"sku": "x"},
            }
        )
    sdk.events.create(request={"event_name": "logged-in", "created_at": now, "user_id": "ext-e"})
    summary = sdk.events.list(type="user", intercom_user_id=contact.id, summary=True)
    counts = {e.name: e.count for e in summary.events or [] if e}
    assert counts == {"ordered": 3, "logged-in": 1}
    listing = sdk.events.list(type="user", user_id="ext-e")
    assert len(listing.events or []) == 4
    assert fake.journal.count(method="POST", path="/events", status=202) == 4
    with pytest.raises(ApiError) as missing:
        sdk.events.create(request={"event_name": "x", "created_at": now, "user_id": "ghost"})
    assert missing.value.status_code == 404
    with pytest.raises(ApiError) as error:
        sdk.events.list(type="company", intercom_user_id=contact.id)
    assert error.value.status_code == 400


def test_unknown_path_is_an_error_list_404(fake: FakeIntercom, raw: httpx.Client) -> None:
    response = raw.get("/no/such/thing")
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error.list"
    assert body["errors"][0]["code"] == "not_found"
    assert body["request_id"] == response.headers["x-request-id"]
    assert raw.delete("/me").status_code == 404  # a known path with an unknown method
    entry = fake.journal.last(path="/no/such/thing")
    assert entry is not None
    assert entry.template is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/contacts", b"{not json"),
        ("POST", "/contacts", b"[1, 2]"),
        ("POST", "/contacts", b'{"email": 42}'),
        ("PUT", "/contacts/x", b'{"custom_attributes": [1]}'),
        (
            "POST",
            "/contacts/search",
            b'{"query": {"field": "email", "operator": "??", "value": 1}}',
        ),
        ("POST", "/contacts/search", b'{"query": {}, "pagination": {"per_page": "ten"}}'),
        ("POST", "/conversations", b'{"from": "me", "body": "x"}'),
        ("POST", "/events", b'{"event_name": "x", "created_at": "now"}'),
        ("GET", "/contacts?per_page=0", b""),
        ("GET", "/contacts?starting_after=garbage!", b""),
    ],
)
def test_malformed_requests_get_parameter_invalid(
    fake: FakeIntercom, raw: httpx.Client, method: str, path: str, body: bytes
) -> None:
    fake.workspace().create_contact({"email": "x@example.com"}, 0)
    response = raw.request(method, path, content=body, headers={"Content-Type": "application/json"})
    if path == "/contacts/x":
        # The contact does not exist: 404 wins over the body, as the lookup happens first.
        assert response.status_code in {400, 404}
        return
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error.list"
    assert error["errors"][0]["code"] == "parameter_invalid"


async def test_async_sdk_in_process(fake: FakeIntercom, checker: SchemaChecker) -> None:
    async with httpx.AsyncClient(
        transport=fake.async_transport(), event_hooks={"response": [checker.acheck]}
    ) as http:
        client = intercom.AsyncIntercom(token="fake-token", httpx_client=http)
        contact = await client.contacts.create(request={"email": "async@example.com"})
        found = await client.contacts.find(contact.id)
        assert found.email == "async@example.com"
        me = await client.admins.identify()
        assert me is not None
    assert len(checker.validated) == 3


def test_request_ids_are_deterministic_per_seed(clock: object) -> None:
    def ids(seed: int) -> list[str]:
        fake = FakeIntercom(seed=seed)
        with httpx.Client(transport=fake.transport(), base_url="http://fake") as client:
            return [
                client.get("/me", headers={"Authorization": "Bearer fake-token"}).headers[
                    "x-request-id"
                ]
                for _ in range(3)
            ]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)
    assert len(set(ids(1))) == 3
