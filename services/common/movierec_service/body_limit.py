"""Request bodies are bounded in size and in time.

- Size: FastAPI's own ``max_body_size`` (413 before a route parses anything); default 16 MiB,
  ``MOVIEREC_MAX_BODY_BYTES`` or ``create_service_app(max_body_bytes=...)`` to change it.
- Time: a client that does not finish sending its body within ``body_timeout_s`` (a slow or
  stalled client) gets 408, so it cannot hold a request open for ever
  (``MOVIEREC_BODY_TIMEOUT_S``, default 15 s).
"""

from __future__ import annotations

import asyncio
import os
import time

from fastapi import HTTPException

DEFAULT_MAX_BODY_BYTES = int(os.environ.get("MOVIEREC_MAX_BODY_BYTES", str(16 * 1024 * 1024)))
DEFAULT_BODY_TIMEOUT_S = float(os.environ.get("MOVIEREC_BODY_TIMEOUT_S", "15"))


class BodyTimeout(HTTPException):
    """Raised from the wrapped ``receive``. A FastAPI ``HTTPException``, so FastAPI passes it through
    body parsing unchanged and the service answers it as a 408."""

    def __init__(self, timeout_s: float):
        super().__init__(status_code=408, detail=f"request body not received within {timeout_s:g} s")


class BodyTimeoutMiddleware:
    def __init__(self, app, body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S):
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        deadline = time.monotonic() + self.body_timeout_s

        async def bounded_receive():
            # asyncio.timeout, not wait_for: no extra task per message (a visible cost per request)
            try:
                async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                    return await receive()
            except TimeoutError:
                raise BodyTimeout(self.body_timeout_s) from None

        await self.app(scope, bounded_receive, send)
