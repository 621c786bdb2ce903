"""Cross-resource links keep state on both sides, round-tripped through the official SDK.

Every test runs in process and over real HTTP (the ``sdk`` fixture, whose hook validates every
body against the 2.16 schemas). Operations the SDK does not offer (``GET /conversations/deleted``,
``GET /contacts/{id}/merge_history``, the export download's bytes) go through bare httpx.
"""

from __future__ import annotations

import gzip

import httpx
import intercom
import pytest
from intercom.core.api_error import ApiError

from intercom_resilience.testing import FakeIntercom, VirtualClock
from intercom_resilience.testing._links import EXPORT_SECONDS, JOB_SECONDS, SCROLL_TTL_S


def _status(call: object) -> int:
    assert isinstance(call, ApiError)
    assert call.status_code is not None
    return call.status_code


def _contact_ids(sdk: intercom.Intercom) -> list[str]:
    return [c.id for c in sdk.contacts.list() if c.id is not None]


def _search_ids(sdk: intercom.Intercom, field: str, value: str) -> list[str]:
    hits = sdk.contacts.search(query={"field": field, "operator": "=", "value": value})
    return [c.id for c in hits if c.id is not None]


def test_contact_tags_attach_list_search_detach(sdk: intercom.Intercom) -> None:
    contact = sdk.contacts.create(request={"email": "tagged@example.com"})
    other = sdk.contacts.create(request={"email": "plain@example.com"})
    tag = sdk.tags.create(request={"name": "vip"})
    assert sdk.tags.tag_contact(contact.id, tag_id=tag.id).id == tag.id
    assert [t.id for t in sdk.contacts.list_attached_tags(contact.id).data or []] == [tag.id]
    found = sdk.contacts.find(contact.id)
    assert [t.id for t in (found.tags.data if found.tags else None) or []] == [tag.id]
    assert _search_ids(sdk, "tag_id", tag.id) == [contact.id]
    assert sdk.contacts.list_attached_tags(other.id).data == []
    assert sdk.tags.untag_contact(contact.id, tag.id).id == tag.id
    assert sdk.contacts.list_attached_tags(contact.id).data == []
    assert _search_ids(sdk, "tag_id", tag.id) == []
    # Deleting a tag takes it off everything it was on.
    sdk.tags.tag_contact(other.id, tag_id=tag.id)
    sdk.tags.delete(tag.id)
    assert sdk.contacts.list_attached_tags(other.id).data == []
    with pytest.raises(ApiError) as gone:
        sdk.tags.find(tag.id)
    assert _status(gone.value) == 404


def test_contact_companies_attach_list_update_detach(sdk: intercom.Intercom) -> None:
    contact = sdk.contacts.create(request={"email": "worker@example.com"})
    company = sdk.companies.create_or_update(request={"company_id": "acme", "name": "Acme"})
    attached = sdk.companies.attach_contact(contact.id, company_id=company.id)
    assert (attached.id, attached.user_count) == (company.id, 1)
    assert [c.id for c in sdk.contacts.list_attached_companies(contact.id)] == [company.id]
    members = sdk.companies.list_attached_contacts(company.id).data or []
    assert [c.id for c in members] == [contact.id]
    assert _search_ids(sdk, "company_id", company.id) == [contact.id]
    updated = sdk.companies.update(company.id, request={"name": "Acme Ltd", "size": 12})
    assert (updated.name, updated.size, updated.company_id) == ("Acme Ltd", 12, "acme")
    assert sdk.companies.find(company.id).name == "Acme Ltd"
    detached = sdk.companies.detach_contact(contact.id, company.id)
    assert detached.user_count == 0
    assert list(sdk.contacts.list_attached_companies(contact.id)) == []
    with pytest.raises(ApiError) as twice:
        sdk.companies.detach_contact(contact.id, company.id)
    assert _status(twice.value) == 404
    with pytest.raises(ApiError) as unknown:
        sdk.companies.attach_contact(contact.id, company_id="no-such-company")
    assert _status(unknown.value) == 404
    assert unknown.value.body["errors"][0]["code"] == "company_not_found"
    sdk.companies.attach_contact(contact.id, company_id=company.id)
    deleted = sdk.companies.delete(company.id)
    assert (deleted.id, deleted.deleted) == (company.id, True)
    with pytest.raises(ApiError):
        sdk.companies.find(company.id)
    assert list(sdk.contacts.list_attached_companies(contact.id)) == []


