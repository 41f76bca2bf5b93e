"""Forwarding a tokenized prompt to its origin, and reading the answer back.

Three kinds of origin, one client: an OpenAI-compatible model server (vLLM, llama.cpp,
SGLang, OpenAI) gets `/v1/completions` with the token ids as the prompt, or the text
where it takes no ids; `edgepop origin` gets the ids in the compact binary frame of
`edgepop.transport`; the demo origin is served in-process. Attempts that cannot reach
the origin, or that it answers with 502/503, are retried a bounded number of times
with backoff; a timeout is not retried (the request has already waited its limit).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from .. import transport
from ..errors import EdgepopError
from .config import Origin

_RETRY_STATUSES = (502, 503)  # 504 is an upstream timeout: the request has waited its limit
_BACKOFF_S = 0.1


class OriginError(EdgepopError):
    """The origin could not answer; `status` is what the PoP answers its client with."""

    def __init__(self, message: str, status: int, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # "unreachable", "timeout", "status", "malformed"


@dataclass(frozen=True)
class Forward:
    """What goes to the origin for one request."""

    ids: list[int]
    text: str  # the same prompt as text, for origins that take no ids
    model: str  # the origin's name for the model
    params: dict[str, Any]  # max_tokens, temperature, stop, ... as the client sent them
    stream: bool


@dataclass(frozen=True)
class Encoded:
    path: str
    body: bytes
    content_type: str
    raw_text_bytes: int  # the same request with the prompt as JSON text, for "bytes saved"


class OriginClient:
    def __init__(self, origin: Origin, client: httpx.AsyncClient) -> None:
        self.origin = origin
        self._client = client

    def encode(self, forward: Forward) -> Encoded:
        body = {"model": forward.model, **forward.params, "stream": forward.stream}
        raw_text = len(json.dumps({**body, "prompt": forward.text}, ensure_ascii=False).encode())
        if self.origin.kind == "edgepop":
            frame = transport.encode_request(forward.ids, body, compress=self.origin.compress)
            return Encoded("/edgepop/v1/completions", frame, transport.CONTENT_TYPE, raw_text)
        prompt: Any = forward.text if self.origin.prompt == "text" else forward.ids
        data = json.dumps({**body, "prompt": prompt}, ensure_ascii=False).encode()
        return Encoded("/v1/completions", data, "application/json", raw_text)

    async def complete(self, encoded: Encoded) -> dict[str, Any]:
        async with self._send(encoded) as response:
            await response.aread()
            return _json(response, self.origin.name)

    async def stream(self, encoded: Encoded) -> AsyncIterator[dict[str, Any]]:
        """The origin's completion events, parsed, until its `[DONE]`."""
        async with self._send(encoded) as response:
            try:
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        yield json.loads(data)
                    except ValueError:
                        raise OriginError(f"origin {self.origin.name} streamed an event that is not JSON",
                                          502, "malformed") from None
            except httpx.TimeoutException:
                raise OriginError(f"origin {self.origin.name} stopped answering for "
                                  f"{self.origin.timeout_s:g} s mid-stream", 504, "timeout") from None
            except httpx.TransportError as e:
                raise OriginError(f"origin {self.origin.name} broke the stream: {e}", 502, "unreachable") from None

    @asynccontextmanager
    async def _send(self, encoded: Encoded) -> AsyncIterator[httpx.Response]:
        """The origin's response, open for reading, after at most 1 + retries attempts."""
        origin = self.origin
        headers = {"content-type": encoded.content_type}
        if origin.api_key:
            headers["authorization"] = f"Bearer {origin.api_key}"
        timeout = httpx.Timeout(origin.timeout_s, connect=origin.connect_timeout_s)
        for attempt in range(origin.retries + 1):
            last = attempt == origin.retries
            request = self._client.build_request("POST", origin.url + encoded.path, content=encoded.body,
                                                 headers=headers, timeout=timeout)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException:
                raise OriginError(f"origin {origin.name} did not answer within {origin.timeout_s:g} s",
                                  504, "timeout") from None
            except httpx.TransportError as e:
                if last:
                    raise OriginError(f"origin {origin.name} is unreachable at {origin.url} "
                                      f"({type(e).__name__}) after {attempt + 1} attempts", 502, "unreachable") from None
                await asyncio.sleep(_BACKOFF_S * 2 ** attempt)
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                await response.aclose()
                await asyncio.sleep(_BACKOFF_S * 2 ** attempt)
                continue
            try:
                if response.status_code >= 400:
                    await response.aread()
                    raise OriginError(f"origin {origin.name} answered {response.status_code}"
                                      f"{' after ' + str(attempt + 1) + ' attempts' if attempt else ''}: "
                                      f"{_detail(response)}", 502 if response.status_code >= 500 else
                                      response.status_code, "status")
                yield response
            finally:
                await response.aclose()
            return


def _json(response: httpx.Response, name: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise OriginError(f"origin {name} answered with a body that is not JSON", 502, "malformed") from None
    if not isinstance(data, dict) or not data.get("choices"):
        raise OriginError(f"origin {name} answered without choices", 502, "malformed")
    return data


def _detail(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    except (ValueError, AttributeError):
        pass
    return response.text[:500] or response.reason_phrase
