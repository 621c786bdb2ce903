"""What the pipeline adds to ``contacts.find``, in CPU instructions: a figure noise cannot move,
and a lower bound on its share of the time.

``overhead.py`` times whole calls, and on a busy machine a 2-5% target sits well inside the spread
of its rounds (an IQR of 20-50% of the raw SDK's median has been seen here). This benchmark counts
instructions instead, with valgrind's callgrind, which gives the same count for the same code
whatever else the machine is doing. Each subject runs in a child process under callgrind with
collection switched on only inside ``functools.reduce``, which drives the measured loop: imports,
set-up and warm-up are not counted, and the requests are built before the loop.

Subjects, in the same run:

* ``raw SDK find``: ``intercom.Intercom.contacts.find`` on the fake in process (the baseline of
  ``overhead.py``'s in-process find);
* ``inner``: a transport that answers every request with one recorded find answer;
* ``pass-through`` and ``full pipeline``: the facade's transport (configured as in
  ``overhead.py``) around that canned transport.

What a facade adds is its transport's count minus the inner one's; the ratio it implies is
``(raw + added) / raw``, printed against issue #19's targets (pass-through <= 1.02, full pipeline
<= 1.05 on find). ``--against DIR`` measures another checkout's package too (before/after).

The targets are about time, and an instruction is not a fixed slice of it. Most of the raw SDK's
instructions are native code (pydantic-core, the JSON decoder) that runs several per cycle; the
pipeline is interpreted Python, whose bytecode dispatch mispredicts an indirect branch about
one time in three (callgrind ``--branch-sim=yes``: a whole find through the full pipeline takes
4.4% more instructions than the raw SDK's, 7% more mispredicts, 12-15% more L1 misses). Measured
side by side, the pipeline's share of the time was 1.7x its share of the instructions on its
own and 3x within a whole call. So a ratio that holds here is necessary, not sufficient: the
time ratios of ``overhead.py`` decide, and this benchmark says which change moved how much.

Each subject is counted through the sync client and again through the async one (`` (async)``:
the async raw SDK, an async canned transport, the async facades; ``--no-async`` skips them).

Run: ``python benchmarks/instructions.py [--calls 300] [--against DIR] [--no-async]`` (valgrind
required; about 45 s per subject).
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from overhead import PASS_THROUGH_TARGET, TARGETS, TOKEN, _Canned, _configs, _load_baseline, _seed

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_KINDS = ("pass-through", "full pipeline")
#: The suffix of a subject run through the async client and transport.
ASYNC = " (async)"


class _AsyncCanned(httpx.AsyncBaseTransport):
    """The async twin of ``overhead._Canned``: one recorded answer, never suspending."""

    def __init__(self, status: int, headers: list[tuple[str, str]], content: bytes) -> None:
        self._answer = (status, headers, content)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, content = self._answer
        return httpx.Response(status, headers=headers, content=content)


def _child(subject: str, calls: int, against: str | None) -> None:
    """Run *calls* of *subject* inside ``functools.reduce`` (what callgrind counts).

    An async subject runs its whole batch in one coroutine, driven by a single reduce step: the
    event loop's own start and stop are counted once, not per call.
    """
    from intercom_resilience.testing import FakeIntercom

    asynchronous = subject.endswith(ASYNC)
    subject = subject.removesuffix(ASYNC)
    fake = FakeIntercom(app_quota=10**9, workspace_quota=10**9)
    contact_id = _seed(fake)
    if subject == "raw SDK find":
        import intercom

        if asynchronous:
            ahttp = httpx.AsyncClient(transport=fake.async_transport())
            asdk = intercom.AsyncIntercom(token=TOKEN, httpx_client=ahttp)

            async def finds(count: int) -> None:
                for _ in range(count):
                    await asdk.contacts.find(contact_id=contact_id)

            _run_async(finds, calls)
            return
        http = httpx.Client(transport=fake.transport())
        sdk = intercom.Intercom(token=TOKEN, httpx_client=http)
        for _ in range(50):
            sdk.contacts.find(contact_id=contact_id)
        functools.reduce(lambda _, __: sdk.contacts.find(contact_id=contact_id), range(calls), None)
        return
    with httpx.Client(transport=fake.transport(), base_url="https://api.intercom.io") as http:
        recorded = http.get(f"/contacts/{contact_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    canned = (recorded.status_code, list(recorded.headers.items()), recorded.content)
    inner: Any = _AsyncCanned(*canned) if asynchronous else _Canned(*canned)
    transport: Any
    if subject == "inner":
        transport = inner
    else:
        label, _, kind = subject.rpartition(", ")
        if label:
            assert against is not None
            package: Any = _load_baseline(Path(against))
        else:
            package = sys.modules["intercom_resilience"]
        facade = package.AsyncResilientIntercom if asynchronous else package.ResilientIntercom
        client = facade(token=TOKEN, transport=inner, config=_configs(package)[kind])
        transport = client._client_wrapper.httpx_client.httpx_client._transport
    url = f"https://api.intercom.io/contacts/{contact_id}"
    headers = {"authorization": f"Bearer {TOKEN}", "accept": "application/json"}
    if asynchronous:
        batch = [httpx.Request("GET", url, headers=headers) for _ in range(calls + 200)]

        async def sends(count: int) -> None:
            for _ in range(count):
                await transport.handle_async_request(batch.pop())

        _run_async(sends, calls)
        return
    for _ in range(200):
        transport.handle_request(httpx.Request("GET", url, headers=headers))
    batch = [httpx.Request("GET", url, headers=headers) for _ in range(calls)]
    functools.reduce(lambda _, request: transport.handle_request(request), batch, None)


def _run_async(run: Any, calls: int) -> None:
    """Warm up with 50 (200 for transports) calls of *run*, then count *calls* of them."""
    import asyncio

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(50))
    functools.reduce(lambda _, __: loop.run_until_complete(run(calls)), range(1), None)
    loop.close()


def count(subject: str, calls: int, against: Path | None) -> float:
    """Instructions per call of *subject*, counted by callgrind in a child process."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--collect-atstart=no",
        "--toggle-collect=functools_reduce",
        sys.executable,
        __file__,
        "--child",
        subject,
        "--calls",
        str(calls),
    ]
    if against is not None:
        command += ["--against", str(against)]
    # valgrind and this very file, with our own arguments
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"callgrind run of {subject!r} failed:\n{done.stderr[-2000:]}")
    return int(found[-1]) / calls


