"""``/healthz``, ``/readyz`` and ``/metrics`` for a relay (port + 200), on a small stdlib HTTP
server in a thread: the relay has no event loop to host a web app.

Ready = database reachable, broker reachable, and the outbox backlog below
``relay_ready_max_backlog``. A busy port does not stop the relay: publishing matters more than
being watched, so the server retries binding in the background and logs why.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from servicekit.http import Check, check_broker, check_database, run_checks
from servicekit.relay import Relay
from servicekit.settings import BaseServiceSettings

log = structlog.get_logger("servicekit.relay_web")


def backlog_below(worker: Relay, limit: int) -> Check:
    def check() -> None:
        if worker.backlog >= limit:
            raise RuntimeError(f"outbox backlog {worker.backlog} >= {limit}")

    return check


def serve(settings: BaseServiceSettings, engine: Engine, worker: Relay) -> threading.Thread:
    checks: dict[str, tuple[Check, bool]] = {
        "database": (check_database(engine), True),
        "broker": (check_broker(settings.kafka_bootstrap_servers), True),
        "outbox_backlog": (backlog_below(worker, settings.relay_ready_max_backlog), True),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, "application/json", _json({"status": "ok", "process": "relay"}))
            elif self.path == "/readyz":
                status, body = asyncio.run(run_checks(checks))
                self._send(status, "application/json", _json(body))
            elif self.path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._send(404, "application/json", _json({"status": "not found"}))

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds: no access log

    def run() -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        while True:
            try:
                server = ThreadingHTTPServer((settings.host, settings.relay_web_port), Handler)
                break
            except OSError as exc:
                log.error(
                    "relay web port busy; retrying", port=settings.relay_web_port, error=str(exc)
                )
                time.sleep(2)
        server.daemon_threads = True
        log.info("relay web started", port=settings.relay_web_port)
        server.serve_forever()

    thread = threading.Thread(target=run, name="relay-web", daemon=True)
    thread.start()
    return thread


def _json(body: object) -> bytes:
    return json.dumps(body).encode()
