"""A background sync job that never starves the calls your users are waiting for.

A nightly import pushes customers into Intercom while the support app keeps reading contacts.
The import runs inside ``client.background()``: its calls only use the quota interactive calls
leave (``RateLimitPolicy.background_reserve``, 20% of each window by default stays free for
them), and pause while Intercom reports little quota remaining. Nobody has to pause the batch job
by hand when the rate limit gets tight.

Runs against the fake Intercom on a virtual clock (minutes of traffic in a moment), with a small
quota so that the limits matter::

    python examples/background_sync.py
"""

from __future__ import annotations

from intercom_resilience import RateLimitPolicy, ResilienceConfig, ResilientIntercom, VirtualClock
from intercom_resilience.testing import FakeIntercom

QUOTA_PER_MINUTE = 600  # 100 requests per 10-second window; Intercom's default is 10,000


def import_customers(client: ResilientIntercom, emails: list[str]) -> list[str]:
    """The batch job: create one contact per customer, as background work."""
    ids = []
    with client.background():  # every call in this block (this thread or task) is background
        for email in emails:
            ids.append(client.contacts.create(request={"email": email}).id)
    return ids


def main() -> None:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock, app_quota=QUOTA_PER_MINUTE)
    # Tell the limiter your real quota (plans differ): it paces below it and never bursts past it.
    config = ResilienceConfig(rate_limit=RateLimitPolicy(app_per_minute=QUOTA_PER_MINUTE))
    client = fake.client(config=config)
    support_contact = client.contacts.create(request={"email": "vip@example.com"}).id

    started = clock.monotonic()
    interactive_waits = []
    emails = [f"customer{i}@example.com" for i in range(240)]
    for batch in range(0, len(emails), 40):
        import_customers(client, emails[batch : batch + 40])
        # Meanwhile a support agent opens a profile: an interactive call (the default).
        before = clock.monotonic()
        client.contacts.find(contact_id=support_contact)
        interactive_waits.append(clock.monotonic() - before)
    elapsed = clock.monotonic() - started

    sent = fake.journal.count(method="POST", path="/contacts")
    print(
        f"imported {sent - 1} contacts in {elapsed:.0f}s of (virtual) time: "
        f"{(sent - 1) / elapsed * 60:.0f} per minute against a quota of {QUOTA_PER_MINUTE}"
    )
    print(f"interactive reads waited at most {max(interactive_waits):.3f}s")
    print(f"429 responses from Intercom: {fake.journal.count(status=429)}")
    print(f"health: {client.health().status}")
    client.close()


if __name__ == "__main__":
    main()
