"""Derive the vendored response schemas from Intercom's OpenAPI description (not run by the tests).

The fake backend's tests validate every response body against the official 2.16 schemas, but a
user's checkout has no copy of the 36,000-line OpenAPI file, so this script extracts the
responses of every operation into one self-contained JSON Schema document,
``intercom-2.16-responses.json``, next to this file. Regenerate it with::

    python tests/schemas/_extract.py /path/to/intercom-openapi-2.16.yaml

OpenAPI 3.0 schemas are not quite JSON Schema, so they are converted on the way:

* every ``$ref: '#/components/schemas/x'`` becomes ``$ref: '#/$defs/x'``, and only the schemas that
  are reachable from the chosen operations are copied into ``$defs``;
* ``nullable: true`` becomes a ``"null"`` type (or an ``anyOf`` with ``{"type": "null"}`` beside a
  ``$ref`` or a composition, where OpenAPI 3.0 ignores siblings of ``$ref``);
* ``oneOf`` becomes ``anyOf``: Intercom's alternatives are open objects that overlap, so a strict
  "exactly one" would reject valid bodies;
* documentation-only keywords (``description``, ``example``, ``format``, ``x-*``...) are dropped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "intercom-2.16-responses.json"

# Every operation of the description: the fake answers all of them.
METHODS = ("get", "post", "put", "patch", "delete")

_DROP = {
    "description",
    "example",
    "examples",
    "format",
    "default",
    "title",
    "readOnly",
    "deprecated",
}
_REF_PREFIX = "#/components/schemas/"


class _Converter:
    """Turns OpenAPI 3.0 schema objects into JSON Schema 2020-12, collecting referenced names."""

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
        return {"$ref": f"#/$defs/{name}"}

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
            if key in _DROP or key.startswith("x-") or key == "nullable":
                continue
            if key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            elif key in {"items", "not"} or (
                key == "additionalProperties" and isinstance(value, dict)
            ):
                out[key] = self.convert(value)
            elif key in {"allOf", "anyOf", "oneOf"}:
                out["anyOf" if key == "oneOf" else key] = self.convert(value)
            else:
                out[key] = value
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


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the vendored document from a parsed OpenAPI description."""
    converter = _Converter(spec["components"]["schemas"])
    operations: dict[str, dict[str, Any]] = {}
    every = [
        (method.upper(), path, item[method])
        for path, item in spec["paths"].items()
        for method in METHODS
        if method in item
    ]
    for method, path, operation in every:
        responses: dict[str, Any] = {}
        for status, response in operation.get("responses", {}).items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None:
                responses[str(status)] = converter.convert(schema)
        operations[f"{method} {path}"] = responses
    converter.drain()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": (
            "Derived by tests/schemas/_extract.py from Intercom's OpenAPI description "
            f"version {spec['info']['version']} (MIT licence, Intercom, Inc.); see README.md."
        ),
        "operations": operations,
        "$defs": dict(sorted(converter.defs.items())),
    }


def main(argv: list[str]) -> int:
    """Entry point: ``_extract.py OPENAPI_YAML [OUTPUT_JSON]``."""
    if len(argv) not in {2, 3}:
        print(__doc__, file=sys.stderr)
        return 2
    spec = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
    document = extract(spec)
    target = Path(argv[2]) if len(argv) == 3 else OUTPUT
    target.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {target} ({len(document['$defs'])} schemas)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
