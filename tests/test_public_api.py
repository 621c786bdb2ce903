"""The public API: a curated, sorted, complete ``__all__``; docstrings on every public name."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import intercom_resilience

ROOT = Path(__file__).resolve().parents[1]


def test_all_is_sorted_and_unique() -> None:
    names = intercom_resilience.__all__
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(intercom_resilience).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    public.discard("install_request_id_on_api_error")  # applied at import; not for callers
    assert public == set(intercom_resilience.__all__) - {"__version__"}


def test_exported_names_come_from_private_modules_and_have_docstrings() -> None:
    for name in intercom_resilience.__all__:
        value = getattr(intercom_resilience, name)
        if name == "__version__":
            continue
        module = getattr(value, "__module__", "")
        assert module.startswith("intercom_resilience."), name
        assert all(part.startswith("_") for part in module.split(".")[1:2]), (name, module)
        assert inspect.getdoc(value), f"{name} has no docstring"


def test_readme_holds_the_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command" in readme
    block = readme.split("<!-- test-command", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", block, re.S)
    assert command is not None
    assert "pytest" in command.group(1)
    assert "test_command" in ci and 'bash -c "$test_command"' in ci
    assert "intercom-resilience demo" in readme


def test_configuration_reference_is_current() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render()
    assert (ROOT / "docs" / "configuration.md").read_text() == rendered, (
        "docs/configuration.md is stale: run python scripts/gen_config_docs.py"
    )
    for line in rendered.splitlines():
        if line.startswith("| `"):
            assert not line.rstrip().endswith("|  |"), f"undocumented field: {line}"
