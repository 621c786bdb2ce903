"""``intercom-resilience fleet status`` against a real Redis: four processes, one broken."""

from __future__ import annotations

import json

from click.testing import CliRunner

from intercom_resilience import ResilienceConfig, ResilientIntercom, VirtualClock
from intercom_resilience._cli_checks import ExitCode
from intercom_resilience.cli import cli
from intercom_resilience.testing import FakeIntercom
from tests.redis_support import free_port


def _client(url: str) -> tuple[ResilientIntercom, FakeIntercom]:
    clock = VirtualClock()
    fake = FakeIntercom(clock=clock)
    config = ResilienceConfig(redis_url=url)
    client = ResilientIntercom(
        token="fake-token", transport=fake.transport(), clock=clock, config=config
    )
    return client, fake


def test_four_processes_one_broken_table_and_json(fresh_redis_url: str) -> None:
    pods = [_client(fresh_redis_url) for _ in range(4)]
    try:
        for client, _ in pods[:3]:
            client.admins.identify()
        broken, fake = pods[3]
        fake.faults.outage(seconds=600)
        for _ in range(12):
            try:
                broken.admins.identify()
            except Exception:  # noqa: S112
                continue
        runner = CliRunner()
        table = runner.invoke(cli, ["fleet", "status", "--redis-url", fresh_redis_url])
        assert table.exit_code == ExitCode.FAILING, table.output
        assert "Fleet: unhealthy (4 processes: 3 healthy, 0 degraded, 1 unhealthy)" in table.output
        broken_id = broken._pipeline.fleet.process_id  # type: ignore[union-attr]
        line = next(ln for ln in table.output.splitlines() if ln.startswith(broken_id))
        assert "unhealthy" in line and "open" in line and "P1 api_unreachable" in line
        as_json = runner.invoke(
            cli,
            ["fleet", "status", "--json"],
            env={"INTERCOM_RESILIENCE_REDIS_URL": fresh_redis_url},
        )
        assert as_json.exit_code == ExitCode.FAILING
        report = json.loads(as_json.output)
        assert report["exit_code"] == 3 and report["counts"]["healthy"] == 3
        assert len(report["processes"]) == 4
        broken.close()
        pods.pop()
        healed = runner.invoke(cli, ["fleet", "status", "--redis-url", fresh_redis_url])
        assert healed.exit_code == ExitCode.OK, healed.output
        pods[0][0].disable()
        pods[0][0].health()
        assert (
            runner.invoke(cli, ["fleet", "status", "--redis-url", fresh_redis_url]).exit_code
            == ExitCode.FINDING
        )
    finally:
        for client, _ in pods:
            client.close()


def test_no_process_published_is_a_finding(fresh_redis_url: str) -> None:
    result = CliRunner().invoke(cli, ["fleet", "status", "--redis-url", fresh_redis_url])
    assert result.exit_code == ExitCode.FINDING
    assert "no process has published" in result.output


def test_unreachable_redis_is_failing_in_one_line_without_the_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(cli, ["fleet", "status", "--redis-url", url, "--json"])
    assert result.exit_code == ExitCode.FAILING
    assert "hunter2" not in result.output
    assert json.loads(result.stdout)["exit_code"] == 3


def test_missing_or_malformed_url_is_a_usage_error() -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["fleet", "status"], env={"INTERCOM_RESILIENCE_REDIS_URL": ""})
    assert missing.exit_code == ExitCode.USAGE
    bad = runner.invoke(cli, ["fleet", "status", "--redis-url", "http://nope"])
    assert bad.exit_code == ExitCode.USAGE
    assert "redis_url" in bad.output
