"""The built-in demo origin: a stand-in for a model server, labelled as such in every answer.

It speaks the OpenAI completions API (prompt as text or as token ids, streaming or not)
and answers deterministically with what it received: how many prompt tokens, whether as
ids or text, the sources of any retrieved passages (the `[path:first-last]` citations
of an augmented prompt), and the prompt's last words. It is what `edgepop serve` forwards
to when no real model is configured, and what the PoP's added latency is measured against.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tokenizers import Tokenizer

from . import openai_format as fmt

LABEL = "[edgepop demo origin: a deterministic echo, not a language model]"
MODEL = "edgepop-demo-echo"
_CITATION = re.compile(r"^\[([^\]\s]+:\d+-\d+)\]", re.MULTILINE)


def answer_text(prompt: str, tokens: int, as_ids: bool) -> str:
    """What the echo says about a prompt."""
    sources = list(dict.fromkeys(_CITATION.findall(prompt)))
    tail = " ".join(prompt.split()[-12:])
    return (f"{LABEL} Received {tokens} prompt tokens as {'token ids' if as_ids else 'text'}. "
            f"Retrieved sources: {', '.join(sources) if sources else 'none'}. "
            f"The prompt ends with: \u00ab{tail}\u00bb")


def create_app(tokenizer_json: Path) -> Starlette:
    """The demo origin, decoding and counting with the model's own tokenizer.json."""
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)

    async def completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(fmt.error("the body is not JSON", "invalid_request_error"), status_code=400)
        prompt = body.get("prompt") if isinstance(body, dict) else None
        as_ids = isinstance(prompt, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in prompt)
        if as_ids:
            if any(not 0 <= i < vocab_size for i in prompt):
                return JSONResponse(fmt.error("a prompt token id is outside the vocabulary", "invalid_request_error"),
                                    status_code=400)
            ids, text = prompt, tokenizer.decode(prompt, skip_special_tokens=False)
        elif isinstance(prompt, str):
            ids, text = tokenizer.encode(prompt).ids, prompt
        else:
            return JSONResponse(fmt.error("prompt must be a string or a list of token ids", "invalid_request_error"),
                                status_code=400)
        max_tokens = int(body.get("max_tokens") or 16)
        words = tokenizer.encode(answer_text(text, len(ids), as_ids), add_special_tokens=False)
        finish = "length" if len(words.ids) > max_tokens else "stop"
        answer_ids = words.ids[:max_tokens]
        use = fmt.usage(len(ids), len(answer_ids))
        id = fmt.new_id("cmpl")
        model = body.get("model") or MODEL
        if not body.get("stream"):
            return JSONResponse(fmt.completion(id, model, tokenizer.decode(answer_ids), finish, use))
        return StreamingResponse(_stream(tokenizer, id, model, answer_ids, finish, use),
                                 media_type="text/event-stream")

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                         "owned_by": "edgepop demo origin"}]})

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])


async def _stream(tokenizer: Tokenizer, id: str, model: str, ids: list[int], finish: str,
                  use: dict[str, int]) -> Any:
    """The answer a few tokens per event, as a model streams it; usage in the last event."""
    sent = ""
    for end in range(4, len(ids) + 4, 4):
        text = tokenizer.decode(ids[:end])
        if text.endswith("\ufffd") and end < len(ids):
            continue  # a character split across tokens: wait for the rest of it
        yield fmt.sse(fmt.completion(id, model, text[len(sent):], None, None))
        sent = text
        await asyncio.sleep(0)
    yield fmt.sse(fmt.completion(id, model, "", finish, use))
    yield fmt.SSE_DONE
