"""Intercom's search query language, for ``POST /contacts/search`` and ``/conversations/search``.

A query is either a single filter ``{"field": ..., "operator": ..., "value": ...}`` or a group
``{"operator": "AND" | "OR", "value": [query, ...]}``. Validation follows Intercom's documented
limits (at most 15 filters in a group, groups nested at most two deep, ``IN``/``NIN`` take a list,
``>``/``<`` take a number, the string operators take a string); a query that breaks them is a
400 ``parameter_invalid``, never a crash.

Semantics, where Intercom's documentation is silent, are chosen to be unsurprising: ``=``/``!=``
compare exactly (``null`` matches an unset field), a list-valued field (``tag_id``,
``contact_ids``...) matches ``=`` when it contains the value, and the string operators ``~``,
``!~``, ``^`` and ``$`` ignore case. For contacts, timestamp fields are compared by UTC day, as
Intercom documents ("you can only query for timestamp fields by day").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._responses import ApiFailure

__all__ = ["Predicate", "SearchSpec", "compile_query"]

Predicate = Callable[[Mapping[str, Any]], bool]

_GROUP_OPERATORS = {"AND", "OR"}
_MAX_FILTERS_PER_GROUP = 15
_MAX_GROUP_DEPTH = 2
_DAY = 86_400


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """Which fields a resource can be searched on and how to read them from a record.

    Args:
        fields: searchable field names (dotted for nested ones).
        prefixes: prefixes under which any field is searchable (``"custom_attributes."``).
        day_fields: timestamp fields compared by day.
        lookup: reads a field from a record; returns a scalar, a list, or ``None``.
    """

    fields: frozenset[str]
    prefixes: tuple[str, ...]
    day_fields: frozenset[str]
    lookup: Callable[[Mapping[str, Any], str], Any]

    def allows(self, name: str) -> bool:
        """Whether *name* can be searched on."""
        return name in self.fields or name.startswith(self.prefixes)


def _invalid(message: str, field: str | None = None) -> ApiFailure:
    return ApiFailure(400, "parameter_invalid", message, field)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _scalars(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _equal(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(actual, bool) or isinstance(expected, bool):
        text = {True: "true", False: "false"}
        left = text[actual] if isinstance(actual, bool) else str(actual).lower()
        right = text[expected] if isinstance(expected, bool) else str(expected).lower()
        return left == right
    number_a, number_e = _as_number(actual), _as_number(expected)
    if _is_number(actual) or _is_number(expected):
        return number_a is not None and number_a == number_e
    return str(actual) == str(expected)


def _compile_filter(node: Mapping[str, Any], spec: SearchSpec) -> Predicate:
    name = node.get("field")
    operator = node.get("operator")
    if not isinstance(name, str) or not name:
        raise _invalid("Search filter is missing a 'field'")
    if not spec.allows(name):
        raise _invalid(f"{name} is not a searchable field", name)
    if "value" not in node:
        raise _invalid(f"Search filter on {name} is missing a 'value'", name)
    value = node["value"]
    by_day = name in spec.day_fields

    def read(record: Mapping[str, Any]) -> Any:
        found = spec.lookup(record, name)
        if by_day and _is_number(found):
            return int(found) // _DAY * _DAY
        return found

    if by_day and _is_number(value):
        value = int(value) // _DAY * _DAY

    if operator in {"=", "!="}:
        if isinstance(value, list | dict):
            raise _invalid(f"Operator {operator} takes a single value", name)

        def equals(record: Mapping[str, Any]) -> bool:
            actual = read(record)
            if isinstance(actual, list):
                return any(_equal(item, value) for item in actual)
            return _equal(actual, value)

        if operator == "=":
            return equals
        return lambda record: not equals(record)
    if operator in {"IN", "NIN"}:
        if not isinstance(value, list):
            raise _invalid(f"Operator {operator} needs an array value", name)
        wanted = list(value)

        def within(record: Mapping[str, Any]) -> bool:
            return any(_equal(item, w) for item in _scalars(read(record)) for w in wanted)

        if operator == "IN":
            return within
        return lambda record: not within(record)
    if operator in {">", "<"}:
        bound = _as_number(value)
        if bound is None or isinstance(value, bool):
            raise _invalid(f"Operator {operator} needs a numeric value", name)

        def compare(record: Mapping[str, Any]) -> bool:
            actual = _as_number(read(record))
            if actual is None:
                return False
            return actual > bound if operator == ">" else actual < bound

        return compare
    if operator in {"~", "!~", "^", "$"}:
        if not isinstance(value, str):
            raise _invalid(f"Operator {operator} needs a string value", name)
        needle = value.lower()
        tests: dict[str, Callable[[str], bool]] = {
            "~": lambda text: needle in text,
            "!~": lambda text: needle not in text,
            "^": lambda text: text.startswith(needle),
            "$": lambda text: text.endswith(needle),
        }
        test = tests[operator]

        def text_match(record: Mapping[str, Any]) -> bool:
            actual = read(record)
            if actual is None:
                # An unset field contains nothing, so it "does not contain" anything.
                return bool(operator == "!~")
            return any(test(str(item).lower()) for item in _scalars(actual))

        return text_match
    raise _invalid(f"Operator {operator!r} is not supported", name)


def _compile(node: Any, spec: SearchSpec, depth: int) -> Predicate:
    if not isinstance(node, Mapping):
        raise _invalid("Each search query must be an object")
    operator = node.get("operator")
    if operator in _GROUP_OPERATORS and "field" not in node:
        if depth >= _MAX_GROUP_DEPTH:
            raise _invalid(f"Search queries can nest at most {_MAX_GROUP_DEPTH} levels")
        children = node.get("value")
        if not isinstance(children, list) or not children:
            raise _invalid(f"{operator} needs a non-empty array of queries")
        if len(children) > _MAX_FILTERS_PER_GROUP:
            raise _invalid(f"{operator} accepts at most {_MAX_FILTERS_PER_GROUP} filters")
        parts = [_compile(child, spec, depth + 1) for child in children]
        if operator == "AND":
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)
    return _compile_filter(node, spec)


def compile_query(query: Any, spec: SearchSpec) -> Predicate:
    """Validate *query* and turn it into a predicate over records (raises :class:`ApiFailure`)."""
    return _compile(query, spec, 0)
