"""The journal, the ways to run the fake (ASGI, server, CLI), the exports and the fixtures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from intercom_resilience import testing
from intercom_resilience.testing import FakeIntercom, PathPattern, VirtualClock
from intercom_resilience.testing.__main__ import main


def test_journal_filters_and_counts(
    fake: FakeIntercom, raw: httpx.Client, clock: VirtualClock
) -> None:
    contact = raw.post("/contacts", json={"email": "j@example.com"}).json()
    raw.get(f"/contacts/{contact['id']}")
    clock.advance(5)
    raw.put(f"/contacts/{contact['id']}", json={"name": "J"})
    raw.get("/contacts/missing")
    assert len(fake.journal) == 4
    assert fake.journal.count(method="GET") == 2
    assert fake.journal.count(path="/contacts/*") == 3
    assert fake.journal.count(template="/contacts/{contact_id}") == 3
    assert fake.journal.count(changed_state=True) == 2
    assert fake.journal.count(status=404) == 1
    assert fake.journal.count(status=[200, 404], method=["PUT", "GET"]) == 3
    assert fake.journal.count(since=clock.time()) == 2
    assert fake.journal.count(fault=True) == 0
    last = fake.journal.last(method="PUT")
    assert last is not None
    assert (last.app, last.workspace, last.changed_state) == ("fake-app", "fake-workspace", True)
    assert [e.seq for e in fake.journal] == [1, 2, 3, 4]
    fake.journal.clear()
    assert len(fake.journal) == 0


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/contacts/*", "/contacts/abc", True),
        ("/contacts/*", "/contacts/abc/tags", False),
        ("/contacts/**", "/contacts/abc/tags", True),
        ("/conversations/{id}/reply", "/conversations/42/reply", True),
        ("/conversations/*/reply", "/conversations/42/parts", False),
        ("/contacts/", "/contacts", True),
        (None, "/anything/at/all", True),
    ],
)
def test_path_patterns(pattern: str | None, path: str, matches: bool) -> None:
    assert PathPattern(pattern).matches(path) is matches


def test_journal_is_bounded() -> None:
    fake = FakeIntercom(journal_size=3)
    with httpx.Client(transport=fake.transport(), base_url="http://x") as client:
        for _ in range(5):
            client.get("/me")
    assert [e.seq for e in fake.journal] == [3, 4, 5]


async def test_asgi_app_through_httpx(fake: FakeIntercom) -> None:
    transport = httpx.ASGITransport(app=fake.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        ok = await client.get(
            "/contacts?per_page=2", headers={"Authorization": "Bearer fake-token"}
        )
        denied = await client.get("/me")
    assert ok.status_code == 200
    assert ok.json()["pages"]["per_page"] == 2
    assert denied.status_code == 401


def test_cli_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--app-quota" in out
    assert "--token" in out
    with pytest.raises(SystemExit) as bad:
        main(["serve", "--port", "not-a-port"])
    assert bad.value.code == 2


def test_cli_serve_runs_a_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "intercom_resilience.testing",
        "serve",
        "--port",
        str(port),
        "--token",
        "cli-secret",
        "--app-quota",
        "120",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/me", headers={"Authorization": "Bearer cli-secret"}
                )
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the fake server did not start"
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "20"
        denied = httpx.get(
            f"http://127.0.0.1:{port}/me", headers={"Authorization": "Bearer fake-token"}
        )
        assert denied.status_code == 401
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_exports_are_sorted_and_complete() -> None:
    assert testing.__all__ == sorted(testing.__all__, key=lambda n: (not n.isupper(), n))
    # isidentifier(): pytest's assertion rewriting adds "@py_builtins" to plugin modules
    public = {n for n in vars(testing) if not n.startswith("_") and n.isidentifier()}
    modules = {"pytest_plugin"}
    assert public - modules - {"annotations"} == set(testing.__all__)
    for name in testing.__all__:
        assert getattr(testing, name).__doc__ or name.isupper(), name


def test_fixture_gives_a_fake_on_a_virtual_clock(intercom_fake: FakeIntercom) -> None:
    assert isinstance(intercom_fake.clock, VirtualClock)
    assert "fake-token" not in repr(intercom_fake)


def test_facade_clients_are_wired_to_the_fake(
    intercom_fake: FakeIntercom, monkeypatch: pytest.MonkeyPatch
) -> None:
    import intercom_resilience._client as facade

    calls: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr(facade, "ResilientIntercom", lambda **kw: calls.append(("sync", kw)))
    monkeypatch.setattr(facade, "AsyncResilientIntercom", lambda **kw: calls.append(("async", kw)))
    intercom_fake.client(timeout=3.0)
    intercom_fake.async_client(token="other")
    (kind, sync), (akind, asyn) = calls
    assert (kind, akind) == ("sync", "async")
    assert sync["token"] == "fake-token"
    assert sync["timeout"] == 3.0
    assert isinstance(sync["transport"], testing.FakeTransport)
    assert sync["clock"] is intercom_fake.clock
    assert asyn["token"] == "other"
    assert isinstance(asyn["transport"], testing.AsyncFakeTransport)