def test_contact_notes_create_list_find(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    contact = sdk.contacts.create(request={"email": "noted@example.com"})
    admin = next(iter(fake.workspace().admins))
    first = sdk.notes.create(contact.id, body="Called about billing", admin_id=admin)
    second = sdk.notes.create(contact.id, body="Sent the invoice")
    assert first.body == "<p>Called about billing</p>"
    assert [n.id for n in sdk.notes.list(contact.id)] == [second.id, first.id]
    found = sdk.notes.find(int(first.id))
    assert (found.id, found.body) == (first.id, "<p>Called about billing</p>")
    assert found.contact is not None
    assert found.contact.id == contact.id
    with pytest.raises(ApiError) as missing:
        sdk.notes.find(1)
    assert _status(missing.value) == 404


def test_contact_notes_page_until_the_end(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    # Regression: the notes list ignored ``page``, so the SDK's pager asked for page after page
    # of the same notes until the rate limit stopped it.
    ws = fake.workspace()
    contact = ws.create_contact({"email": "busy@example.com"}, 0)
    created = [ws.create_note(contact.id, {"body": f"note {i}"}, i).id for i in range(20)]
    pages = list(sdk.notes.list(contact.id).iter_pages())
    assert [len(p.items or []) for p in pages] == [15, 5]
    assert [n.id for p in pages for n in p.items or []] == created[::-1]


def test_contact_segments(sdk: intercom.Intercom) -> None:
    user = sdk.contacts.create(request={"email": "u@example.com"})
    lead = sdk.contacts.create(request={"role": "lead", "name": "Lee"})
    segments = {s.name: s for s in sdk.segments.list(include_count=True).segments or []}
    assert {name: s.count for name, s in segments.items()} == {"All users": 1, "All leads": 1}
    user_segments = sdk.contacts.list_attached_segments(user.id).data or []
    assert [s.name for s in user_segments] == ["All users"]
    lead_segments = sdk.contacts.list_attached_segments(lead.id).data or []
    assert [s.name for s in lead_segments] == ["All leads"]
    leads = segments["All leads"]
    assert leads.id is not None
    assert sdk.segments.find(leads.id).name == "All leads"
    with pytest.raises(ApiError):
        sdk.segments.find("no-such-segment")


def test_contact_subscriptions(sdk: intercom.Intercom) -> None:
    contact = sdk.contacts.create(request={"email": "reader@example.com"})
    kinds = sdk.subscription_types.list().data or []
    assert [k.consent_type for k in kinds] == ["opt_out", "opt_in"]
    newsletter = kinds[0]
    assert newsletter.id is not None
    assert sdk.contacts.list_attached_subscriptions(contact.id).data == []
    attached = sdk.contacts.attach_subscription(
        contact.id, subscription_id=newsletter.id, consent_type="opt_out"
    )
    assert attached.id == newsletter.id
    listed = sdk.contacts.list_attached_subscriptions(contact.id).data or []
    assert [k.id for k in listed] == [newsletter.id]
    assert sdk.contacts.detach_subscription(contact.id, newsletter.id).id == newsletter.id
    assert sdk.contacts.list_attached_subscriptions(contact.id).data == []
    with pytest.raises(ApiError) as unknown:
        sdk.contacts.attach_subscription(contact.id, subscription_id="1", consent_type="opt_in")
    assert _status(unknown.value) == 404
    with pytest.raises(ApiError) as bad:
        sdk.contacts.attach_subscription(
            contact.id, subscription_id=newsletter.id, consent_type="maybe"
        )
    assert _status(bad.value) == 400


def test_archived_contacts_leave_lists_and_search(sdk: intercom.Intercom) -> None:
    kept = sdk.contacts.create(request={"email": "kept@example.com"})
    shelved = sdk.contacts.create(request={"email": "shelved@example.com"})
    archived = sdk.contacts.archive(shelved.id)
    assert (archived.id, archived.archived) == (shelved.id, True)
    assert _contact_ids(sdk) == [kept.id]
    assert _search_ids(sdk, "email", "shelved@example.com") == []
    assert sdk.contacts.find(shelved.id).id == shelved.id  # still found by its id
    assert sdk.contacts.unarchive(shelved.id).archived is False
    assert _contact_ids(sdk) == [kept.id, shelved.id]
    assert _search_ids(sdk, "email", "shelved@example.com") == [shelved.id]


def test_merging_a_lead_into_a_user(
    sdk: intercom.Intercom, fake: FakeIntercom, raw: httpx.Client
) -> None:
    user = sdk.contacts.create(request={"email": "ada@example.com", "external_id": "u-1"})
    lead = sdk.contacts.create(request={"role": "lead", "phone": "+441234"})
    tag = sdk.tags.create(request={"name": "trial"})
    sdk.tags.tag_contact(lead.id, tag_id=tag.id)
    note = sdk.notes.create(lead.id, body="Asked for a demo")
    message = sdk.conversations.create(from_={"type": "lead", "id": lead.id}, body="Hi")
    merged = sdk.contacts.merge_lead_in_user(lead_id=lead.id, contact_id=user.id)
    assert (merged.id, merged.email, merged.phone) == (user.id, "ada@example.com", "+441234")
    assert [t.id for t in sdk.contacts.list_attached_tags(user.id).data or []] == [tag.id]
    assert [n.id for n in sdk.notes.list(user.id)] == [note.id]
    conversation = sdk.conversations.find(message.conversation_id)
    assert [c.id for c in conversation.contacts.contacts or []] == [user.id]
    with pytest.raises(ApiError) as gone:
        sdk.contacts.find(lead.id)
    assert _status(gone.value) == 410
    assert gone.value.body["errors"][0]["code"] == "contact_merged"
    assert (gone.value.headers or {})["link"] == f'</contacts/{user.id}>; rel="canonical"'
    assert _contact_ids(sdk) == [user.id]
    history = raw.get(f"/contacts/{user.id}/merge_history").json()
    assert [(h["source_contact_id"], h["source_contact_role"]) for h in history["data"]] == [
        (lead.id, "lead")
    ]
    with pytest.raises(ApiError) as invalid:
        sdk.contacts.merge_lead_in_user(lead_id=user.id, contact_id=user.id)
    assert _status(invalid.value) == 400
    assert invalid.value.body["errors"][0]["code"] == "invalid_merge"
    assert fake.workspace().merged_into == {lead.id: user.id}


def test_companies_scroll(sdk: intercom.Intercom, fake: FakeIntercom, clock: VirtualClock) -> None:
    ws = fake.workspace()
    for index in range(230):
        ws.create_or_update_company({"company_id": f"c-{index}"}, 0)
    scrolled = [c.company_id for c in sdk.companies.scroll()]
    assert scrolled == [f"c-{index}" for index in range(230)]
    # The scroll reached its (empty) end and closed: a new one may start.
    first = sdk.companies.scroll()
    assert len(first.items or []) == 100
    with pytest.raises(ApiError) as exists:
        sdk.companies.scroll()
    assert _status(exists.value) == 400
    assert exists.value.body["errors"][0]["code"] == "scroll_exists"
    clock.advance(SCROLL_TTL_S - 1)
    second = first.next_page()  # used within the minute: still open
    assert second is not None
    assert [c.company_id for c in second.items or []][:1] == ["c-100"]
    clock.advance(SCROLL_TTL_S)
    with pytest.raises(ApiError) as expired:
        second.next_page()
    assert _status(expired.value) == 400
    assert len(sdk.companies.scroll().items or []) == 100  # expired, so a new one opens


def test_a_scroll_per_app(fake: FakeIntercom) -> None:
    fake.add_token("other-token", app="other-app")
    fake.workspace().create_or_update_company({"company_id": "c-1"}, 0)
    mine = intercom.Intercom(
        token="fake-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    theirs = intercom.Intercom(
        token="other-token", httpx_client=httpx.Client(transport=fake.transport())
    )
    assert [c.company_id for c in mine.companies.scroll().items or []] == ["c-1"]
    assert [c.company_id for c in theirs.companies.scroll().items or []] == ["c-1"]


def test_conversation_lifecycle(
    sdk: intercom.Intercom, fake: FakeIntercom, clock: VirtualClock, raw: httpx.Client
) -> None:
    ws = fake.workspace()
    admin, other_admin = list(ws.admins)
    team = next(iter(ws.teams))
    contact = sdk.contacts.create(request={"email": "asker@example.com"})
    message = sdk.conversations.create(from_={"type": "user", "id": contact.id}, body="Help")
    conversation_id = message.conversation_id
    assert conversation_id is not None

    def find() -> intercom.Conversation:
        return sdk.conversations.find(conversation_id)

    def parts() -> list[str | None]:
        found = find().conversation_parts
        return [p.part_type for p in (found.conversation_parts if found else None) or []]

    def states(state: str) -> list[str]:
        hits = sdk.conversations.search(query={"field": "state", "operator": "=", "value": state})
        return [c.id for c in hits]

    sdk.conversations.reply(
        conversation_id,
        request={"message_type": "comment", "type": "admin", "admin_id": admin, "body": "On it"},
    )
    closed = sdk.conversations.manage(
        conversation_id, request={"message_type": "close", "type": "admin", "admin_id": admin}
    )
    assert (closed.state, closed.open) == ("closed", False)
    assert parts() == ["comment", "close"]
    assert states("closed") == [conversation_id]
    assert [c.state for c in sdk.conversations.list()] == ["closed"]
    until = int(clock.time()) + 3600
    snoozed = sdk.conversations.manage(
        conversation_id,
        request={"message_type": "snoozed", "admin_id": admin, "snoozed_until": until},
    )
    assert (snoozed.state, snoozed.snoozed_until) == ("snoozed", until)
    assert states("snoozed") == [conversation_id]
    reopened = sdk.conversations.manage(
        conversation_id, request={"message_type": "open", "admin_id": admin}
    )
    assert (reopened.state, reopened.snoozed_until) == ("open", None)
    assigned = sdk.conversations.manage(
        conversation_id,
        request={
            "message_type": "assignment",
            "type": "admin",
            "admin_id": admin,
            "assignee_id": other_admin,
        },
    )
    assert assigned.admin_assignee_id == int(other_admin)
    to_team = sdk.conversations.manage(
        conversation_id,
        request={
            "message_type": "assignment",
            "type": "team",
            "admin_id": admin,
            "assignee_id": team,
        },
    )
    assert to_team.team_assignee_id == int(team)
    assert parts() == ["comment", "close", "snoozed", "open", "assignment", "assignment"]
    tag = sdk.tags.create(request={"name": "billing"})
    sdk.tags.tag_conversation(conversation_id, tag_id=tag.id, admin_id=admin)
    hits = sdk.conversations.search(query={"field": "tag_ids", "operator": "=", "value": tag.id})
    assert [c.id for c in hits] == [conversation_id]
    sdk.tags.untag_conversation(conversation_id, tag.id, admin_id=admin)
    assert (find().tags.tags if find().tags else None) == []
    updated = sdk.conversations.update(conversation_id, title="Refund", read=True)
    assert (updated.title, updated.read) == ("Refund", True)
    assert find().title == "Refund"
    deleted = sdk.conversations.delete_conversation(int(conversation_id))
    assert (deleted.id, deleted.deleted) == (conversation_id, True)
    with pytest.raises(ApiError) as gone:
        find()
    assert _status(gone.value) == 404
    assert list(sdk.conversations.list()) == []
    listed = raw.get("/conversations/deleted").json()
    assert [(c["id"], c["metrics_retained"]) for c in listed["conversations"]] == [
        (conversation_id, True)
    ]


def test_snoozing_into_the_past_is_refused(sdk: intercom.Intercom, fake: FakeIntercom) -> None:
    ws = fake.workspace()
    admin = next(iter(ws.admins))
    contact = ws.create_contact({"email": "a@example.com"}, 0)
    conversation, _ = ws.create_conversation(
        {"from": {"type": "user", "id": contact.id}, "body": "Hi"}, 0
    )
    with pytest.raises(ApiError) as past:
        sdk.conversations.manage(
            conversation.id,
            request={"message_type": "snoozed", "admin_id": admin, "snoozed_until": 1},
        )
    assert _status(past.value) == 400
    assert past.value.body["errors"][0]["field"] == "snoozed_until"


def test_jobs_report_the_queued_ticket(
    sdk: intercom.Intercom, fake: FakeIntercom, clock: VirtualClock
) -> None:
    contact = sdk.contacts.create(request={"email": "queued@example.com"})
    ticket_type = sdk.ticket_types.create(request={"name": "Bug"})
    assert ticket_type is not None
    assert ticket_type.id is not None
    job = sdk.tickets.enqueue_create_ticket(
        ticket_type_id=ticket_type.id, contacts=[{"id": contact.id}]
    )
    assert (job.status, job.resource_id) == ("pending", None)
    assert sdk.jobs.status(job.id).status == "pending"
    clock.advance(JOB_SECONDS)
    done = sdk.jobs.status(job.id)
    assert done.status == "success"
    assert done.resource_id is not None
    ticket = sdk.tickets.get(done.resource_id)
    assert ticket is not None
    assert ticket.id == done.resource_id
    with pytest.raises(ApiError) as unknown:
        sdk.jobs.status("999")
    assert _status(unknown.value) == 404
    assert unknown.value.body["errors"][0]["code"] == "job_not_found"


def test_data_export_create_status_cancel_download(
    sdk: intercom.Intercom, clock: VirtualClock, raw: httpx.Client
) -> None:
    export = sdk.data_export.create(created_at_after=1, created_at_before=2)
    assert export.status == "pending"
    assert export.job_identifier is not None
    with pytest.raises(ApiError) as second:
        sdk.data_export.create(created_at_after=1, created_at_before=2)
    assert _status(second.value) == 429  # one active job per workspace
    clock.advance(EXPORT_SECONDS[0])
    assert sdk.data_export.find(export.job_identifier).status == "in_progress"
    assert raw.get(f"/download/content/data/{export.job_identifier}").status_code == 404
    clock.advance(EXPORT_SECONDS[1])
    completed = sdk.data_export.find(export.job_identifier)
    assert completed.status == "completed"
    assert completed.download_url == (
        f"https://api.intercom.io/download/content/data/{export.job_identifier}"
    )
    download = raw.get(f"/download/content/data/{export.job_identifier}")
    assert gzip.decompress(download.content).startswith(b"ruleset_id,")
    # Completed, it is no longer active: another may start, and be canceled.
    later = sdk.data_export.create(created_at_after=1, created_at_before=2)
    assert later.job_identifier is not None
    assert sdk.data_export.cancel(later.job_identifier).status == "canceled"
    clock.advance(EXPORT_SECONDS[1])
    assert sdk.data_export.find(later.job_identifier).status == "canceled"
    assert sdk.data_export.cancel(export.job_identifier).status == "completed"
    with pytest.raises(ApiError) as unknown:
        sdk.data_export.find("nope")
    assert _status(unknown.value) == 404
    with pytest.raises(ApiError) as backwards:
        sdk.data_export.create(created_at_after=5, created_at_before=2)
    assert _status(backwards.value) == 400
