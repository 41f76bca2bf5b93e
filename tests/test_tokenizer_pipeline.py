"""edgepop_tokenizer against HF `tokenizers` on the real models: ids and text, bit for bit.

HF is the oracle at test time; no expected id is written down here. Corpus-scale runs
compare per document (HF's ids computed once per session with its batch encoder);
hypothesis fuzzes arbitrary Unicode plus the inputs where tokenizers usually part ways.
"""

from __future__ import annotations

import json
import random
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import (
    BYTE_LEVEL_MODELS, Pair, assert_same_ids, assert_same_on_texts, model_pair, pair_from_config, tokenizer_json, valid_ids,
)
from strategies import fuzz_text
from edgepop_tokenizer import UnknownTokenId
from edgepop_tokenizer.byte_level import BYTE_CHARS
from edgepop_tokenizer.tokenizer import RUNTIME_CACHE_ENTRIES

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _pair(name: str) -> Pair:
    """The model's pair with our word cache warmed, as in a component."""
    return model_pair(name, warm=True)


@pytest.fixture(scope="module", params=BYTE_LEVEL_MODELS)
def pair(request) -> Pair:
    return _pair(request.param)


# ---- corpora ----------------------------------------------------------------------------


@pytest.mark.slow
def test_code_corpus(pair: Pair, code_corpus) -> None:
    assert_same_on_texts(pair, [(doc.source, doc.text) for doc in code_corpus], add_special_tokens=True)
    assert len(code_corpus) > 100


# Characters of each language compared (up to 20,000 of its ~64 KB), to keep the
# suite within minutes (novel words cost a Python BPE each), every language included.
MULTILINGUAL_CHARS = 20_000


@pytest.mark.slow
def test_multilingual_corpus(pair: Pair, multilingual_corpus) -> None:
    languages = sorted(multilingual_corpus)
    labelled = [(f"language {lang}", multilingual_corpus[lang][:MULTILINGUAL_CHARS]) for lang in languages]
    assert_same_on_texts(pair, labelled, add_special_tokens=False)
    assert len(languages) >= 150


# ---- fuzzing ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BYTE_LEVEL_MODELS)
@FUZZ
@given(data=st.data())
def test_fuzz_ids(name: str, data) -> None:
    pair = _pair(name)
    specials = [t["content"] for t in pair.config["added_tokens"]]
    # Added tokens inside words and between spaces, for lstrip/rstrip/single_word and leftmost-longest.
    text = data.draw(fuzz_text(specials + [f" {s} " for s in specials[:5]] + [f"x{s}y" for s in specials[:5]]))
    add_special_tokens = data.draw(st.booleans())
    assert_same_ids(pair, text, add_special_tokens)
    assert pair.ours.count(text, add_special_tokens) == len(pair.hf.encode(text, add_special_tokens=add_special_tokens).ids)


@pytest.mark.parametrize("name", BYTE_LEVEL_MODELS)
@FUZZ
@given(text=st.text(alphabet=st.characters(codec="utf-8"), min_size=300, max_size=2000))
def test_fuzz_long_texts(name: str, text: str) -> None:
    assert_same_ids(_pair(name), text, True)


def test_long_runs_without_whitespace(pair: Pair) -> None:
    """Pieces far longer than any cached word go through the O(n log n) merge loop."""
    rng = random.Random(7)
    for text in (
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(20_000)),
        "a" * 20_000,
        "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(20_000)),
        "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(5_000)),
    ):
        assert_same_ids(pair, text, False, "long run")


def test_empty_and_whitespace_only(pair: Pair) -> None:
    for text in ("", " ", "\n", "   \n\t ", "\u3000"):
        for add in (True, False):
            assert_same_ids(pair, text, add)


# ---- decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", BYTE_LEVEL_MODELS)
@FUZZ
@given(data=st.data())
def test_fuzz_decode(name: str, data) -> None:
    pair = _pair(name)
    valid = valid_ids(name)
    special = [i for i, _ in pair.ours.special_tokens]
    # Single-byte tokens (continuation and lead bytes) spell invalid UTF-8 as often as not.
    single_bytes = _single_byte_ids(name)
    any_id = st.integers(0, len(valid) - 1).map(valid.__getitem__)
    ids = data.draw(st.lists(st.one_of(any_id, st.sampled_from(single_bytes), st.sampled_from(special) if special else any_id), max_size=40))
    skip = data.draw(st.booleans())
    assert pair.ours.decode(ids, skip_special_tokens=skip) == pair.hf.decode(ids, skip_special_tokens=skip)


