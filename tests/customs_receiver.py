"""A partner's webhook endpoint for tests: a real HTTP server that verifies every delivery
with the standardwebhooks package."""

from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from servicekit.ports import free_port


class Receiver:
    """A partner's endpoint: verifies signatures, answers from a plan, remembers webhook-ids."""

    def __init__(self) -> None:
        self.secret = ""
        self.plan: list[tuple[int, dict[str, str]] | tuple[int, dict[str, str], float]] = []
        """Answers to give, in order: (status, headers[, seconds to wait before answering])."""
        self.received: list[str] = []
        self.verified: list[str] = []
        self.default = 200
        app = FastAPI()

        @app.post("/hooks/ucx")
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.received.append(request.headers["webhook-id"])
            Webhook(self.secret).verify(body, dict(request.headers))  # raises if not ours
            code, headers, *delay = self.plan.pop(0) if self.plan else (self.default, {})
            if delay:
                await asyncio.sleep(delay[0])  # a slow endpoint (or one slower than our timeout)
            if code == 200:
                self.verified.append(request.headers["webhook-id"])
            return Response(status_code=code, headers=headers)

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ucx"

    def __enter__(self) -> Receiver:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)
