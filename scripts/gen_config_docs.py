"""Write docs/configuration.md from ResilienceConfig (fields, defaults, variables, meanings).

Run ``python scripts/gen_config_docs.py`` after changing a policy; a test fails while the
committed page differs from what this prints.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

from intercom_resilience import ResilienceConfig

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

INTRO = """# Configuration reference

Every policy lives in one frozen, validated `ResilienceConfig`. Build it in code, or let the client
read it from the environment: with no `config=` argument, `ResilientIntercom` uses
`ResilienceConfig.from_env()`, the defaults below overridden by `INTERCOM_RESILIENCE_*` variables.
An invalid value, or an unknown `INTERCOM_RESILIENCE_*` variable, fails at construction with a
message that names the field.

<!-- snippet: run -->
```python
from intercom_resilience import DeadlinePolicy, ResilienceConfig, RetryPolicy, RateLimitPolicy

config = ResilienceConfig(
    retry=RetryPolicy(max_attempts=5),
    deadlines=DeadlinePolicy(interactive=5.0),
    rate_limit=RateLimitPolicy(app_per_minute=1_000, backend="redis"),
    redis_url="redis://cache:6379/0",
)
```

This page is generated from the code by `scripts/gen_config_docs.py`.
"""


def _attribute_docs(cls: type) -> dict[str, str]:
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""
    found: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = match.group(2).strip()
        elif current and line.startswith("        "):
            found[current] += " " + line.strip()
        elif line.strip() == "":
            continue
        else:
            break
    return found


def _default(field: dataclasses.Field) -> str:  # type: ignore[type-arg]
    if field.default is not dataclasses.MISSING:
        value = field.default
        if isinstance(value, int) and not isinstance(value, bool) and value >= 10_000:
            return f"`{value:_}`"
        return f"`{value!r}`"
    return "(policy object)"


def render() -> str:
    out = [INTRO]
    prefix = ResilienceConfig.ENV_PREFIX
    out.append("## Top level: `ResilienceConfig`\n")
    out.append("| field | default | variable | meaning |\n|---|---|---|---|")
    docs = _attribute_docs(ResilienceConfig)
    for field in dataclasses.fields(ResilienceConfig):
        if field.name in ResilienceConfig.SECTIONS:
            continue
        out.append(
            f"| `{field.name}` | {_default(field)} | `{prefix}{field.name.upper()}` | "
            f"{docs.get(field.name, '')} |"
        )
    for section in ResilienceConfig.SECTIONS:
        policy = type(getattr(ResilienceConfig(), section))
        summary = (inspect.getdoc(policy) or "").split("\n\n")[0].replace("\n", " ")
        out.append(f"\n## `{section}`: `{policy.__name__}`\n\n{summary}\n")
        out.append("| field | default | variable | meaning |\n|---|---|---|---|")
        docs = _attribute_docs(policy)
        for field in dataclasses.fields(policy):
            variable = f"{prefix}{section.upper()}_{field.name.upper()}"
            meaning = docs.get(field.name, "")
            out.append(f"| `{field.name}` | {_default(field)} | `{variable}` | {meaning} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    sys.stdout.write(f"wrote {PAGE}\n")
