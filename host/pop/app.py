"""The PoP as an ASGI application: OpenAI-compatible routes over the edge pipeline.

    GET  /v1/models              the models this PoP serves
    POST /v1/chat/completions    chat template -> tokenize -> checks -> augment -> forward
    POST /v1/completions         tokenize -> checks -> augment -> forward
    GET  /healthz, /readyz       liveness; readiness (components loaded, pools filled)
    GET  /metrics                Prometheus
    /admin/...                   the operator API (see admin.py)
    /demo-origin/v1/...          the built-in demo origin, when the config uses it

Edge work (component calls) runs in worker threads, at most `workers` at once; the
forward to the origin is async, streamed through as it arrives. Each response carries
its request id (`x-request-id`) and stage timings (`server-timing`); each request is
logged as one JSON line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from ..errors import EdgepopError
from ..rag import RagError, UpstreamError
from ..runtime import RequestActivity
from ..tokenizer import TokenizeError
from . import openai_format as fmt
from .chat import ChatTemplateError
from .admin import admin_routes
from .config import PopConfig
from .origins import Forward, OriginError
from .pipeline import BadRequest, ComponentFailed, ContextWindowExceeded, EdgeRequest, Prepared
from .quota import QuotaExceeded
from .state import PopState

log = logging.getLogger("edgepop.pop")

# Sampling parameters passed to the origin as the client sent them.
_PASSED_PARAMS = ("temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "user")


def create_app(config: PopConfig, state: PopState | None = None) -> Starlette:
    """The PoP for `config`. `state` (components, KB, origins) is built at startup unless given."""
    holder: dict[str, PopState] = {}
    demo = PopState.demo_app(config) if any(o.kind == "demo" for o in config.origins.values()) else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        built = state or await anyio.to_thread.run_sync(PopState.build, config)
        holder["state"] = built
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=256)) as client:
            built.connect(client, demo)
            try:
                yield
            finally:
                await built.disconnect()
        if state is None:
            built.close()

    def current() -> PopState:
        return holder["state"]

    async def models(request: Request) -> Response:
        if (denied := _client_auth(config, request)) is not None:
            return denied
        return JSONResponse({"object": "list", "data": [
            {"id": m.name, "object": "model", "created": 0, "owned_by": f"edgepop PoP (origin: {m.origin})"}
            for m in config.models]})

    async def chat_completions(request: Request) -> Response:
        return await _complete(request, chat=True)

    async def completions(request: Request) -> Response:
        return await _complete(request, chat=False)

    async def _complete(request: Request, chat: bool) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        route = "chat" if chat else "completions"
        record: dict[str, Any] = {"request_id": request_id, "route": route}
        # While a request is in progress, forwarding included, instance pools do not refill.
        busy = _Busy(current().runtime.requests)
        try:
            response = await _serve(request, chat, record, busy)
        except BaseException:
            busy.done()
            raise
        response.background = BackgroundTask(busy.done)
        record["status"] = response.status_code
        record["ms"] = round((time.perf_counter() - started) * 1000, 2)
        current().metrics.requests.labels(route, str(response.status_code)).inc()
        response.headers["x-request-id"] = request_id
        log.info(json.dumps(record, ensure_ascii=False))
        return response

    async def _serve(request: Request, chat: bool, record: dict[str, Any], busy: "_Busy") -> Response:
        if (denied := _client_auth(config, request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not JSON", "invalid_request_error")
        try:
            parsed = _parse(body, chat, config)
        except BadRequest as e:
            return _error(400, str(e), "invalid_request_error")
        state = current()
        edge = state.edges[parsed.model]
        model = edge.model
        record["model"] = model.name
        api_key = _bearer(request) if config.api_keys else None
        try:
            prepared = await anyio.to_thread.run_sync(
                edge.prepare, EdgeRequest(parsed.messages, parsed.prompt, parsed.max_tokens, api_key),
                limiter=state.limiter)
        except Exception as e:  # noqa: BLE001 — every failure is answered, none escapes
            return _edge_error(e, state, model.name, record)
        for stage, seconds in prepared.seconds.items():
            state.metrics.stage_seconds.labels(stage, model.name).observe(seconds)
        record.update(prompt_tokens=len(prepared.ids), sources=prepared.sources,
                      stages_ms={k: round(v * 1000, 3) for k, v in prepared.seconds.items()})
        origin = state.origins[model.origin]
        forward = Forward(prepared.ids, prepared.text, model.upstream_model or model.name,
                          {"max_tokens": prepared.max_tokens, **parsed.params}, parsed.stream)
        encoded = origin.encode(forward)
        state.metrics.bytes_forwarded.labels(model.name, model.origin).inc(len(encoded.body))
        state.metrics.bytes_as_text.labels(model.name, model.origin).inc(encoded.raw_text_bytes)
        state.metrics.bytes_saved.labels(model.name, model.origin).inc(encoded.raw_text_bytes - len(encoded.body))
        state.metrics.tokens_in.labels(model.name).inc(len(prepared.ids))
        record.update(origin=model.origin, bytes_forwarded=len(encoded.body))
        headers = _edge_headers(prepared)
        forward_started = time.perf_counter()
        if not parsed.stream:
            try:
                answer = await origin.complete(encoded)
            except OriginError as e:
                return _origin_error(e, state, model.origin, record)
            elapsed = time.perf_counter() - forward_started
            state.metrics.stage_seconds.labels("forward", model.name).observe(elapsed)
            headers["server-timing"] += f", forward;dur={elapsed * 1000:.2f}"
            use = answer.get("usage") or {}
            state.metrics.tokens_out.labels(model.name).inc(use.get("completion_tokens", 0))
            choice = answer["choices"][0]
            make = fmt.chat_completion if chat else fmt.completion
            text = choice.get("text", "")
            return JSONResponse(make(answer.get("id", fmt.new_id("cmpl")), model.name, text,
                                     choice.get("finish_reason"), fmt.usage(len(prepared.ids),
                                                                            use.get("completion_tokens", 0))),
                                headers=headers)
        events = origin.stream(encoded).__aiter__()
        try:
            first = await events.__anext__()
        except StopAsyncIteration:
            return _error(502, f"origin {model.origin} ended the stream without an answer", "origin_error")
        except OriginError as e:
            return _origin_error(e, state, model.origin, record)
        return StreamingResponse(
            _relay(first, events, chat, model.name, len(prepared.ids), parsed.include_usage, state, forward_started,
                   busy),
            media_type="text/event-stream", headers=headers)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        state = holder.get("state")
        if state is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        problems = state.problems()
        return JSONResponse({"status": "ready" if not problems else "not ready", "problems": problems},
                            status_code=200 if not problems else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(current().metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/admin", routes=admin_routes(config, current)),
    ]
    if demo is not None:
        routes.append(Mount("/demo-origin", app=demo))
    return Starlette(routes=routes, lifespan=lifespan)


@dataclass(frozen=True)
class _Parsed:
    model: str
    messages: list[dict[str, Any]] | None
    prompt: str | None
    max_tokens: int | None
    stream: bool
    include_usage: bool
    params: dict[str, Any]


def _parse(body: Any, chat: bool, config: PopConfig) -> _Parsed:
    """The request's fields, checked; BadRequest names the first field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if config.model(model) is None:
        raise BadRequest(f"unknown model {model!r}; this PoP serves {', '.join(m.name for m in config.models)}")
    if (body.get("n") or 1) != 1:
        raise BadRequest("n must be 1 here")
    messages = prompt = None
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list")
        messages = [_message(i, m) for i, m in enumerate(messages)]
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)):
        raise BadRequest(f"max_tokens must be an integer, got {max_tokens!r}")
    options = body.get("stream_options") or {}
    return _Parsed(model, messages, prompt, max_tokens, bool(body.get("stream")),
                   bool(options.get("include_usage")) if isinstance(options, dict) else False,
                   {k: body[k] for k in _PASSED_PARAMS if body.get(k) is not None})


