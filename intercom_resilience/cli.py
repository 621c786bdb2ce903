"""The ``intercom-resilience`` command line: demo, triage, preflight, postmortem, fake serve,
outbox, cache warm, fleet status.

Needs the ``cli`` extra (click and rich): ``pip install 'intercom-resilience[cli]'``. Only the
console script (and ``python -m intercom_resilience.cli``) imports this module, so without click it
says which extra to install and exits with status 2 instead of failing with a traceback.

Every failure is one line on stderr (``intercom-resilience: ...``; with ``--json``, a JSON document
with an ``error`` on stdout too) and one of the exit codes of :class:`~._cli_checks.ExitCode`,
the table in ``docs/cli.md``: 0 success, 1 a warning (``triage``) or a failed check
(``preflight``), 2 a usage or configuration error, 3 something failing (``triage``), 4 ``fake
serve`` cannot listen, 70 an internal error, 130 interrupted, 141 stdout closed early. Set
``INTERCOM_RESILIENCE_TRACEBACK=1`` to see the traceback of an internal error.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import httpx

try:
    import click
except ImportError:  # pragma: no cover - exercised only without the extra
    sys.stderr.write(
        "intercom-resilience: the command line needs click and rich: "
        "pip install 'intercom-resilience[cli]'\n"
    )
    raise SystemExit(2) from None

from ._cli_checks import (
    DEFAULT_BASE_URL,
    TOKEN_VARIABLES,
    Check,
    ExitCode,
    Level,
    check_api,
    check_health_endpoint,
    check_rate_limit,
    check_status_page,
    check_token_scan,
    check_webhook,
    exit_code,
    resolve_token,
)
from ._config import ResilienceConfig
from ._incidents import Incident, format_utc, render_postmortem, render_status_update, scrub

if TYPE_CHECKING:
    from ._fleet_incidents import FleetIncident

#: The fleet's keys' default prefix (``FleetPolicy.key_prefix``).
DEFAULT_FLEET_PREFIX = "intercom-resilience"

__all__ = ["cli", "main"]

_DEFAULT_STATUS_URL = ResilienceConfig().status_page_url
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_PROG = "intercom-resilience"
#: Set to 1 to let an internal error end in its traceback instead of one line.
TRACEBACK_VARIABLE = "INTERCOM_RESILIENCE_TRACEBACK"


def _fail(message: str, code: ExitCode = ExitCode.USAGE, *, as_json: bool = False) -> NoReturn:
    """Exit with *code* after one line on stderr (and, for ``--json``, a JSON error on stdout).

    A script reading ``--json`` output must always get a document, failure included, so it never
    has to tell "no output" from "empty output".
    """
    if as_json:
        click.echo(json.dumps({"error": message, "exit_code": int(code)}, indent=2))
    click.echo(f"{_PROG}: {message}", err=True)
    raise SystemExit(code)


class _Group(click.Group):
    """The top-level group: every failure becomes one line and a code of :class:`ExitCode`.

    Click's own handling prints a usage block for a bad option, "Aborted!" with status 1 (our
    "warning") for Ctrl-C, and lets any other exception end in a traceback with status 1 too.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exits with a code of :class:`ExitCode`."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Abort:  # click's name for KeyboardInterrupt and EOF at a prompt
            click.echo(f"\n{_PROG}: interrupted", err=True)
            raise SystemExit(ExitCode.INTERRUPTED) from None
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else _PROG
            hint = f" (see '{where} --help')"
            click.echo(f"{_PROG}: {error.format_message()}{hint}", err=True)
            raise SystemExit(ExitCode.USAGE) from None
        except click.ClickException as error:
            click.echo(f"{_PROG}: {error.format_message()}", err=True)
            raise SystemExit(ExitCode.USAGE) from None
        except Exception as error:
            if os.environ.get(TRACEBACK_VARIABLE) == "1":
                raise
            text = scrub(f"{type(error).__name__}: {error}".replace("\n", " "))
            click.echo(
                f"{_PROG}: internal error: {text} (a bug: please report it; "
                f"{TRACEBACK_VARIABLE}=1 shows the traceback)",
                err=True,
            )
            raise SystemExit(ExitCode.INTERNAL) from None
        # Click returns the code of a ``ctx.exit(n)`` (``--help``, ``--version``) without exiting.
        raise SystemExit(result if isinstance(result, int) else ExitCode.OK)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; a reader that went away (``| head``) ends it quietly."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Click would exit 1 (our "warning"); shell tools end with 128 + SIGPIPE. Point stdout
            # at /dev/null so the interpreter's last flush cannot complain about the pipe again.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):  # not a real file (tests): nothing left to flush
                pass
            raise SystemExit(ExitCode.BROKEN_PIPE) from None


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rich_console(stream: TextIO) -> Any | None:
    """A rich console on *stream* when it is a terminal and rich is installed, else ``None``."""
    if not _is_tty(stream):
        return None
    try:
        from rich.console import Console
    except ImportError:  # rich missing: plain text is fine
        return None
    return Console(file=stream)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout: rich on a terminal, aligned plain text otherwise (stable for pipes)."""
    console = _rich_console(sys.stdout)
    if console is not None:
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    click.echo(title)
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    click.echo("  ".join("-" * w for w in widths))
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@click.group(cls=_Group, context_settings=_CONTEXT)
@click.version_option(package_name="intercom-resilience", prog_name="intercom-resilience")
def cli() -> None:
    """Resilience tooling for the Intercom API.

    \b
    Examples:
      intercom-resilience demo                      # a day of incidents, offline, no token
      intercom-resilience triage                    # is Intercom (or our integration) down?
      intercom-resilience preflight --scan src/     # the production checklist
      intercom-resilience postmortem incident.json  # render a recorded incident
      intercom-resilience cache warm --contacts @ids.txt  # fill the fleet's stale cache
      intercom-resilience fake serve --port 8000    # a fake Intercom on localhost
    """


# ------------------------------------------------------------------------------------- demo


class _PlainProgress:
    """Progress as one line per phase (pipes, CI logs)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._index = 0
        self._title = ""

    def start_phase(self, index: int, title: str, total: int) -> None:
        self._index, self._title = index, title

    def advance(self, description: str) -> None:
        return None

    def end_phase(self, row: Any) -> None:
        alerts = ", ".join(sorted(set(row.alerts))) or "none"
        self._stream.write(
            f"[{self._index}/5] {self._title}: {row.calls} calls, worst {row.status}, "
            f"stale {row.stale_served}, 429s {row.rate_limited}, alerts: {alerts}\n"
        )
        self._stream.flush()


