"""edgepop_tokenizer.normalization against HF `tokenizers` normalizers, the oracle.

Inputs go through `normalize` (the interpreter's C code, with pure stretches around the
disagreements) and through `normalize_pure` (the probed tables alone), and both must give
what HF gives.
"""

from __future__ import annotations

import unicodedata
from unittest import mock

import pytest
import tokenizers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from edgepop_tokenizer import normalization
from edgepop_tokenizer.normalization import DISAGREEMENTS, FORMS, normalize, normalize_pure
from edgepop_tokenizer.normalization_data import REFERENCE

HF = {form: getattr(normalizers, form)().normalize_str for form in FORMS}

# NUL separates the texts of a batched HF call: a starter that no character decomposes to
# and that composes with nothing, so the texts between normalize independently.
EVERY_CHAR = [chr(cp) for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF]

# Inputs are chosen from the interpreter's tables and the probed ones alike; HF judges them.
MARKS = sorted(
    {c for c in EVERY_CHAR if unicodedata.category(c) in ("Mn", "Mc", "Me") or unicodedata.combining(c)}
    | set(normalization._RANK)
)
# Two marks of each (interpreter class, HF rank) combination, so every pair of classes meets.
_BY_CLASS: dict[tuple[int, int], list[str]] = {}
for _mark in MARKS:
    _BY_CLASS.setdefault((unicodedata.combining(_mark), normalization._RANK.get(_mark, 0)), []).append(_mark)
SPREAD = sorted({m for marks in _BY_CLASS.values() for m in marks[:2]} | {"\u0301", "\u0316"})

_MAPPINGS = {  # the interpreter's one-level canonical decompositions
    c: "".join(chr(int(cp, 16)) for cp in mapping.split())
    for c in EVERY_CHAR
    if (mapping := unicodedata.decomposition(c)) and not mapping.startswith("<")
}
PAIRS = sorted(set(normalization._COMPOSE) | {d for d in _MAPPINGS.values() if len(d) == 2})
COMPOSITES = sorted(set(normalization._CANONICAL) | set(_MAPPINGS))
DECOMPOSED = sorted({normalization._CANONICAL.get(c) or unicodedata.normalize("NFD", c) for c in COMPOSITES})
LEADS = [chr(cp) for cp in range(0x1100, 0x1114)]
VOWELS = [chr(cp) for cp in range(0x1160, 0x1177)]
TRAILS = [chr(cp) for cp in range(0x11A7, 0x11C4)]
SYLLABLES = [chr(cp) for cp in range(0xAC00, 0xD7A4)]


def hf_each(form: str, texts: list[str]) -> list[str]:
    """HF `form` of each text, in one call."""
    out = HF[form]("\0".join(texts)).split("\0")
    assert len(out) == len(texts)
    return out


def assert_matches_hf(form: str, texts: list[str], got: list[str]) -> None:
    expected = hf_each(form, texts)
    wrong = [(text, g, e) for text, g, e in zip(texts, got, expected, strict=True) if g != e]
    shown = [(" ".join(f"U+{ord(c):04X}" for c in text), g, e) for text, g, e in wrong[:5]]
    assert not wrong, f"{form}: {len(wrong)} of {len(texts)} differ from HF, e.g. (input, ours, HF): {shown}"


def assert_all_paths_match_hf(texts: list[str]) -> None:
    for form in FORMS:
        assert_matches_hf(form, texts, [normalize(form, t) for t in texts])
        assert_matches_hf(form, texts, [normalize_pure(form, t) for t in texts])


def test_tables_come_from_the_installed_reference() -> None:
    assert REFERENCE == f"tokenizers=={tokenizers.__version__}", "run tools/gen_normalization.py"


@pytest.mark.parametrize("form", FORMS)
def test_every_code_point_alone(form: str) -> None:
    assert_matches_hf(form, EVERY_CHAR, [normalize(form, c) for c in EVERY_CHAR])
    assert normalize(form, "\0") == HF[form]("\0")
    # The fast path's premise: off the disagreement set, the interpreter agrees with HF.
    agreeing = [c for c in EVERY_CHAR if c not in DISAGREEMENTS]
    assert_matches_hf(form, agreeing, [unicodedata.normalize(form, c) for c in agreeing])


