"""Health, alerts and incidents from real traffic on the fake, sync and async."""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import VirtualClock
from intercom_resilience._health import AlertEvent
from intercom_resilience._incidents import render_postmortem, render_status_update
from intercom_resilience.testing import FakeIntercom

from ._drive import MODES, done, make_client

pytestmark = pytest.mark.parametrize("mode", MODES)


def _collapse(statuses: list[str]) -> list[str]:
    return [status for status, _ in itertools.groupby(statuses)]


async def test_outage_breaker_stale_recovery(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    alerts: list[AlertEvent] = []
    client = make_client(mode, fake, clock, on_alert=alerts.append)
    ids = [
        (await done(client.contacts.create(request={"email": f"i{i}@example.com"}))).id
        for i in range(3)
    ]
    for cid in ids:
        await done(client.contacts.find(contact_id=cid))
    statuses = [client.health().status]
    fake.faults.outage(seconds=120)
    for step in range(300):
        try:
            await done(client.contacts.find(contact_id=ids[step % 3]))
            await done(client.admins.identify())  # never cached: fails during the outage
        except ApiError:
            pass
        statuses.append(client.health().status)
        clock.advance(1)
    collapsed = _collapse(statuses)
    assert collapsed[0] == "healthy"
    assert "unhealthy" in collapsed
    assert collapsed[-1] == "healthy"
    assert collapsed.count("unhealthy") == 1  # one outage, one unhealthy spell
    assert client.stale_served > 0

    p1 = [(a.kind, a.alert.rule) for a in alerts if a.alert.severity.value == "P1"]
    assert p1 == [("fired", "api_unreachable"), ("resolved", "api_unreachable")]

    (incident,) = client.incidents
    assert incident.closed_at is not None
    failed_ids = [e.request_id for e in fake.journal.filter(status=503)]
    assert failed_ids
    assert set(failed_ids) <= set(incident.request_ids)
    report = render_postmortem(incident)
    for request_id in failed_ids:
        assert request_id in report
    times = [entry.at for entry in incident.timeline]
    assert times == sorted(times)
    kinds = [entry.kind for entry in incident.timeline]
    assert kinds.index("incident.opened") < kinds.index("incident.closed")
    assert "breaker" in kinds
    assert incident.stale_served > 0


async def test_revoked_token_is_a_p1_auth_failure(
    mode: str, fake: FakeIntercom, clock: VirtualClock
) -> None:
    alerts: list[AlertEvent] = []
    client = make_client(mode, fake, clock, on_alert=alerts.append)
    await done(client.admins.identify())
    assert client.health().authenticated is True
    fake.revoke_token("fake-token")
    with pytest.raises(ApiError):
        await done(client.admins.identify())
    health = client.health()
    assert health.authenticated is False
    assert health.status == "unhealthy"
    fired = [a.alert for a in alerts if a.kind == "fired"]
    assert [(a.rule, a.severity.value) for a in fired] == [("auth_failure", "P1")]
    incident = client.current_incident
    assert incident is not None
    message = render_status_update(incident, now=clock.time())
    assert "P1" in message
    assert "auth" in message.lower()


async def test_check_health_probes_me(mode: str, fake: FakeIntercom, clock: VirtualClock) -> None:
    client = make_client(mode, fake, clock)
    health = await done(client.check_health())
    assert health.status == "healthy"
    assert health.rate_limit_remaining is not None
    assert fake.journal.count(path="/me") == 1
    fake.revoke_token("fake-token")
    health = await done(client.check_health())  # never raises
    assert health.authenticated is False
    json.dumps(health.to_dict())


TOKEN = "dG9rOjEyMzQ1Njc4XzkwYWJjZGVmXzEyMzRfNDU2Nzg5MDEyMzQ1Njc4OTA6OjE="  # intercom-resilience: allow-token
ROTATED = "dG9rOjk4NzY1NDMyXzEwZmVkY2JhXzQzMjFfOTg3NjU0MzIxMDk4NzY1NDM6OjE="  # intercom-resilience: allow-token


async def test_the_token_never_appears_in_any_output(
    mode: str, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeIntercom(clock=clock, token=TOKEN)
    events: list[tuple[str, dict[str, Any]]] = []
    alerts: list[AlertEvent] = []
    tokens = iter([TOKEN, TOKEN, TOKEN, ROTATED])
    current = {"value": TOKEN}

    def token() -> str:
        current["value"] = next(tokens, current["value"])
        return current["value"]

    caplog.set_level(logging.DEBUG, logger="intercom_resilience")
    client = make_client(
        mode,
        fake,
        clock,
        token=token,
        on_alert=alerts.append,
        event_hooks=[lambda e: events.append((e.name, e.fields()))],
    )
    outputs: list[str] = [repr(client)]
    cid = (await done(client.contacts.create(request={"email": "t@example.com"}))).id
    await done(client.contacts.find(contact_id=cid))
    fake.faults.outage(seconds=60)
    for _ in range(40):
        try:
            await done(client.contacts.find(contact_id=cid))
            await done(client.admins.identify())
        except Exception as error:  # every exception's text and repr is output too
            outputs += [str(error), repr(error), repr(getattr(error, "__dict__", {}))]
        clock.advance(1)
    clock.advance(120)
    fake.revoke_token(TOKEN)
    fake.add_token(ROTATED)
    await done(client.admins.identify())  # recovers by rotation
    outputs += [repr(events), repr(alerts), caplog.text, json.dumps(client.health().to_dict())]
    for incident in (*client.incidents, client.current_incident):
        if incident is not None:
            outputs += [incident.to_json(), render_postmortem(incident)]
            outputs.append(render_status_update(incident, now=clock.time()))
    outputs.append(repr(client.recent_failures))
    blob = "\n".join(outputs)
    assert len(blob) > 1000  # the scan saw real output
    assert TOKEN not in blob
    assert ROTATED not in blob
    assert TOKEN[:20] not in blob