class _RichProgress:
    """A live rich progress bar per phase, with the latest call and health underneath."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]{task.fields[phase]:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        self._task: Any = None

    def __enter__(self) -> _RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def start_phase(self, index: int, title: str, total: int) -> None:
        self._task = self._progress.add_task("", total=total, phase=f"{index}/5 {title}")

    def advance(self, description: str) -> None:
        self._progress.update(self._task, advance=1, description=description[:70])

    def end_phase(self, row: Any) -> None:
        done = f"done: worst {row.status}, stale {row.stale_served}, 429s {row.rate_limited}"
        self._progress.update(self._task, description=done)


def _breaker_path(states: list[str]) -> str:
    """``closed, open, half_open, open, …, closed`` → ``closed→open→half_open→closed (27)``."""
    ordered: list[str] = []
    for state in states:
        if state not in ordered:
            ordered.append(state)
    if len(states) > 1 and states[-1] != ordered[-1]:
        ordered.append(states[-1])
    text = "→".join(ordered)
    return f"{text} ({len(states) - 1} transitions)" if len(states) > len(ordered) else text


def _alert_list(alerts: list[str]) -> str:
    counted: dict[str, int] = {}
    for alert in alerts:
        counted[alert] = counted.get(alert, 0) + 1
    return ", ".join(f"{a} ×{n}" if n > 1 else a for a, n in counted.items()) or "-"


_COUNT_LINES = (
    ("calls", "calls made by the integration"),
    ("attempts", "attempts sent to Intercom"),
    ("retries", "retries (jittered backoff, under the retry budget)"),
    ("rate_limited_received", "429s received from Intercom"),
    ("storm_429s_without_library", "429s the raw SDK got in the same storm"),
    ("storm_429s_prevented", "429s prevented by the limiter"),
    ("stale_served", "reads served from the stale cache"),
    ("fail_fast", "calls failed fast or served stale by the open breaker"),
    ("outcome_unknown", "writes of unknown outcome (never re-sent)"),
    ("token_rotations", "token rotations after a 401"),
    ("writes_issued", "writes issued by the application"),
    ("writes_committed", "writes committed by Intercom (fake journal)"),
    ("duplicate_writes", "duplicate writes (fake journal)"),
    ("outage_reads_answered_cold", "of 50 reads in a later outage answered, cache not warmed"),
    ("outage_reads_answered_warmed", "of 50 reads answered after client.warm_cache()"),
)


def _check_writable(path: Path, *, as_json: bool) -> None:
    """Fail now (exit 2) unless *path* can be written; leaves no file behind."""
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror or error}", as_json=as_json)
    if not existed:
        path.unlink(missing_ok=True)


@cli.command(context_settings=_CONTEXT)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for reproducibility.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
@click.option(
    "--save-incident",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the main incident (most severe) as JSON, for `postmortem` (checked first).",
)
def demo(seed: int, as_json: bool, save_incident: Path | None) -> None:
    """A day in the life of an integration, against the bundled fake Intercom.

    Offline and without a token: the fake runs in process on a virtual clock shared with a
    ResilientIntercom, so hours of traffic take seconds. Five phases: normal traffic, a 429
    storm absorbed by the rate limiter, an outage served from the stale cache with the breaker
    open, a token revocation fixed by rotation, and recovery. Ends with the health timeline,
    what the library did, and the postmortem of each incident.

    \b
    Examples:
      intercom-resilience demo
      intercom-resilience demo --seed 7 --json | jq .counts
      intercom-resilience demo --save-incident incident.json
      intercom-resilience postmortem incident.json
    """
    from ._cli_demo import run_demo

    if save_incident is not None:
        # Before the demo runs, not after: a typo in the path must not cost the whole demo.
        _check_writable(save_incident, as_json=as_json)
    started = time.perf_counter()
    if as_json:
        result = run_demo(seed)
    else:
        click.echo(f"A day in the life of an Intercom integration (seed {seed}, fake Intercom)\n")
        console = _rich_console(sys.stdout)
        if console is not None:
            with _RichProgress(console) as progress:
                result = run_demo(seed, progress)
        else:
            result = run_demo(seed, _PlainProgress(sys.stdout))
    if save_incident is not None and result.main_incident is not None:
        try:
            save_incident.write_text(result.main_incident.to_json() + "\n", encoding="utf-8")
        except OSError as error:  # the path was writable a moment ago
            _fail(f"cannot write {save_incident}: {error.strerror or error}", as_json=as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=False))
        return
    click.echo("")
    rows = [
        [
            row.title,
            row.status,
            _breaker_path(row.breaker),
            _alert_list(row.alerts),
            str(row.stale_served),
            str(row.rate_limited),
            "-" if row.p95_ms is None else f"{row.p95_ms:.0f} ms",
        ]
        for row in result.phases
    ]
    _table(
        "Health timeline (worst status in each phase)",
        ["phase", "status", "breaker", "alerts", "stale served", "429s", "p95"],
        rows,
    )
    click.echo("")
    counts = result.counts
    _table(
        "What the library did",
        ["count", "what"],
        [[str(counts[key]), text] for key, text in _COUNT_LINES],
    )
    click.echo("")
    health = result.health
    click.echo(
        f"End of day: {health.status}, breaker {health.breaker}, "
        f"{len(result.incidents)} incident(s), all closed: "
        f"{all(not i.is_open for i in result.incidents)}"
    )
    if save_incident is not None:
        saved = result.main_incident.id if result.main_incident else "none (no incident)"
        click.echo(f"Saved incident {saved} to {save_incident}")
    for text in result.postmortems():
        click.echo("\n" + "=" * 100 + "\n")
        click.echo(text)
    click.echo(f"(simulated a day in {time.perf_counter() - started:.1f} s)", err=True)


# ------------------------------------------------------------------------------------- triage


def _print_checks(title: str, checks: list[Check]) -> None:
    _table(title, ["check", "result", "detail"], [[c.name, c.label, c.summary] for c in checks])


def _require_token(token: str | None, *, as_json: bool) -> tuple[str, str]:
    value, source = resolve_token(token)
    if value is None or source is None:
        _fail(
            f"no Intercom token: pass --token or set {' or '.join(TOKEN_VARIABLES)}",
            as_json=as_json,
        )
    return value, source


def _status_check(status_url: str, skip: bool, timeout: float) -> Check:
    if skip:
        return Check("status_page", Level.SKIPPED, "--no-status-page given", failing=False)
    return check_status_page(status_url, timeout)


def _http_url(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A click callback: *value* must be an ``http(s)://host`` URL (a usage error otherwise)."""
    if value is None:
        return None
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as error:
        raise click.BadParameter(f"{value!r} is not a URL ({error})", param=param) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise click.BadParameter(f"{value!r} is not an http(s):// URL", param=param)
    return value


