"""Tokenizer speed, side by side in one run: HF native, tiktoken, Python native, the component.

Throughput is over whole corpora (one `encode` per document, as prompts arrive), timed
with a few rounds each; `make bench` turns the medians into MB/s and ratios to HF, for
Llama 3.2 in detail and for every model (each family) on the same code and multilingual
texts. Every round starts from a freshly loaded engine (the component: a fresh instance,
its baked cache only), so no round profits from words an earlier round cached.
"""

from __future__ import annotations

import contextlib
import json
import random
import string
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import edgepop.runtime
from edgepop import corpora
from edgepop.runtime import LoadedComponent, Runtime
from edgepop.tokenizer import TokenizerSession, warm_up

from page_cache_state import evict
from support import BYTE_LEVEL_MODELS, MODELS, component_path, tokenizer_json
from engines import component, component_offsets, hf, python_native, python_native_offsets, tiktoken_encoding

ROUNDS = 3
MODEL = "llama-3.2"


@pytest.fixture(scope="module")
def code() -> list[str]:
    """4 MB of standard-library source, the corpus the issue's reference figures were measured on."""
    return [doc.text for doc in corpora.code_corpus(4_000_000)]


@pytest.fixture(scope="module")
def multilingual() -> list[str]:
    return list(corpora.multilingual_corpus(bytes_per_language=16_000).values())


def run_corpus(benchmark, make_encode, texts: list[str], group: str) -> None:
    """Time encoding every text, each round with an engine from `make_encode()`."""
    benchmark.group = group
    benchmark.extra_info["bytes"] = sum(len(t.encode("utf-8")) for t in texts)

    def all_documents(encode) -> int:
        return sum(len(encode(t)) for t in texts)

    benchmark.extra_info["tokens"] = benchmark.pedantic(
        all_documents, setup=lambda: ((make_encode(),), {}), rounds=ROUNDS, iterations=1
    )


ENGINES = ["hf", "tiktoken", "python-native", "component", "python-native-offsets", "component-offsets"]


def make_engine(name: str, model: str, runtime: Runtime, check: list[str]):
    path = tokenizer_json(model)
    if name == "hf":
        return hf(path)
    if name == "tiktoken":
        encode = tiktoken_encoding(path, check)
        if encode is None:
            pytest.skip(f"{model}'s BPE is not tiktoken's")
        return encode
    if name == "python-native":
        return python_native(path)
    if name == "python-native-offsets":
        return python_native_offsets(path)
    if name == "component-offsets":
        return component_offsets(runtime, component_path(model))
    return component(runtime, component_path(model))


@pytest.mark.parametrize("engine", ENGINES)
def test_code_throughput(benchmark, engine: str, runtime: Runtime, code: list[str]) -> None:
    make_engine(engine, MODEL, runtime, code[:20])  # skips here, not in a round, when tiktoken does not apply
    run_corpus(benchmark, lambda: make_engine(engine, MODEL, runtime, code[:20]), code,
               f"throughput: {MODEL}, 4 MB of code")


@pytest.mark.parametrize("engine", ENGINES)
def test_multilingual_throughput(benchmark, engine: str, runtime: Runtime, multilingual: list[str]) -> None:
    make_engine(engine, MODEL, runtime, multilingual[:20])
    run_corpus(benchmark, lambda: make_engine(engine, MODEL, runtime, multilingual[:20]), multilingual,
               f"throughput: {MODEL}, multilingual")


