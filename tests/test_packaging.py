"""The built wheel carries the MIT license the README promises, and says so in its metadata.

The wheel is built with hatchling's PEP 517 backend into a temporary directory (offline, no
build isolation). Without hatchling (the ``dev`` extra has it) the test is skipped with a reason,
except in CI (``CI=true``), where a missing build backend fails the run.
"""

from __future__ import annotations

import email
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = "import sys, hatchling.build as backend; print(backend.build_wheel(sys.argv[1]))"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    if importlib.util.find_spec("hatchling") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("hatchling is missing: pip install -e '.[dev]'")
        pytest.skip("hatchling is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(  # noqa: S603 - our own interpreter and build backend
        [sys.executable, "-c", BUILD, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    path = out / built.stdout.strip().splitlines()[-1]
    return zipfile.ZipFile(path)


def test_the_repository_has_the_mit_license() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text
    assert "MIT" in (ROOT / "README.md").read_text(encoding="utf-8").split("## License", 1)[1]


def test_the_wheel_contains_the_license(wheel: zipfile.ZipFile) -> None:
    (licence,) = [name for name in wheel.namelist() if name.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(licence).decode() == (ROOT / "LICENSE").read_text(encoding="utf-8")


def test_the_wheel_metadata_names_the_license(wheel: zipfile.ZipFile) -> None:
    (name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = email.message_from_bytes(wheel.read(name))
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_the_wheel_ships_the_package_and_its_typing_marker(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "intercom_resilience/py.typed" in names
    assert "intercom_resilience/cli.py" in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)


WITHOUT_REDIS = """
import sys

class NoRedis:
    def find_spec(self, name, path=None, target=None):
        if name == "redis" or name.startswith("redis."):
            raise ImportError("no redis-py here")

sys.meta_path.insert(0, NoRedis())
import intercom_resilience, intercom_resilience.cli  # noqa: E401
from intercom_resilience.testing import FakeIntercom

client = intercom_resilience.ResilientIntercom(
    token="fake-token", transport=FakeIntercom().transport()
)
client.admins.identify()
try:
    intercom_resilience.ResilienceConfig(redis_url="redis://localhost:6379/0")
    intercom_resilience.ResilientIntercom(
        token="fake-token",
        config=intercom_resilience.ResilienceConfig(redis_url="redis://localhost:6379/0"),
    )
except ImportError as error:
    print("redis needed:", error)
print("redis" in sys.modules)
"""


def test_the_package_works_without_the_redis_extra() -> None:
    # Fleet health (#17) imported redis-py with the package: a memory-only install (the
    # zero-dependency default) could not even `import intercom_resilience`.
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own script
        [sys.executable, "-c", WITHOUT_REDIS], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "redis needed: The Redis backends need redis-py: pip install 'intercom-resilience[redis]'",
        "False",
    ]