def _message(index: int, message: Any) -> dict[str, Any]:
    """A chat message with its content as one string (text parts joined)."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise BadRequest(f"messages[{index}] must be an object with a role")
    content = message.get("content")
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if any(part.get("type") != "text" for part in content if isinstance(part, dict)) or None in texts:
            raise BadRequest(f"messages[{index}].content: only text parts are supported at this PoP")
        content = "".join(texts)
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise BadRequest(f"messages[{index}].content must be a string or a list of text parts")
    return {**message, "content": content}


async def _relay(first: dict[str, Any], events: AsyncIterator[dict[str, Any]], chat: bool, model: str,
                 prompt_tokens: int, include_usage: bool, state: PopState, started: float,
                 busy: "_Busy") -> AsyncIterator[bytes]:
    """The origin's events re-sent to the client as they come, in the route's shape."""
    try:
        async for event in _relayed(first, events, chat, model, prompt_tokens, include_usage, state, started):
            yield event
    finally:
        busy.done()  # also when the client goes away mid-stream


async def _relayed(first: dict[str, Any], events: AsyncIterator[dict[str, Any]], chat: bool, model: str,
                   prompt_tokens: int, include_usage: bool, state: PopState, started: float) -> AsyncIterator[bytes]:
    id = fmt.new_id("chatcmpl" if chat else "cmpl")
    completion_tokens = 0
    if chat:
        yield fmt.sse(fmt.chat_chunk(id, model, {"role": "assistant", "content": ""}, None))
    event: dict[str, Any] | None = first
    try:
        while event is not None:
            use = event.get("usage")
            if use:
                completion_tokens = use.get("completion_tokens", completion_tokens)
            choice = (event.get("choices") or [{}])[0]
            if chat:
                delta = {"content": choice["text"]} if choice.get("text") else {}
                yield fmt.sse(fmt.chat_chunk(id, model, delta, choice.get("finish_reason")))
            else:
                yield fmt.sse(fmt.completion(id, model, choice.get("text", ""), choice.get("finish_reason"), None))
            event = await anext(events, None)
    except OriginError as e:
        state.metrics.origin_errors.labels("stream", e.kind).inc()
        yield fmt.sse(fmt.error(str(e), "origin_error", e.kind))
        return
    if include_usage:
        use = fmt.usage(prompt_tokens, completion_tokens)
        yield fmt.sse({"id": id, "object": "chat.completion.chunk" if chat else "text_completion",
                       "created": int(time.time()), "model": model, "choices": [], "usage": use})
    yield fmt.SSE_DONE
    state.metrics.tokens_out.labels(model).inc(completion_tokens)
    state.metrics.stage_seconds.labels("forward", model).observe(time.perf_counter() - started)


class _Busy:
    """One request counted as in progress for the runtime's pools, until `done` (once)."""

    def __init__(self, requests: RequestActivity) -> None:
        self._requests: RequestActivity | None = requests
        requests.started()

    def done(self) -> None:
        requests, self._requests = self._requests, None
        if requests is not None:
            requests.finished()


