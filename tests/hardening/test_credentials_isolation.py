"""No cache entry is ever served to the wrong credentials.

Two tokens of two workspaces on one fake. Both workspaces are seeded alike, so the same contact
id exists in both with different data: the cache key must tell them apart by credentials. Each
client warms its cache, then Intercom goes down; every read must come back with the caller's own
data (stale) or fail, never with the other workspace's. Checked with per-client memory caches and
with two clients sharing one Redis cache.
"""

from __future__ import annotations

import pytest
from intercom.core.api_error import ApiError

from intercom_resilience import (
    CachePolicy,
    IntercomResilienceError,
    ResilienceConfig,
    VirtualClock,
    capture_calls,
)
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import RedisServer

TOKEN_A = "token-of-workspace-a"  # intercom-resilience: allow-token
TOKEN_B = "token-of-workspace-b"  # intercom-resilience: allow-token


def _fake(clock: VirtualClock) -> tuple[FakeIntercom, list[str], list[str]]:
    fake = FakeIntercom(clock=clock, token=None, seed=9)
    fake.add_token(TOKEN_A, app="app-a", workspace="wa")
    fake.add_token(TOKEN_B, app="app-b", workspace="wb")
    now = int(clock.time())
    ids_a = [
        fake.workspace("wa").create_contact({"email": f"a{n}@a.example"}, now).id for n in range(5)
    ]
    state_b = fake.workspace("wb")
    ids_b = []
    for n in range(8):
        contact = state_b.create_contact({"email": f"b{n}@b.example"}, now)
        if n < len(ids_a):  # the same id as A's contact n, with B's data
            del state_b.contacts[contact.id]
            contact.id = ids_a[n]
            state_b.contacts[contact.id] = contact
        ids_b.append(contact.id)
    assert ids_a == ids_b[:5], "the test needs colliding ids across workspaces"
    return fake, ids_a, ids_b


def _run(config: ResilienceConfig) -> None:
    clock = VirtualClock()
    fake, ids_a, ids_b = _fake(clock)
    only_b = ids_b[5:]
    with (
        fake.client(token=TOKEN_A, config=config, seed=1) as client_a,
        fake.client(token=TOKEN_B, config=config, seed=2) as client_b,
    ):
        for contact_id in ids_b:  # B warms the cache first, then A
            assert client_b.contacts.find(contact_id=contact_id).email.endswith("@b.example")
        for contact_id in ids_a:
            assert client_a.contacts.find(contact_id=contact_id).email.endswith("@a.example")
        for contact_id in only_b:
            with pytest.raises(ApiError) as missing:
                client_a.contacts.find(contact_id=contact_id)
            assert missing.value.status_code == 404

        clock.advance(60)
        fake.faults.outage(600)
        for client, ids, domain in (
            (client_a, ids_a, "@a.example"),
            (client_b, ids_b, "@b.example"),
        ):
            with capture_calls() as calls:
                for contact_id in ids:
                    assert client.contacts.find(contact_id=contact_id).email.endswith(domain)
            assert all(info.stale for info in calls)
        for contact_id in only_b:  # A's reads of B-only ids: an error, never B's data
            with pytest.raises((ApiError, IntercomResilienceError)):
                client_a.contacts.find(contact_id=contact_id)
        assert client_a.stale_served == len(ids_a)
        assert client_b.stale_served == len(ids_b)


def test_per_client_memory_caches_never_cross_credentials() -> None:
    _run(ResilienceConfig())


@pytest.mark.redis
def test_shared_redis_cache_never_crosses_credentials(redis_server: RedisServer) -> None:
    _run(ResilienceConfig(cache=CachePolicy(backend="redis"), redis_url=redis_server.url))
    assert redis_server.command("DBSIZE") != 0  # the entries really lived in Redis
