"""The documentation site builds strictly, shows every page, and stays true to the code.

The strict build needs the ``docs`` extra (mkdocs-material, mkdocstrings[python]): without it the
test is skipped with a reason, except in CI (``CI=true``), where a missing extra fails the run.
The other checks need nothing but the standard library.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import intercom_resilience
import intercom_resilience.asgi
import intercom_resilience.testing
import intercom_resilience.webhooks

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
PACKAGE = ROOT / "intercom_resilience"


def nav_pages() -> list[str]:
    """The pages named in mkdocs.yml's ``nav`` (one ``Title: page.md`` per line)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1]
    nav = re.split(r"\n(?=\S)", nav, maxsplit=1)[0]  # up to the next top-level key
    return re.findall(r":\s*(\S+\.md)\s*$", nav, flags=re.MULTILINE)


def python_blocks(page: Path) -> list[str]:
    """The ``python`` fenced code blocks of a Markdown page, dedented."""
    blocks = []
    for match in re.finditer(
        r"^( *)```python\n(.*?)^\1```", page.read_text(encoding="utf-8"), re.M | re.S
    ):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return blocks


def test_every_page_is_in_the_nav() -> None:
    pages = nav_pages()
    assert len(pages) == len(set(pages)), f"a page is in the nav twice: {pages}"
    on_disk = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk


def test_strict_build(tmp_path: Path) -> None:
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        reason = (
            f"the docs extra is not installed (missing {', '.join(missing)}): "
            "pip install -e '.[docs]'"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires the docs build: {reason}")
        pytest.skip(reason)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(  # noqa: S603 - our own interpreter and config
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(MKDOCS_YML),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in nav_pages():
        built = tmp_path / "site" / (page.removesuffix(".md") + "/index.html")
        if page == "index.md":
            built = tmp_path / "site" / "index.html"
        assert built.is_file(), f"{page} was not built"


def test_reference_documents_every_public_name() -> None:
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: (\S+)$", reference, flags=re.MULTILINE))
    missing = []
    for module in (
        intercom_resilience,
        intercom_resilience.testing,
        intercom_resilience.asgi,
        intercom_resilience.webhooks,
    ):
        for name in module.__all__:
            qualified = f"{module.__name__}.{name}"
            if qualified in documented:
                continue
            # A re-export documented once, under the package (VirtualClock), or a plain value.
            if f"intercom_resilience.{name}" in documented or f"`{qualified}`" in reference:
                continue
            missing.append(qualified)
    assert missing == []
    for target in documented:
        module_name, _, attribute = target.rpartition(".")
        assert hasattr(importlib.import_module(module_name), attribute), target


def _emitted_events() -> set[str]:
    """Event names the package emits: the names of the event types it constructs.

    Every event is a class of :mod:`intercom_resilience.events`; one that no module outside it
    constructs (``Name(``) is dead and must not be documented as emitted.
    """
    import intercom_resilience.events as events_module

    code = "\n".join(
        path.read_text(encoding="utf-8")
        for path in PACKAGE.rglob("*.py")
        if path.name != "events.py"
    )
    names: set[str] = set()
    for name, value in vars(events_module).items():
        if not (isinstance(value, type) and issubclass(value, events_module.Event)):
            continue
        if not re.search(rf"\b{name}\(", code):
            continue
        if "NAME" in vars(value):
            names.add(value.NAME.value)
        else:  # one class for several names (the Redis backends' latch events)
            names.update(
                m.value
                for m in events_module.EventName
                if m.name.endswith(
                    "_REDIS_UNAVAILABLE" if name == "RedisUnavailable" else "_REDIS_RECOVERED"
                )
            )
    return names


def test_the_event_reference_matches_the_code() -> None:
    page = (DOCS / "observability.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([\w.]+)` \|", page, flags=re.MULTILINE))
    emitted = _emitted_events()
    assert {"call.attempt", "alert.fired", "incident.closed"} <= emitted  # the scan works
    assert emitted - documented == set(), "events missing from docs/observability.md"
    assert documented - emitted == set(), "documented events the code does not emit"
    from intercom_resilience.events import EventName

    assert {name.value for name in EventName} == emitted, "an EventName no code emits"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_python_snippets_parse_and_import_real_names(page: Path) -> None:
    for block in python_blocks(page):
        tree = ast.parse(block, filename=str(page), feature_version=(3, 10))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "intercom_resilience"
            ):
                assert node.module is not None
                if node.module == "intercom_resilience.instrumentation" and (
                    importlib.util.find_spec(node.module) is None
                ):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{page.name}: {node.module}.{alias.name}"
