"""``intercom-resilience demo`` and ``postmortem``: the scripted day, its JSON, and its incident file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from intercom_resilience._incidents import Incident
from intercom_resilience.cli import cli


def run_json(seed: int) -> tuple[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["demo", "--json", "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    return result.stdout, json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The demo as a user runs it: a real process, no TTY, no token, saving its incident."""
    saved = tmp_path_factory.mktemp("demo") / "incident.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM")}
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "intercom_resilience.cli",
            "demo",
            "--seed",
            "5",
            "--save-incident",
            str(saved),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    return completed, saved


def test_demo_exits_0_and_prints_the_timeline_and_a_postmortem(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, _saved = demo_run
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for phase in ("normal traffic", "429 storm", "outage", "token revocation", "recovery"):
        assert phase in out
    assert "Health timeline" in out
    assert "# Postmortem: Intercom" in out
    assert "## Intercom request ids" in out
    assert re.search(r"^50 +of 50 reads answered after client.warm_cache\(\)$", out, re.M)
    assert "Traceback" not in completed.stderr


def test_demo_json_is_parseable_and_reproducible() -> None:
    first_text, first = run_json(11)
    second_text, _ = run_json(11)
    assert first_text == second_text
    assert [row["phase"] for row in first["timeline"]] == [
        "normal",
        "storm",
        "outage",
        "revocation",
        "recovery",
    ]
    assert first["postmortem"].startswith("# Postmortem: ")
    assert first["seed"] == 11


def test_demo_shows_what_the_library_did() -> None:
    _text, data = run_json(3)
    counts = data["counts"]
    timeline = {row["phase"]: row for row in data["timeline"]}
    assert counts["duplicate_writes"] == 0
    assert counts["writes_committed"] <= counts["writes_issued"]
    assert counts["storm_429s_without_library"] > counts["storm_429s_received"]
    assert counts["storm_429s_prevented"] > 0
    assert counts["retries"] > 0
    assert counts["stale_served"] > 0 and timeline["outage"]["stale_served"] > 0
    assert counts["fail_fast"] > 0
    assert "open" in timeline["outage"]["breaker"]
    assert timeline["outage"]["status"] == "unhealthy"
    assert counts["token_rotations"] == 1
    assert timeline["revocation"]["errors"] == 0  # the rotation hid the revocation from callers
    assert timeline["recovery"]["status_end"] == "healthy"
    assert data["health"]["status"] == "healthy"
    assert data["incidents"] and all(i["closed_at"] is not None for i in data["incidents"])
    # The same outage with and without cache warming: only warmed contacts are all answered.
    from intercom_resilience._cli_demo import WARMING_CONTACTS

    assert counts["outage_reads_answered_warmed"] == WARMING_CONTACTS
    assert 0 < counts["outage_reads_answered_cold"] < WARMING_CONTACTS


def test_postmortem_renders_the_incident_the_demo_saved(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    completed, saved = demo_run
    assert completed.returncode == 0, completed.stderr
    incident = Incident.from_json(saved.read_text())
    result = CliRunner().invoke(cli, ["postmortem", str(saved)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Postmortem: Intercom")
    assert f"`{incident.id}`" in result.output
    assert incident.request_ids and incident.request_ids[-1] in result.output

    update = CliRunner().invoke(
        cli,
        [
            "postmortem",
            str(saved),
            "--status-update",
            "--status",
            "monitoring",
            "--now",
            "1767300000",
        ],
    )
    assert update.exit_code == 0, update.output
    assert "MONITORING" in update.output
    assert incident.id in update.output


def test_postmortem_of_a_bad_file_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 3}')
    result = CliRunner().invoke(cli, ["postmortem", str(bad)])
    assert result.exit_code == 2
    assert "not an incident file" in result.output
    missing = CliRunner().invoke(cli, ["postmortem", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    assert "cannot read" in missing.output


@pytest.mark.parametrize(
    "command", [["demo"], ["triage"], ["preflight"], ["postmortem"], ["fake", "serve"]]
)
def test_every_subcommand_has_help_with_examples(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unwritable_save_incident_path_fails_before_the_demo_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    def run_demo(*_args: object) -> None:
        raise AssertionError("the demo ran although its incident could not be saved")

    monkeypatch.setattr("intercom_resilience._cli_demo.run_demo", run_demo)
    target = tmp_path / "no-such-dir" / "x.json"
    result = CliRunner().invoke(
        cli, ["demo", "--save-incident", str(target), *(["--json"] if as_json else [])]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"intercom-resilience: cannot write {target}: No such file or directory"
    ]
    if as_json:
        assert json.loads(result.stdout) == {
            "error": f"cannot write {target}: No such file or directory",
            "exit_code": 2,
        }
    else:
        assert result.stdout == ""


def test_the_writability_check_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_demo(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("intercom_resilience._cli_demo.run_demo", run_demo)
    target = tmp_path / "incident.json"
    result = CliRunner().invoke(cli, ["demo", "--json", "--save-incident", str(target)])
    assert result.exit_code == 130
    assert not target.exists()
    kept = tmp_path / "kept.json"
    kept.write_text("previous\n")
    result = CliRunner().invoke(cli, ["demo", "--json", "--save-incident", str(kept)])
    assert result.exit_code == 130
    assert kept.read_text() == "previous\n"


def test_the_demo_lists_each_incident_once() -> None:
    _text, data = run_json(0)
    ids = [incident["id"] for incident in data["incidents"]]
    assert ids and len(ids) == len(set(ids))
    assert data["counts"]["incidents"] == len(ids)


def test_a_reader_that_goes_away_ends_the_demo_quietly() -> None:
    """``intercom-resilience demo | head -1``: exit 141, no traceback, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCOM")}
    process = subprocess.Popen(
        [sys.executable, "-m", "intercom_resilience.cli", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # as `head -1` does after its line
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=120) == 141, err
    assert first.startswith(b"A day in the life")
    assert err == ""