@pytest.mark.parametrize("form", FORMS)
def test_every_code_point_in_one_text(form: str) -> None:
    text = "\0".join(EVERY_CHAR)
    expected = HF[form](text)
    assert normalize_pure(form, text) == expected
    assert normalize(form, text) == expected


@pytest.mark.parametrize("form", FORMS)
def test_every_mark_before_and_after_a_spread_of_classes(form: str) -> None:
    texts = [text for m in MARKS for s in SPREAD for text in ("a" + m + s, "a" + s + m)]
    assert_matches_hf(form, texts, [normalize(form, t) for t in texts])


def test_every_mark_pair_around_the_reorderings_that_differ() -> None:
    """The cases where unicodedata 14 reorders otherwise: a + mark + U+0301 / U+0316 + mark."""
    texts = [a + b + c for m in MARKS for a, b, c in (("a", m, "\u0301"), ("a", "\u0316", m), ("a", m, "\u0316"))]
    assert_all_paths_match_hf(texts)


def test_every_canonical_pair_composes_as_in_hf() -> None:
    texts = [*PAIRS, *COMPOSITES, *DECOMPOSED]
    texts += [p[0] + b + p[1:] for p in PAIRS for b in ("\u0334", "\u0316", "\u0301", "\u0345", "b", "\u1ac1")]
    assert_all_paths_match_hf(texts)


def test_every_first_before_every_second() -> None:
    firsts = sorted({p[0] for p in PAIRS})
    seconds = sorted({p[1] for p in PAIRS} | set(VOWELS) | set(TRAILS))
    texts = [x + y for x in firsts for y in seconds]
    for form in ("NFC", "NFKC"):
        assert_matches_hf(form, texts, [normalize(form, t) for t in texts])
        assert_matches_hf(form, texts, [normalize_pure(form, t) for t in texts])


def test_hangul_composes_as_in_hf() -> None:
    lv = [s for s in SYLLABLES if (ord(s) - 0xAC00) % 28 == 0]
    texts = [l + v for l in LEADS for v in VOWELS] + [s + t for s in lv for t in TRAILS]
    texts += [l + v + t for l in LEADS[::3] for v in VOWELS for t in TRAILS[::2]]
    texts += [s + t for s in SYLLABLES[1::97] for t in TRAILS]
    assert_all_paths_match_hf(texts)


def test_the_interpreter_disagrees_where_expected() -> None:
    """U+11938 has a canonical decomposition since Unicode 13; HF's data is older."""
    assert "\U00011938" in DISAGREEMENTS
    assert normalize("NFD", "\U00011938") == HF["NFD"]("\U00011938") == "\U00011938"


