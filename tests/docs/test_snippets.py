"""The README's and the docs' Python snippets type-check under ``mypy --strict``, and run.

They are the first code a user copies. Every ``python`` block carries a marker on the line above
its fence, saying what the test does with it::

    <!-- snippet: run -->                                  type-checked, then executed
    <!-- snippet: run; given: client, contact_id -->       ... after the named givens are set up
    <!-- snippet: run; async; given: token -->             ... as the body of an async function
    <!-- snippet: typecheck; why: writes incident.json --> type-checked only, for the reason given

A snippet runs offline, against the fake Intercom: ``ResilientIntercom`` and
``AsyncResilientIntercom`` are swapped for subclasses wired to the fake's transport and clock
(every other argument is the snippet's own), ``INTERCOM_ACCESS_TOKEN`` is the fake's token, and a
contact ``6a1b2c3d4e5f`` exists. The *givens* are the names a snippet continues from (a ``client``
made earlier on the page, the user's ``pager``); they are declared with their types for mypy and
bound to working objects for the run (see :data:`GIVENS`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import intercom_resilience
from intercom_resilience import AsyncResilientIntercom, ResilientIntercom
from intercom_resilience.testing import DEFAULT_TOKEN, FakeIntercom, VirtualClock

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONTACT_ID = "6a1b2c3d4e5f"
MARKER = re.compile(r"^ *<!-- snippet: (?P<spec>[^>]*?) -->$")
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.M | re.S)


@dataclass(frozen=True)
class Snippet:
    """One ``python`` block of a page, with what its marker asks for."""

    page: str
    line: int
    code: str
    mode: str  # "run" or "typecheck"
    is_async: bool
    givens: tuple[str, ...]
    why: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def module(self) -> str:
        return "snippet_" + re.sub(r"\W", "_", self.id)


def parse_marker(spec: str, where: str) -> dict[str, Any]:
    parts = [part.strip() for part in spec.split(";")]
    mode, options = parts[0], parts[1:]
    assert mode in ("run", "typecheck"), f"{where}: unknown snippet mode {mode!r}"
    parsed: dict[str, Any] = {"mode": mode, "is_async": False, "givens": (), "why": ""}
    for option in options:
        key, _, value = option.partition(":")
        if key == "async" and not value:
            parsed["is_async"] = True
        elif key == "given":
            parsed["givens"] = tuple(name.strip() for name in value.split(","))
        elif key == "why":
            parsed["why"] = value.strip()
        else:
            raise AssertionError(f"{where}: unknown snippet option {option!r}")
    if mode == "typecheck":
        assert parsed["why"], f"{where}: say why a snippet is only type-checked (why: ...)"
    return parsed


def snippets_of(page: Path) -> Iterator[Snippet | str]:
    """The page's snippets; for a block without a marker, a message saying where it is."""
    text = page.read_text(encoding="utf-8")
    name = str(page.relative_to(ROOT))
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.match(before)
        if marker is None:
            yield f"{name}:{line}: no <!-- snippet: run|typecheck ... --> marker above the block"
            continue
        indent = len(match.group(1))
        code = "\n".join(row[indent:] for row in match.group(2).splitlines()) + "\n"
        yield Snippet(name, line, code, **parse_marker(marker["spec"], f"{name}:{line}"))


ALL = [item for page in PAGES for item in snippets_of(page)]
SNIPPETS = [item for item in ALL if isinstance(item, Snippet)]
RUNNABLE = [snippet for snippet in SNIPPETS if snippet.mode == "run"]


# -- givens: the names a snippet continues from ----------------------------------------------


class Recorder:
    """Stands in for a user's service (statsd, a pager, chat): any method call is recorded."""

    def __init__(self, answer: object = None) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
        self.answer = answer

    def __getattr__(self, name: str) -> Callable[..., object]:
        def record(*args: object, **kwargs: object) -> object:
            self.calls.append((name, args, kwargs))
            return self.answer

        return record


# name -> (the declaration mypy sees, how the run gets it from the fake)
TYPE_HEADER = """\
import typing as _t
import intercom_resilience as _ir
import intercom_resilience.testing as _irt
class _Statsd(_t.Protocol):
    def increment(self, name: str, *, tags: list[str] = ...) -> None: ...
class _Pager(_t.Protocol):
    def trigger(self, summary: str, *, dedup_key: str | None) -> None: ...
    def resolve(self, *, dedup_key: str | None) -> None: ...
class _Secrets(_t.Protocol):
    def get(self, name: str) -> str: ...
class _Customer(_t.Protocol):
    intercom_id: str
    attrs: dict[str, _t.Any]
def given(name: str) -> _t.Any: ...
"""
GIVENS: dict[str, tuple[str, Callable[[FakeIntercom], object]]] = {
    "client": ("_ir.ResilientIntercom", lambda fake: fake.client()),
    "token": ("str", lambda fake: DEFAULT_TOKEN),
    "contact_id": ("str", lambda fake: CONTACT_ID),
    "intercom_fake": ("_irt.FakeIntercom", lambda fake: fake),
    "clock": ("_irt.VirtualClock", lambda fake: fake.clock),
    "statsd": ("_Statsd", lambda fake: Recorder()),
    "pager": ("_Pager", lambda fake: Recorder()),
    "secrets": ("_Secrets", lambda fake: Recorder(answer=DEFAULT_TOKEN)),
    "post_to_slack": ("_t.Callable[[str], None]", lambda fake: Recorder().post),
    "customers_to_sync": ("_t.Callable[[], _t.Iterable[_Customer]]", lambda fake: list),
}


