"""Docstrings name only things that exist: references resolve, documented arguments are real.

A docstring that tells users to call ``client.record_webhook_failure()`` when there is no such
method is worse than none. For every module of the package and every public class, function,
method and property in it, this checks:

* Sphinx cross-references (``:func:`x```, ``:class:`~.mod.X```, ``:meth:`...```, ``:attr:``,
  ``:data:``, ``:exc:``, ``:mod:``) resolve, from the module, the class, the package, or by import;
* dotted names and calls in double backticks (````client.health()````, ````Incident.to_json()````)
  resolve when their first part is a known name (module globals, the package, or an instance
  name the docs use: ``client``, ``fake``, ``config``, ``monitor``);
* attribute access on those instance names anywhere in the text (code examples included);
* every argument an ``Args:`` section documents is a parameter of the signature.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import intercom_resilience
from intercom_resilience import AsyncResilientIntercom, ResilienceConfig, ResilientIntercom
from intercom_resilience._health import HealthMonitor
from intercom_resilience.testing import FakeIntercom

ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|data|exc|mod|obj):`([^`]+)`")
LITERAL = re.compile(r"``([A-Za-z_][\w.]*)(\(\))?``")
_MISSING = object()


def modules() -> list[ModuleType]:
    found = [intercom_resilience]
    for info in pkgutil.walk_packages(intercom_resilience.__path__, "intercom_resilience."):
        if info.name.endswith("__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


def documented(module: ModuleType) -> Iterator[tuple[str, Any, type | None]]:
    """(qualified name, object, owning class) of the module and its public names defined here."""
    yield module.__name__, module, None
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            yield f"{module.__name__}.{name}", value, value
            for attr, member in vars(value).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                target = member.fget if isinstance(member, property) else member
                target = getattr(target, "__func__", target)  # classmethod, staticmethod
                if inspect.isfunction(target) and target.__doc__:
                    yield f"{module.__name__}.{name}.{attr}", target, value
        elif inspect.isfunction(value):
            yield f"{module.__name__}.{name}", value, None


MODULES = modules()


def _index() -> dict[str, list[Any]]:
    """Every name defined or imported at the top of any module of the package."""
    index: dict[str, list[Any]] = {}
    for module in MODULES:
        for name, value in vars(module).items():
            index.setdefault(name, []).append(value)
    return index


INDEX = _index()


def instances() -> dict[str, tuple[Any, ...]]:
    """The instance names the docs use, with objects to look their attributes up on."""
    fake = FakeIntercom()
    client = fake.client(config=ResilienceConfig())  # not from_env: the tests set variables
    monitor = client._pipeline.monitor
    return {
        "client": (client, ResilientIntercom, AsyncResilientIntercom),
        "fake": (fake,),
        "intercom_fake": (fake,),  # the pytest plugin's fixture
        "config": (ResilienceConfig(),),
        "monitor": (monitor, HealthMonitor),
    }


INSTANCES = instances()


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        value = getattr(value, part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _absolute(target: str, module: ModuleType) -> str:
    """``.x`` and ``..x`` relative to *module*'s package (a package is its own)."""
    if not target.startswith("."):
        return target
    dots = len(target) - len(target.lstrip("."))
    package = module.__name__ if hasattr(module, "__path__") else module.__name__.rpartition(".")[0]
    for _ in range(dots - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{target.lstrip('.')}"


CLASSES = [value for values in INDEX.values() for value in values if inspect.isclass(value)]


def resolve(target: str, module: ModuleType, owner: type | None) -> bool:
    first, *rest = _absolute(target.lstrip("~!").removesuffix("()"), module).split(".")
    scopes: list[Any] = [module, intercom_resilience, *([owner] if owner else [])]
    if any(_walk(scope, [first, *rest]) is not _MISSING for scope in scopes):
        return True
    # As Sphinx does, a short name resolves from anywhere in the package.
    candidates = [*INDEX.get(first, []), *INSTANCES.get(first, ())]
    if any(_walk(value, rest) is not _MISSING for value in candidates):
        return True
    if not rest and any(hasattr(cls, first) for cls in CLASSES):
        return True  # :meth:`replace` in a module docstring: a method of one of its classes
    parts = [first, *rest]
    if target.lstrip("~!").startswith("."):
        # Sphinx then takes the target as a suffix: ``~._pipeline.Pipeline`` from a submodule.
        tail = target.lstrip("~!.").removesuffix("()").split(".")
        for other in MODULES:
            for split in range(1, len(tail)):
                prefix = ".".join(tail[:split])
                if (
                    other.__name__.endswith(f".{prefix}")
                    and _walk(other, tail[split:]) is not _MISSING
                ):
                    return True
    for split in range(len(parts), 0, -1):  # an importable module, then attributes
        try:
            imported = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        return _walk(imported, parts[split:]) is not _MISSING
    return False


def _known_first_part(name: str, module: ModuleType) -> bool:
    """Is the head of a dotted literal one of ours (a class, module or function, or an instance
    name), rather than text such as an event name (``alert.fired``) or a header?"""
    first = name.split(".", 1)[0]
    if first in INSTANCES:
        return True
    value = getattr(module, first, getattr(intercom_resilience, first, None))
    return inspect.isclass(value) or inspect.ismodule(value) or inspect.isfunction(value)


def broken_references(doc: str, module: ModuleType, owner: type | None) -> list[str]:
    broken = []
    for _role, target in ROLE.findall(doc):
        if not resolve(target, module, owner):
            broken.append(f":{_role}:`{target}`")
    for name, call in LITERAL.findall(doc):
        # A bare call (``verify()``) must exist; a dotted name only when its head is ours.
        checked = (call and "." not in name) or ("." in name and _known_first_part(name, module))
        if checked and not resolve(name, module, owner):
            broken.append(f"``{name}{call}``")
    for alias in INSTANCES:
        for attribute in re.findall(rf"(?<![\w.]){alias}\.([A-Za-z_]\w*)", doc):
            if not resolve(f"{alias}.{attribute}", module, owner):
                broken.append(f"{alias}.{attribute}")
    return broken


def documented_arguments(doc: str) -> list[str]:
    """The names an ``Args:`` (or ``Arguments:``/``Parameters:``) section documents."""
    names: list[str] = []
    lines = inspect.cleandoc(doc).splitlines()
    for index, line in enumerate(lines):
        if line.strip() not in ("Args:", "Arguments:", "Parameters:"):
            continue
        base = len(line) - len(line.lstrip())
        entry_indent = None
        for entry in lines[index + 1 :]:
            if not entry.strip():
                continue
            indent = len(entry) - len(entry.lstrip())
            if indent <= base:
                break
            if entry_indent is None:
                entry_indent = indent
            if indent == entry_indent:
                match = re.match(r"\s*\**(\w+)(?: \([^)]*\))?:", entry)
                if match:
                    names.append(match.group(1))
    return names


def signature_parameters(obj: Any) -> set[str] | None:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return set(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None


CASES = [
    (module, qualname, obj, owner)
    for module in MODULES
    for qualname, obj, owner in documented(module)
    if obj.__doc__
]


def test_docstring_references_exist() -> None:
    broken = [
        f"{qualname}: {reference}"
        for module, qualname, obj, owner in CASES
        for reference in broken_references(obj.__doc__, module, owner)
    ]
    assert broken == []
    assert len(CASES) > 300  # the walk saw the package's docstrings


def test_documented_arguments_exist() -> None:
    unknown = []
    checked = 0
    for _module, qualname, obj, _owner in CASES:
        names = documented_arguments(obj.__doc__)
        parameters = None if isinstance(obj, ModuleType) else signature_parameters(obj)
        if names and parameters is not None:
            checked += 1
            unknown += [f"{qualname}: {name}" for name in sorted(set(names) - parameters)]
    assert unknown == []
    assert checked > 20  # the Args: sections were found


def test_the_checker_catches_what_it_is_for() -> None:
    """The checks can fail: a missing method, a missing role target, a missing argument."""
    from intercom_resilience import _webhooks

    assert broken_references(
        "call ``client.record_webhook_failure()`` or client.no_such_thing()", _webhooks, None
    ) == [
        "``client.record_webhook_failure()``",
        "client.record_webhook_failure",
        "client.no_such_thing",
    ]
    assert broken_references(":func:`verify_webhook_signature`", _webhooks, None) == []
    assert broken_references(":func:`verify_signature`", _webhooks, None) == [
        ":func:`verify_signature`"
    ]
    assert broken_references(":class:`~._incidents.Incident`", _webhooks, None) == []

    def f(a: int, *, b: int = 0) -> None:
        """Do it.

        Args:
            a: one.
            b: two,
                continued.
            c: not a parameter.
        """

    assert documented_arguments(f.__doc__ or "") == ["a", "b", "c"]
    assert set(documented_arguments(f.__doc__ or "")) - (signature_parameters(f) or set()) == {"c"}
