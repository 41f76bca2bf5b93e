"""Oniguruma patterns as edgepop runs them (onig.py + regex.py) against HF's own Split.

HF's `pre_tokenizers.Split` runs a pattern with Oniguruma and applies the delimiter
behaviour; ours must cut every text into the same pieces, for every behaviour, with and
without `invert`, astral characters included (they go through BMP proxies).
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Regex
from tokenizers import pre_tokenizers as hf_pre_tokenizers

from support import BYTE_LEVEL_MODELS, tokenizer_json
from edgepop_tokenizer import onig
from edgepop_tokenizer.byte_level import GPT2_PATTERN
from edgepop_tokenizer.pre_tokenizers import BEHAVIORS, Split
from edgepop_tokenizer.regex import Pattern

compile_pattern = cache(lambda source: Pattern(onig.parse(source)))

@cache
def hf_split(pattern: str, behavior: str, invert: bool, literal: bool = False) -> hf_pre_tokenizers.Split:
    return hf_pre_tokenizers.Split(pattern if literal else Regex(pattern), behavior=behavior, invert=invert)

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
HF_BEHAVIOR = {
    "Removed": "removed",
    "Isolated": "isolated",
    "MergedWithPrevious": "merged_with_previous",
    "MergedWithNext": "merged_with_next",
    "Contiguous": "contiguous",
}


def _model_patterns() -> list[str]:
    patterns = []
    for name in BYTE_LEVEL_MODELS:
        config = json.loads(tokenizer_json(name).read_text(encoding="utf-8"))["pre_tokenizer"]
        for step in config.get("pretokenizers", [config]):
            if step["type"] == "Split" and "Regex" in step["pattern"]:
                patterns.append(step["pattern"]["Regex"])
    return sorted(set(patterns))


CONSTRUCTS = [
    r"x*",  # empty matches: the onig crate skips one right after a match
    r"a??",
    r"(?:ab)*?",
    r"^a|b$",  # Ruby line anchors
    r"\Aa|a\z|a\Z",
    r"\bx|y\B",
    r"(?<=a|bc)x|(?<!\s|yz)q",
    r"a++|(?>b+)b|c?+",
    r"a{,2}|b{2}+|c{1,3}?|d{",
    r"x(?i)ab|cd",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)",
    r"(?i:[a-c]k)",
    r"\p{^L}+|\P{N}\p{Nd}",
    r"[]a]|[a-]|[\-\]\\]|[^\x00-\x7f\s]",
    r"\x{1F600}|\u00e9|\x41|\t|\e|\0",
    r"[\p{P}\p{S}]+|[一-龥\u3040-ゟ]+",
    r".|\n",
    r"\d+|\w+|\s+|\S|\D|\W",
    r"(a)(?:b)(?<name>c)",
]

TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from("aabbcxyzqk  \n\r\tAB'sStTdK\u212a\u017f1²٣𝟎éü一ぁ😀\U0001F3FD\u200d-]\\\x00"), max_size=40),
)


@pytest.mark.parametrize("pattern", _model_patterns() + [GPT2_PATTERN] + CONSTRUCTS)
@FUZZ
@given(text=TEXT, behavior=st.sampled_from(BEHAVIORS), invert=st.booleans())
def test_split_matches_hf(pattern: str, text: str, behavior: str, invert: bool) -> None:
    ours = Split(compile_pattern(pattern), behavior, invert)
    theirs = hf_split(pattern, HF_BEHAVIOR[behavior], invert)
    assert ours.split(text) == [piece for piece, _ in theirs.pre_tokenize_str(text)]


@pytest.mark.parametrize("literal", ["", "a", "ab", ".*", "\\", "日本", "😀"])
@FUZZ
@given(text=TEXT, behavior=st.sampled_from(BEHAVIORS))
def test_split_string_pattern_matches_hf(literal: str, text: str, behavior: str) -> None:
    ours = Split(Pattern(onig.literal(literal)), behavior, False)
    theirs = hf_split(literal, HF_BEHAVIOR[behavior], False, literal=True)
    assert ours.split(text) == [piece for piece, _ in theirs.pre_tokenize_str(text)]


def test_case_insensitive_letters_match_exactly_what_oniguruma_matches() -> None:
    """(?i:x) for every ASCII letter over every code point: ſ (U+017F) is an s, K (U+212A) a k, İ and ı are no i.

    One pass over all of Unicode finds the characters any letter folds to; each
    letter is then checked against each of those.
    """
    every_char = "".join(chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)
    left = set("".join(p for p, _ in hf_split("(?i:[a-z])", "removed", False).pre_tokenize_str(every_char)))
    candidates = "".join(c for c in every_char if c not in left)
    assert len(candidates) < 100
    for letter in "abcdefghijklmnopqrstuvwxyz":
        pattern = f"(?i:{letter})"
        kept = "".join(p for p, _ in hf_split(pattern, "removed", False).pre_tokenize_str(candidates))
        (ranges,) = onig.char_sets(onig.parse(pattern))
        assert {chr(cp) for lo, hi in ranges for cp in range(lo, hi + 1)} == set(candidates) - set(kept), letter


@pytest.mark.parametrize("pattern", _model_patterns() + [GPT2_PATTERN])
def test_model_patterns_run_with_bmp_classes_only(pattern: str) -> None:
    """Every astral character of the real patterns has a BMP proxy: no slow full-class regex."""
    compiled = compile_pattern(pattern)
    assert compiled._full is None
    assert not compiled.nullable


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        (r"\p{Greek}", r"\p{Greek}"),
        (r"\pL", r"\pL"),
        (r"(?i:st)", "'st'"),
        (r"(?i:s)(?i:s)", "'ss'"),
        (r"(?i:f+)", "'ff'"),
        (r"(?i:é)", "'é'"),
        (r"(?i:\p{L})", r"\p"),
        (r"(a)\1", r"\1"),
        (r"\h", r"\h"),
        (r"[a[b]]", "nests"),
        (r"[a-z&&b]", "&&"),
        (r"(?x)a", "(?x"),
        (r"(?<=a+)b", "re"),
        (r"a{3,2}", "max < min"),
        (r"(a", "ends"),
        (r"a)", "parenthesis"),
    ],
)
def test_unsupported_constructs_are_refused_by_name(pattern: str, named: str) -> None:
    with pytest.raises(onig.PatternError) as info:
        Pattern(onig.parse(pattern))
    assert named in str(info.value)
