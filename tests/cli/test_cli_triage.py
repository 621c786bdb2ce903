"""``intercom-resilience triage`` end to end: a fake Intercom and a status page on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from cli_support import LocalSite
from click.testing import CliRunner

from intercom_resilience.cli import cli
from intercom_resilience.testing import FakeIntercom

SECRET = "dG9rOjEyMzQ1Njc4OTBhYmNkZWY6MTIzNDU2Nzg5MDEyMzQ1Njc4OTA6MTIzNA=="  # intercom-resilience: allow-token


def triage(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["triage", "--timeout", "2", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def checks_of(output: str) -> dict[str, dict[str, object]]:
    return {check["check"]: check for check in json.loads(output)["checks"]}


def test_healthy_integration_reports_every_check_and_exits_0(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    _fake, url = served_fake
    site.routes["/health"] = (
        200,
        {"status": "healthy", "services": {"intercom": {"status": "healthy"}}},
    )
    code, output = triage(
        "--base-url",
        url,
        "--token",
        "fake-token",
        "--status-url",
        site.url,
        "--health-url",
        f"{site.url}/health",
        "--json",
    )
    checks = checks_of(output)
    assert code == 0, output
    assert set(checks) == {"api", "status_page", "rate_limit", "health_endpoint"}
    assert checks["api"]["status_code"] == 200
    assert checks["api"]["request_id"]
    assert checks["status_page"]["indicator"] == "none"
    assert checks["status_page"]["unresolved_incidents"] == 0
    assert checks["rate_limit"]["limit"] == 1666  # 10,000 a minute in 10-second windows
    assert 0 < int(checks["rate_limit"]["remaining"]) <= 1666  # type: ignore[call-overload]
    assert checks["health_endpoint"]["result"] == "ok"


def test_outage_exits_3_and_names_the_failing_check(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    fake, url = served_fake
    fake.faults.outage(600)
    code, output = triage("--base-url", url, "--token", "fake-token", "--status-url", site.url)
    assert code == 3
    assert "api" in output and "FAIL" in output
    assert "503" in output
    assert "Result: FAILING: api" in output


def test_status_page_indicator_sets_the_exit_code(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    _fake, url = served_fake
    site.status_page("minor", unresolved=1)
    code, output = triage(
        "--base-url", url, "--token", "fake-token", "--status-url", site.url, "--json"
    )
    assert code == 1
    assert checks_of(output)["status_page"]["unresolved_incidents"] == 1
    site.status_page("major", unresolved=2)
    code, output = triage(
        "--base-url", url, "--token", "fake-token", "--status-url", site.url, "--json"
    )
    assert code == 3
    assert checks_of(output)["status_page"]["result"] == "fail"


def test_revoked_token_fails_with_the_401(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    fake, url = served_fake
    fake.revoke_token("fake-token")
    code, output = triage(
        "--base-url", url, "--token", "fake-token", "--status-url", site.url, "--json"
    )
    checks = checks_of(output)
    assert code == 3
    assert checks["api"]["status_code"] == 401
    assert checks["api"]["error_code"] == "token_revoked"
    assert checks["rate_limit"]["result"] == "warn"  # Intercom sends no rate headers on a 401


def test_degraded_health_endpoint_is_a_warning(
    served_fake: tuple[FakeIntercom, str], site: LocalSite
) -> None:
    _fake, url = served_fake
    site.routes["/health"] = (
        503,
        {"status": "degraded", "services": {"intercom": {"status": "degraded"}}},
    )
    code, output = triage(
        "--base-url",
        url,
        "--token",
        "fake-token",
        "--status-url",
        site.url,
        "--health-url",
        f"{site.url}/health",
    )
    assert code == 1, output
    assert "Result: WARNING: health_endpoint" in output


def test_missing_token_is_a_configuration_error() -> None:
    result = CliRunner().invoke(cli, ["triage", "--base-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "no Intercom token" in result.output
    assert "INTERCOM_ACCESS_TOKEN" in result.output


@pytest.mark.parametrize("command", ["triage", "preflight"])
def test_missing_token_with_json_prints_a_json_error(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--json"])
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2
    assert document["error"].startswith("no Intercom token: pass --token or set")
    (line,) = result.stderr.strip().splitlines()
    assert line == f"intercom-resilience: {document['error']}"


def test_no_status_page_skips_the_check_so_offline_triage_can_pass(
    served_fake: tuple[FakeIntercom, str], closed_port: int
) -> None:
    _fake, url = served_fake
    # The status page is unreachable (as offline): a warning, exit 1 ...
    code, output = triage(
        "--base-url",
        url,
        "--token",
        "fake-token",
        "--status-url",
        f"http://127.0.0.1:{closed_port}",
    )
    assert code == 1, output
    # ... unless it is skipped on purpose.
    code, output = triage("--base-url", url, "--token", "fake-token", "--no-status-page", "--json")
    assert code == 0, output
    status = checks_of(output)["status_page"]
    assert status["result"] == "skipped"
    assert status["summary"] == "--no-status-page given"


def test_token_comes_from_the_environment(
    served_fake: tuple[FakeIntercom, str], site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake, url = served_fake
    monkeypatch.setenv("INTERCOM_API_KEY", "fake-token")
    code, output = triage("--base-url", url, "--status-url", site.url, "--json")
    assert code == 0, output
    assert json.loads(output)["token_source"] == "INTERCOM_API_KEY"


def test_unreachable_everything_says_unreachable_without_a_traceback(closed_port: int) -> None:
    dead = f"http://127.0.0.1:{closed_port}"
    code, output = triage(
        "--base-url",
        dead,
        "--token",
        SECRET,
        "--status-url",
        dead,
        "--health-url",
        f"{dead}/health",
    )
    assert code == 3
    assert output.count("UNREACHABLE") == 3
    assert "Traceback" not in output
    assert SECRET not in output and SECRET[:20] not in output


def test_the_token_is_never_printed(served_fake: tuple[FakeIntercom, str], site: LocalSite) -> None:
    fake, url = served_fake
    fake.add_token(SECRET)
    for extra in ((), ("--json",)):
        code, output = triage(
            "--base-url", url, "--token", SECRET, "--status-url", site.url, *extra
        )
        assert code == 0, output
        assert SECRET not in output
        assert SECRET[5:25] not in output
    assert any(headers.get("Authorization") is None for _m, _p, headers, _b in site.requests)


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["triage", "--help"])
    assert result.exit_code == 0
    for text in ("Exit codes", "3  failing", "2  configuration error", "Examples"):
        assert text in result.output


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--base-url", "http://[::1", "is not a URL"),
        ("--base-url", "api.intercom.io", "is not an http(s):// URL"),
        ("--status-url", "ftp://status.example.com", "is not an http(s):// URL"),
        ("--health-url", "http://", "is not"),
    ],
)
def test_a_malformed_url_is_a_usage_error_in_one_line(option: str, value: str, why: str) -> None:
    result = CliRunner().invoke(cli, ["triage", "--token", "x", option, value])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"intercom-resilience: Invalid value for '{option}': {value!r} {why}")
