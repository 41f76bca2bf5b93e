"""The PoP end to end: a real uvicorn server on loopback, the `openai` SDK as the client.

The PoP runs the Llama 3.2 tokenizer component and the RAG component over a small
knowledge base of real standard-library code, and forwards to the built-in demo origin
(a labelled echo) or to small origins defined here that fail on purpose: one that is
down, one that is too slow, one that answers 500 and counts the attempts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sysconfig
from pathlib import Path

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tokenizers import Tokenizer

from edgepop.kb.builder import build
from edgepop.kb.embedder import Embedder
from edgepop.pop.app import create_app
from edgepop.pop.chat import ChatTemplate
from edgepop.pop.config import parse
from edgepop import origin as origin_adapter
from edgepop.pop import demo_origin
from edgepop.pop.demo_origin import LABEL
from support import TOKENIZERS_DIR, component_path, free_port, serving

STDLIB = Path(sysconfig.get_paths()["stdlib"])
CLIENT_KEY, SMALL_KEY, ADMIN_TOKEN = "sk-edge-test-client", "sk-edge-test-small", "admin-test-token"


class FailingOrigins:
    """Origins that misbehave on purpose, with the attempts they saw."""

    def __init__(self) -> None:
        self.attempts = {"slow": 0, "failing": 0, "counting": 0}

    def app(self) -> Starlette:
        async def slow(request: Request) -> JSONResponse:
            self.attempts["slow"] += 1
            await asyncio.sleep(30)
            return JSONResponse({})

        async def failing(request: Request) -> JSONResponse:
            self.attempts["failing"] += 1
            return JSONResponse({"error": {"message": "the model crashed"}}, status_code=500)

        async def counting(request: Request) -> JSONResponse:
            self.attempts["counting"] += 1
            return JSONResponse({"error": {"message": "should not be reached"}}, status_code=500)

        return Starlette(routes=[Route("/slow/v1/completions", slow, methods=["POST"]),
                                 Route("/failing/v1/completions", failing, methods=["POST"]),
                                 Route("/counting/v1/completions", counting, methods=["POST"])])


@pytest.fixture(scope="module")
def failing() -> FailingOrigins:
    return FailingOrigins()


@pytest.fixture(scope="module")
def pop(tmp_path_factory, failing) -> str:
    tmp = tmp_path_factory.mktemp("pop")
    build([STDLIB / "json", STDLIB / "textwrap.py"], tmp / "kb", embedder=Embedder())
    tokenizer = str(component_path("llama-3.2"))
    template = str(TOKENIZERS_DIR / "llama-3.2" / "tokenizer_config.json")
    tokenizer_json = TOKENIZERS_DIR / "llama-3.2" / "tokenizer.json"
    with serving(failing.app()) as bad, serving(demo_origin.create_app(tokenizer_json)) as demo, \
            serving(origin_adapter.create_app(demo)) as adapter:
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        model = {"tokenizer": tokenizer, "chat_template": template, "context_window": 8192}
        config = parse({
            "server": {"store": str(tmp / "store"), "workers": 2},
            "auth": {"admin_tokens": [ADMIN_TOKEN],
                     "api_keys": {CLIENT_KEY: {"tokens_per_minute": 10_000_000},
                                  SMALL_KEY: {"tokens_per_minute": 600}}},
            "origins": {
                "demo": {"kind": "demo"},
                "adapter": {"kind": "edgepop", "url": adapter},
                "text-only": {"kind": "openai", "url": demo, "prompt": "text"},
                "down": {"kind": "openai", "url": down, "retries": 2, "connect_timeout_s": 0.5},
                "slow": {"kind": "openai", "url": f"{bad}/slow", "timeout_s": 1.0, "retries": 2},
                "failing": {"kind": "openai", "url": f"{bad}/failing", "retries": 2},
                "counting": {"kind": "openai", "url": f"{bad}/counting", "retries": 0},
            },
            "models": [
                {"name": "llama-3.2", **model, "origin": "demo"},
                {"name": "llama-3.2-rag", **model, "origin": "demo",
                 "rag": {"kb": str(tmp / "kb"), "component": str(component_path("rag")), "budget": 800}},
                {"name": "small-window", **model, "context_window": 64, "origin": "counting"},
                {"name": "via-adapter", **model, "origin": "adapter"},
                {"name": "via-text", **model, "origin": "text-only"},
                {"name": "via-down", **model, "origin": "down"},
                {"name": "via-slow", **model, "origin": "slow"},
                {"name": "via-failing", **model, "origin": "failing"},
            ],
        }, tmp)
        with serving(create_app(config)) as url:
            yield url


@pytest.fixture()
def client(pop) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{pop}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def reference() -> tuple[Tokenizer, ChatTemplate]:
    """HF tokenizers and the model's chat template: what the origin must receive."""
    config = TOKENIZERS_DIR / "llama-3.2" / "tokenizer_config.json"
    return Tokenizer.from_file(str(TOKENIZERS_DIR / "llama-3.2" / "tokenizer.json")), ChatTemplate.from_tokenizer_config(config)


