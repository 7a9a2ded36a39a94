"""Request-level protection: per-client rate limiting and a request body size limit (pure ASGI middleware).

Rate limiting is an in-process token bucket, so the limits hold **per API replica**: with N replicas a
client may make up to N times the configured rate. Keyed callers are counted by a hash of their key (the
key itself is never stored or logged), anonymous ones by client address.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM

EXEMPT = ("/health", "/ready", "/metrics")


async def _send_problem(send: Send, scope: Scope, status: int, detail: str, headers=()) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus(status).phrase,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
        }
    ).encode()
    raw = [(b"content-type", PROBLEM.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class TokenBuckets:
    """One token bucket per client: `rate` tokens per minute, bursts up to `rate`."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may proceed, else the seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            if tokens >= 1:
                if len(self._buckets) >= self.max_clients and client not in self._buckets:
                    self._buckets.clear()  # crude bound on memory; forgets everyone's history
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.refill


class RateLimitMiddleware:
    """429 problem+json with `Retry-After` when a client exceeds its rate (0 = unlimited)."""

    def __init__(self, app: ASGIApp, anonymous_per_minute: int = 0, keyed_per_minute: int = 0) -> None:
        self.app = app
        self.anonymous = TokenBuckets(anonymous_per_minute) if anonymous_per_minute > 0 else None
        self.keyed = TokenBuckets(keyed_per_minute) if keyed_per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        auth = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
        if auth:
            buckets = self.keyed
            client = "key:" + hashlib.sha256(auth).hexdigest()
        else:
            buckets = self.anonymous
            client = "addr:" + (scope.get("client") or ("unknown", 0))[0]
        wait = buckets.take(client) if buckets is not None else 0.0
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await _send_problem(
                send, scope, 429, f"rate limit exceeded; retry in {retry} s", [("Retry-After", retry)]
            )
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 problem+json when a request body is larger than `max_bytes` (by Content-Length or as read)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        detail = f"request body exceeds {self.max_bytes / 1e6:g} MB"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_problem(send, scope, 413, detail)
            return
        state = {"seen": 0, "too_large": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_bytes:
                    state["too_large"] = True
                    raise _TooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            if not state["too_large"]:  # the app's answer to a truncated body is replaced by the 413
                await send(message)

        with contextlib.suppress(_TooLargeError):
            await self.app(scope, limited_receive, guarded_send)
        if state["too_large"]:
            await _send_problem(send, scope, 413, detail)


class _TooLargeError(Exception):
    pass
