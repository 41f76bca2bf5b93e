"""The tokenizer components (CPython 3.14 inside Wasm, through the host) against HF `tokenizers`.

The same bar as the native pipeline's tests, on what actually ships: every component
built by `make build`, called through the host with the packed id transport. HF runs
natively as the oracle; nothing expected is written down here.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgepop import corpora
from edgepop.conformance import check
from edgepop.runtime import Runtime
from edgepop.tokenizer import TokenizerComponent, TokenizerSession

from support import MODELS, component_path, reference
from strategies import fuzz_text

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# Characters compared per language: every one of the 150+ languages, 20,000 chars each.
MULTILINGUAL_CHARS = 20_000


@cache
def _session(runtime: Runtime, model: str) -> TokenizerSession:
    return TokenizerComponent(runtime.load(component_path(model))).session()


def report_failures(report) -> str:
    return "\n".join([m.describe() for m in report.mismatches[:5]] + report.round_trip_failures[:5] + report.errors[:5])


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_code_corpus(runtime: Runtime, model: str, code_corpus) -> None:
    component = TokenizerComponent(runtime.load(component_path(model)))
    report = check(component, reference(model), code_corpus, add_special_tokens=True)
    assert report.inputs == len(code_corpus) and report.bytes >= 5_000_000
    assert report.ok, report_failures(report)


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_multilingual_corpus(runtime: Runtime, model: str, multilingual_corpus) -> None:
    for required in corpora.REQUIRED_LANGUAGES:
        assert required in multilingual_corpus, f"the corpus lacks {required}"
    documents = [corpora.Document(lang, text[:MULTILINGUAL_CHARS]) for lang, text in sorted(multilingual_corpus.items())]
    component = TokenizerComponent(runtime.load(component_path(model)))
    report = check(component, reference(model), documents, add_special_tokens=False)
    assert report.inputs >= 20
    assert report.ok, report_failures(report)


@pytest.mark.parametrize("model", MODELS)
@FUZZ
@given(data=st.data())
def test_fuzzed_unicode(runtime: Runtime, model: str, data) -> None:
    session = _session(runtime, model)
    specials = [t.content for t in session.describe().special_tokens]
    text = data.draw(fuzz_text(specials[:50] + [f" {s} " for s in specials[:3]]))
    add = data.draw(st.booleans())
    want = reference(model).encode(text, add_special_tokens=add).ids
    assert session.encode(text, add) == want
    assert session.count(text, add) == len(want)
    if session.describe().lossless:
        assert session.decode(session.encode(text, False), skip_special_tokens=False) == text


@pytest.mark.parametrize("model", MODELS)
@FUZZ
@given(data=st.data())
def test_decode_matches_hf(runtime: Runtime, model: str, data) -> None:
    session = _session(runtime, model)
    vocab_size = session.describe().vocab_size
    ids = data.draw(st.lists(st.integers(0, vocab_size - 1), max_size=30))
    hf = reference(model)
    if any(hf.id_to_token(i) is None for i in ids):
        return  # holes in the id space are the unknown-id test's business
    skip = data.draw(st.booleans())
    assert session.decode(ids, skip_special_tokens=skip) == hf.decode(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("model", MODELS)
def test_batch_equals_single_calls(runtime: Runtime, model: str) -> None:
    session = _session(runtime, model)
    texts = ["", "Hello world", "  x = f(1, 2)\n", "日本語のテキスト", "مرحبا بالعالم"]
    for add in (True, False):
        assert session.encode_batch(texts, add) == [reference(model).encode(t, add_special_tokens=add).ids for t in texts]


@pytest.mark.parametrize("model", MODELS)
def test_describe_matches_hf(runtime: Runtime, model: str) -> None:
    info = _session(runtime, model).describe()
    hf = reference(model)
    assert info.model_name == model
    assert info.vocab_size == hf.get_vocab_size(with_added_tokens=True)
    assert [(t.id, t.content) for t in info.special_tokens] == sorted(
        (i, t.content) for i, t in hf.get_added_tokens_decoder().items() if t.special
    )
    assert len(info.source_sha256) == 64