MESSAGES = [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Wie teilt man eine URL in ihre Teile? 東京で使えますか?"}]


def test_models_lists_what_the_pop_serves(client):
    assert {m.id for m in client.models.list()} >= {"llama-3.2", "llama-3.2-rag"}


def test_chat_is_tokenized_at_the_edge_exactly_as_the_model_would(client, reference):
    tokenizer, template = reference
    expected = tokenizer.encode(template.render(MESSAGES), add_special_tokens=False).ids
    answer = client.chat.completions.create(model="llama-3.2", messages=MESSAGES, max_tokens=200)
    assert answer.usage.prompt_tokens == len(expected)
    content = answer.choices[0].message.content
    assert content.startswith(LABEL)
    assert f"Received {len(expected)} prompt tokens as token ids" in content
    assert "東京で使えますか?" in content  # the origin decoded the ids back to the prompt's words


def test_chat_streams_the_same_answer(client):
    whole = client.chat.completions.create(model="llama-3.2", messages=MESSAGES, max_tokens=200)
    stream = client.chat.completions.create(model="llama-3.2", messages=MESSAGES, max_tokens=200, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 3  # it arrived in pieces
    assert "".join(deltas) == whole.choices[0].message.content
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_completions_plain_and_streaming(client, reference):
    tokenizer, _ = reference
    prompt = "def fibonacci(n: int) -> int:\n    "
    answer = client.completions.create(model="llama-3.2", prompt=prompt, max_tokens=100)
    assert answer.usage.prompt_tokens == len(tokenizer.encode(prompt).ids)  # BOS added, as HF does
    assert answer.choices[0].text.startswith(LABEL)
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="llama-3.2", prompt=prompt, max_tokens=100, stream=True) if c.choices)
    assert streamed == answer.choices[0].text


def test_through_edgepop_origin_the_ids_cross_as_a_compact_frame(client, pop, reference):
    tokenizer, template = reference
    expected = len(tokenizer.encode(template.render(MESSAGES), add_special_tokens=False).ids)
    answer = client.chat.completions.create(model="via-adapter", messages=MESSAGES, max_tokens=200)
    assert f"Received {expected} prompt tokens as token ids" in answer.choices[0].message.content
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="via-adapter", messages=MESSAGES, max_tokens=200, stream=True) if c.choices)
    assert streamed == answer.choices[0].message.content
    metrics = httpx.get(f"{pop}/metrics").text
    forwarded = _sample(metrics, 'edgepop_forwarded_bytes_total{model="via-adapter",origin="adapter"}')
    as_text = _sample(metrics, 'edgepop_forwarded_as_text_bytes_total{model="via-adapter",origin="adapter"}')
    assert 0 < forwarded < as_text  # zstd'd varint frames: smaller than the prompt as JSON text


def test_an_origin_that_takes_no_ids_gets_the_text(client, reference):
    tokenizer, _ = reference
    prompt = "Plain text for a server that takes no token ids."
    answer = client.completions.create(model="via-text", prompt=prompt, max_tokens=100)
    assert answer.usage.prompt_tokens == len(tokenizer.encode(prompt).ids)  # still counted at the edge
    assert "prompt tokens as text" in answer.choices[0].text


def _sample(metrics: str, name: str) -> float:
    return float(next(line for line in metrics.splitlines() if line.startswith(name)).split()[-1])


def test_max_tokens_bounds_the_answer(client):
    answer = client.completions.create(model="llama-3.2", prompt="hello", max_tokens=5)
    assert answer.usage.completion_tokens == 5 and answer.choices[0].finish_reason == "length"


def test_rag_augments_the_prompt_with_cited_sources(client, pop):
    question = "How do I remove common leading whitespace from every line of a text?"
    raw = client.chat.completions.with_raw_response.create(
        model="llama-3.2-rag", messages=[{"role": "user", "content": question}], max_tokens=300)
    answer = raw.parse()
    sources = raw.headers["x-edgepop-sources"].split(", ")
    assert any(s.startswith("textwrap.py:") for s in sources)
    assert "Retrieved sources: " + ", ".join(sources) in answer.choices[0].message.content
    assert answer.usage.prompt_tokens <= 800 + 40  # the budget, plus the chat template's own tokens
    assert "augment;dur=" in raw.headers["server-timing"]


