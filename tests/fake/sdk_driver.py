"""Drive every method of the official SDK's resource clients, with arguments built from their types.

:func:`sdk_methods` walks an ``intercom.Intercom`` (or ``AsyncIntercom``) down every resource
client and sub-client (``help_centers.collections``, ``unstable.*``...) and yields its public
methods; :func:`arguments` builds the required arguments of one from its type hints: ids from the
*ids* table by parameter name (so stateful operations find the seeded records), pydantic request
models and ``TypedDict`` bodies with their required fields, the first member of unions and
literals, one-item lists.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pydantic

_SKIP = {"with_raw_response"}


def sdk_methods(client: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    """``("contacts.find", bound method)`` for every public method of every resource client."""
    seen: set[int] = set()

    def walk(obj: Any, prefix: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        for name in sorted(dir(obj)):
            if name.startswith("_") or name in _SKIP:
                continue
            attr = getattr(obj, name)
            cls = type(attr)
            if cls.__module__.startswith("intercom.") and cls.__name__.endswith("Client"):
                if id(attr) not in seen:
                    seen.add(id(attr))
                    yield from walk(attr, f"{prefix}{name}.")
            elif inspect.ismethod(attr) and prefix:
                yield f"{prefix}{name}", attr

    yield from walk(client, "")


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # some SDK modules forward-reference names they never import
        return {k: v.annotation for k, v in inspect.signature(func).parameters.items()}


def arguments(
    method: Callable[..., Any], ids: Mapping[str, Any], qualname: str = ""
) -> dict[str, Any]:
    """Keyword arguments for every required parameter of *method* (and an optional ``request``).

    ``ids["contacts.search:query"]`` overrides parameter ``query`` of ``contacts.search`` only;
    ``ids["contact_id"]`` any parameter or field called ``contact_id``.
    """
    hints = _hints(method)
    out: dict[str, Any] = {}
    for name, param in inspect.signature(method).parameters.items():
        if param.kind in {inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL}:
            continue
        special = f"{qualname}:{name}"
        if special in ids:
            out[name] = ids[special]
            continue
        if param.default is not inspect.Parameter.empty and name != "request":
            continue
        out[name] = value_for(hints.get(name, str), name, ids, 0)
    return out


def _is_literal(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Literal:
        return True
    return typing.get_origin(tp) in {typing.Union, types.UnionType} and any(
        _is_literal(a) for a in typing.get_args(tp)
    )


def value_for(tp: Any, name: str, ids: Mapping[str, Any], depth: int) -> Any:
    """A value of type *tp* for a parameter or field called *name*."""
    if name in ids:
        wanted = ids[name]
        if tp is int and str(wanted).isdigit():
            return int(wanted)
        return wanted
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return value_for(args[0], name, ids, depth)
    if origin is typing.Literal:
        return args[0]
    if origin in {typing.Union, types.UnionType}:
        members = [a for a in args if a is not type(None)]
        return value_for(members[0], name, ids, depth)
    if origin in {list, typing.List, typing.Sequence, tuple, set} or (  # noqa: UP006
        origin is not None and isinstance(origin, type) and issubclass(origin, list)
    ):
        return [value_for(args[0] if args else str, name, ids, depth + 1)]
    if origin in {dict, typing.Dict, typing.Mapping} or tp is dict:  # noqa: UP006
        return {}
    if tp is str:
        return str(ids.get("*", "123")) if name.endswith("id") else f"{name} value"
    if tp is bool:
        return True
    if tp is int:
        return 1
    if tp is float:
        return 1.0
    if tp is dt.datetime:
        return dt.datetime(2024, 12, 18, tzinfo=dt.timezone.utc)
    if tp is typing.Any or tp is object:
        return f"{name} value"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        # A plain dict keyed by the wire names: the SDK serialises it like the model.
        values = {}
        for field_name, info in tp.model_fields.items():
            # Discriminators (``type: "user"``) are optional in the models but not on the wire.
            if (info.is_required() or _is_literal(info.annotation)) and depth < 6:
                key = info.alias or field_name
                values[key] = value_for(info.annotation, key, ids, depth + 1)
        return values
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return {
            key: value_for(hints[key], key, ids, depth + 1)
            for key in sorted(getattr(tp, "__required_keys__", hints))
        }
    return f"{name} value"
