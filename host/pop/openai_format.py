"""The OpenAI API's JSON shapes, as the PoP and the demo origin answer in them.

The PoP always asks origins for a plain completion of the token ids it made (the chat
template is applied at the edge), so a chat request's answer is a completion re-shaped
into `chat.completion` (or `chat.completion.chunk` events when streaming).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(id: str, model: str, text: str, finish_reason: str | None, use: dict[str, int] | None) -> dict[str, Any]:
    return {"id": id, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
            "usage": use}


def chat_completion(id: str, model: str, text: str, finish_reason: str | None,
                    use: dict[str, int] | None) -> dict[str, Any]:
    return {"id": id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish_reason, "logprobs": None}],
            "usage": use}


def chat_chunk(id: str, model: str, delta: dict[str, Any], finish_reason: str | None,
               use: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                          "logprobs": None}]}
    if use is not None:
        chunk["usage"] = use
    return chunk


def as_chat(choice_chunk: dict[str, Any], model: str) -> dict[str, Any]:
    """A streamed `text_completion` event re-shaped into a `chat.completion.chunk` event."""
    choices = choice_chunk.get("choices") or [{}]
    choice = choices[0]
    return chat_chunk(choice_chunk.get("id", new_id("chatcmpl")), model,
                      {"content": choice.get("text", "")} if choice.get("text") else {},
                      choice.get("finish_reason"), choice_chunk.get("usage"))


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: <json>` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


SSE_DONE = sse("[DONE]")


def error(message: str, type: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, "param": None, **extra}}