def _edge_headers(prepared: Prepared) -> dict[str, str]:
    timing = ", ".join(f"{stage};dur={seconds * 1000:.2f}" for stage, seconds in prepared.seconds.items())
    headers = {"server-timing": timing, "x-edgepop-prompt-tokens": str(len(prepared.ids))}
    if prepared.sources:
        headers["x-edgepop-sources"] = ", ".join(prepared.sources)
    if prepared.notes:
        headers["x-edgepop-notes"] = " | ".join(n.replace("\n", " ") for n in prepared.notes)[:2000]
    return headers


def _edge_error(e: Exception, state: PopState, model: str, record: dict[str, Any]) -> Response:
    record["error"] = f"{type(e).__name__}: {e}"
    if isinstance(e, ContextWindowExceeded):
        state.metrics.limits_hit.labels(model, "context_window").inc()
        return _error(400, str(e), "invalid_request_error", "context_length_exceeded",
                      prompt_tokens=e.prompt_tokens, max_tokens=e.max_tokens)
    if isinstance(e, QuotaExceeded):
        state.metrics.limits_hit.labels(model, "quota").inc()
        response = _error(429, str(e), "rate_limit_exceeded", "quota_exceeded")
        response.headers["retry-after"] = str(max(1, round(e.retry_after_s + 0.5)))
        return response
    if isinstance(e, (BadRequest, ChatTemplateError, TokenizeError)) or (
            isinstance(e, RagError) and not isinstance(e, UpstreamError)):
        return _error(400, str(e), "invalid_request_error")
    if isinstance(e, ComponentFailed):
        state.metrics.traps.labels(e.component.name, e.component.version, type(e.trap).__name__).inc()
        return _error(500, f"a component failed at the edge: {e}", "edge_error")
    if isinstance(e, EdgepopError):
        return _error(500, str(e), "edge_error")
    log.exception("unexpected failure in the edge pipeline")
    return _error(500, f"the PoP failed unexpectedly: {type(e).__name__}", "edge_error")


def _origin_error(e: OriginError, state: PopState, origin: str, record: dict[str, Any]) -> Response:
    state.metrics.origin_errors.labels(origin, e.kind).inc()
    record["error"] = str(e)
    return _error(e.status, str(e), "origin_error", e.kind)


def _client_auth(config: PopConfig, request: Request) -> Response | None:
    """None when the request may use /v1; a 401 otherwise. No keys configured: open."""
    if not config.api_keys:
        return None
    key = _bearer(request)
    if key is None:
        return _error(401, "missing API key: send Authorization: Bearer <key>", "invalid_request_error",
                      "invalid_api_key")
    if key not in config.api_keys:
        return _error(401, "unknown API key", "invalid_request_error", "invalid_api_key")
    return None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _error(status: int, message: str, type: str, code: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(fmt.error(message, type, code, **extra), status_code=status)
