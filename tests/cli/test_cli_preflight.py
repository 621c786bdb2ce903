"""``intercom-resilience preflight``: the production checklist and the hard-coded token scan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import LocalSite
from click.testing import CliRunner

from intercom_resilience._webhooks import verify_webhook_signature
from intercom_resilience.cli import cli
from intercom_resilience.testing import FakeIntercom

PLANTED = "dG9rOjZhMWIyYzNkLTRlNWYtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OToxOjA="  # intercom-resilience: allow-token


def preflight(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["preflight", "--timeout", "2", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def plant(tree: Path) -> None:
    (tree / "app").mkdir()
    (tree / "app" / "settings.py").write_text(
        'import os\n\nDEBUG = False\nINTERCOM_ACCESS_TOKEN = "' + PLANTED + '"\n'
    )
    (tree / "app" / "client.py").write_text(
        "from intercom import Intercom\n\n"
        'client = Intercom(token="sk_live_a8f3b2c9d1e0f7a6b5c4")\n'  # intercom-resilience: allow-token
        'other = Intercom(token=os.environ["INTERCOM_ACCESS_TOKEN"])\n'
        'fake = Intercom(token="fake-token-for-tests")\n'
    )
    (tree / "app" / "unrelated.py").write_text(
        'stripe_token = "tok_abcdefghijklmnop"\n'  # intercom-resilience: allow-token
    )
    (tree / ".venv").mkdir()
    (tree / ".venv" / "vendored.py").write_text(f'T = "{PLANTED}"\n')
    (tree / "logo.png").write_bytes(b"\x89PNG\0\0" + PLANTED.encode())


def test_scan_finds_planted_tokens_and_masks_them(tmp_path: Path) -> None:
    plant(tmp_path)
    code, output = preflight("--offline", "--scan", str(tmp_path), "--json")
    assert code == 1
    assert PLANTED not in output
    assert PLANTED[5:30] not in output
    (check,) = json.loads(output)["checks"]
    findings = {(Path(f["path"]).name, f["line"], f["kind"]) for f in check["findings"]}
    assert findings == {
        ("settings.py", 4, "intercom access token"),
        ("client.py", 3, "hard-coded token literal"),
    }
    assert all("masked" in f["masked"] for f in check["findings"])


def test_scan_of_a_clean_tree_passes(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("import os\nTOKEN = os.environ['INTERCOM_ACCESS_TOKEN']\n")
    code, output = preflight("--offline", "--scan", str(tmp_path))
    assert code == 0, output
    assert "Pre-flight passed" in output


def test_full_checklist_passes_against_the_fake(
    served_fake: tuple[FakeIntercom, str], site: LocalSite, tmp_path: Path
) -> None:
    _fake, url = served_fake
    site.routes["/hooks/intercom"] = (200, {"ok": True})
    (tmp_path / "clean.py").write_text("x = 1\n")
    code, output = preflight(
        "--base-url",
        url,
        "--token",
        "fake-token",
        "--status-url",
        site.url,
        "--webhook-url",
        f"{site.url}/hooks/intercom",
        "--webhook-secret",
        "s3cret",
        "--scan",
        str(tmp_path),
        "--json",
    )
    checks = {c["check"]: c for c in json.loads(output)["checks"]}
    assert code == 0, output
    assert [c["result"] for c in checks.values()] == ["ok"] * 5
    method, path, headers, body = site.requests[-1]
    assert (method, path) == ("POST", "/hooks/intercom")
    assert verify_webhook_signature(body, headers["X-Hub-Signature"], "s3cret")


def test_rejected_token_and_broken_webhook_fail(
    served_fake: tuple[FakeIntercom, str], site: LocalSite, closed_port: int
) -> None:
    _fake, url = served_fake
    code, output = preflight(
        "--base-url",
        url,
        "--token",
        "not-a-token",
        "--status-url",
        site.url,
        "--webhook-url",
        f"http://127.0.0.1:{closed_port}/hooks",
    )
    assert code == 1
    assert "FAILED: auth, webhook" in output
    assert "401" in output
    assert "not-a-token" not in output


def test_webhook_answering_500_fails(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    _fake, url = served_fake
    site.routes["/hooks"] = (500, {"error": "boom"})
    code, output = preflight(
        "--base-url",
        url,
        "--token",
        "fake-token",
        "--status-url",
        site.url,
        "--webhook-url",
        f"{site.url}/hooks",
    )
    assert code == 1
    assert "FAILED: webhook" in output


def test_preflight_needs_a_token_unless_offline() -> None:
    result = CliRunner().invoke(cli, ["preflight"])
    assert result.exit_code == 2
    assert "no Intercom token" in result.output


ROOT = Path(__file__).resolve().parents[2]


def scan_findings(*args: str) -> tuple[int, dict[str, object]]:
    code, output = preflight("--offline", *args, "--json")
    (check,) = json.loads(output)["checks"]
    return code, check


@pytest.mark.parametrize(
    ("globs", "left"),
    [
        ((), {"settings.py", "client.py"}),
        (("app/settings.py",), {"client.py"}),  # a path from the scan root
        (("settings.py",), {"client.py"}),  # a name at any depth
        (("app",), set()),  # a directory: not walked at all
        (("*.py",), set()),
        (("app/", "./app/client.py"), set()),  # trailing slash and ./ are tolerated
        (("other/settings.py",), {"settings.py", "client.py"}),
    ],
)
def test_exclude_globs_skip_paths(tmp_path: Path, globs: tuple[str, ...], left: set[str]) -> None:
    plant(tmp_path)
    code, check = scan_findings("--scan", str(tmp_path), *(f"--exclude={g}" for g in globs))
    found = {Path(f["path"]).name for f in check["findings"]}  # type: ignore[attr-defined]
    assert found == left
    assert code == (1 if left else 0)


def test_default_excludes_skip_vcs_virtualenvs_and_node_modules(tmp_path: Path) -> None:
    for directory in (".git", ".venv", "node_modules", "deep/node_modules"):
        (tmp_path / directory).mkdir(parents=True)
        (tmp_path / directory / "x.py").write_text(f'T = "{PLANTED}"\n')
    (tmp_path / "ok.py").write_text("x = 1\n")
    code, check = scan_findings("--scan", str(tmp_path))
    assert code == 0
    assert check["files_scanned"] == 1


def test_the_allow_token_marker_accepts_a_test_token_on_its_line(tmp_path: Path) -> None:
    marker = "intercom-resilience: allow-token"
    (tmp_path / "test_x.py").write_text(
        f'TOKEN = "{PLANTED}"  # {marker}\n'
        f'INTERCOM_SECRET = "s3cr3t-but-a-test-value"  # {marker}\n'  # intercom-resilience: allow-token
        f"// {marker} in another comment syntax: {PLANTED}\n"
        f'REAL = "{PLANTED}"\n'
        f'# noqa: S105 never excuses an Intercom-format token: "{PLANTED}"\n'
    )
    code, check = scan_findings("--scan", str(tmp_path))
    assert code == 1
    lines = [f["line"] for f in check["findings"]]  # type: ignore[attr-defined]
    assert lines == [4, 5]
    assert check["lines_allowed"] == 3


def test_plain_output_puts_one_finding_per_line(tmp_path: Path) -> None:
    plant(tmp_path)
    for n in range(25):
        (tmp_path / "app" / f"more{n}.py").write_text(f'T = "{PLANTED}"\n')
    code, output = preflight("--offline", "--scan", str(tmp_path))
    assert code == 1
    finding_lines = [line for line in output.splitlines() if "[masked," in line]
    assert len(finding_lines) == 27  # every finding, none cut off
    assert all(line.count("[masked,") == 1 for line in finding_lines)
    assert any(
        line.strip().endswith(".py:4: intercom access token dG9r…[masked, 60 chars]")
        for line in finding_lines
    )
    assert max(len(line) for line in output.splitlines()) < 200
    assert "27 hard-coded credential(s) in 27 file(s)" in output
    assert PLANTED not in output


def test_offline_with_nothing_to_check_is_not_a_pass() -> None:
    result = CliRunner().invoke(cli, ["preflight", "--offline"])
    assert result.exit_code == 2
    assert "passed" not in result.output
    assert result.stderr.strip().splitlines() == [
        "intercom-resilience: preflight --offline has nothing to check: pass --scan PATH"
    ]


def test_the_projects_own_checkout_passes_its_scan() -> None:
    code, output = preflight("--offline", "--scan", str(ROOT))
    assert code == 0, output
    assert "Pre-flight passed (exit 0)" in output
    _code, check = scan_findings("--scan", str(ROOT))
    assert int(check["files_scanned"]) > 100  # type: ignore[call-overload]
    assert int(check["lines_allowed"]) >= 10  # type: ignore[call-overload]  # the fixtures
