"""Offsets, the span of the text each token comes from, against HF's `encode(...).offsets`.

Every real model's tokenizer (byte-level BPE, SentencePiece BPE, WordPiece, Unigram with
a precompiled charsmap): the ids and the (start, end) character spans must both be HF's,
natively on every language of the multilingual corpus, on code and on fuzzed Unicode,
and through each built component (`encode-with-offsets`) on fuzzed Unicode. The stages
one by one are checked in test_tokenizer_families and test_tokenizer_variants.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepop.runtime import Runtime
from edgepop.tokenizer import TokenizerComponent, TokenizerSession
from strategies import fuzz_text
from support import MODELS, component_path, describe_offsets_difference, model_pair

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# Characters per language, and of code, compared per model: offsets take the slow path.
LANGUAGE_CHARS = 2_000
CODE_CHARS = 60_000


@pytest.mark.parametrize("name", MODELS)
@FUZZ
@given(data=st.data())
def test_fuzzed_unicode(name: str, data) -> None:
    pair = model_pair(name)
    ours, hf = pair.ours, pair.hf
    text = data.draw(fuzz_text([content for _, content in ours.special_tokens][:20]))
    add = data.draw(st.booleans())
    assert describe_offsets_difference(ours, hf, text, add, "fuzz") is None


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_language(name: str, multilingual_corpus) -> None:
    pair = model_pair(name)
    ours, hf = pair.ours, pair.hf
    differences = [describe_offsets_difference(ours, hf, text[:LANGUAGE_CHARS], False, lang) for lang, text in sorted(multilingual_corpus.items())]
    assert len(differences) >= 20
    assert [d for d in differences if d] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_code(name: str, code_corpus) -> None:
    pair = model_pair(name)
    ours, hf = pair.ours, pair.hf
    text = "".join(document.text for document in code_corpus)[:CODE_CHARS]
    assert describe_offsets_difference(ours, hf, text, True, "code") is None


def test_offsets_index_the_text() -> None:
    """What offsets are for: each token's span is the text it stands for (Llama 3.2, no normalizer)."""
    ours = model_pair("llama-3.2").ours
    text = "Paris est la capitale de la France. 東京は日本の首都です。"
    ids, offsets = ours.encode_with_offsets(text, add_special_tokens=True)
    assert offsets[0] == (0, 0)  # <|begin_of_text|>, added by the post-processor
    # Tokens that split a character's bytes share its span; the spans then tile the text.
    assert "".join(text[start:end] for start, end in dict.fromkeys(offsets[1:])) == text
    assert ids == ours.encode(text)


@cache
def _session(runtime: Runtime, name: str) -> TokenizerSession:
    return TokenizerComponent(runtime.load(component_path(name))).session()


@pytest.mark.parametrize("name", MODELS)
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_component_offsets(runtime: Runtime, name: str, data) -> None:
    """The same through the component and the host: packed offsets unpacked to HF's spans."""
    pair = model_pair(name)
    ours, hf = pair.ours, pair.hf
    text = data.draw(fuzz_text([content for _, content in ours.special_tokens][:20]))
    add = data.draw(st.booleans())
    assert describe_offsets_difference(_session(runtime, name), hf, text, add, "component") is None