def test_text_with_a_disagreement_takes_the_pure_path_around_it() -> None:
    text = "Ça s'écrit ŝ\u0323\u0307 " + "\U00011935\U00011930" + " et \u1ac1\u0301 déjà, 가\u11a8."
    assert normalization._search(text) is not None
    with mock.patch.object(normalization, "normalize_pure", wraps=normalize_pure) as pure:
        for form in FORMS:
            assert normalize(form, text) == HF[form](text)
    assert pure.call_count >= len(FORMS)
    # Only the stretches around the disagreements went the pure way.
    assert all(len(call.args[1]) < len(text) // 2 for call in pure.call_args_list)


def test_text_without_one_takes_the_fast_path() -> None:
    text = "Ça s'écrit ŝ\u0323\u0307 et déjà, 가\u11a8, ｶﾞ ﬁ ²."
    with mock.patch.object(normalization, "normalize_pure", wraps=normalize_pure) as pure:
        for form in FORMS:
            assert normalize(form, text) == HF[form](text) == unicodedata.normalize(form, text)
    pure.assert_not_called()


def test_any_wider_disagreement_set_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever else goes the pure way, the cuts around it must not change the result.

    The real disagreements are all starters to HF that compose with nothing, so cutting
    around them is easy; common marks, composition seconds and firsts test every rule.
    """
    seconds = sorted({p[1] for p in PAIRS} | set(VOWELS) | set(TRAILS))
    wider = DISAGREEMENTS | frozenset(MARKS[::5] + seconds[::2] + ["e", "\u1100", "\u0b47", "\u00e9", "\uac00"])
    monkeypatch.setattr(normalization, "_search", normalization._search_pattern(wider).search)
    texts = [p + m for p in PAIRS for m in ("\u0301", "\u0316", MARKS[0], "\u1ac1")]
    texts += [p[0] + m + p[1:] + "e" + m for p in PAIRS for m in ("\u0316", "\u0345")]
    texts += ["a" + m + s for m in MARKS for s in SPREAD[::4]]
    texts += [l + v + t + "\u0301" for l in LEADS[::2] for v in VOWELS for t in TRAILS[::4]]
    for form in FORMS:
        assert_matches_hf(form, texts, [normalize(form, t) for t in texts])


def test_a_decomposition_brings_its_characters_in() -> None:
    assert "\u00e9" in normalization._with_decomposing_to({"\u0301"})  # é = e + U+0301
    assert "\u00b2" in normalization._with_decomposing_to({"2"})  # ² is <super> 2
    assert "\uac00" in normalization._with_decomposing_to({"\u1161"})  # 가 = U+1100 U+1161
    assert normalization._with_decomposing_to({"\U00011938"}) == {"\U00011938"}


def test_ascii_is_returned_as_is() -> None:
    text = "plain ASCII text\t\n" * 3
    for form in FORMS:
        assert normalize(form, text) is text


def test_unknown_form_is_refused() -> None:
    with pytest.raises(ValueError):
        normalize("NFX", "é")
    with pytest.raises(ValueError):
        normalize_pure("nfc", "é")


@pytest.mark.parametrize("chars", [DISAGREEMENTS, frozenset(), frozenset("\0\U0010ffff")])
def test_search_pattern_matches_exactly_its_characters(chars: frozenset[str]) -> None:
    pattern = normalization._search_pattern(chars)
    assert {c for c in map(chr, range(0x110000)) if pattern.match(c)} == chars


def test_multilingual_corpus(multilingual_corpus: dict[str, str]) -> None:
    assert len(multilingual_corpus) >= 150
    for language, text in multilingual_corpus.items():
        for form in FORMS:
            expected = HF[form](text)
            assert normalize(form, text) == expected, (language, form)
            assert normalize_pure(form, text[:2000]) == HF[form](text[:2000]), (language, form)


# Property tests: deterministic, no example database, no deadline (HF calls vary in time).
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
BASES = st.sampled_from(["a", "A", "e", "o", "u", " ", "\u05d0", "\u0915", "\u0b47", "\u0d46", "\u30ab"])
MARK = st.sampled_from(MARKS)
DISAGREEMENT = st.sampled_from(sorted(DISAGREEMENTS))
COMPOSITE = st.sampled_from(COMPOSITES)
DECOMPOSITION = st.sampled_from(DECOMPOSED)
JAMO = st.sampled_from(LEADS + VOWELS + TRAILS) | st.sampled_from(SYLLABLES)
ANY_CHAR = st.characters(exclude_categories=["Cs"], exclude_characters="\0")


def texts(*pieces: st.SearchStrategy[str], min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(*pieces), min_size=min_size, max_size=max_size).map("".join)


@FUZZ
@given(texts(BASES, MARK, MARK, DISAGREEMENT))
def test_fuzz_combining_marks(text: str) -> None:
    assert_all_paths_match_hf([text])


@FUZZ
@given(texts(JAMO, JAMO, MARK, BASES))
def test_fuzz_hangul(text: str) -> None:
    assert_all_paths_match_hf([text])


@FUZZ
@given(texts(COMPOSITE, DECOMPOSITION, MARK, BASES))
def test_fuzz_composites_and_decompositions(text: str) -> None:
    assert_all_paths_match_hf([text])


@FUZZ
@given(texts(DISAGREEMENT, DISAGREEMENT, MARK, COMPOSITE, BASES))
def test_fuzz_disagreement_set(text: str) -> None:
    assert_all_paths_match_hf([text])


@FUZZ
@given(st.text(ANY_CHAR, max_size=40))
def test_fuzz_any_text(text: str) -> None:
    assert_all_paths_match_hf([text])


@settings(FUZZ, max_examples=150)
@given(texts(ANY_CHAR, BASES, MARK, DISAGREEMENT, COMPOSITE, DECOMPOSITION, JAMO, st.just("word "),
             min_size=100, max_size=600))
def test_fuzz_long_mixed_text(text: str) -> None:
    assert_all_paths_match_hf([text])
