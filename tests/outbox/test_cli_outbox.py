"""``intercom-resilience outbox status|list|drain``: output and exit codes (docs/cli.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intercom_resilience import OutboxPolicy, ResilienceConfig, ResilientIntercom, VirtualClock
from intercom_resilience.cli import cli
from intercom_resilience.testing import FakeIntercom


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(args=args, prog_name="intercom-resilience")
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _queue(path: Path, *bodies: dict[str, object]) -> None:
    fake = FakeIntercom(clock=VirtualClock())
    config = ResilienceConfig(outbox=OutboxPolicy(path=str(path)))
    with ResilientIntercom(token="fake-token", transport=fake.transport(), config=config) as client:
        for body in bodies:
            client.outbox.enqueue("POST", "/tags", json=body)


def test_status_of_an_empty_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["outbox", "status", "--path", str(tmp_path / "o.db"), "--json"], capsys)
    assert code == 0
    assert json.loads(out)["depth"] == 0


def test_status_past_the_threshold_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "o.db"
    _queue(path, {"name": "a"}, {"name": "b"})
    monkeypatch.setenv("INTERCOM_RESILIENCE_OUTBOX_ALERT_DEPTH", "1")
    code, out, _ = _run(["outbox", "status", "--path", str(path)], capsys)
    assert code == 1
    assert "waiting: 2" in out
    assert "BACKLOG" in out


def test_a_corrupt_file_is_failing_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"garbage" * 1000)
    code, out, err = _run(["outbox", "status", "--path", str(path), "--json"], capsys)
    assert code == 3
    assert "junk.db" in err
    assert json.loads(out)["exit_code"] == 3


def test_a_bad_variable_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERCOM_RESILIENCE_OUTBOX_LEASE", "soon")
    code, _, err = _run(["outbox", "list", "--path", str(tmp_path / "o.db")], capsys)
    assert code == 2
    assert "INTERCOM_RESILIENCE_OUTBOX_LEASE" in err


def test_list_and_drain_against_the_fake_over_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("uvicorn")
    path = tmp_path / "o.db"
    _queue(path, {"name": "one"}, {"name": "two"})
    code, out, _ = _run(["outbox", "list", "--path", str(path), "--json"], capsys)
    assert code == 0
    assert [e["path"] for e in json.loads(out)["entries"]] == ["/tags", "/tags"]
    monkeypatch.delenv("INTERCOM_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("INTERCOM_API_KEY", raising=False)
    code, _, err = _run(["outbox", "drain", "--path", str(path)], capsys)
    assert code == 2
    assert "no Intercom token" in err
    fake = FakeIntercom()
    with fake.serve_in_thread() as url:
        args = ["outbox", "drain", "--path", str(path), "--base-url", url, "--token", "fake-token"]
        code, out, _ = _run([*args, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["delivered"] == 2
    assert sorted(t.name for t in fake.workspace().tags.values()) == ["one", "two"]
    code, out, _ = _run(["outbox", "status", "--path", str(path), "--json"], capsys)
    assert json.loads(out)["depth"] == 0