@cache
def _single_byte_ids(name: str) -> list[int]:
    vocab = _pair(name).hf.get_vocab(with_added_tokens=False)
    return [vocab[c] for c in BYTE_CHARS if c in vocab]


def test_decode_every_vocabulary_entry(pair: Pair) -> None:
    ids = valid_ids(pair.name)
    for skip in (True, False):
        assert pair.ours.decode(ids, skip_special_tokens=skip) == pair.hf.decode(ids, skip_special_tokens=skip)
    for i in ids[:: max(1, len(ids) // 5000)]:
        assert pair.ours.decode([i], skip_special_tokens=False) == pair.hf.decode([i], skip_special_tokens=False)


@pytest.mark.parametrize("name", BYTE_LEVEL_MODELS)
@FUZZ
@given(text=st.text())
def test_lossless_round_trip(name: str, text: str) -> None:
    pair = _pair(name)
    if not pair.ours.lossless:
        # Qwen3's NFC normalizer changes text; nothing to round-trip.
        assert pair.config["normalizer"] is not None
        return
    ours = pair.ours
    assert ours.decode(ours.encode(text, add_special_tokens=False), skip_special_tokens=False) == text
    if not any(content in text for _, content in ours.special_tokens):
        assert ours.decode(ours.encode(text)) == text


def test_unknown_token_id(pair: Pair) -> None:
    ours = pair.ours
    good = valid_ids(pair.name)[:3]
    bad = max(valid_ids(pair.name)) + 1
    with pytest.raises(UnknownTokenId) as info:
        ours.decode([*good, bad, good[0]])
    assert (info.value.position, info.value.id) == (3, bad)
    assert f"{bad}" in str(info.value) and "position 3" in str(info.value)
    with pytest.raises(UnknownTokenId):
        ours.decode([-1])


# ---- what the component describes -------------------------------------------------------


def test_metadata(pair: Pair) -> None:
    ours, hf = pair.ours, pair.hf
    assert ours.model_type == "BPE"
    assert ours.vocab_size == hf.get_vocab_size(with_added_tokens=True)
    expected = sorted((i, t.content) for i, t in hf.get_added_tokens_decoder().items() if t.special)
    assert ours.special_tokens == expected
    assert ours.lossless == (pair.name != "qwen3")


def test_batch_and_count_agree_with_encode(pair: Pair) -> None:
    texts = ["", "Hello world", "  x = f(1, 2)\n", "日本語のテキスト"]
    for add in (True, False):
        assert pair.ours.encode_batch(texts, add) == [pair.ours.encode(t, add) for t in texts]
        assert [pair.ours.count(t, add) for t in texts] == [len(pair.ours.encode(t, add)) for t in texts]


def test_word_cache_is_bounded(pair: Pair) -> None:
    """warm() caches most of the vocabulary; novel words cannot grow the cache without end."""
    assert pair.warm_entries > 0.5 * pair.ours.vocab_size
    rng = random.Random(3)
    novel = " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)) for _ in range(80_000))
    assert_same_ids(pair, novel, False, "novel words")
    assert len(pair.ours._cache) <= pair.warm_entries + RUNTIME_CACHE_ENTRIES


def test_caches_held_keeps_words_out_of_the_caches() -> None:
    """A component's build runs its exports inside caches_held(): the ids are HF's, and no word is kept."""
    pair = pair_from_config("gpt2", json.loads(tokenizer_json("gpt2").read_text(encoding="utf-8")))  # a cache of its own
    ours = pair.ours
    rng = random.Random(5)
    text = " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) for _ in range(200))
    with ours.caches_held():
        assert_same_ids(pair, text, True, "novel words with the caches held")
        ours.encode_with_offsets(text, True)
    assert (len(ours._cache), len(ours._span_cache)) == (0, 0)
    ours.encode(text)
    ours.encode_with_offsets(text, True)
    assert len(ours._cache) > 100 and len(ours._span_cache) > 100  # held no longer
