"""The vendored 2.16 response schemas (``tests/schemas``), as validators for the fake's tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "intercom-2.16-responses.json"


@cache
def _document() -> dict[str, Any]:
    return json.loads(SCHEMAS.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def validator(operation: str, status: str) -> Draft202012Validator:
    """The validator for one response of one operation (``"GET /me"``, ``"200"``)."""
    document = _document()
    schemas = document["operations"][operation]
    schema = schemas.get(status)
    if schema is None and int(status) >= 400:
        schema = {"$ref": "#/$defs/error"}
    if schema is None:
        raise KeyError(f"no schema for {operation} {status}")
    return Draft202012Validator({"$defs": document["$defs"], **schema})


def validate_body(method: str, template: str, status: int, body: Any) -> None:
    """Validate *body* against the 2.16 schema of ``method template`` answering *status*."""
    validator(f"{method} {template}", str(status)).validate(body)
