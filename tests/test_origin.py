"""`edgepop origin` served by uvicorn on loopback, in front of a model server on loopback.

The model server is a stand-in for vLLM written below: a real HTTP server speaking
OpenAI's /v1/completions (streamed and not) that echoes back the token ids and
parameters it received, and can be told to be slow, to stall mid-stream, or to go in
lockstep with the test so streaming is shown to be incremental.
"""

from __future__ import annotations

import asyncio
import json
import queue
import random
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from edgepop import transport
from edgepop.errors import EdgepopError
from edgepop.origin import create_app
from support import loopback_socket, serving

MODEL = "meta-llama/Llama-3.2-1B-Instruct"
CONTEXT = 4096  # the stand-in's context window, for an error it answers as vLLM would
FRAME = {"content-type": transport.CONTENT_TYPE}


# --- the stand-in model server -----------------------------------------------------------

def stand_in_vllm(acks: queue.Queue) -> Starlette:
    """An OpenAI-compatible /v1/completions that echoes what it got. Not vLLM: a stand-in for it.

    Test-only parameters it reads: echo_delay_s (wait before answering), echo_stall_after
    and echo_stall_s (stop streaming for a while after that many events), echo_lockstep
    (send each streamed event only after the test has acknowledged the previous one).
    """

    async def completions(request: Request) -> Response:
        body = await request.json()
        await asyncio.sleep(body.get("echo_delay_s", 0))
        prompt = body.get("prompt")
        if not (isinstance(prompt, list) and all(isinstance(i, int) for i in prompt)):
            return JSONResponse({"error": {"message": "prompt must be token ids here", "type": "BadRequestError"}}, 400)
        if len(prompt) + body.get("max_tokens", 16) > CONTEXT:
            return JSONResponse({"object": "error", "type": "BadRequestError", "code": 400, "message":
                                 f"This model's maximum context length is {CONTEXT} tokens. However, you requested "
                                 f"{len(prompt) + body.get('max_tokens', 16)} tokens."}, 400)
        received = {"body": body, "authorization": request.headers.get("authorization"),
                    "content_type": request.headers.get("content-type")}
        if not body.get("stream"):
            choice = {"index": 0, "text": " ".join(map(str, prompt)), "finish_reason": "length"}
            return JSONResponse({"id": "cmpl-echo", "object": "text_completion", "model": body["model"],
                                 "choices": [choice], "received": received})
        return StreamingResponse(events(body, prompt), media_type="text/event-stream")

    async def events(body: dict, prompt: list[int]) -> AsyncIterator[bytes]:
        for n, token_id in enumerate(prompt):
            if n == body.get("echo_stall_after"):
                await asyncio.sleep(body["echo_stall_s"])
            event = {"id": "cmpl-echo", "object": "text_completion", "model": body["model"],
                     "choices": [{"index": 0, "text": str(token_id), "finish_reason": None}]}
            yield f"data: {json.dumps(event)}\n\n".encode()
            if body.get("echo_lockstep"):
                try:
                    await asyncio.to_thread(acks.get, timeout=5)
                except queue.Empty:
                    yield b'data: {"error": "the test never received the last event"}\n\n'
                    return
        yield b"data: [DONE]\n\n"

    return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])


@pytest.fixture(scope="module")
def acks() -> queue.Queue:
    return queue.Queue()


@pytest.fixture(scope="module")
def upstream(acks) -> Iterator[str]:
    with serving(stand_in_vllm(acks)) as url:
        yield url


@pytest.fixture(scope="module")
def adapter(upstream) -> Iterator[str]:
    with serving(create_app(upstream)) as url:
        yield url


def complete(adapter: str, ids: list[int], params: dict, **encode) -> httpx.Response:
    frame = transport.encode_request(ids, params, **encode)
    return httpx.post(adapter + "/edgepop/v1/completions", content=frame, headers=FRAME, timeout=30)


def assert_serves(adapter: str) -> None:
    """The adapter still answers a good request after whatever just happened."""
    answer = complete(adapter, [128000, 9906, 11], {"model": MODEL, "max_tokens": 4})
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"]["body"]["prompt"] == [128000, 9906, 11]


# --- the tests ---------------------------------------------------------------------------

@pytest.mark.parametrize("coding", ["bitpack", "varint"])
@pytest.mark.parametrize("compress", [False, True])
def test_ids_and_params_arrive_exactly(adapter, coding, compress):
    rng = random.Random(42)
    ids = [128000, 0, 1, 127, 128, 16383, 16384, 128255] + [rng.randrange(128_256) for _ in range(3000)]
    params = {"model": MODEL, "max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "stop": ["\n\n", "</s>"],
              "seed": 7, "logprobs": None, "user": "édge-ユーザー", "stream": False}
    answer = complete(adapter, ids, params, coding=coding, compress=compress)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    received = answer.json()["received"]
    assert received["body"] == {**params, "prompt": ids}
    assert received["content_type"] == "application/json"


def test_the_model_servers_api_key_is_passed_on(adapter):
    frame = transport.encode_request([1, 2], {"model": MODEL})
    answer = httpx.post(adapter + "/edgepop/v1/completions", content=frame,
                        headers={**FRAME, "authorization": "Bearer sk-model-server"})
    assert answer.json()["received"]["authorization"] == "Bearer sk-model-server"


