"""``intercom-resilience cache warm``: the fake over real HTTP, the fleet's cache in a real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from intercom_resilience import CachePolicy, ResilienceConfig, capture_calls
from intercom_resilience.cli import cli
from intercom_resilience.testing import DEFAULT_TOKEN, FakeIntercom

pytestmark = pytest.mark.redis


@pytest.fixture
def served() -> Iterator[tuple[FakeIntercom, str]]:
    pytest.importorskip("uvicorn")
    fake = FakeIntercom()
    with fake.serve_in_thread() as url:
        yield fake, url


def contacts(fake: FakeIntercom, n: int) -> list[str]:
    with fake.client() as seeder:
        return [
            seeder.contacts.create(request={"email": f"w{i}@example.com"}).id  # type: ignore[union-attr]
            for i in range(n)
        ]


def warm(url: str, redis_url: str, tmp: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "cache",
            "warm",
            "--token",
            DEFAULT_TOKEN,
            "--base-url",
            url,
            "--redis-url",
            redis_url,
            "--checkpoint",
            str(tmp / "warm.json"),
            *args,
        ],
    )


def test_warmed_contacts_are_served_to_the_fleet_during_an_outage(
    served: tuple[FakeIntercom, str], fresh_redis_url: str, tmp_path: Path
) -> None:
    fake, url = served
    ids = contacts(fake, 5)
    (tmp_path / "ids.txt").write_text("\n".join(ids[2:]) + "\n")
    result = warm(
        url,
        fresh_redis_url,
        tmp_path,
        "--contacts",
        ",".join(ids[:2]),
        "--contacts",
        f"@{tmp_path / 'ids.txt'}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["warmed"], summary["missing"], summary["error"]) == (5, 0, None)
    assert summary["cache"]["entries"] == 5
    # Another process of the fleet, sharing the Redis cache, answers from it during an outage.
    fake.faults.outage(seconds=600)
    config = ResilienceConfig(redis_url=fresh_redis_url, cache=CachePolicy(backend="redis"))
    with fake.client(base_url=url, transport=None, config=config) as pod, capture_calls() as calls:
        assert [pod.contacts.find(contact_id=cid).id for cid in ids] == ids
    assert all(call.stale for call in calls)


def test_missing_ids_exit_1_and_an_outage_exits_3_then_resumes(
    served: tuple[FakeIntercom, str], fresh_redis_url: str, tmp_path: Path
) -> None:
    fake, url = served
    ids = contacts(fake, 4)
    missing = warm(url, fresh_redis_url, tmp_path, "--contacts", f"{ids[0]},nope", "--json")
    assert missing.exit_code == 1, missing.output
    assert json.loads(missing.stdout)["missing"] == 1

    fake.faults.outage(seconds=3600)
    stopped = warm(url, fresh_redis_url, tmp_path, "--contacts", ",".join(ids))
    assert stopped.exit_code == 3, stopped.output
    assert "stopped early" in stopped.stderr and "run the same command again" in stopped.stderr
    assert (tmp_path / "warm.json").exists()
    fake.faults.clear()
    resumed = warm(url, fresh_redis_url, tmp_path, "--contacts", ",".join(ids), "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["warmed"] == 4
    assert not (tmp_path / "warm.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--contact-search", "{not json"], "--contact-search is not JSON"),
        ([], "needs something to read"),
        (["--contacts", "@/nonexistent/ids.txt"], "cannot read /nonexistent/ids.txt"),
    ],
)
def test_configuration_errors_exit_2_in_one_line(
    served: tuple[FakeIntercom, str],
    fresh_redis_url: str,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    _, url = served
    result = warm(url, fresh_redis_url, tmp_path, *args)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("intercom-resilience: ") and message in line


def test_without_a_redis_cache_it_refuses_to_warm_a_cache_that_dies_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("INTERCOM_RESILIENCE_REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["cache", "warm", "--token", "t", "--contacts", "1"])
    assert result.exit_code == 2
    assert "needs the fleet's shared Redis cache" in result.stderr
