"""Vendor the parts of Intercom's OpenAPI description that the fake backend needs (dev time only).

The fake (``intercom_resilience.testing``) derives its route table, its request validation and the
bodies of the operations it keeps no state for from Intercom's 2.16 OpenAPI description. The
36,000-line YAML file is not shipped and PyYAML is not a dependency, so this script converts it
once into a compact JSON document inside the package, ``intercom_resilience/testing/
_openapi-2.16.json``, which the fake reads with :mod:`json`. Run it after a new API version and
review the diff::

    python scripts/vendor_openapi.py path/to/intercom-openapi-2.16.yaml

What is kept, and how it is converted:

* every operation: method, path template, ``operationId``, its query/path/header parameters (name,
  location, whether required, schema), its JSON request body schema and whether the body is
  required, and per response status its content type and JSON schema;
* the component schemas reachable from those, under ``schemas``; a ``$ref`` becomes
  ``{"$ref": "name"}``;
* OpenAPI 3.0 ``nullable`` becomes a ``"null"`` type (or an ``anyOf`` with ``{"type": "null"}``
  beside a ``$ref`` or a composition), ``oneOf`` becomes ``anyOf`` (Intercom's alternatives are
  open objects that overlap), exactly as ``tests/schemas/_extract.py`` converts them for the tests;
* the error codes used by each response's examples, under ``codes`` (so validation answers a
  missing field with ``parameter_not_found`` where the description documents that code);
* ``example`` is kept on scalar schemas only (the fake uses it for realistic generated values),
  with ``format``, ``default``, ``enum`` and the validation keywords; prose (``description``,
  ``title``), object examples and ``x-*`` extensions are dropped.

The description is Copyright (c) 2022 Intercom, Inc., MIT licence
(``tests/schemas/LICENSE-intercom-openapi.md``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml  # a development-time tool: PyYAML is not a dependency of the package

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "intercom_resilience" / "testing" / "_openapi-2.16.json"
METHODS = ("get", "post", "put", "patch", "delete")
_REF_PREFIX = "#/components/schemas/"
_KEEP = {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "allOf",
    "anyOf",
    "oneOf",
    "additionalProperties",
    "maxItems",
    "minItems",
    "maxLength",
    "minLength",
    "minimum",
    "maximum",
    "format",
    "default",
    "example",
    "nullable",
    "$ref",
    "not",
}
_SCALARS = (str, int, float, bool)


class Converter:
    """OpenAPI 3.0 schema objects to the fake's compact JSON-Schema-like form."""

    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components
        self.defs: dict[str, Any] = {}
        self._pending: list[str] = []

    def ref(self, ref: str) -> dict[str, Any]:
        if not ref.startswith(_REF_PREFIX):
            raise ValueError(f"unsupported $ref {ref!r}")
        name = ref[len(_REF_PREFIX) :]
        if name not in self.defs and name not in self._pending:
            self._pending.append(name)
        return {"$ref": name}

    def convert(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        nullable = bool(node.get("nullable"))
        if "$ref" in node:
            converted = self.ref(node["$ref"])
            return {"anyOf": [converted, {"type": "null"}]} if nullable else converted
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in _KEEP or key == "nullable":
                continue
            if key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            elif key in {"items", "not"} or (
                key == "additionalProperties" and isinstance(value, dict)
            ):
                out[key] = self.convert(value)
            elif key in {"allOf", "anyOf", "oneOf"}:
                out["anyOf" if key == "oneOf" else key] = self.convert(value)
            elif key in {"example", "default"}:
                if isinstance(value, _SCALARS):
                    out[key] = value
            else:
                out[key] = value
        if isinstance(out.get("type"), str) and out["type"] != "object":
            out.pop("properties", None)
        if nullable:
            if isinstance(out.get("type"), str) and not any(k in out for k in ("allOf", "anyOf")):
                out["type"] = [out["type"], "null"]
                if "enum" in out:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def drain(self) -> None:
        while self._pending:
            name = self._pending.pop()
            self.defs[name] = None  # reserve first: schemas refer to themselves
            self.defs[name] = self.convert(self.components[name])


def _parameter(spec: dict[str, Any], param: dict[str, Any], conv: Converter) -> dict[str, Any]:
    if "$ref" in param:
        raise ValueError(f"unsupported parameter $ref {param['$ref']!r}")
    out: dict[str, Any] = {"name": param["name"], "in": param["in"]}
    if param.get("required"):
        out["required"] = True
    schema = param.get("schema")
    if schema is not None:
        out["schema"] = conv.convert(schema)
    return out


def _error_codes(content: dict[str, Any]) -> list[str]:
    """The error codes the examples of one response use (``parameter_not_found``...)."""
    codes: list[str] = []
    examples = content.get("application/json", {}).get("examples") or {}
    for example in examples.values():
        value = example.get("value") if isinstance(example, dict) else None
        errors = value.get("errors") if isinstance(value, dict) else None
        for error in errors if isinstance(errors, list) else ():
            code = error.get("code") if isinstance(error, dict) else None
            if isinstance(code, str) and code not in codes:
                codes.append(code)
    return codes


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the vendored document from a parsed OpenAPI description."""
    conv = Converter(spec["components"]["schemas"])
    operations: list[dict[str, Any]] = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            entry: dict[str, Any] = {
                "method": method.upper(),
                "path": path,
                "id": operation.get("operationId") or f"{method.upper()} {path}",
                "tags": operation.get("tags", []),
            }
            params = [
                _parameter(spec, p, conv) for p in [*shared, *operation.get("parameters", [])]
            ]
            if params:
                entry["params"] = params
            body = operation.get("requestBody")
            if body is not None:
                schema = body.get("content", {}).get("application/json", {}).get("schema")
                entry["body"] = {
                    "required": bool(body.get("required")),
                    "schema": conv.convert(schema) if schema is not None else {},
                }
            responses: dict[str, Any] = {}
            for status, response in operation.get("responses", {}).items():
                content = response.get("content") or {}
                answer: dict[str, Any] = {}
                if content:
                    kind = next(iter(content))
                    answer["content_type"] = kind
                    schema = content[kind].get("schema")
                    if schema is not None:
                        answer["schema"] = conv.convert(schema)
                if "headers" in response:
                    answer["headers"] = sorted(response["headers"])
                codes = _error_codes(content)
                if codes:
                    answer["codes"] = codes
                responses[str(status)] = answer
            entry["responses"] = responses
            operations.append(entry)
    conv.drain()
    version_enum = spec["components"]["schemas"]["intercom_version"]["enum"]
    return {
        "$comment": (
            "Generated by scripts/vendor_openapi.py from Intercom's OpenAPI description "
            f"version {spec['info']['version']} (MIT licence, Intercom, Inc.). Do not edit."
        ),
        "version": str(spec["info"]["version"]),
        "versions": [str(v) for v in version_enum],
        "operations": operations,
        "schemas": dict(sorted(conv.defs.items())),
    }


def main(argv: list[str]) -> int:
    """Entry point: ``vendor_openapi.py OPENAPI_YAML [OUTPUT_JSON]``."""
    if len(argv) not in {2, 3}:
        print(__doc__, file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
    document = extract(spec)
    target = Path(argv[2]) if len(argv) == 3 else OUTPUT
    target.write_text(
        json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(
        f"wrote {target}: {len(document['operations'])} operations, "
        f"{len(document['schemas'])} schemas, {target.stat().st_size:,} bytes"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