def test_streaming_is_passed_through_event_by_event(adapter, acks):
    # The stand-in sends each event only after this test has received the one before, so
    # an adapter that buffered the stream would never deliver the first one.
    ids = [128000, 791, 4062, 14198, 39935, 35308, 927, 279]
    frame = transport.encode_request(ids, {"model": MODEL, "stream": True, "echo_lockstep": True})
    texts = []
    with httpx.stream("POST", adapter + "/edgepop/v1/completions", content=frame, headers=FRAME, timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            event = json.loads(line[len("data: "):])
            assert "error" not in event, event
            texts.append(event["choices"][0]["text"])
            acks.put(len(texts))
    assert texts == [str(i) for i in ids]
    assert acks.empty()


def test_corrupt_frame_is_a_400_naming_the_checksum(adapter):
    frame = bytearray(transport.encode_request([128000, 9906, 11, 6964, 0], {"model": MODEL}))
    frame[-2] ^= 0x10
    answer = httpx.post(adapter + "/edgepop/v1/completions", content=bytes(frame), headers=FRAME)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "checksum mismatch" in error["message"]
    assert_serves(adapter)


def test_not_a_frame(adapter):
    body = json.dumps({"model": MODEL, "prompt": "Hello"}).encode()
    answer = httpx.post(adapter + "/edgepop/v1/completions", content=body, headers=FRAME)
    assert answer.status_code == 400
    assert "not an edgepop token frame" in answer.json()["error"]["message"]
    answer = httpx.post(adapter + "/edgepop/v1/completions", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 415
    assert transport.CONTENT_TYPE in answer.json()["error"]["message"]
    assert_serves(adapter)


def test_oversized_frame_is_a_413(upstream):
    with serving(create_app(upstream, max_bytes=10_000)) as small:
        answer = complete(small, list(range(10_000)), {"model": MODEL}, coding="varint")
        assert answer.status_code == 413
        assert "over the limit of 10,000 bytes" in answer.json()["error"]["message"]
        assert_serves(small)


def test_model_server_errors_pass_through_unchanged(adapter, upstream):
    ids, params = list(range(5000)), {"model": MODEL, "max_tokens": 16}
    direct = httpx.post(upstream + "/v1/completions", json={**params, "prompt": ids})
    answer = complete(adapter, ids, params)
    assert direct.status_code == answer.status_code == 400
    assert answer.content == direct.content
    assert "maximum context length is 4096" in answer.json()["message"]
    assert_serves(adapter)


def test_model_server_down_is_a_502_until_it_comes_up():
    sock = loopback_socket()  # bound, not listening: connections are refused
    url = "http://127.0.0.1:%d" % sock.getsockname()[1]
    with serving(create_app(url, timeout_s=5)) as adapter:
        start = time.monotonic()
        answer = complete(adapter, [1, 2, 3], {"model": MODEL})
        assert answer.status_code == 502
        assert time.monotonic() - start < 3
        error = answer.json()["error"]
        assert error["type"] == "upstream_unreachable"
        assert f"cannot reach the model server at {url}/v1/completions" in error["message"]
        assert httpx.get(adapter + "/healthz").json()["status"] == "ok"
        with serving(stand_in_vllm(queue.Queue()), sock):
            assert_serves(adapter)


def test_slow_model_server_is_a_504_without_waiting_for_it(upstream):
    with serving(create_app(upstream, timeout_s=0.5)) as adapter:
        start = time.monotonic()
        answer = complete(adapter, [1, 2, 3], {"model": MODEL, "echo_delay_s": 3})
        elapsed = time.monotonic() - start
        assert answer.status_code == 504
        assert elapsed < 2.5
        error = answer.json()["error"]
        assert error["type"] == "upstream_timeout"
        assert "did not answer within 0.5 s" in error["message"]
        assert_serves(adapter)


def test_stream_stalling_past_the_timeout_is_cut_off_not_ended_cleanly(upstream):
    # Events already relayed cannot be taken back; the client must see a broken stream,
    # never one that looks complete.
    with serving(create_app(upstream, timeout_s=0.5)) as adapter:
        frame = transport.encode_request([10, 20, 30, 40], {"model": MODEL, "stream": True,
                                                            "echo_stall_after": 2, "echo_stall_s": 3})
        texts = []
        start = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("POST", adapter + "/edgepop/v1/completions", content=frame, headers=FRAME,
                              timeout=30) as answer:
                assert answer.status_code == 200
                for line in answer.iter_lines():
                    if line.startswith("data: "):
                        texts.append(line)
        assert time.monotonic() - start < 2.5
        assert len(texts) == 2 and "[DONE]" not in "".join(texts)
        assert_serves(adapter)


def test_healthz(adapter, upstream):
    answer = httpx.get(adapter + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "upstream": upstream}


def test_upstream_must_be_an_http_url():
    with pytest.raises(EdgepopError, match="must be an http:// or https:// URL, got '127.0.0.1:8000'"):
        create_app("127.0.0.1:8000")
