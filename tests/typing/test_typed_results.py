"""A user's ``mypy --strict`` sees the SDK's real types through the facades, not ``Any``.

One mypy run (in-process, ``mypy.api``) checks a few user files the way a user's project would
(its own empty config, not ours); each test reads its file's part of the report. The checks come
in pairs: ``reveal_type`` must show the SDK's type, and a deliberate mistake must be an error, so
a regression to ``Any`` (which reveals as ``Any`` and accepts every mistake) fails both.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import intercom
import pytest
from intercom.contacts.types.contact import Contact

from intercom_resilience import AsyncResilientIntercom, ResilientIntercom
from intercom_resilience.testing import pytest_plugin

mypy_api = pytest.importorskip("mypy.api")

USER_FILES = {
    "user_sync.py": """
        from intercom_resilience import ResilientIntercom

        client = ResilientIntercom(token="t")
        contact = client.contacts.find(contact_id="6a1b")
        reveal_type(contact)  # REVEAL
        email: int = contact.email  # ERROR: str | None is not int
        client.contacts.find(contact_idd="6a1b")  # ERROR: no such argument
    """,
    "user_async.py": """
        from intercom_resilience import AsyncResilientIntercom

        async def main() -> None:
            client = AsyncResilientIntercom(token="t")
            contact = await client.contacts.find(contact_id="6a1b")
            reveal_type(contact)  # REVEAL
            contact.emial  # ERROR: no such attribute
            client.contacts.find(contact_id=6)  # ERROR: an int is not a str
    """,
    "user_fake.py": """
        from intercom_resilience.testing import FakeIntercom

        fake = FakeIntercom()
        client = fake.client()
        reveal_type(client.contacts.find(contact_id="6a1b"))  # REVEAL

        async def main() -> None:
            aclient = fake.async_client()
            reveal_type(await aclient.contacts.find(contact_id="6a1b"))  # REVEAL
            aclient.contacts.fnd(contact_id="6a1b")  # ERROR: no such method
    """,
}
RESOURCES_FILE = "user_resources.py"
RAW_FILE = "user_raw_sdk.py"
#: The pipeline's records are plain slotted dataclasses at run time (cheap to build on every
#: call) and read-only only to the type checker: an assignment to one must be an error.
RECORDS_FILE = "records_read_only.py"
RECORDS_SOURCE = """
    from intercom_resilience._core.limiter import Grant
    from intercom_resilience._core.outcome import Outcome
    from intercom_resilience._pipeline.call import Conclusion
    from intercom_resilience._pipeline.effects import Send

    def tamper(grant: Grant, outcome: Outcome, conclusion: Conclusion, send: Send) -> None:
        grant.granted = False  # ERROR: read-only
        outcome.status = 500  # ERROR: read-only
        conclusion.store = None  # ERROR: read-only
        send.deadline = 0.0  # ERROR: read-only
        print(grant.wait, outcome.duration, conclusion.error, send.request)
"""
NOTE = re.compile(r'^(?P<file>[\w.]+):(?P<line>\d+): note: Revealed type is "(?P<type>[^"]+)"$')
ERROR = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+): error: (?P<message>.*)$")


def sdk_resources(sdk_cls: type[object]) -> dict[str, type[object]]:
    """Every resource property of the SDK class, with the class it returns at run time."""
    instance = sdk_cls(token="t")  # type: ignore[call-arg]
    return {
        name: type(getattr(instance, name))
        for name, value in vars(sdk_cls).items()
        if isinstance(value, property)
    }


SYNC_RESOURCES = sdk_resources(intercom.Intercom)
ASYNC_RESOURCES = sdk_resources(intercom.AsyncIntercom)


def resources_file() -> tuple[str, dict[int, tuple[str, str, type[object]]]]:
    """A file revealing every resource of both facades, and what each line reveals."""
    lines = [
        "from intercom_resilience import AsyncResilientIntercom, ResilientIntercom",
        "sync = ResilientIntercom(token='t')",
        "asyn = AsyncResilientIntercom(token='t')",
    ]
    expected: dict[int, tuple[str, str, type[object]]] = {}
    for facade, variable, resources in (
        ("ResilientIntercom", "sync", SYNC_RESOURCES),
        ("AsyncResilientIntercom", "asyn", ASYNC_RESOURCES),
    ):
        for name, cls in resources.items():
            lines.append(f"reveal_type({variable}.{name})")
            expected[len(lines)] = (facade, name, cls)
    return "\n".join(lines) + "\n", expected


def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the session: the docs snippets' run reuses the SDK's parsed modules."""
    return tmp_path_factory.getbasetemp() / "mypy_cache"


