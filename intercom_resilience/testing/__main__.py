"""``python -m intercom_resilience.testing serve --port 8000``: a fake Intercom on localhost."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._fake import DEFAULT_TOKEN
from ._server import run_server

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m intercom_resilience.testing", description="The fake Intercom backend."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the fake over HTTP on localhost")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--token", default=DEFAULT_TOKEN, help=f"the accepted token (default: {DEFAULT_TOKEN})"
    )
    serve.add_argument(
        "--app-quota",
        type=int,
        default=10_000,
        metavar="N",
        help="requests per minute per app (default: 10000)",
    )
    serve.add_argument(
        "--workspace-quota",
        type=int,
        default=25_000,
        metavar="N",
        help="requests per minute per workspace (default: 25000)",
    )
    serve.add_argument(
        "--window-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="rate-limit window length (default: 10)",
    )
    serve.add_argument("--no-rate-limits", action="store_true", help="never answer 429")
    serve.add_argument("--seed", type=int, default=0, help="seed for ids (default: 0)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (default: info)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv* and run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        run_server(
            args.host,
            args.port,
            args.token,
            app_quota=args.app_quota,
            workspace_quota=args.workspace_quota,
            window_seconds=args.window_seconds,
            rate_limits=not args.no_rate_limits,
            seed=args.seed,
            log_level=args.log_level,
        )
    except ImportError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