def test_a_prompt_over_the_context_window_is_refused_at_the_edge(client, failing):
    before = failing.attempts["counting"]
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="small-window", prompt=" ".join(["word"] * 100), max_tokens=10)
    error = refused.value.body
    assert error["code"] == "context_length_exceeded"
    assert "context window is 64 tokens" in error["message"] and "max_tokens asks for 10" in error["message"]
    assert error["prompt_tokens"] == 101  # 100 words and BOS
    assert failing.attempts["counting"] == before  # the origin never saw it


def test_quota_exhaustion_is_429_with_retry_after(pop):
    client = openai.OpenAI(base_url=f"{pop}/v1", api_key=SMALL_KEY, max_retries=0)
    client.completions.create(model="llama-3.2", prompt="a short prompt", max_tokens=400)
    with pytest.raises(openai.RateLimitError) as limited:
        client.completions.create(model="llama-3.2", prompt="a short prompt", max_tokens=400)
    retry_after = int(limited.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert "token quota exceeded" in limited.value.body["message"]
    # Another key is not affected.
    openai.OpenAI(base_url=f"{pop}/v1", api_key=CLIENT_KEY, max_retries=0).completions.create(
        model="llama-3.2", prompt="a short prompt", max_tokens=400)


def test_keys_are_checked_and_admin_tokens_are_not_client_keys(pop):
    for key in ("sk-unknown", ADMIN_TOKEN):
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{pop}/v1", api_key=key, max_retries=0).models.list()
    response = httpx.get(f"{pop}/admin/components", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 401


def test_an_origin_that_is_down_is_a_502_after_bounded_retries(client):
    with pytest.raises(openai.APIStatusError) as failed:
        client.completions.create(model="via-down", prompt="hello", max_tokens=5)
    assert failed.value.status_code == 502
    assert "unreachable" in failed.value.body["message"] and "after 3 attempts" in failed.value.body["message"]


def test_a_slow_origin_is_a_504_without_retrying(client, failing):
    before = failing.attempts["slow"]
    with pytest.raises(openai.APIStatusError) as failed:
        client.completions.create(model="via-slow", prompt="hello", max_tokens=5, timeout=20)
    assert failed.value.status_code == 504
    assert "did not answer within 1 s" in failed.value.body["message"]
    assert failing.attempts["slow"] == before + 1


def test_a_failing_origin_is_retried_then_a_502_with_its_message(client, failing):
    before = failing.attempts["failing"]
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="via-failing", messages=MESSAGES, max_tokens=5, stream=True)
    assert failed.value.status_code == 502
    assert "answered 500" in failed.value.body["message"] and "the model crashed" in failed.value.body["message"]
    assert failing.attempts["failing"] == before + 1  # 500 is the origin's answer, not a transient failure


def test_concurrent_requests_keep_to_themselves(client):
    prompts = [f"Request number {i}: please echo the word token{i}x" for i in range(12)]

    def ask(prompt: str) -> str:
        return client.chat.completions.create(
            model="llama-3.2", messages=[{"role": "user", "content": prompt}], max_tokens=200).choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, prompts))
    for i, answer in enumerate(answers):
        assert f"token{i}x" in answer
        assert not any(f"token{j}x" in answer for j in range(12) if j != i)


def test_bad_requests_are_400s_naming_the_field(client, pop):
    with pytest.raises(openai.BadRequestError, match="unknown model 'nope'"):
        client.completions.create(model="nope", prompt="x")
    with pytest.raises(openai.BadRequestError, match="messages must be a non-empty list"):
        client.chat.completions.create(model="llama-3.2", messages=[])
    response = httpx.post(f"{pop}/v1/completions", content=b"{not json",
                          headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 400 and "not JSON" in response.json()["error"]["message"]


def test_health_readiness_and_metrics(client, pop):
    client.completions.create(model="llama-3.2", prompt="count me", max_tokens=3)
    assert httpx.get(f"{pop}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{pop}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = httpx.get(f"{pop}/metrics").text
    for name in ('edgepop_stage_seconds_bucket{le="0.005",model="llama-3.2",stage="tokenize"}',
                 'edgepop_prompt_tokens_total{model="llama-3.2"}', 'edgepop_forwarded_bytes_total',
                 'edgepop_instantiations_total{component="llama-3.2"', 'edgepop_limits_hit_total'):
        assert name in metrics, name


def test_each_response_says_its_request_id_and_stage_times(pop):
    response = httpx.post(f"{pop}/v1/completions", headers={"authorization": f"Bearer {CLIENT_KEY}",
                                                            "x-request-id": "req-42"},
                          json={"model": "llama-3.2", "prompt": "hi", "max_tokens": 3})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    stages = [part.split(";")[0] for part in response.headers["server-timing"].split(", ")]
    assert stages == ["tokenize", "check", "forward"]
    assert json.loads(response.text)["choices"][0]["text"]
