"""How many requests per second the fake Intercom serves in process (target: >= 2,000 on one core).

Run with ``python benchmarks/fake_throughput.py [--seconds 2]``. Three layers are measured against
the same fake: the sans-I/O core alone (``fake.handle``), bare ``httpx`` over ``fake.transport()``,
and the official SDK (``intercom.Intercom``) on top of that, which adds request building and typed
parsing (for a contact, the SDK's model construction costs several times what the fake does). Rate
limits are switched off so the figures measure the fake, not the quota.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import httpx
import intercom

from intercom_resilience.testing import FakeIntercom, VirtualClock


def _rate(call: Callable[[], object], seconds: float) -> float:
    for _ in range(50):  # warm up caches and code paths
        call()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            call()
        count += 100
    return count / (time.perf_counter() - started)


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()

    fake = FakeIntercom(clock=VirtualClock(), rate_limits=False, journal_size=10_000)
    contact_id = fake.workspace().create_contact({"email": "bench@example.com"}, 0).id
    headers = {"Authorization": "Bearer fake-token"}
    with (
        httpx.Client(
            transport=fake.transport(), base_url="https://api.intercom.io", headers=headers
        ) as raw,
        httpx.Client(transport=fake.transport()) as http,
    ):
        sdk = intercom.Intercom(token="fake-token", httpx_client=http)
        figures = {
            "core        handle(GET /contacts/{id})": _rate(
                lambda: fake.handle("GET", f"/contacts/{contact_id}", headers), args.seconds
            ),
            "bare httpx  GET /me": _rate(lambda: raw.get("/me"), args.seconds),
            "bare httpx  GET /contacts/{id}": _rate(
                lambda: raw.get(f"/contacts/{contact_id}"), args.seconds
            ),
            "raw SDK     admins.identify()": _rate(sdk.admins.identify, args.seconds),
            "raw SDK     contacts.find(id)": _rate(
                lambda: sdk.contacts.find(contact_id), args.seconds
            ),
        }
    print(f"fake Intercom, in process, one thread ({len(fake.journal)} journal entries kept)")
    for name, rate in figures.items():
        print(f"  {name:<40} {rate:>9,.0f} req/s")


if __name__ == "__main__":
    main()