class Report(typing.NamedTuple):
    notes: dict[tuple[str, int], str]
    errors: dict[tuple[str, int], str]
    raw: str


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    root = tmp_path_factory.mktemp("user_project")
    (root / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")
    for name, source in USER_FILES.items():
        (root / name).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    (root / RESOURCES_FILE).write_text(resources_file()[0], encoding="utf-8")
    (root / RAW_FILE).write_text(
        "import intercom\nreveal_type(intercom.Intercom(token='t').contacts)\n", encoding="utf-8"
    )
    (root / RECORDS_FILE).write_text(textwrap.dedent(RECORDS_SOURCE).lstrip(), encoding="utf-8")
    files = [str(root / name) for name in [*USER_FILES, RESOURCES_FILE, RAW_FILE, RECORDS_FILE]]
    stdout, stderr, _status = mypy_api.run(
        [
            "--strict",
            "--config-file",
            str(root / "mypy.ini"),
            "--cache-dir",
            str(mypy_cache(tmp_path_factory)),
            "--show-absolute-path",
            "--no-error-summary",
            "--no-pretty",
            *files,
        ]
    )
    assert not stderr, stderr
    notes: dict[tuple[str, int], str] = {}
    errors: dict[tuple[str, int], str] = {}
    for full in stdout.splitlines():
        line = full.replace(f"{root}/", "")
        if match := NOTE.match(line):
            notes[match["file"], int(match["line"])] = match["type"]
        elif match := ERROR.match(line):
            errors[match["file"], int(match["line"])] = match["message"]
    return Report(notes, errors, stdout)


def marked_lines(name: str, marker: str) -> list[int]:
    text = RECORDS_SOURCE if name == RECORDS_FILE else USER_FILES[name]
    source = textwrap.dedent(text).lstrip().splitlines()
    return [number for number, line in enumerate(source, start=1) if f"# {marker}" in line]


def resolve(qualified: str) -> type[object]:
    module, _, name = qualified.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type), qualified
    return cls


@pytest.mark.parametrize("name", sorted(USER_FILES))
def test_reveal_type_shows_the_sdk_contact(report: Report, name: str) -> None:
    lines = marked_lines(name, "REVEAL")
    assert lines, "the user file reveals something"
    for line in lines:
        revealed = report.notes.get((name, line))
        assert revealed is not None, report.raw
        assert issubclass(resolve(revealed), Contact), f"{name}:{line} revealed {revealed}"


@pytest.mark.parametrize("name", sorted(USER_FILES))
def test_deliberate_mistakes_are_caught(report: Report, name: str) -> None:
    expected = marked_lines(name, "ERROR")
    assert expected, "the user file makes a mistake"
    caught = sorted(line for file, line in report.errors if file == name)
    assert caught == expected, report.raw


def test_records_are_read_only_to_the_type_checker(report: Report) -> None:
    expected = marked_lines(RECORDS_FILE, "ERROR")
    assert len(expected) == 4
    for line in expected:
        message = report.errors.get((RECORDS_FILE, line), "")
        assert "read-only" in message, report.raw


def test_no_unexpected_errors(report: Report) -> None:
    checked = [*USER_FILES, RECORDS_FILE]
    expected = {(name, line) for name in checked for line in marked_lines(name, "ERROR")}
    assert set(report.errors) == expected, report.raw


def test_every_sdk_resource_is_typed_on_the_facades(report: Report) -> None:
    """Compared against the SDK's own properties: a resource added by a release fails here."""
    assert len(SYNC_RESOURCES) >= 31
    assert set(SYNC_RESOURCES) == set(ASYNC_RESOURCES)
    assert "unstable" in SYNC_RESOURCES
    _, expected = resources_file()
    wrong = []
    for line, (facade, name, cls) in expected.items():
        revealed = report.notes.get((RESOURCES_FILE, line))
        if revealed != f"{cls.__module__}.{cls.__qualname__}":
            wrong.append(f"{facade}.{name}: mypy sees {revealed}, the SDK returns {cls}")
    assert wrong == []


def test_the_raw_sdk_is_still_untyped(report: Report) -> None:
    """If python-intercom annotates its properties, this fails: `_resources.py` can then go."""
    assert report.notes[RAW_FILE, 2] == "Any", report.raw


def test_the_pytest_fixtures_are_typed() -> None:
    def hints(fixture: object) -> object:
        unwrap = getattr(fixture, "_get_wrapped_function", None)  # pytest >= 8.4 wraps fixtures
        function = unwrap() if unwrap is not None else fixture
        assert inspect.isfunction(function)
        namespace = {
            "ResilientIntercom": ResilientIntercom,
            "AsyncResilientIntercom": AsyncResilientIntercom,
        }
        return typing.get_type_hints(function, localns=namespace)["return"]

    assert hints(pytest_plugin.intercom_client) == Iterator[ResilientIntercom]
    assert hints(pytest_plugin.intercom_async_client) == AsyncIterator[AsyncResilientIntercom]
