"""`edgepop origin`: the adapter that runs next to a model server and takes token frames.

A PoP sends a prompt's ids across the long link as an `edgepop.transport` frame; the
model server (vLLM, llama.cpp server, SGLang) only speaks OpenAI's `/v1/completions`,
which takes token ids as the prompt. This adapter turns one into the other on the
loopback side of the link, where JSON's size no longer matters, and hands the model
server's answer back unchanged: streamed events as they arrive, anything else whole.

    POST /edgepop/v1/completions   body: a frame, Content-Type: application/vnd.edgepop.tokens
    GET  /healthz                  the adapter is up (it does not probe the model server)

Failures answer in OpenAI's error shape: a bad frame 400, an oversized one 413, the
wrong content type 415, a model server that cannot be reached 502 and one that stays
silent past the timeout 504; a model server's own error passes through as it sent it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import transport
from .errors import EdgepopError

FRAME_PATH = "/edgepop/v1/completions"
UPSTREAM_PATH = "/v1/completions"
# The longest the model server may stay silent: before its answer starts, and between
# two streamed events. A non-streamed completion is silent for its whole generation.
DEFAULT_TIMEOUT_S = 300.0


def create_app(
    upstream: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int = transport.MAX_BYTES
) -> Starlette:
    """The adapter for the OpenAI-compatible model server at `upstream` (e.g. http://127.0.0.1:8000).

    max_bytes caps a request's frame and the content it decompresses to.
    """
    upstream = upstream.rstrip("/")
    if not upstream.startswith(("http://", "https://")):
        raise EdgepopError(f"the upstream must be an http:// or https:// URL, got {upstream!r}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # No pool limit: the model server queues requests itself; a limit here would be a
        # second queue, in front of it, timing out on its own.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), limits=limits) as client:
            yield {"client": client}  # one connection pool for every request, as request.state.client

    async def completions(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != transport.CONTENT_TYPE:
            return _error(415, f"the body must be a token frame with Content-Type {transport.CONTENT_TYPE}, "
                               f"got {media_type or 'none'}", "invalid_request_error")
        frame = await _read_body(request, max_bytes)
        if frame is None:
            return _error(413, f"the frame is over the limit of {max_bytes:,} bytes", "invalid_request_error")
        try:
            decoded = transport.decode_request(frame, max_bytes=max_bytes)
        except transport.TransportError as e:
            return _error(400, f"bad token frame: {e}", "invalid_request_error")
        body = json.dumps({**decoded.params, "prompt": decoded.ids}, ensure_ascii=False, separators=(",", ":"))
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if "authorization" in request.headers:  # the model server's API key, if it wants one
            headers["authorization"] = request.headers["authorization"]
        client: httpx.AsyncClient = request.state.client
        url = upstream + UPSTREAM_PATH
        outgoing = client.build_request("POST", url, content=body.encode(), headers=headers)
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TimeoutException:
            return _error(504, f"the model server at {url} did not answer within {timeout_s:g} s", "upstream_timeout")
        except httpx.TransportError as e:
            return _error(502, f"cannot reach the model server at {url}: {type(e).__name__}: {e}",
                          "upstream_unreachable")
        content_type = answer.headers.get("content-type", "application/json")
        if content_type.startswith("text/event-stream"):
            return _Relay(answer, content_type)
        try:
            content = await answer.aread()
        except httpx.TimeoutException:
            return _error(504, f"the model server at {url} stopped answering for {timeout_s:g} s", "upstream_timeout")
        except httpx.TransportError as e:
            return _error(502, f"the model server at {url} broke off its answer: {type(e).__name__}: {e}",
                          "upstream_unreachable")
        finally:
            await answer.aclose()
        return Response(content, status_code=answer.status_code, media_type=content_type)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "upstream": upstream})

    return Starlette(
        routes=[Route(FRAME_PATH, completions, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )


class _Relay(StreamingResponse):
    """A streamed answer passed through as it arrives; the upstream response is closed however it ends.

    StreamingResponse runs no cleanup when the client goes away mid-stream, so a plain
    generator would leave the upstream connection open until garbage collection.
    """

    def __init__(self, answer: httpx.Response, content_type: str) -> None:
        super().__init__(answer.aiter_bytes(), status_code=answer.status_code, media_type=content_type)
        self._answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._answer.aclose()


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes limit bytes (nothing more is read)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str, kind: str) -> JSONResponse:
    body: dict[str, Any] = {"error": {"message": message, "type": kind}}
    return JSONResponse(body, status_code=status)
