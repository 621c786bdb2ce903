"""Cache warming: chosen resources read ahead on the background lane, so an outage is answered
from the cache; resumable from a checkpoint; the health says how warm the cache is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    AsyncResilientIntercom,
    VirtualClock,
    WarmProgress,
    capture_calls,
)
from intercom_resilience.events import CallFinished, Event
from intercom_resilience.testing import FakeIntercom


@pytest.fixture
def fake(clock: VirtualClock) -> FakeIntercom:
    return FakeIntercom(clock=clock)


def seed_contacts(fake: FakeIntercom, n: int, domain: str = "example.com") -> list[str]:
    with fake.client() as seeder:  # another process: its cache is not the one under test
        return [
            seeder.contacts.create(request={"email": f"c{i}@{domain}"}).id  # type: ignore[union-attr]
            for i in range(n)
        ]


def test_an_outage_is_answered_for_warmed_contacts_only(
    fake: FakeIntercom, clock: VirtualClock
) -> None:
    ids = seed_contacts(fake, 6)
    with fake.client() as client:
        report = client.warm_cache(contacts=ids[:4])
        assert (report.warmed, report.missing, report.error) == (4, 0, None)
        clock.advance(60)
        fake.faults.outage(seconds=600)
        with capture_calls() as calls:
            for cid in ids[:4]:
                assert client.contacts.find(contact_id=cid).id == cid
        assert all(call.stale for call in calls)
        with pytest.raises(ApiError):  # never warmed: nothing to answer from
            client.contacts.find(contact_id=ids[4])


def test_warming_runs_on_the_background_lane(fake: FakeIntercom) -> None:
    ids = seed_contacts(fake, 3)
    events: list[Event] = []
    with fake.client(event_hooks=[events.append]) as client:
        client.warm_cache(contacts=ids)
        client.contacts.find(contact_id=ids[0])  # an interactive call, for contrast
    priorities = [e.priority for e in events if isinstance(e, CallFinished)]
    assert priorities == ["background"] * 3 + ["interactive"]


def test_every_resource_kind_and_missing_ids(fake: FakeIntercom) -> None:
    with fake.client() as seeder:
        company = seeder.companies.create_or_update(request={"company_id": "acme", "name": "Acme"})
        contact = seeder.contacts.create(request={"email": "a@example.com"})
    with fake.client() as client:
        report = client.warm_cache(
            contacts=[contact.id, "no-such-contact"],  # type: ignore[list-item]
            companies=[company.id],
            conversations=["404404"],
        )
    assert (report.warmed, report.missing) == (2, 2)
    templates = [e.template for e in fake.journal.filter(method="GET")]
    assert "/companies/{company_id}" in templates
    assert "/conversations/{conversation_id}" in templates


def test_a_contact_search_warms_every_match_by_id(fake: FakeIntercom, clock: VirtualClock) -> None:
    matching = seed_contacts(fake, 4, domain="vip.example")
    others = seed_contacts(fake, 2, domain="other.example")
    query = {"field": "email", "operator": "~", "value": "vip.example"}
    seen: list[WarmProgress] = []
    with fake.client() as client:
        report = client.warm_cache(contact_search=query, on_progress=seen.append)
        assert report.warmed == 4
        assert seen[-1].done == seen[-1].total == 4
        fake.faults.outage(seconds=600)
        assert {client.contacts.find(contact_id=cid).id for cid in matching} == set(matching)
        with pytest.raises(ApiError):
            client.contacts.find(contact_id=others[0])


def test_an_interrupted_run_resumes_from_its_checkpoint(fake: FakeIntercom, tmp_path: Path) -> None:
    ids = seed_contacts(fake, 10)
    checkpoint = tmp_path / "warm.json"

    def stop_after_four(progress: WarmProgress) -> None:
        if progress.done == 4:
            raise KeyboardInterrupt

    with fake.client() as client:
        with pytest.raises(KeyboardInterrupt):
            client.warm_cache(contacts=ids, checkpoint=checkpoint, on_progress=stop_after_four)
        saved = json.loads(checkpoint.read_text())
        assert sorted(saved["done"]) == sorted(f"contact:{cid}" for cid in ids[:4])
        before = fake.journal.count(method="GET")
        report = client.warm_cache(contacts=ids, checkpoint=checkpoint)
    assert (report.skipped, report.warmed, report.error) == (4, 6, None)
    assert fake.journal.count(method="GET") - before == 6  # the first four were not read again
    assert not checkpoint.exists()  # finished: nothing left to resume


def test_an_outage_mid_run_stops_early_and_keeps_the_checkpoint(
    fake: FakeIntercom, tmp_path: Path
) -> None:
    ids = seed_contacts(fake, 5)
    checkpoint = tmp_path / "warm.json"

    def outage_after_two(progress: WarmProgress) -> None:
        if progress.done == 2:
            fake.faults.outage(seconds=600)

    with fake.client() as client:
        report = client.warm_cache(
            contacts=ids, checkpoint=checkpoint, on_progress=outage_after_two
        )
    assert report.warmed == 2
    assert report.error is not None and not report.complete
    assert len(json.loads(checkpoint.read_text())["done"]) == 2


def test_a_checkpoint_of_another_plan_is_refused(fake: FakeIntercom, tmp_path: Path) -> None:
    checkpoint = tmp_path / "warm.json"
    checkpoint.write_text(json.dumps({"version": 1, "plan": "someone-else", "done": []}))
    with fake.client() as client, pytest.raises(ValueError, match="another plan"):
        client.warm_cache(contacts=["1"], checkpoint=checkpoint)
    checkpoint.write_text("not json")
    with fake.client() as client, pytest.raises(ValueError, match="unreadable"):
        client.warm_cache(contacts=["1"], checkpoint=checkpoint)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "something to read"),
        ({"contacts": "6a1b"}, "contacts must be a list"),
        ({"companies": [""]}, "companies must hold non-empty"),
        ({"contact_search": ["x"]}, "contact_search must be a search query"),
    ],
)
def test_bad_arguments_fail_before_anything_is_sent(
    fake: FakeIntercom, kwargs: dict[str, object], message: str
) -> None:
    with fake.client() as client, pytest.raises(ValueError, match=message):
        client.warm_cache(**kwargs)  # type: ignore[arg-type]
    assert len(fake.journal) == 0


def test_health_says_how_warm_the_cache_is(fake: FakeIntercom, clock: VirtualClock) -> None:
    ids = seed_contacts(fake, 3)
    with fake.client() as client:
        assert client.health().cache is not None
        assert client.health().cache.entries == 0  # type: ignore[union-attr]
        assert client.health().cache.oldest_age_s is None  # type: ignore[union-attr]
        client.warm_cache(contacts=ids[:1])
        clock.advance(30)
        client.warm_cache(contacts=ids[1:])
        clock.advance(10)
        warmth = client.health().cache
        assert warmth is not None
        assert warmth.entries == 3
        assert warmth.oldest_age_s == pytest.approx(40.0, abs=0.05)  # the fake takes ms per call
        assert client.health().to_dict()["cache"] == {
            "entries": 3,
            "max_entries": 10_000,
            "oldest_age_s": 40.0,
        }


async def test_the_async_twin(fake: FakeIntercom, clock: VirtualClock, tmp_path: Path) -> None:
    ids = seed_contacts(fake, 3)
    client: AsyncResilientIntercom = fake.async_client()
    try:
        report = await client.warm_cache(
            contacts=ids[:2],
            contact_search={"field": "email", "operator": "=", "value": "c2@example.com"},
        )
        assert (report.warmed, report.error) == (3, None)
        fake.faults.outage(seconds=600)
        for cid in ids:
            assert (await client.contacts.find(contact_id=cid)).id == cid
    finally:
        await client.aclose()


def test_a_stale_answer_is_not_counted_as_warmed(fake: FakeIntercom, tmp_path: Path) -> None:
    # Regression: during an outage an already cached id was served stale, counted as warmed and
    # checkpointed, so the run resumed after the outage skipped it, never refreshed.
    ids = seed_contacts(fake, 3)
    checkpoint = tmp_path / "warm.json"
    with fake.client() as client:
        client.warm_cache(contacts=ids[:1])
        fake.faults.outage(seconds=600)
        report = client.warm_cache(contacts=ids, checkpoint=checkpoint)
        assert (report.warmed, report.error) == (0, "StaleAnswerError")
        assert json.loads(checkpoint.read_text())["done"] == []
        fake.faults.clear()
        fake.clock.advance(120)  # the breaker's open period ends
        assert client.warm_cache(contacts=ids, checkpoint=checkpoint).warmed == 3
