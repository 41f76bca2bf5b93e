"""Character classes exactly as the reference engine (Oniguruma inside HF `tokenizers`) has them.

The tables in unicode_props_data are probed from the reference engine by
tools/gen_unicode_props.py, so `\\p{L}` here means what it means to the tokenizer that
produced a model's ids, whatever Unicode version this interpreter's `unicodedata` has.
"""

from __future__ import annotations

from .unicode_props_data import RANGES

Ranges = tuple[tuple[int, int], ...]


def parse_ranges(encoded: str) -> Ranges:
    """Ranges from the tables' encoding: space-separated hex code points and `lo-hi` spans."""
    out = []
    for item in encoded.split():
        lo, _, hi = item.partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return tuple(out)


# Parsed once at import, which a component does at build time.
_PARSED: dict[str, Ranges] = {escape: parse_ranges(encoded) for escape, encoded in RANGES.items()}

KNOWN = tuple(_PARSED)


def ranges(escape: str) -> Ranges:
    """Sorted, disjoint, inclusive code point ranges of a class escape such as `\\p{L}` or `\\s`.

    Raises KeyError for a class the tables do not have.
    """
    return _PARSED[escape]
