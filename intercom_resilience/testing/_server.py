"""Serving the fake over real HTTP with uvicorn (the ``server`` extra)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fake import FakeIntercom

__all__ = ["run_server", "serve_in_thread"]


def _uvicorn() -> ModuleType:
    try:
        import uvicorn
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "Serving the fake Intercom over HTTP needs uvicorn: "
            "pip install 'intercom-resilience[server]'"
        ) from error
    return uvicorn


class _DropAbortedResponses(logging.Filter):
    """Hide uvicorn's complaint about the responses we abort on purpose to simulate resets."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


def _config(fake: FakeIntercom, host: str, port: int, log_level: str) -> Any:
    uvicorn = _uvicorn()
    logging.getLogger("uvicorn.error").addFilter(_DropAbortedResponses())
    return uvicorn.Config(
        fake.asgi_app(), host=host, port=port, log_level=log_level, access_log=False, lifespan="off"
    )


def run_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = "fake-token",  # noqa: S107 - the fake's well-known test token
    *,
    app_quota: int = 10_000,
    workspace_quota: int = 25_000,
    window_seconds: float = 10.0,
    rate_limits: bool = True,
    seed: int = 0,
    fake: FakeIntercom | None = None,
    log_level: str = "info",
) -> None:
    """Run a fake Intercom on ``http://host:port`` until interrupted (blocking).

    Pass an existing *fake* to serve it (its token and quotas then apply); otherwise one is built
    from the other arguments. Point any client at it with ``base_url="http://host:port"``.
    """
    from ._fake import FakeIntercom

    if fake is None:
        fake = FakeIntercom(
            token=token,
            app_quota=app_quota,
            workspace_quota=workspace_quota,
            window_seconds=window_seconds,
            rate_limits=rate_limits,
            seed=seed,
        )
    server = _uvicorn().Server(_config(fake, host, port, log_level))
    server.run()


@contextlib.contextmanager
def serve_in_thread(
    fake: FakeIntercom, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> Iterator[str]:
    """Serve *fake* from a background thread; yields the base URL and stops on exit."""
    server = _uvicorn().Server(_config(fake, host, port, log_level))
    thread = threading.Thread(target=server.run, name="fake-intercom-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the fake Intercom server failed to start on {host}:{port}")
        time.sleep(0.005)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        # Do not wait for open connections to close: a client killed mid-request (the kill -9
        # tests) leaves one that would hold the shutdown for uvicorn's whole grace period.
        server.force_exit = True
        thread.join(timeout=10.0)