_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds per check.",
)
_BASE_URL = click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    callback=_http_url,
    show_default=True,
    help="Intercom API base URL (EU: https://api.eu.intercom.io; the fake: http://127.0.0.1:N).",
)
_STATUS_URL = click.option(
    "--status-url",
    default=_DEFAULT_STATUS_URL,
    callback=_http_url,
    show_default=True,
    help="Intercom's Statuspage host (`fake serve` has one too: its own URL).",
)
_NO_STATUS_PAGE = click.option(
    "--no-status-page",
    is_flag=True,
    help="Skip the status page check (offline, or no route to Intercom's Statuspage).",
)
_TOKEN = click.option(
    "--token",
    help=f"Access token (default: ${TOKEN_VARIABLES[0]}, then ${TOKEN_VARIABLES[1]}). "
    "Never printed.",
)


@cli.command(context_settings=_CONTEXT)
@_TOKEN
@_BASE_URL
@_STATUS_URL
@_NO_STATUS_PAGE
@click.option(
    "--health-url",
    callback=_http_url,
    help="Our own health endpoint (intercom_resilience.asgi).",
)
@_TIMEOUT
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def triage(
    token: str | None,
    base_url: str,
    status_url: str,
    no_status_page: bool,
    health_url: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """The runbook's quick triage: is Intercom down, or is it us?

    Checks, each with its own timeout: GET /me (HTTP status, request id), Intercom's status page
    (indicator and unresolved incidents), rate-limit headroom (from /me's headers), and our own
    health endpoint if --health-url is given. A check that cannot connect says UNREACHABLE.

    \b
    Exit codes (the worst finding):
      0  all checks fine
      1  warning: degraded, rate limited, status page minor, status page unreachable
      2  configuration error: no token, a bad option
      3  failing: API unreachable or rejecting the token, Intercom major outage,
         our health endpoint down or unhealthy

    \b
    Examples:
      INTERCOM_ACCESS_TOKEN=... intercom-resilience triage
      intercom-resilience triage --health-url https://app.example.com/health/intercom
      # against `fake serve --port 8000`, offline (the fake serves a status page too):
      intercom-resilience triage --token fake-token \\
          --base-url http://127.0.0.1:8000 --status-url http://127.0.0.1:8000
    """
    secret, source = _require_token(token, as_json=as_json)
    probe = check_api(base_url, secret, timeout)
    checks = [
        probe.check,
        _status_check(status_url, no_status_page, timeout),
        check_rate_limit(probe.headers),
        check_health_endpoint(health_url, timeout),
    ]
    code = exit_code(checks)
    if as_json:
        report = {
            "base_url": base_url,
            "token_source": source,
            "checks": [c.to_dict() for c in checks],
            "exit_code": int(code),
        }
        click.echo(json.dumps(report, indent=2))
    else:
        _print_checks(f"Intercom triage ({base_url}, token from {source})", checks)
        worst = {ExitCode.OK: "all fine", ExitCode.FINDING: "WARNING"}.get(code, "FAILING")
        failing = [c.name for c in checks if c.severity == code and code]
        named = f": {', '.join(failing)}" if failing else ""
        click.echo(f"\nResult: {worst}{named} (exit {int(code)})")
    raise SystemExit(code)


# ------------------------------------------------------------------------------------- preflight


@cli.command(context_settings=_CONTEXT)
@_TOKEN
@_BASE_URL
@_STATUS_URL
@_NO_STATUS_PAGE
@click.option(
    "--webhook-url",
    callback=_http_url,
    help="Our webhook endpoint; a ping must answer below 500.",
)
@click.option("--webhook-secret", help="Sign the ping with the app's client secret.")
@click.option(
    "--scan",
    "scan_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Source tree (or file) to scan for hard-coded tokens; repeatable.",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="GLOB",
    help="Skip matching paths in the scan (a name at any depth, or a path from the --scan "
    "root when it has a /); repeatable. .git, .venv, node_modules and caches are always skipped.",
)
@click.option("--offline", is_flag=True, help="Only the token scan: no token needed, no network.")
@_TIMEOUT
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def preflight(
    token: str | None,
    base_url: str,
    status_url: str,
    no_status_page: bool,
    webhook_url: str | None,
    webhook_secret: str | None,
    scan_paths: tuple[Path, ...],
    excludes: tuple[str, ...],
    offline: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """The production checklist, before going live. Exit 1 on any failure.

    \b
    Checks:
      auth         PASS when GET /me answers 200
      rate_limit   headroom: X-RateLimit-Remaining against X-RateLimit-Limit
      status_page  Intercom's indicator (major/critical fails)
      webhook      --webhook-url answers a ping below 500
      token_scan   --scan PATH has no hard-coded Intercom tokens (shown masked); a line
                   with the comment `intercom-resilience: allow-token` is a known test value

    \b
    Exit codes: 0 pass (warnings allowed), 1 a check failed, 2 configuration error
    (no token, or nothing to check: --offline without --scan).

    \b
    Examples:
      intercom-resilience preflight --scan src/ --webhook-url https://app.example.com/hooks/intercom
      intercom-resilience preflight --offline --scan .        # in CI, no token needed
      intercom-resilience preflight --offline --scan . --exclude 'tests/fixtures'
    """
    checks: list[Check] = []
    if not offline:
        secret, _source = _require_token(token, as_json=as_json)
        probe = check_api(base_url, secret, timeout)
        auth = probe.check
        if auth.level is not Level.OK:
            auth = Check(auth.name, Level.FAIL, auth.summary, auth.data)
        checks += [
            Check("auth", auth.level, auth.summary, auth.data),
            check_rate_limit(probe.headers),
            _status_check(status_url, no_status_page, timeout),
            check_webhook(webhook_url, timeout, webhook_secret),
        ]
    elif not scan_paths:
        # Saying "passed" here would let a CI step that lost its --scan argument pass forever.
        _fail("preflight --offline has nothing to check: pass --scan PATH", as_json=as_json)
    checks.append(check_token_scan(list(scan_paths), excludes))
    failed = [c.name for c in checks if c.level in (Level.FAIL, Level.UNREACHABLE) and c.failing]
    code = ExitCode.FINDING if failed else ExitCode.OK
    if as_json:
        click.echo(
            json.dumps({"checks": [c.to_dict() for c in checks], "exit_code": int(code)}, indent=2)
        )
    else:
        rows = [[c.name, "PASS" if c.level is Level.OK else c.label, c.summary] for c in checks]
        _table("Intercom pre-flight", ["check", "result", "detail"], rows)
        findings = [f for c in checks for f in c.data.get("findings", ())]
        if findings:
            click.echo("\nHard-coded credentials (values masked):")
            for finding in findings:
                click.echo(
                    f"  {finding['path']}:{finding['line']}: {finding['kind']} {finding['masked']}"
                )
        verdict = f"FAILED: {', '.join(failed)}" if failed else "passed"
        click.echo(f"\nPre-flight {verdict} (exit {int(code)})")
    raise SystemExit(code)


# ------------------------------------------------------------------------------------- postmortem


@cli.command(context_settings=_CONTEXT)
@click.argument("incident_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--status-update", is_flag=True, help="A short chat status update instead.")
@click.option(
    "--status",
    type=click.Choice(["investigating", "monitoring", "resolved"]),
    help="Status of the update (default: resolved if the incident closed).",
)
@click.option("--title", help="Postmortem title (default: from the worst alert).")
@click.option("--now", type=float, help="Unix time of the status update (default: now).")
def postmortem(
    incident_file: Path,
    status_update: bool,
    status: str | None,
    title: str | None,
    now: float | None,
) -> None:
    """Render a recorded incident (Incident.to_json()) as a Markdown postmortem.

    \b
    Examples:
      intercom-resilience demo --save-incident incident.json
      intercom-resilience postmortem incident.json > postmortem.md
      intercom-resilience postmortem incident.json --status-update --status monitoring
    """
    try:
        incident = Incident.from_json(incident_file.read_text(encoding="utf-8"))
    except OSError as error:
        _fail(f"cannot read {incident_file}: {error.strerror or error}")
    except ValueError as error:
        _fail(f"{incident_file} is not an incident file: {error}")
    if status_update:
        click.echo(
            render_status_update(
                incident,
                now=time.time() if now is None else now,
                status=status,  # type: ignore[arg-type]  # click.Choice guarantees the literal
            )
        )
    else:
        click.echo(render_postmortem(incident, title=title))


# ------------------------------------------------------------------------------------- fake


# ------------------------------------------------------------------------------------- cache


@cli.group(context_settings=_CONTEXT)
def cache() -> None:
    """The stale cache: warm it before an outage needs it."""


def _id_list(values: Sequence[str], option: str, *, as_json: bool) -> list[str]:
    """``--contacts 1,2 --contacts @ids.txt`` → ``["1", "2", ...]`` (one id per line in a file)."""
    ids: list[str] = []
    for value in values:
        if value.startswith("@"):
            try:
                text = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as error:
                _fail(
                    f"{option}: cannot read {value[1:]}: {error.strerror or error}", as_json=as_json
                )
            ids += [line.strip() for line in text.splitlines() if line.strip()]
        else:
            ids += [part.strip() for part in value.split(",") if part.strip()]
    return ids


class _WarmProgress:
    """Progress of ``cache warm``: a rich bar on a terminal, a line every 100 reads otherwise."""

    def __init__(self, *, quiet: bool) -> None:
        self._console = None if quiet else _rich_console(sys.stderr)
        self._quiet = quiet
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _WarmProgress:
        if self._console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]warming"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=self._console,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, progress: Any) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task,
                completed=progress.done,
                total=progress.total,
                description=f"{progress.kind} {progress.item_id}"[:60],
            )
        elif not self._quiet and (progress.done % 100 == 0 or progress.done == progress.total):
            total = "?" if progress.total is None else progress.total
            click.echo(f"warmed {progress.done}/{total}", err=True)


