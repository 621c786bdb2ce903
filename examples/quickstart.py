"""Quick start: ``ResilientIntercom`` where you used ``intercom.Intercom``, sync and async.

Runs against the bundled fake Intercom, so it needs no token and no network::

    python examples/quickstart.py

Against Intercom itself the only change is the constructor: drop ``transport=`` and pass your
token (``ResilientIntercom(token=os.environ["INTERCOM_ACCESS_TOKEN"])``).
"""

from __future__ import annotations

import asyncio

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom, capture_calls
from intercom_resilience.testing import FakeIntercom


def sync_example(fake: FakeIntercom) -> str:
    # The same constructor arguments as intercom.Intercom; `transport=` replaces the network.
    client = ResilientIntercom(token="fake-token", transport=fake.transport())

    # Every SDK namespace and method works unchanged and returns the SDK's typed models.
    contact = client.contacts.create(request={"email": "ada@example.com", "name": "Ada"})

    # capture_calls() records how each call in the block was served.
    with capture_calls() as calls:
        found = client.contacts.find(contact_id=contact.id)
    info = calls.last
    assert info is not None
    print(
        f"found {found.email}: {info.method} {info.path} -> {info.status}, "
        f"{info.attempts} attempt(s), stale={info.stale}, request id {info.request_id}"
    )

    # Passive health from recent traffic: no request is sent to compute it.
    health = client.health()
    print(
        f"sync health: {health.status}, p50 {health.latency_ms.p50} ms, "
        f"rate limit remaining {health.rate_limit_remaining}"
    )
    client.close()
    return str(contact.id)


async def async_example(fake: FakeIntercom, contact_id: str) -> None:
    # The async client takes an httpx.AsyncBaseTransport; `async with` closes it.
    async with AsyncResilientIntercom(
        token="fake-token", transport=fake.async_transport()
    ) as client:
        with capture_calls() as calls:
            contact = await client.contacts.find(contact_id=contact_id)
        print(f"async found {contact.email}, stale={calls.stale}")
        print(f"async health: {client.health().status}")


def main() -> None:
    fake = FakeIntercom()  # accepts the token "fake-token"
    contact_id = sync_example(fake)
    asyncio.run(async_example(fake, contact_id))


if __name__ == "__main__":
    main()
