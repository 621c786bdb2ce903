"""Requests checked against the description, the way Intercom checks them, before any handler runs.

* A documented query parameter that is present must parse as its type (``per_page=abc`` is a
  ``400 parameter_invalid`` naming ``per_page``) and fit its schema (enums, bounds); a required
  one must be present. Parameters the description does not list are ignored, as Intercom does.
* A header the description requires (``Accept: application/octet-stream`` on the reporting-data
  download) must be present with a documented value.
* A JSON body must parse (``400 parameter_invalid``, "Request body is not valid JSON"; bodies
  nested deeper than :data:`MAX_DEPTH` are refused the same way rather than parsed), be present
  when the description marks it required, and fit the request schema. A wrong type or value
  answers ``400 parameter_invalid``, and so does a missing required field, except where the
  description's examples answer that with ``parameter_not_found`` (articles, help-center
  collections and redirects...), each with a message and ``field`` naming it
  (``from.type``, ``custom_attributes.plan``, ``pagination.per_page``...).

The parsed body is handed to the handler, so a request is parsed once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from ._openapi import Operation, Param, check, resolve
from ._responses import ApiFailure

__all__ = ["MAX_DEPTH", "parse_body", "validate_request"]

#: Deepest JSON nesting accepted (Intercom's deepest request schema nests far less).
MAX_DEPTH = 64

_MISSING = object()
_PLACEHOLDER: dict[str, Any] = {}
# Fields whose handler validates them itself, with Intercom's more precise messages: the search
# language (operators, nesting limits) is checked by ``_search.compile_query``.
_OWN_CHECKS: dict[str, frozenset[str]] = {
    "POST /contacts/search": frozenset({"query"}),
    "POST /conversations/search": frozenset({"query"}),
    "POST /tickets/search": frozenset({"query"}),
}


def _invalid(message: str, field: str | None = None) -> ApiFailure:
    return ApiFailure(400, "parameter_invalid", message, field)


def _missing_for(operation: Operation) -> Callable[[str, str | None], ApiFailure]:
    # Where the description documents ``parameter_not_found`` for an absent parameter (e.g.
    # "from_url is required" on POST /help_center/help_centers/{id}/redirects), use it; elsewhere
    # Intercom answers ``parameter_invalid``.
    documented = operation.responses.get("400", {}).get("codes", ())
    code = "parameter_not_found" if "parameter_not_found" in documented else "parameter_invalid"

    def failure(message: str, field: str | None = None) -> ApiFailure:
        return ApiFailure(400, code, message, field)

    return failure


def _too_deep(body: bytes) -> bool:
    # A linear scan, so hostile nesting is refused before the recursive parser sees it.
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in {0x5B, 0x7B}:  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in {0x5D, 0x7D}:  # ] }
            depth -= 1
    return False


def parse_body(body: bytes) -> Any:
    """The JSON of *body* (``_MISSING`` when empty); a 400 ``ApiFailure`` when malformed."""
    if not body.strip():
        return _MISSING
    if _too_deep(body):
        raise _invalid(f"Request body is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _invalid("Request body is not valid JSON") from None


def _coerce(param: Param, values: list[str]) -> Any:
    schema = resolve(param.schema)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    raw = values[0]
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise _invalid(f"{param.name} must be an integer", param.name) from None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise _invalid(f"{param.name} must be a number", param.name) from None
    if kind == "boolean":
        lowered = raw.lower()
        if lowered not in {"true", "false"}:
            raise _invalid(f"{param.name} must be true or false", param.name)
        return lowered == "true"
    if kind == "array":
        items = [v for value in values for v in value.split(",") if v != ""]
        item_schema = resolve(schema.get("items", {}))
        if item_schema.get("type") == "integer":
            try:
                return [int(v) for v in items]
            except ValueError:
                raise _invalid(f"{param.name} must be a list of integers", param.name) from None
        return items
    return raw


def validate_request(
    operation: Operation,
    query_string: str,
    header: Callable[[str], str | None],
    body: bytes,
) -> Any:
    """Check one request against *operation*; returns the parsed JSON body (or ``None``).

    Raises :class:`ApiFailure` (400 ``parameter_invalid`` naming the field) on the first problem.
    """
    query: dict[str, list[str]] | None = None
    _missing = _missing_for(operation)
    for param in operation.params:
        if param.location == "query":
            if resolve(param.schema).get("type") == "object":
                # An exploded object (``filter`` of GET /events): its properties arrive as
                # top-level query parameters, which the handler reads.
                continue
            if query is None:
                query = parse_qs(query_string, keep_blank_values=True) if query_string else {}
            values = query.get(param.name)
            if not values or values == [""]:
                if param.required:
                    raise _missing(f"{param.name} is required", param.name)
                continue
            value = _coerce(param, values)
            if value is _MISSING:
                continue
            problem = check(param.schema, value, param.name)
            if problem is not None:
                raise _invalid(problem.message, param.name)
        elif param.location == "header" and param.required:
            value = header(param.name)
            if value is None:
                raise _missing(f"The {param.name} header is required", param.name)
            if check(param.schema, value) is not None:
                allowed = ", ".join(str(v) for v in resolve(param.schema).get("enum", ()))
                raise _invalid(f"The {param.name} header must be {allowed}", param.name)
    if operation.body_schema is None:
        return None
    parsed = parse_body(body)
    if parsed is _MISSING:
        if operation.body_required and _needs_fields(operation.body_schema):
            raise _missing("Request body is required", None)
        return None
    own = _OWN_CHECKS.get(operation.key)
    checked = (
        {k: (_PLACEHOLDER if k in own else v) for k, v in parsed.items()}
        if own and isinstance(parsed, dict)
        else parsed
    )
    problem = check(operation.body_schema, checked)
    if problem is not None:
        raise (_missing if problem.missing else _invalid)(problem.message, problem.field)
    return parsed


def _needs_fields(schema: Any) -> bool:
    # "required: true" on a body whose schema requires nothing is satisfied by no body at all.
    resolved = resolve(schema)
    return bool(resolved.get("required")) or "anyOf" in resolved or "allOf" in resolved