@cache.command(context_settings=_CONTEXT)
@_TOKEN
@_BASE_URL
@click.option(
    "--redis-url",
    envvar="INTERCOM_RESILIENCE_REDIS_URL",
    help="The fleet's shared Redis cache (default: $INTERCOM_RESILIENCE_REDIS_URL).",
)
@click.option(
    "--contacts", multiple=True, help="Contact ids: comma-separated, or @FILE (one a line)."
)
@click.option("--contact-search", help="A contact search query as JSON; every match is read.")
@click.option("--companies", multiple=True, help="Company ids (comma-separated, or @FILE).")
@click.option(
    "--conversations", multiple=True, help="Conversation ids (comma-separated, or @FILE)."
)
@click.option("--tickets", multiple=True, help="Ticket ids (comma-separated, or @FILE).")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".intercom-resilience-warm.json"),
    show_default=True,
    help="Remembers what was read: run the same command again to resume.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def warm(
    token: str | None,
    base_url: str,
    redis_url: str | None,
    contacts: tuple[str, ...],
    contact_search: str | None,
    companies: tuple[str, ...],
    conversations: tuple[str, ...],
    tickets: tuple[str, ...],
    checkpoint: Path,
    as_json: bool,
) -> None:
    """Read chosen resources into the fleet's shared stale cache, before an outage needs them.

    Every read goes through the resilience pipeline on the background lane, so warming only
    uses quota that interactive traffic leaves. The cache must be the fleet's Redis cache (a
    memory cache would end with this command). Interrupted (Ctrl-C, an outage), it keeps a
    checkpoint: the same command again resumes where it stopped.

    \b
    Exit codes:
      0  every read done
      1  done, but some ids were not found (404)
      2  configuration error: no token, no Redis, bad ids, bad query, another plan's checkpoint
      3  stopped early: Intercom unreachable or rejecting the token (checkpoint kept)
      130  interrupted (checkpoint kept)

    \b
    Examples:
      intercom-resilience cache warm --redis-url redis://cache:6379/0 --contacts @vip-ids.txt
      intercom-resilience cache warm --contact-search \\
          '{"field": "custom_attributes.plan", "operator": "=", "value": "enterprise"}'
      intercom-resilience cache warm --companies 5f1a,5f1b --tickets 101,102 --json
    """
    secret, _ = _require_token(token, as_json=as_json)
    if not redis_url:
        _fail(
            "cache warm needs the fleet's shared Redis cache (a memory cache ends with this "
            "command): pass --redis-url or set INTERCOM_RESILIENCE_REDIS_URL",
            as_json=as_json,
        )
    query: Any = None
    if contact_search is not None:
        try:
            query = json.loads(contact_search)
        except ValueError as error:
            _fail(f"--contact-search is not JSON: {error}", as_json=as_json)
    from ._client import ResilientIntercom
    from ._redaction import redact_url

    try:
        base = ResilienceConfig.from_env()
        config = base.replace(redis_url=redis_url, cache=base.cache.replace(backend="redis"))
        client = ResilientIntercom(token=secret, base_url=base_url, config=config)
    except (ValueError, ImportError) as error:
        _fail(scrub(str(error)), as_json=as_json)
    with client, _WarmProgress(quiet=as_json) as progress:
        try:
            report = client.warm_cache(
                contacts=_id_list(contacts, "--contacts", as_json=as_json) or None,
                contact_search=query,
                companies=_id_list(companies, "--companies", as_json=as_json) or None,
                conversations=_id_list(conversations, "--conversations", as_json=as_json) or None,
                tickets=_id_list(tickets, "--tickets", as_json=as_json) or None,
                checkpoint=checkpoint,
                on_progress=progress,
            )
        except ValueError as error:
            _fail(scrub(str(error)), as_json=as_json)
        warmth = client.health().cache
    code = ExitCode.FAILING if report.error else ExitCode.FINDING if report.missing else ExitCode.OK
    summary = {
        "warmed": report.warmed,
        "missing": report.missing,
        "skipped": report.skipped,
        "error": report.error,
        "checkpoint": str(checkpoint) if report.error else None,
        "cache": None if warmth is None else warmth.to_dict(),
        "redis_url": redact_url(redis_url),
        "exit_code": int(code),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        entries = "?" if warmth is None else warmth.entries
        click.echo(
            f"warmed {report.warmed}, missing {report.missing}, skipped {report.skipped} "
            f"(done before); cache entries: {entries}"
        )
        if report.error:
            click.echo(
                f"{_PROG}: stopped early ({report.error}); run the same command again to resume "
                f"from {checkpoint}",
                err=True,
            )
    raise SystemExit(code)


@cli.group(context_settings=_CONTEXT)
def fake() -> None:
    """The bundled fake Intercom backend."""


_STATUS_PAGE_ROUTES = ("/api/v2/status.json", "/api/v2/incidents/unresolved.json")


class _WithStatusPage:
    """ASGI middleware: the served fake answers like a calm Statuspage too (indicator ``none``).

    So ``triage --base-url URL --status-url URL`` against ``fake serve`` is fully offline and can
    exit 0; every other path goes to the fake.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI entry point."""
        path = scope.get("path") if scope.get("type") == "http" else None
        if path not in _STATUS_PAGE_ROUTES or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        page = {"id": "fake-intercom", "name": "Fake Intercom (intercom-resilience)"}
        if path == _STATUS_PAGE_ROUTES[0]:
            body: dict[str, Any] = {
                "page": page,
                "status": {"indicator": "none", "description": "All Systems Operational"},
            }
        else:
            body = {"page": page, "incidents": []}
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _listen(host: str, port: int) -> socket.socket:
    """Bind *host*:*port* now, so a busy port is one line and exit 4, not uvicorn's log and 3."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        _fail(f"cannot resolve --host {host!r}: {getattr(error, 'strerror', None) or error}")
    sock = socket.socket(family, kind, proto)
    # As uvicorn does: a restarted fake can rebind while the old connections sit in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}", ExitCode.CANNOT_SERVE)
    sock.set_inheritable(True)
    return sock


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@fake.command(context_settings=_CONTEXT)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port to bind (1-65535).",
)
@click.option("--token", default="fake-token", show_default=True, help="The token it accepts.")
@click.option(
    "--app-quota",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Requests per minute per app.",
)
@click.option(
    "--workspace-quota",
    type=click.IntRange(min=1),
    default=25_000,
    show_default=True,
    help="Requests per minute per workspace.",
)
@click.option(
    "--window-seconds",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Rate-limit window length.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and chaos.")
@click.option("--no-rate-limits", is_flag=True, help="Never answer 429.")
@click.option(
    "--outage-seconds",
    type=click.FloatRange(min=0.0, min_open=True),
    help="Start with a full outage (503) lasting this long.",
)
@click.option(
    "--chaos",
    type=click.FloatRange(0.0, 1.0),
    help="Fail this share of requests with a seeded mix of faults.",
)
@click.option("--latency", type=click.FloatRange(min=0.0), help="Delay every response (s).")
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS),
    default="info",
    show_default=True,
    help="uvicorn log level.",
)
def serve(
    host: str,
    port: int,
    token: str,
    app_quota: int,
    workspace_quota: int,
    window_seconds: float,
    seed: int,
    no_rate_limits: bool,
    outage_seconds: float | None,
    chaos: float | None,
    latency: float | None,
    log_level: str,
) -> None:
    """Serve the fake Intercom on localhost until interrupted (needs the `server` extra).

    It also answers Intercom's Statuspage routes (indicator none), so `triage` can use its URL
    as --status-url and run fully offline.

    \b
    Exit codes: 0 stopped with Ctrl-C, 2 bad option or the `server` extra missing,
    4 cannot listen on --host/--port (in use, or not allowed).

    \b
    Examples:
      intercom-resilience fake serve --port 8000
      intercom-resilience fake serve --port 8000 --app-quota 600 --outage-seconds 60
      intercom-resilience fake serve --chaos 0.2 --seed 3
      # then: ResilientIntercom(token="fake-token", base_url="http://127.0.0.1:8000")
    """
    try:
        import uvicorn
    except ImportError:
        _fail("fake serve needs uvicorn: pip install 'intercom-resilience[server]'")
    from .testing import DEFAULT_TOKEN, FakeIntercom

    server = FakeIntercom(
        token=token,
        app_quota=app_quota,
        workspace_quota=workspace_quota,
        window_seconds=window_seconds,
        rate_limits=not no_rate_limits,
        seed=seed,
    )
    if outage_seconds is not None:
        server.faults.outage(outage_seconds)
    if chaos is not None:
        server.faults.chaos(chaos, seed=seed)
    if latency:
        server.faults.latency(latency)
    sock = _listen(host, port)
    shown = token if token == DEFAULT_TOKEN else "the --token given"
    click.echo(f"Fake Intercom on http://{host}:{port} (token: {shown}); Ctrl-C to stop", err=True)
    from .testing._server import _DropAbortedResponses

    config = uvicorn.Config(
        _WithStatusPage(server.asgi_app()),
        log_level=log_level,
        access_log=False,
        lifespan="off",
    )
    logging.getLogger("uvicorn.error").addFilter(_DropAbortedResponses())
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C after its graceful shutdown, to asyncio's own handler:
        # whether that surfaces here depends on whether the main task was still running (a
        # race), so a return after the shutdown is the same stop.
        pass
    finally:
        sock.close()
    click.echo("Fake Intercom stopped", err=True)


# ---------------------------------------------------------------------------------------- outbox


def _outbox_config(path: str | None, *, as_json: bool) -> ResilienceConfig:
    """The configuration from the environment, with ``--path`` over the outbox's file."""
    try:
        config = ResilienceConfig.from_env()
        if path is not None:
            config = config.replace(outbox=config.outbox.replace(path=path, backend="sqlite"))
    except ValueError as error:
        _fail(str(error), as_json=as_json)
    return config


def _outbox_failing(error: Exception, *, as_json: bool) -> NoReturn:
    _fail(scrub(str(error)), ExitCode.FAILING, as_json=as_json)


_OUTBOX_PATH = click.option(
    "--path",
    type=click.Path(dir_okay=False),
    help="The SQLite outbox file (default: OutboxPolicy.path, INTERCOM_RESILIENCE_OUTBOX_PATH).",
)


@cli.group(context_settings=_CONTEXT)
def outbox() -> None:
    """The durable write outbox: writes waiting for Intercom (see docs/writes.md).

    \b
    Exit codes:
      0  ok (status: below the alert thresholds; drain: nothing left, no new dead letter)
      1  status: past OutboxPolicy.alert_depth or alert_age; drain: writes still wait,
         a write was dead-lettered, or another worker is draining
      2  configuration error: a bad INTERCOM_RESILIENCE_* variable or option, no token
      3  the outbox is unusable: a corrupt or locked SQLite file, Redis unreachable
    """


@outbox.command("status", context_settings=_CONTEXT)
@_OUTBOX_PATH
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def outbox_status(path: str | None, as_json: bool) -> None:
    """Depth, oldest age and dead letters of the outbox (no token, no network to Intercom)."""
    from ._outbox import OutboxError, open_store

    config = _outbox_config(path, as_json=as_json)
    policy = config.outbox
    try:
        store = open_store(policy, config)
        try:
            depth, oldest, dead = store.stats()
        finally:
            store.close()
    except OutboxError as error:
        _outbox_failing(error, as_json=as_json)
    age = None if oldest is None else max(0.0, time.time() - oldest)
    backlog = depth > policy.alert_depth or (age is not None and age > policy.alert_age)
    code = ExitCode.FINDING if backlog else ExitCode.OK
    if as_json:
        report = {
            "backend": store.backend,
            "location": store.location,
            "depth": depth,
            "oldest_age": age,
            "dead": dead,
            "backlog": backlog,
            "exit_code": int(code),
        }
        click.echo(json.dumps(report, indent=2))
    else:
        shown = "-" if age is None else f"{age:.0f}s"
        click.echo(f"Outbox ({store.backend}: {store.location})")
        click.echo(f"  waiting: {depth}   oldest: {shown}   dead letters: {dead}")
        if backlog:
            click.echo(
                f"  BACKLOG: past {policy.alert_depth} writes or {policy.alert_age:g}s: drain it"
            )
    raise SystemExit(code)


@outbox.command("list", context_settings=_CONTEXT)
@_OUTBOX_PATH
@click.option("--dead", is_flag=True, help="The dead letters instead of the waiting writes.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def outbox_list(path: str | None, dead: bool, limit: int, as_json: bool) -> None:
    """The waiting writes (or the dead letters), oldest first; bodies are not shown."""
    from ._core.requests import path_template
    from ._outbox import OutboxError, open_store

    config = _outbox_config(path, as_json=as_json)
    try:
        store = open_store(config.outbox, config)
        try:
            entries = store.entries("dead" if dead else "pending", limit)
        finally:
            store.close()
    except OutboxError as error:
        _outbox_failing(error, as_json=as_json)
    rows = [
        {
            "id": e.id,
            "method": e.method,
            "path": path_template(e.path),
            "queued_at": e.created_at,
            "attempts": e.attempts,
            "status": e.status,
            "request_id": e.request_id,
            "error": None if e.error is None else scrub(e.error),
        }
        for e in entries
    ]
    if as_json:
        click.echo(json.dumps({"entries": rows, "exit_code": 0}, indent=2))
    else:
        _table(
            "Dead letters" if dead else "Waiting writes",
            ["id", "write", "attempts", "status", "request id", "error"],
            [
                [
                    e.id,
                    f"{e.method} {path_template(e.path)}",
                    str(e.attempts),
                    "" if e.status is None else str(e.status),
                    e.request_id or "",
                    scrub(e.error or "")[:60],
                ]
                for e in entries
            ],
        )
    raise SystemExit(ExitCode.OK)


@outbox.command("drain", context_settings=_CONTEXT)
@_TOKEN
@_BASE_URL
@_OUTBOX_PATH
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many deliveries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output only.")
def outbox_drain(
    token: str | None, base_url: str, path: str | None, limit: int | None, as_json: bool
) -> None:
    """Replay the waiting writes to Intercom, oldest first, each exactly once."""
    from ._client import ResilientIntercom
    from ._outbox import OutboxError

    secret, _source = _require_token(token, as_json=as_json)
    config = _outbox_config(path, as_json=as_json)
    client = ResilientIntercom(token=secret, base_url=base_url, config=config)
    try:
        report = client.outbox.drain(limit=limit)
    except OutboxError as error:
        _outbox_failing(error, as_json=as_json)
    finally:
        client.close()
    code = ExitCode.FINDING if (report.remaining or report.dead or report.busy) else ExitCode.OK
    if as_json:
        body = {
            "delivered": report.delivered,
            "reconciled": report.reconciled,
            "dead": report.dead,
            "deferred": report.deferred,
            "remaining": report.remaining,
            "busy": report.busy,
            "exit_code": int(code),
        }
        click.echo(json.dumps(body, indent=2))
    elif report.busy:
        click.echo("Another worker is draining this outbox: nothing done.")
    else:
        how = ", ".join(f"{n} by {k}" for k, n in sorted(report.reconciled.items()))
        click.echo(
            f"Delivered {report.delivered}"
            + (f" ({how})" if how else "")
            + f"; dead-lettered {report.dead}; waiting {report.remaining}"
        )
    raise SystemExit(code)


# ---------------------------------------------------------------------------------------- fleet


@cli.group(context_settings=_CONTEXT)
def fleet() -> None:
    """The fleet's health: every process publishing to one Redis (see docs/fleet.md).

    \b
    Exit codes:
      0  every process is healthy
      1  a process is degraded, or no process has published
      2  configuration error: no --redis-url, or one that is not a Redis URL
      3  a process is unhealthy, or Redis cannot be reached (the fleet cannot be seen)
    """


def _fleet_code(status: str) -> ExitCode:
    if status == "healthy":
        return ExitCode.OK
    if status == "degraded":
        return ExitCode.FINDING
    if status == "unhealthy":
        return ExitCode.FAILING
    return ExitCode.FINDING  # unknown, seen: nobody has published


def _fleet_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--redis-url``, ``--key-prefix``, ``--timeout`` and ``--json``: every fleet command's."""
    options = [
        click.option(
            "--redis-url",
            envvar="INTERCOM_RESILIENCE_REDIS_URL",
            show_envvar=True,
            help="The fleet's Redis (redis://, rediss://, unix://).",
        ),
        click.option(
            "--key-prefix",
            envvar="INTERCOM_RESILIENCE_FLEET_KEY_PREFIX",
            show_envvar=True,
            default=DEFAULT_FLEET_PREFIX,
            show_default=True,
            help="The fleet's keys' prefix (FleetPolicy.key_prefix).",
        ),
        click.option("--timeout", type=click.FloatRange(min=0.05), default=2.0, show_default=True),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output only."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _fleet_prefix(key_prefix: str, as_json: bool) -> str:
    from ._config import FleetPolicy

    try:
        return FleetPolicy(key_prefix=key_prefix).key_prefix
    except ValueError as error:
        _fail(str(error).replace("FleetPolicy.key_prefix", "--key-prefix"), as_json=as_json)


@fleet.command("status", context_settings=_CONTEXT)
@_fleet_options
def fleet_status(redis_url: str | None, key_prefix: str, timeout: float, as_json: bool) -> None:
    """One row per live process: status, breaker, p95, counters, alerts, incident.

    \b
    Examples:
      intercom-resilience fleet status --redis-url redis://redis.internal:6379/0
      intercom-resilience fleet status --json | jq '.processes[] | select(.status != "healthy")'
    """
    from ._fleet_publisher import read_fleet

    if not redis_url:
        _fail("fleet status needs --redis-url (or INTERCOM_RESILIENCE_REDIS_URL)", as_json=as_json)
    prefix = _fleet_prefix(key_prefix, as_json)
    try:
        health = read_fleet(redis_url, key_prefix=prefix, socket_timeout=timeout)
    except ValueError as error:
        _fail(scrub(str(error)), as_json=as_json)
    if not health.reachable:
        _fail(health.error or "Redis is unreachable", ExitCode.FAILING, as_json=as_json)
    code = _fleet_code(health.status)
    if as_json:
        click.echo(json.dumps({**health.to_dict(), "exit_code": int(code)}, indent=2))
        raise SystemExit(code)
    counts = ", ".join(f"{n} {status}" for status, n in health.counts.items())
    title = f"Fleet: {health.status} ({len(health.processes)} processes: {counts})"
    if not health.processes:
        click.echo(f"{title}\n  no process has published its health (is FleetPolicy.publish off?)")
        raise SystemExit(code)
    rows = [
        [
            row.process_id,
            row.status,
            row.breaker,
            "-" if row.p95_ms is None else f"{row.p95_ms:.0f}",
            str(row.counters.get("calls", 0)),
            str(row.counters.get("failed", 0)),
            str(row.counters.get("stale_served", 0)),
            ", ".join(f"{a.severity.value} {a.rule}" for a in row.alerts) or "-",
            row.incident_id or "-",
            f"{max(0.0, time.time() - row.published_at):.0f}s",
        ]
        for row in health.processes
    ]
    headers = ["process", "status", "breaker", "p95 ms", "calls", "failed", "stale"]
    _table(title, [*headers, "alerts", "incident", "age"], rows)
    if health.unreadable:
        click.echo(f"  {health.unreadable} snapshot(s) unreadable (another version?): skipped")
    raise SystemExit(code)


def _read_incidents(
    command: str, redis_url: str | None, key_prefix: str, timeout: float, as_json: bool
) -> tuple[FleetIncident, ...]:
    from ._fleet_reports import read_fleet_incidents

    if not redis_url:
        needs = f"fleet {command} needs --redis-url (or INTERCOM_RESILIENCE_REDIS_URL)"
        _fail(needs, as_json=as_json)
    prefix = _fleet_prefix(key_prefix, as_json)
    try:
        return read_fleet_incidents(redis_url, key_prefix=prefix, socket_timeout=timeout)
    except ConnectionError as error:
        _fail(scrub(str(error)), ExitCode.FAILING, as_json=as_json)
    except ValueError as error:
        _fail(scrub(str(error)), as_json=as_json)


@fleet.command("incidents", context_settings=_CONTEXT)
@_fleet_options
def fleet_incidents(redis_url: str | None, key_prefix: str, timeout: float, as_json: bool) -> None:
    """The fleet's incidents, newest first: one row per cause, whatever the processes.

    Exit code 0 when none is open, 3 when one is (or Redis cannot be reached).

    \b
    Examples:
      intercom-resilience fleet incidents --redis-url redis://redis.internal:6379/0
    """
    found = _read_incidents("incidents", redis_url, key_prefix, timeout, as_json)
    code = ExitCode.FAILING if any(incident.is_open for incident in found) else ExitCode.OK
    if as_json:
        payload = {"incidents": [i.to_dict() for i in found], "exit_code": int(code)}
        click.echo(json.dumps(payload, indent=2))
        raise SystemExit(code)
    if not found:
        click.echo("Fleet incidents: none recorded")
        raise SystemExit(code)
    rows = []
    for incident in found:
        merged = incident.merged()
        severity = merged.severity
        rows.append(
            [
                incident.id,
                "ongoing" if incident.is_open else "resolved",
                "-" if severity is None else severity.value,
                incident.cause,
                str(len(incident.reports)),
                format_utc(incident.opened_at),
                str(merged.failed_attempts),
                str(len(merged.request_ids)),
            ]
        )
    headers = ["fleet incident", "state", "sev", "cause", "processes", "opened", "failed"]
    _table(f"Fleet incidents ({len(found)})", [*headers, "request ids"], rows)
    raise SystemExit(code)


@fleet.command("postmortem", context_settings=_CONTEXT)
@click.argument("incident_id", required=False)
@_fleet_options
@click.option("--title", help="Postmortem title (default: from the worst alert).")
def fleet_postmortem(
    incident_id: str | None,
    redis_url: str | None,
    key_prefix: str,
    timeout: float,
    as_json: bool,
    title: str | None,
) -> None:
    """One Markdown postmortem of a fleet incident (default: the newest), with every
    process's Intercom request ids.

    \b
    Examples:
      intercom-resilience fleet postmortem --redis-url redis://redis.internal:6379/0
      intercom-resilience fleet postmortem finc-20261203T170102.123Z-api_unreachable-1a2b3c4d
    """
    found = _read_incidents("postmortem", redis_url, key_prefix, timeout, as_json)
    chosen = [i for i in found if incident_id is None or i.id == incident_id][:1]
    if not chosen:
        wanted = (
            "no fleet incident is recorded"
            if incident_id is None
            else (f"no fleet incident {scrub(incident_id)!r} (see `fleet incidents`)")
        )
        _fail(wanted, ExitCode.FINDING, as_json=as_json)
    if as_json:
        click.echo(json.dumps({**chosen[0].to_dict(), "exit_code": 0}, indent=2))
    else:
        click.echo(chosen[0].postmortem(title=title))


def main(argv: Sequence[str] | None = None) -> None:
    """The console script's entry point (``intercom-resilience``)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="intercom-resilience")


if __name__ == "__main__":
    main()
