"""The exit-code table of ``docs/cli.md`` is complete and true: each code is produced, no other is.

Three locks: the table lists exactly the members of ``ExitCode``; every code of the table has a
scenario here that produces it (through the real command line, one line on stderr, no
traceback); and the command line's source passes no integer literal to an exit that the table
lacks.
"""

from __future__ import annotations

import ast
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import intercom_resilience._cli_demo
from intercom_resilience._cli_checks import ExitCode
from intercom_resilience.cli import cli

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = ROOT / "docs" / "cli.md"
CLI_SOURCES = [
    ROOT / "intercom_resilience" / name for name in ("cli.py", "_cli_checks.py", "_cli_demo.py")
]
PLANTED = "dG9rOjZhMWIyYzNkLTRlNWYtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OToxOjA="  # intercom-resilience: allow-token


def documented_codes() -> dict[int, str]:
    """The ``| code | meaning |`` table under ``## Exit codes`` in docs/cli.md."""
    text = CLI_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.MULTILINE)
    codes = {int(code): meaning for code, meaning in rows}
    assert len(codes) == len(rows), "a code is in the table twice"
    return codes


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


Scenario = Callable[[pytest.MonkeyPatch, Path, int], list[str]]


def _clean_tree(_mp: pytest.MonkeyPatch, tmp: Path, _port: int) -> list[str]:
    (tmp / "ok.py").write_text("TOKEN = os.environ['INTERCOM_ACCESS_TOKEN']\n")
    return ["preflight", "--offline", "--scan", str(tmp)]


def _planted_token(_mp: pytest.MonkeyPatch, tmp: Path, _port: int) -> list[str]:
    (tmp / "settings.py").write_text(f'INTERCOM_ACCESS_TOKEN = "{PLANTED}"\n')
    return ["preflight", "--offline", "--scan", str(tmp)]


def _no_token(_mp: pytest.MonkeyPatch, _tmp: Path, _port: int) -> list[str]:
    return ["triage"]


def _api_unreachable(_mp: pytest.MonkeyPatch, _tmp: Path, port: int) -> list[str]:
    # A listening socket that never answers HTTP: the API check times out, so it is failing.
    return [
        "triage",
        "--token",
        "x",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--no-status-page",
        "--timeout",
        "0.2",
    ]


def _port_in_use(_mp: pytest.MonkeyPatch, _tmp: Path, port: int) -> list[str]:
    return ["fake", "serve", "--port", str(port)]


def _demo_raising(error: BaseException) -> Scenario:
    def scenario(mp: pytest.MonkeyPatch, _tmp: Path, _port: int) -> list[str]:
        def run_demo(*_args: object) -> None:
            raise error

        mp.setattr(intercom_resilience._cli_demo, "run_demo", run_demo)
        return ["demo", "--json"]

    return scenario


SCENARIOS: dict[int, Scenario] = {
    0: _clean_tree,
    1: _planted_token,
    2: _no_token,
    3: _api_unreachable,
    4: _port_in_use,
    70: _demo_raising(RuntimeError("boom in the demo")),
    130: _demo_raising(KeyboardInterrupt()),
    141: _demo_raising(BrokenPipeError()),
}


def test_the_table_lists_every_exit_code_and_no_other() -> None:
    assert set(documented_codes()) == {int(code) for code in ExitCode}


@pytest.mark.parametrize("code", sorted(documented_codes()))
def test_each_documented_code_is_produced(
    code: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, busy_port: int
) -> None:
    args = SCENARIOS[code](monkeypatch, tmp_path, busy_port)
    result: Result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) or result.exception is None
    assert "Traceback" not in result.output
    if code == 141:  # nobody is left to read a message
        assert result.output == ""
    elif code not in (0, 1, 3):  # findings print a report; failures print one line
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("intercom-resilience: ")


def test_an_internal_error_names_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Bearer dG9rOjEyMzQ1Njc4OTBhYmNkZWY6MTIzNDU2Nzg5MA"  # intercom-resilience: allow-token
    _demo_raising(RuntimeError(f"failed with {secret}"))(monkeypatch, Path(), 0)
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == ExitCode.INTERNAL
    assert "internal error: RuntimeError: failed with" in result.stderr
    assert "INTERCOM_RESILIENCE_TRACEBACK=1" in result.stderr
    assert secret[7:] not in result.output


def test_the_traceback_variable_lets_an_internal_error_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _demo_raising(RuntimeError("boom"))(monkeypatch, Path(), 0)
    monkeypatch.setenv("INTERCOM_RESILIENCE_TRACEBACK", "1")
    result = CliRunner().invoke(cli, ["demo"])
    assert isinstance(result.exception, RuntimeError)


def _exit_arguments(tree: ast.AST) -> Iterator[tuple[int, ast.expr]]:
    """(line, code) of every ``SystemExit(code)``, ``sys.exit(code)``, ``ctx.exit(code)`` and
    ``_fail(message, code)``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("SystemExit", "exit") and node.args:
            yield node.lineno, node.args[0]
        elif name == "_fail":
            if len(node.args) > 1:
                yield node.lineno, node.args[1]
            yield from ((node.lineno, k.value) for k in node.keywords if k.arg == "code")


def test_the_source_exits_with_no_code_the_table_lacks() -> None:
    documented = set(documented_codes())
    members = {member.name for member in ExitCode}
    seen = 0
    for path in CLI_SOURCES:
        for line, argument in _exit_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            seen += 1
            where = f"{path.name}:{line}"
            if isinstance(argument, ast.Constant):
                assert argument.value in documented, f"{where}: exit {argument.value!r}"
            elif isinstance(argument, ast.Attribute) and isinstance(argument.value, ast.Name):
                if argument.value.id == "ExitCode":
                    assert argument.attr in members, where
            else:
                # A computed code must come from ExitCode (triage's worst finding, a result).
                assert isinstance(argument, (ast.Name, ast.IfExp, ast.Attribute)), where
    assert seen >= 10  # the scan found the exits (the source has more than ten)
