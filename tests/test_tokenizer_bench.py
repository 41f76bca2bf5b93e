"""Native throughput of edgepop_tokenizer against HF `tokenizers`, single-threaded.

Nothing here asserts speed. With pytest-benchmark (skipped by default: `--benchmark-skip`
is in addopts) run `pytest tests/test_tokenizer_bench.py --benchmark-enable`; or run
this file as a script for a table of MB/s medians:

    python tests/test_tokenizer_bench.py [model ...]

Both encoders take one document per call, as a component serving requests would; HF's
batch encoder would use every core.
"""

from __future__ import annotations

import base64
import random
import statistics
import sys
import time
from collections.abc import Callable

import pytest
from tokenizers import Tokenizer as HFTokenizer

from conftest import BYTE_LEVEL_MODELS, tokenizer_json
from edgepop import corpora
from edgepop_tokenizer import Tokenizer


def load(name: str) -> tuple[Tokenizer, HFTokenizer]:
    text = tokenizer_json(name).read_text(encoding="utf-8")
    ours = Tokenizer.from_str(text)
    ours.warm()
    return ours, HFTokenizer.from_str(text)


def encode_all(encode: Callable[[str], object], texts: list[str]) -> None:
    for text in texts:
        encode(text)


@pytest.mark.parametrize("name", BYTE_LEVEL_MODELS)
@pytest.mark.parametrize("engine", ["edgepop", "hf"])
def test_code_corpus_throughput(benchmark, code_corpus, name: str, engine: str) -> None:
    ours, hf = load(name)
    texts = [doc.text for doc in code_corpus]
    encode = ours.encode if engine == "edgepop" else hf.encode
    benchmark.pedantic(encode_all, args=(encode, texts), rounds=3, warmup_rounds=1)


def worst_cases(size: int = 1_000_000) -> dict[str, str]:
    """Texts without whitespace, where every byte is one long word for BPE."""
    rng = random.Random(0)
    return {
        "random a-z": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size)),
        "one letter repeated": "a" * size,
        "random base64": base64.b64encode(rng.randbytes(size * 3 // 4)).decode(),
        "CJK without spaces": "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(size // 3)),
    }


def _median_seconds(encode: Callable[[str], object], texts: list[str], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        encode_all(encode, texts)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(names: list[str]) -> None:
    code = [doc.text for doc in corpora.code_corpus()]
    multilingual = list(corpora.multilingual_corpus().values())
    ordinary = "".join(code)[:1_000_000]
    for name in names:
        ours, hf = load(name)
        for label, texts in (("code", code), ("multilingual", multilingual)):
            megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
            cold = _median_seconds(load(name)[0].encode, texts, rounds=1)  # novel words: BPE in Python
            warm = _median_seconds(ours.encode, texts)  # a long-lived instance, cache as full as allowed
            theirs = _median_seconds(hf.encode, texts)
            print(
                f"{name:14s} {label:12s} {megabytes:4.1f} MB  edgepop {megabytes / warm:5.2f} MB/s"
                f" (first pass {megabytes / cold:5.2f})  HF {megabytes / theirs:5.2f} MB/s  ratio {theirs / warm:4.2f}x"
            )
        base = _median_seconds(ours.encode, [ordinary])
        for label, text in worst_cases().items():
            seconds = _median_seconds(ours.encode, [text], rounds=1)
            print(f"{name:14s} {label:20s} {seconds:5.2f}s = {seconds / base:4.1f}x 1 MB of code; HF {_median_seconds(hf.encode, [text], 1):5.2f}s")


if __name__ == "__main__":
    main(sys.argv[1:] or BYTE_LEVEL_MODELS)