def report(counts: dict[str, float]) -> list[str]:
    """Each subject's instructions per call; what each facade adds and the ratio it implies
    (sync subjects against the sync raw SDK and inner transport, async ones against theirs)."""
    lines = ["instructions per call (callgrind, the measured loop only)"]
    for suffix in ("", ASYNC):
        if f"raw SDK find{suffix}" not in counts:
            continue
        raw, inner = counts[f"raw SDK find{suffix}"], counts[f"inner{suffix}"]
        lines += [
            f"  {'raw SDK find' + suffix:<38} {raw:>12,.0f}",
            f"  {'inner (canned answer)' + suffix:<38} {inner:>12,.0f}",
            f"  {'facade':<38} {'added':>12}   implied ratio to the raw find",
        ]
        for subject, value in counts.items():
            base = subject.removesuffix(ASYNC)
            if base in ("raw SDK find", "inner") or subject.endswith(ASYNC) != bool(suffix):
                continue
            added = value - inner
            target = PASS_THROUGH_TARGET if base.endswith("pass-through") else TARGETS["find"]
            implied = (raw + added) / raw
            verdict = "holds" if implied <= target else "MISSES"
            lines.append(
                f"  {subject:<38} {added:>12,.0f}   {implied:.3f} (<= {target:.2f}: {verdict})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--against", type=Path, default=None)
    parser.add_argument("--no-async", action="store_true", help="the sync subjects only")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.calls, None if args.against is None else str(args.against))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (Debian: apt-get install valgrind)")
    subjects = ["raw SDK find", "inner", *_KINDS]
    if args.against is not None:
        subjects += [f"baseline, {kind}" for kind in _KINDS]
    if not args.no_async:
        subjects += [subject + ASYNC for subject in subjects]
    counts = {subject: count(subject, args.calls, args.against) for subject in subjects}
    print("\n".join(report(counts)))
    print(
        "(instructions understate interpreted Python's share of the time: the time ratios of "
        "overhead.py decide the targets)"
    )


if __name__ == "__main__":
    main()
