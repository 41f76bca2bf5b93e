"""Character classes of the stages HF runs with Rust's Unicode tables, not Oniguruma's.

`char::is_whitespace` (WhitespaceSplit, Strip, BERT), `char::is_numeric` (Digits),
BERT's punctuation, control characters, CJK ranges and non-spacing marks
(`unicode_categories`), the `regex` crate's `\\w` (Whitespace), `char::to_lowercase`
(Lowercase, BERT) and the scripts of UnicodeScripts: char_classes_data holds them as
probed from HF by tools/gen_char_classes.py, so they do not depend on this interpreter's
`unicodedata`.
"""

from __future__ import annotations

from bisect import bisect_right

from .char_classes_data import LOWERCASE, RANGES, SCRIPTS
from .onig import Chars, Ranges
from .regex import Pattern


def _parse(encoded: str) -> Ranges:
    out = []
    for item in encoded.split():
        lo, _, hi = item.partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return tuple(out)


_PARSED: dict[str, Ranges] = {name: _parse(encoded) for name, encoded in RANGES.items()}


def ranges(name: str) -> Ranges:
    """Sorted, disjoint, inclusive code point ranges of a class (KeyError for an unknown one)."""
    return _PARSED[name]


def chars(name: str) -> str:
    """Every character of a (small) class, as one string, e.g. for str.strip."""
    return "".join(chr(cp) for lo, hi in _PARSED[name] for cp in range(lo, hi + 1))


def pattern(name: str) -> Pattern:
    """A pattern matching one character of the class (astral characters handled as in regex.Pattern)."""
    return Pattern(Chars(_PARSED[name]))


WHITESPACE = chars("whitespace")

# str.translate table of Rust's char::to_lowercase, applied one character at a time
# (unlike str.lower(), which turns a final Σ into ς).
_LOWERCASE_TABLE = {cp: text for cp, text in LOWERCASE.items()}


def lowercase(text: str) -> str:
    """Text lowercased as HF's Lowercase normalizer does it."""
    if text.isascii():
        return text.lower()
    return text.translate(_LOWERCASE_TABLE)


def _script_table() -> tuple[list[int], list[int]]:
    """Range starts, sorted, and the script class of each range."""
    table = sorted((lo, index) for index, encoded in enumerate(SCRIPTS) for lo, _ in _parse(encoded))
    return [lo for lo, _ in table], [index for _, index in table]


_SCRIPT_STARTS, _SCRIPT_CLASSES = _script_table()
ANY_SCRIPT = 0


def script(char: str) -> int:
    """The script class of a character for UnicodeScripts; ANY_SCRIPT never starts a piece."""
    return _SCRIPT_CLASSES[bisect_right(_SCRIPT_STARTS, ord(char)) - 1]
