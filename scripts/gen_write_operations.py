"""Write the list of Intercom's write operations into ``intercom_resilience/_core/writes.py``.

The write-safety table (``_core/writes.py``) must have one row per write operation of the API.
The operations come from Intercom's OpenAPI description (2.16); this script derives them and
rewrites the generated block of the module (between the ``# BEGIN GENERATED`` and
``# END GENERATED`` markers). Tests never read the description: they check the committed table.

    python scripts/gen_write_operations.py path/to/intercom-openapi-2.16.yaml
    python scripts/gen_write_operations.py path/to/intercom-openapi-2.16.yaml --check

A write is every ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` operation except the read-only
``POST`` searches and lists (``READ_ONLY_POSTS``), which the pipeline treats as reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from intercom_resilience._core.requests import READ_ONLY_POSTS, path_template

MODULE = Path(__file__).resolve().parents[1] / "intercom_resilience" / "_core" / "writes.py"
BEGIN, END = "# BEGIN GENERATED", "# END GENERATED"
_WRITE_METHODS = ("post", "put", "patch", "delete")


def operations(spec_path: Path) -> list[tuple[str, str, str]]:
    """``(method, path template, operationId)`` of every write operation, sorted."""
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    found: dict[tuple[str, str], str] = {}
    for path, item in spec["paths"].items():
        for method in _WRITE_METHODS:
            op = item.get(method)
            if op is None:
                continue
            template = path_template(path)
            if method == "post" and template in READ_ONLY_POSTS:
                continue
            key = (method.upper(), template)
            name = op.get("operationId") or f"{method}_{path}"
            if key in found:
                sys.exit(f"two operations share {key}: {found[key]} and {name}")
            found[key] = name
    return sorted((m, t, n) for (m, t), n in found.items())


def block(ops: list[tuple[str, str, str]]) -> str:
    """The generated block: the ``OPERATIONS`` tuple."""
    lines = [
        BEGIN + " by scripts/gen_write_operations.py from the OpenAPI description 2.16",
        "#: Every write operation of Intercom's API 2.16: (method, path template, operationId).",
        "OPERATIONS: tuple[tuple[str, str, str], ...] = (",
    ]
    for method, template, name in ops:
        line = f'    ("{method}", "{template}", "{name}"),'
        if len(line) > 100:  # as ruff format splits it
            line = f'    (\n        "{method}",\n        "{template}",\n        "{name}",\n    ),'
        lines.append(line)
    lines += [")", END]
    return "\n".join(lines)


def main() -> int:
    """Rewrite (or, with ``--check``, compare) the generated block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = MODULE.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + block(operations(args.spec)) + text[end:]
    if args.check:
        if new != text:
            print(f"{MODULE} is out of date: run {sys.argv[0]} {args.spec}")
            return 1
        return 0
    MODULE.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
