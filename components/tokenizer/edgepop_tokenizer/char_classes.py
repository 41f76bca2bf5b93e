"""Character classes of the stages HF runs with Rust's Unicode tables, not Oniguruma's.

`char::is_whitespace` (WhitespaceSplit, Strip, BERT), `char::is_numeric` (Digits),
BERT's punctuation, control characters, CJK ranges and non-spacing marks
(`unicode_categories`), StripAccents' combining marks, the `regex` crate's `\\w`
(Whitespace), `char::to_lowercase` (Lowercase, BERT) and the scripts of UnicodeScripts:
char_classes_data holds them as probed from HF by tools/gen_char_classes.py, so they do
not depend on this interpreter's `unicodedata`. Each table is parsed the first time a
stage asks for it, so tokenizers that use none (byte-level BPE) pay nothing.
"""

from __future__ import annotations

from functools import cache

from .char_classes_data import LOWERCASE, RANGES, SCRIPTS
from .onig import Chars, Ranges
from .regex import Pattern
from .unicode_props import parse_ranges


@cache
def ranges(name: str) -> Ranges:
    """Sorted, disjoint, inclusive code point ranges of a class (KeyError for an unknown one)."""
    return parse_ranges(RANGES[name])


def chars(name: str) -> str:
    """Every character of a (small) class, as one string, e.g. for str.strip."""
    return "".join(chr(cp) for lo, hi in ranges(name) for cp in range(lo, hi + 1))


def pattern(name: str) -> Pattern:
    """A pattern matching one character of the class (astral characters handled as in regex.Pattern)."""
    return Pattern(Chars(ranges(name)))


def lowercase(text: str) -> str:
    """Text lowercased as HF's Lowercase normalizer does it: LOWERCASE is a str.translate
    table of Rust's char::to_lowercase, one character at a time (unlike str.lower(),
    which turns a final Σ into ς)."""
    if text.isascii():
        return text.lower()
    return text.translate(LOWERCASE)


ANY_SCRIPT = 0  # the class of characters HF's UnicodeScripts gives no script


@cache
def script_table() -> tuple[list[int], list[int]]:
    """UnicodeScripts' classes: range starts, sorted, and the script class of each range
    (for bisect); every code point but the surrogates is in some range."""
    table = sorted((lo, index) for index, encoded in enumerate(SCRIPTS) for lo, _ in parse_ranges(encoded))
    return [lo for lo, _ in table], [index for _, index in table]
