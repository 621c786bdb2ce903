"""Graceful degradation: reads keep answering from the stale cache while Intercom is down.

The fake Intercom runs on a virtual clock shared with the client, so an hour-long outage takes
milliseconds and retries sleep instantly. No token, no network::

    python examples/graceful_degradation.py

What it shows: a read served stale during an outage (and how the caller can tell), the health
and the P1 alert it causes, the kill switch, recovery, and the rendered postmortem.
"""

from __future__ import annotations

from intercom.core.api_error import ApiError

from intercom_resilience import (
    AlertEvent,
    ResilientIntercom,
    VirtualClock,
    capture_calls,
    render_postmortem,
    render_status_update,
    request_id_of,
)
from intercom_resilience.testing import FakeIntercom


def show_profile(client: ResilientIntercom, contact_id: str) -> str:
    """What your application does: read a contact, and say when the answer is not fresh."""
    with capture_calls() as calls:
        contact = client.contacts.find(contact_id=contact_id)
    info = calls.last
    if info is not None and info.stale:
        # The same typed Contact as a fresh call; only the call info says it is cached.
        return (
            f"{contact.email} (cached {info.age:.0f}s ago, because {info.reason}; "
            f"failed request id {info.failure_request_id})"
        )
    return f"{contact.email} (fresh)"


def print_alert(event: AlertEvent) -> None:
    """Your pager or chat integration: called when an alert fires or resolves."""
    alert = event.alert
    print(
        f"[alert {event.kind}] {alert.severity.value} {alert.title} "
        f"(respond within {alert.severity.respond_within}): {alert.detail}"
    )


def main() -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    # on_alert is where you would page someone or post to a chat channel.
    # seed: the backoff's jitter, fixed so that every run tells the same story (an unlucky draw
    # serves the three reads stale before ten attempts have failed and opened the breaker).
    client = fake.client(on_alert=print_alert, seed=1)

    contact = client.contacts.create(request={"email": "grace@example.com"})
    print("before:", show_profile(client, contact.id))  # a successful read is cached

    clock.advance(300)
    fake.faults.outage(seconds=600)  # Intercom answers 503 for ten minutes
    for _ in range(3):
        print("outage:", show_profile(client, contact.id))
    health = client.health()
    print(
        f"health: {health.status}; breaker {health.breaker}; "
        f"{health.stale_served} read(s) served stale; reasons: {', '.join(health.reasons)}"
    )

    # A read that was never cached has nothing to fall back on: the caller gets the error,
    # with Intercom's request id when there was one.
    try:
        client.contacts.find(contact_id="never-seen")
    except ApiError as error:
        print(f"uncached read failed: {type(error).__name__} (request id {request_id_of(error)})")

    incident = client.current_incident
    assert incident is not None
    print("\n--- status update for the chat channel ---")
    print(render_status_update(incident, now=clock.time()))

    # The kill switch: nothing leaves the process; reads are still answered from the cache.
    client.disable()
    print("\nkill switch on:", show_profile(client, contact.id))
    client.enable()

    # Recovery: the outage ends, the breaker's trial calls succeed, alerts resolve.
    clock.advance(900)
    for _ in range(5):
        show_profile(client, contact.id)
    clock.advance(120)  # let the alert window empty
    print(f"\nafter: {show_profile(client, contact.id)}; health {client.health().status}")

    print("\n--- postmortem ---")
    print(render_postmortem(client.incidents[-1]))
    client.close()


if __name__ == "__main__":
    main()
