"""How many requests per second the fake Intercom serves (target: >= 2,000 in process on one core).

Run with ``python benchmarks/fake_throughput.py [--seconds 2]``. Three layers are measured in
process against the same fake: the sans-I/O core alone (``fake.handle``), bare ``httpx`` over
``fake.transport()``, and the official SDK (``intercom.Intercom``) on top of that, which adds
request building and typed parsing (for a contact, the SDK's model construction costs several times
what the fake does); then bare ``httpx`` over real HTTP on localhost. Rate limits are switched off
so the figures measure the fake, not the quota.

Before/after in one run: ``--against DIR`` measures the checkout in ``DIR`` (e.g. one made with
``git worktree add /tmp/fake-old main``) and this one, alternately, in fresh interpreters, and
prints each figure of both with their ratio; the best of ``--rounds`` runs of each is kept, so a
neighbour's burst of load does not decide the verdict. It fails (exit status 1) when the
in-process core loses more than 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def measure(seconds: float) -> dict[str, float]:
    """Requests per second of each layer, in process and over HTTP."""
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
            CORE: _rate(lambda: fake.handle("GET", f"/contacts/{contact_id}", headers), seconds),
            "bare httpx  GET /me": _rate(lambda: raw.get("/me"), seconds),
            "bare httpx  GET /contacts/{id}": _rate(
                lambda: raw.get(f"/contacts/{contact_id}"), seconds
            ),
            "raw SDK     admins.identify()": _rate(sdk.admins.identify, seconds),
            "raw SDK     contacts.find(id)": _rate(lambda: sdk.contacts.find(contact_id), seconds),
        }
    with (
        fake.serve_in_thread() as url,
        httpx.Client(base_url=url, headers=headers) as served,
    ):
        figures["HTTP        GET /contacts/{id}"] = _rate(
            lambda: served.get(f"/contacts/{contact_id}"), seconds
        )
    return figures


CORE = "core        handle(GET /contacts/{id})"
_HERE = Path(__file__).resolve().parents[1]


def _child(checkout: Path, seconds: float) -> dict[str, float]:
    # A fresh interpreter whose ``intercom_resilience`` is the one in *checkout*.
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    found = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(Path(__file__).resolve()), "--json", "--seconds", str(seconds)],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    )
    answer = json.loads(found.stdout)
    if Path(answer["package"]).resolve().parents[1] != checkout.resolve():
        raise SystemExit(f"measured {answer['package']}, not the checkout in {checkout}")
    figures: dict[str, float] = answer["figures"]
    return figures


def _compare(before_dir: Path, seconds: float, rounds: int) -> int:
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for _ in range(rounds):
        for label, checkout in (("before", before_dir), ("after", _HERE)):
            for name, rate in _child(checkout, seconds).items():
                best[label][name] = max(rate, best[label].get(name, 0.0))
    print(f"fake Intercom, before ({before_dir}) and after ({_HERE}), best of {rounds} runs")
    print(f"  {'':<40} {'before':>9} {'after':>9} {'after/before':>13}")
    for name, after in best["after"].items():
        before = best["before"].get(name)
        if before is None:
            print(f"  {name:<40} {'-':>9} {after:>9,.0f}")
            continue
        print(f"  {name:<40} {before:>9,.0f} {after:>9,.0f} {after / before:>12.2f}x")
    ratio = best["after"][CORE] / best["before"][CORE]
    verdict = "ok" if ratio >= 0.9 else "REGRESSION"
    print(f"in-process core: after/before {ratio:.2f} (must stay >= 0.90): {verdict}")
    return 0 if ratio >= 0.9 else 1


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--against", type=Path, help="an older checkout to compare with")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each with --against")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against is not None:
        raise SystemExit(_compare(args.against, args.seconds, args.rounds))
    figures = measure(args.seconds)
    if args.json:
        import intercom_resilience

        print(json.dumps({"package": intercom_resilience.__file__, "figures": figures}))
        return
    print("fake Intercom, one thread")
    for name, rate in figures.items():
        print(f"  {name:<40} {rate:>9,.0f} req/s")


if __name__ == "__main__":
    main()
