"""Helpers for the command-line tests: a tiny local HTTP site (status page, health, webhooks)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LocalSite:
    """A tiny local HTTP server answering canned JSON per path (a Statuspage, a health endpoint)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                site.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload = site.routes.get(self.path, (404, {"error": "not found"}))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def status_page(self, indicator: str = "none", unresolved: int = 0) -> None:
        self.routes["/api/v2/status.json"] = (
            200,
            {"status": {"indicator": indicator, "description": f"indicator {indicator}"}},
        )
        self.routes["/api/v2/incidents/unresolved.json"] = (
            200,
            {"incidents": [{"id": f"i{n}", "name": "Degraded API"} for n in range(unresolved)]},
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