def source_of(snippet: Snippet, *, for_mypy: bool) -> tuple[str, int]:
    """The module mypy checks (or the run executes), and how many lines precede the snippet.

    For mypy each given is declared with its type; the run binds it to its object through
    ``given``, and has none of the type-only header.
    """
    if for_mypy:
        head = TYPE_HEADER + "".join(
            f"{name}: {GIVENS[name][0]} = given({name!r})\n" for name in snippet.givens
        )
    else:
        head = "".join(f"{name} = given({name!r})\n" for name in snippet.givens)
    body = snippet.code
    if snippet.is_async:
        head += "async def _snippet() -> None:\n"
        body = textwrap.indent(body, "    ")
    return head + body, head.count("\n")


# -- the mypy run: every snippet in one go ----------------------------------------------------

BROKEN = Snippet(
    page="<deliberately broken>",
    line=1,
    code='client.contacts.find(contact_idd="6a1b")\n',
    mode="typecheck",
    is_async=False,
    givens=("client",),
    why="the harness must catch a mistake",
)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Each snippet's mypy errors (``line: message``, lines counted in the snippet)."""
    root = tmp_path_factory.mktemp("snippets")
    (root / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")
    offsets: dict[str, tuple[str, int]] = {}
    for snippet in [*SNIPPETS, BROKEN]:
        source, offset = source_of(snippet, for_mypy=True)
        (root / f"{snippet.module}.py").write_text(source, encoding="utf-8")
        offsets[snippet.module] = (snippet.id, offset)
    stdout, stderr, _ = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(root / "mypy.ini"),
            "--cache-dir",
            str(tmp_path_factory.getbasetemp() / "mypy_cache"),  # shared with tests/typing
            "--no-error-summary",
            "--no-pretty",
            "--show-error-codes",
            *(str(root / f"{module}.py") for module in offsets),
        ]
    )
    assert not stderr, stderr
    errors: dict[str, list[str]] = {snippet_id: [] for snippet_id, _ in offsets.values()}
    for row in stdout.splitlines():
        match = re.match(r"^(?:.*/)?(\w+)\.py:(\d+): (error|note): (.*)$", row)
        assert match is not None, row
        snippet_id, offset = offsets[match[1]]
        if match[3] == "error":
            errors[snippet_id].append(f"{int(match[2]) - offset}: {match[4]}")
    return errors


def test_every_python_block_is_marked() -> None:
    unmarked = [item for item in ALL if isinstance(item, str)]
    assert unmarked == []
    assert len(SNIPPETS) >= 30  # the scan works
    assert {snippet.page for snippet in SNIPPETS} >= {"README.md", "docs/quickstart.md"}


def test_the_harness_catches_a_broken_snippet(mypy_errors: dict[str, list[str]]) -> None:
    assert mypy_errors[BROKEN.id] != []
    assert "contact_idd" in mypy_errors[BROKEN.id][0]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda snippet: snippet.id)
def test_snippet_type_checks(snippet: Snippet, mypy_errors: dict[str, list[str]]) -> None:
    errors = mypy_errors[snippet.id]
    assert not errors, "\n".join([f"{snippet.id} (lines of the block):", *errors, snippet.code])


# -- running them against the fake ------------------------------------------------------------


@pytest.fixture
def fake() -> FakeIntercom:
    fake = FakeIntercom(clock=VirtualClock())
    workspace = fake.workspace()
    contact = workspace.create_contact({"email": "seeded@example.com", "name": "Seeded"}, now=0)
    # The pages' example id: re-keyed so that `contacts.find(contact_id="6a1b2c3d4e5f")` finds it.
    workspace.contacts[CONTACT_ID] = workspace.contacts.pop(contact.id)
    contact.id = CONTACT_ID
    return fake


@pytest.fixture
def offline(
    fake: FakeIntercom, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeIntercom]:
    """The facades wired to *fake*, the token variable set, the logging levels restored."""

    class FakeBacked(ResilientIntercom):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**{"transport": fake.transport(), "clock": fake.clock, **kwargs})

    class AsyncFakeBacked(AsyncResilientIntercom):
        def __init__(self, **kwargs: Any) -> None:
            options = {"transport": fake.async_transport(), "clock": fake.clock, **kwargs}
            super().__init__(**options)

    monkeypatch.setattr(intercom_resilience, "ResilientIntercom", FakeBacked)
    monkeypatch.setattr(intercom_resilience, "AsyncResilientIntercom", AsyncFakeBacked)
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", DEFAULT_TOKEN)
    monkeypatch.chdir(tmp_path)  # a snippet that writes a file writes it here
    root = logging.getLogger()
    ours = logging.getLogger("intercom_resilience")
    levels = (root.level, ours.level)
    yield fake
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.mark.parametrize("snippet", RUNNABLE, ids=lambda snippet: snippet.id)
def test_snippet_runs_offline(snippet: Snippet, offline: FakeIntercom) -> None:
    if "prometheus" in snippet.code:
        pytest.importorskip("prometheus_client")
    runtime, _ = source_of(snippet, for_mypy=False)
    values = {name: make(offline) for name, (_, make) in GIVENS.items()}
    namespace: dict[str, Any] = {"__name__": snippet.module, "given": values.__getitem__}
    code = compile(runtime, snippet.id, "exec")
    exec(code, namespace)  # noqa: S102 - our own documentation, run on purpose
    if snippet.is_async:
        asyncio.run(namespace["_snippet"]())