@pytest.mark.parametrize("engine", ["hf", "python-native", "component"])
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("corpus", ["1 MB of code", "multilingual"])
def test_every_model(benchmark, corpus: str, model: str, engine: str, runtime: Runtime, code: list[str],
                     multilingual: list[str]) -> None:
    """Each model on the same texts: about 1 MB of the code above, and all of the multilingual corpus."""
    texts = code[: len(code) // 4] if corpus == "1 MB of code" else multilingual
    benchmark.extra_info["family"] = family(model)
    run_corpus(benchmark, lambda: make_engine(engine, model, runtime, texts[:20]), texts,
               f"every model: {corpus}: {model}")


@cache
def family(model: str) -> str:
    """The tokenizer family a model's row stands for."""
    if model in BYTE_LEVEL_MODELS:
        return "byte-level BPE"
    kind = json.loads(tokenizer_json(model).read_text(encoding="utf-8"))["model"]["type"]
    return "SentencePiece BPE" if kind == "BPE" else kind


def _first_encode_rounds(benchmark, loaded, prompt: str, before_round=None) -> None:
    """Time getting an instance and encoding `prompt` with it, as one request does.

    Each round's instance is closed in the next round's untimed setup, so the time is the
    request's, not the teardown's (which a server does after answering).
    """
    sessions: list[TokenizerSession] = []

    def setup():
        while sessions:
            sessions.pop().close()
        if before_round:
            before_round()
        return (), {}

    def request() -> str:
        sessions.append(TokenizerSession(loaded.instantiate()))
        return sessions[-1].encode_packed(prompt)

    benchmark.group = "latency"
    benchmark.extra_info["prompt_bytes"] = len(prompt.encode("utf-8"))
    assert benchmark.pedantic(request, setup=setup, rounds=300, iterations=1, warmup_rounds=5)
    setup()


def _prompt(code: list[str]) -> str:
    return code[1].encode("utf-8")[:1024].decode("utf-8", "ignore")


@contextlib.contextmanager
def _loaded_from_an_uncached_artefact(path: Path) -> Iterator[LoadedComponent]:
    """A fresh runtime loading `path` while its compiled artefact is out of the page cache.

    How the artefact comes back in decides what an instance's page faults cost (see
    `edgepop.page_cache`), so the cold rows start from the same state, as after a reboot,
    whatever earlier processes did to the page cache.
    """
    Runtime().load(path).runtime.close()  # make sure the artefact exists
    runtime = Runtime()
    evict(runtime.artefact_path(path))
    try:
        yield runtime.load(path)
    finally:
        runtime.close()


def test_instantiate_and_first_encode_of_1kb(benchmark, code: list[str]) -> None:
    """Cold: a new store, instantiation and the first encode of a 1 KB prompt, all on the request path."""
    with _loaded_from_an_uncached_artefact(component_path(MODEL)) as loaded:
        _first_encode_rounds(benchmark, loaded, _prompt(code))


def test_instantiate_and_first_encode_of_1kb_artefact_faulted_in(benchmark, code: list[str], monkeypatch) -> None:
    """The cold row without `page_cache.read_through`: the artefact comes back page fault by
    page fault through wasmtime's mappings, which the kernel caches one page at a time."""
    path = component_path(MODEL)
    with monkeypatch.context() as patched:
        patched.setattr(edgepop.runtime, "read_through", lambda artefact: None)
        with _loaded_from_an_uncached_artefact(path) as loaded:
            _first_encode_rounds(benchmark, loaded, _prompt(code))
    with _loaded_from_an_uncached_artefact(path):
        pass  # read through again: the benchmarks after this one see what the host leaves


def test_prepared_instance_first_encode_of_1kb(benchmark, code: list[str]) -> None:
    """Served: a never-used instance prepared ahead (LoadedComponent.prepare), first encode of 1 KB.

    Requests arrive 20 ms apart, so the background thread keeps the pool filled.
    """
    runtime = Runtime()
    loaded = runtime.load(component_path(MODEL))
    loaded.prepare(4, warm_up)
    try:
        _first_encode_rounds(benchmark, loaded, _prompt(code), before_round=lambda: time.sleep(0.02))
    finally:
        runtime.close()


def test_load_compiled_component(benchmark) -> None:
    """A restarted host loading a component whose AOT artefact is kept (and cached): a read
    through the page cache and a map, not a compile."""
    path = component_path(MODEL)
    Runtime().load(path)  # make sure the artefact exists
    runtimes: list[Runtime] = []

    def fresh_runtime():
        runtimes.append(Runtime())
        return (runtimes[-1],), {}

    benchmark.group = "latency"
    benchmark.pedantic(lambda rt: rt.load(path), setup=fresh_runtime, rounds=30, iterations=1)
    for rt in runtimes:
        rt.close()


def _no_whitespace_inputs(size: int, multilingual: list[str]) -> dict[str, str]:
    rng = random.Random(7)
    cjk = "".join(ch for text in multilingual for ch in text if "\u4e00" <= ch <= "\u9fff")
    return {
        "random letters": "".join(rng.choices(string.ascii_lowercase, k=size)),
        "one repeated letter": "a" * size,
        "random base64": "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=size)),
        "CJK without spaces": "".join(rng.choices(cjk, k=size // 3)),
    }


@pytest.mark.parametrize("engine", ["hf", "python-native", "component"])
@pytest.mark.parametrize("kind", ["ordinary text", "random letters", "one repeated letter", "random base64",
                                  "CJK without spaces"])
def test_worst_case_1mb(benchmark, kind: str, engine: str, runtime: Runtime, code: list[str],
                        multilingual: list[str]) -> None:
    """1 MB with no whitespace against 1 MB of ordinary text: BPE must not go quadratic."""
    size = 1_000_000
    if kind == "ordinary text":
        text = "".join(code)[:size]
    else:
        text = _no_whitespace_inputs(size, multilingual)[kind]
    benchmark.group = f"worst case: {engine}"
    benchmark.extra_info["bytes"] = len(text.encode("utf-8"))

    def fresh_engine():
        # A new engine each round, so no round finds the previous one's cached words.
        return (make_engine(engine, MODEL, runtime, []),), {}

    benchmark.pedantic(lambda encode: len(encode(text)), setup=fresh_engine, rounds=ROUNDS, iterations=1)
