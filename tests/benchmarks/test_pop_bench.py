"""What the PoP adds: latency against calling the origin directly, and requests per second.

Both servers run as their own processes (`edgepop demo-origin`, `edgepop serve`) on
loopback, as they would be deployed; the client is this process. Latency is measured
one request at a time, a 1 KB prompt, 16 completion tokens; throughput under a load
generator keeping 8 requests in flight for a fixed time. Routes: tokenize only, and
tokenize + RAG (augmenting with passages from the demo knowledge base, 1,000-token budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgepop.corpora import code_corpus
from edgepop.pop.demo_kb import ensure_demo_kb
from support import BUILD_DIR, TOKENIZERS_DIR, component_path, free_port

LATENCY = "latency: PoP on loopback, 1 KB prompt, 16 tokens out"
LOAD = "load: PoP on loopback, 8 requests in flight"
LOAD_SECONDS = 10.0
EDGEPOP = str(Path(sys.executable).with_name("edgepop"))


@contextlib.contextmanager
def _process(args: list[str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen([EDGEPOP, *args], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"edgepop {args[0]} exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"edgepop {args[0]} did not become ready")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(PoP URL, demo origin URL)."""
    kb = BUILD_DIR / "kb" / "demo"
    ensure_demo_kb(kb)
    origin_port, pop_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{origin_port}"
    config = tmp_path_factory.mktemp("pop-bench") / "pop.toml"
    config.write_text(f"""
[server]
store = "{config.parent / 'store'}"
[origins.demo]
kind = "openai"
url = "{origin}"
prompt = "ids"
[[models]]
name = "tokenize-only"
tokenizer = "{component_path('llama-3.2')}"
chat_template = "{TOKENIZERS_DIR / 'llama-3.2' / 'tokenizer_config.json'}"
context_window = 131072
origin = "demo"
[[models]]
name = "tokenize-rag"
tokenizer = "{component_path('llama-3.2')}"
chat_template = "{TOKENIZERS_DIR / 'llama-3.2' / 'tokenizer_config.json'}"
context_window = 131072
origin = "demo"
[models.rag]
kb = "{kb}"
component = "{component_path('rag')}"
budget = 1000
""")
    with _process(["demo-origin", "--port", str(origin_port),
                   "--tokenizer-json", str(TOKENIZERS_DIR / "llama-3.2" / "tokenizer.json")], f"{origin}/v1/models"):
        with _process(["serve", "--config", str(config), "--port", str(pop_port)],
                      f"http://127.0.0.1:{pop_port}/readyz"):
            yield f"http://127.0.0.1:{pop_port}", origin


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    """1 KB slices of real code, different each request."""
    text = "".join(d.text for d in code_corpus(400_000))
    return [text[i:i + 1000] for i in range(0, 300_000, 1000)]


def _body(model: str, prompt: str) -> dict:
    return {"model": model, "prompt": prompt, "max_tokens": 16}


def _latency(benchmark, url: str, model: str, prompts: list[str], rounds: int) -> None:
    client = httpx.Client(timeout=60)
    next_prompt = iter(prompts * 10)

    def one() -> None:
        response = client.post(f"{url}/v1/completions", json=_body(model, next(next_prompt)))
        assert response.status_code == 200, response.text

    benchmark.group = LATENCY
    benchmark.pedantic(one, rounds=rounds, iterations=1, warmup_rounds=5)
    client.close()


def test_origin_directly(benchmark, servers, prompts):
    """The client sends the text straight to the demo origin, which tokenizes it itself."""
    _latency(benchmark, servers[1], "edgepop-demo-echo", prompts, 200)


def test_pop_tokenize_only(benchmark, servers, prompts):
    _latency(benchmark, servers[0], "tokenize-only", prompts, 200)


def test_pop_tokenize_rag(benchmark, servers, prompts):
    _latency(benchmark, servers[0], "tokenize-rag", prompts, 100)


async def _load(url: str, model: str, prompts: list[str], seconds: float, in_flight: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(offset: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            response = await client.post(f"{url}/v1/completions", json=_body(model, prompts[i % len(prompts)]))
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += in_flight

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=in_flight)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(k, client) for k in range(in_flight)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"requests_per_s": len(latencies) / elapsed, "errors": errors,
            "p50_ms": statistics.median(latencies) * 1e3,
            "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1e3}


@pytest.mark.parametrize("route", ["origin directly", "tokenize-only", "tokenize-rag"])
def test_requests_per_second(benchmark, servers, prompts, route):
    url, model = (servers[1], "edgepop-demo-echo") if route == "origin directly" else (servers[0], route)
    asyncio.run(_load(url, model, prompts, 2.0, 8))  # warm: pools filled, connections open
    benchmark.group = LOAD
    results = benchmark.pedantic(lambda: asyncio.run(_load(url, model, prompts, LOAD_SECONDS, 8)),
                                 rounds=1, iterations=1)
    benchmark.extra_info.update(results)
    assert results["errors"] == 0 and results["requests_per_s"] > 0
