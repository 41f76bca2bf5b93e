"""Hypothesis strategies for text where tokenizers tend to part ways.

Arbitrary Unicode, mixed with the fragments that exercise the corners of byte-level
BPE pipelines: digits of every script, combining marks, whitespace of every kind,
case variants of contractions (long s, Kelvin sign), emoji sequences, code, and the
model's own special-token strings.
"""

from __future__ import annotations

from hypothesis import strategies as st

from edgepop_tokenizer import unicode_props


def _chars_of(escape: str) -> list[str]:
    return [chr(cp) for lo, hi in unicode_props.ranges(escape) for cp in range(lo, hi + 1) if not 0xD800 <= cp <= 0xDFFF]


DIGITS = st.sampled_from(_chars_of(r"\p{N}"))  # Nd of every script (Arabic-Indic, fullwidth, 𝟎…), Nl, No
MARKS = st.sampled_from(_chars_of(r"\p{M}"))
WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2028", "\u2029", "\u3000", "\x1c", "\x1f", "\x0b", "\x0c", "\x85", "\u200b", "\ufeff", "\u2003"])
CONTRACTIONS = st.sampled_from(["'s", "'S", "'ll", "'LL", "'Ll", "'lL", "'ſ", "'K", "'\u212a", "'re", "'RE", "'Ve", "'m", "'M", "'d", "'D", "'t", "'T", "’s", "'x", "'"])
EMOJI = st.sampled_from([
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466", "\U0001F3F3\uFE0F\u200D\U0001F308", "\U0001F1EB\U0001F1F7",
    "\U0001F1FA\U0001F1F8", "\U0001F44D\U0001F3FD", "\U0001F9D1\u200D\U0001F4BB", "\u2764\uFE0F", "\U0001F600", "\u200D", "\uFE0F",
    "\U0001F1E6", "\U000E0067", "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F",
])
WORDS = st.sampled_from(["hello", "Hello", "HELLO", "def", "_init_", "日本語", "中文字", "カタカナ", "ひらがな", "한국어", "Привет", "مرحبا", "नमस्ते", "ภาษาไทย", "Ελληνικά", "x1", "1,000", "3.14", "e\u0301", "ﬁ", "ß", "İ", "ǅ"])
CODE_BITS = st.sampled_from(["(", ")", "{", "}", "==", "->", "//", "/*", "#", "\\", "$", "@", "`", "...", "'''", '"""', "0x1F", "\t\t", "    ", "\n\n"])


def fuzz_text(specials: list[str]) -> st.SearchStrategy[str]:
    """Arbitrary Unicode, mixed with the fragments where tokenizers tend to disagree."""
    fragment = st.one_of(
        st.text(max_size=12), DIGITS, MARKS, WHITESPACE, CONTRACTIONS, EMOJI, WORDS, CODE_BITS,
        st.sampled_from(specials) if specials else st.nothing(),
    )
    return st.one_of(st.text(), st.lists(fragment, max_size=25).map("".join))
