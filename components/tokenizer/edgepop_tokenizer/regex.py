"""Oniguruma patterns run by Python's `re`, with Oniguruma's matches, fast.

`onig.parse` resolves every class to explicit code point sets; here the tree becomes a
Python pattern. One trap: a `re` class holding supplementary-plane (astral) ranges is
compiled to a BMP bitmap plus a *linear* list of astral ranges, scanned for every
character outside the bitmap, which made full `\\p{L}` patterns 10x slower on code. So
the pattern is compiled with BMP-only classes, and a text with astral characters is
first rewritten with each astral character replaced by a BMP "proxy" that belongs to
exactly the same sets of the pattern. Matching is then identical, and since the
rewrite is one code point for one, the offsets index the original text.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from . import onig
from .errors import UnsupportedTokenizer
from .onig import (
    MAX_CODE_POINT,
    WORD,
    Alt,
    Anchor,
    Atomic,
    Chars,
    Look,
    Ranges,
    Repeat,
    Seq,
    char_sets,
    complement,
    PatternError,
    min_width,
    single_char_cover,
)

_BMP_END = 0x10000
_SURROGATES = (0xD800, 0xE000)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _char(cp: int) -> str:
    return f"\\U{cp:08x}"


def _class(ranges: Ranges, bmp_only: bool) -> str:
    if bmp_only:
        ranges = tuple((lo, min(hi, _BMP_END - 1)) for lo, hi in ranges if lo < _BMP_END)
    if not ranges:
        return "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{body}]"


_ANCHORS = {
    r"\A": r"\A",
    r"\z": r"\Z",
    r"\Z": r"(?=\n?\Z)",  # Oniguruma's \Z also matches before a final newline
    "^": "(?m:^)",  # Ruby syntax: ^ and $ are line anchors
    "$": "(?m:$)",
}


def _emit(node: object, bmp_only: bool) -> str:
    """Python `re` source for a tree from onig.parse."""
    if isinstance(node, Chars):
        return _class(node.ranges, bmp_only)
    if isinstance(node, Seq):
        return "".join(_emit(item, bmp_only) for item in node.items)
    if isinstance(node, Alt):
        return "(?:" + "|".join(_emit(b, bmp_only) for b in node.branches) + ")"
    if isinstance(node, Repeat):
        hi = "" if node.max is None else str(node.max)
        quantifier = {(0, ""): "*", (1, ""): "+", (0, "1"): "?"}.get((node.min, hi), f"{{{node.min},{hi}}}")
        if node.min == node.max:
            quantifier = f"{{{node.min}}}"
        return f"(?:{_emit(node.item, bmp_only)}){quantifier}{node.mode}"
    if isinstance(node, Atomic):
        return f"(?>{_emit(node.body, bmp_only)})"
    if isinstance(node, Look):
        if node.kind.startswith("<") and isinstance(node.body, Alt):
            # Oniguruma allows alternatives of different widths in a lookbehind; Python
            # wants each lookbehind fixed-width, so assert the alternatives one by one.
            parts = [f"(?{node.kind}{_emit(b, bmp_only)})" for b in node.body.branches]
            return "(?:" + "|".join(parts) + ")" if node.kind == "<=" else "".join(parts)
        return f"(?{node.kind}{_emit(node.body, bmp_only)})"
    if isinstance(node, Anchor):
        if node.kind in _ANCHORS:
            return _ANCHORS[node.kind]
        w = _class(WORD, bmp_only)
        if node.kind == r"\b":
            return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
        return f"(?:(?<={w})(?={w})|(?<!{w})(?!{w}))"
    raise TypeError(node)


def _contains(ranges: Ranges, starts: list[int], cp: int) -> bool:
    i = bisect_right(starts, cp) - 1
    return i >= 0 and cp <= ranges[i][1]


def _astral_proxies(sets: list[Ranges]) -> tuple[list[int], list[str]] | None:
    """Intervals of astral code points and the BMP character standing in for each.

    Each elementary interval (no set boundary inside) gets the first BMP character with
    the same membership in every set. None when some interval has no such character.
    """
    sets = sorted(set(sets))
    set_starts = [[lo for lo, _ in rs] for rs in sets]

    def signature(cp: int) -> tuple[bool, ...]:
        return tuple(_contains(rs, st, cp) for rs, st in zip(sets, set_starts))

    cuts = {0, _BMP_END, MAX_CODE_POINT + 1, *_SURROGATES}
    for rs in sets:
        for lo, hi in rs:
            cuts.update((lo, hi + 1))
    cuts = sorted(c for c in cuts if c <= MAX_CODE_POINT + 1)
    by_signature: dict[tuple[bool, ...], str] = {}
    starts: list[int] = []
    proxies: list[str] = []
    for lo, hi in zip(cuts, cuts[1:]):
        if _SURROGATES[0] <= lo < _SURROGATES[1]:
            continue
        sig = signature(lo)
        if lo < _BMP_END:
            by_signature.setdefault(sig, chr(lo))
        elif sig not in by_signature:
            return None
        else:
            starts.append(lo)
            proxies.append(by_signature[sig])
    return starts, proxies


def _compile(source: str) -> re.Pattern:
    try:
        return re.compile(source)
    except (re.error, OverflowError, RecursionError) as e:
        raise PatternError(f"cannot be run by Python's re ({e})") from None


class Pattern:
    """A parsed Oniguruma pattern, matched as Oniguruma (through HF's `onig` crate) matches it."""

    def __init__(self, tree: object) -> None:
        # A plain string (a `String` pattern, or a regex of literal characters) is
        # replaced by str.replace, which finds the same leftmost non-overlapping matches.
        self.literal: str | None = _literal_text(tree)
        self.nullable = min_width(tree) == 0
        uncovered = complement(single_char_cover(tree))
        # Matches tile every text (nothing between them) when one can start anywhere.
        self.tiles_everything = not self.nullable and all(
            _SURROGATES[0] <= lo and hi < _SURROGATES[1] for lo, hi in uncovered
        )
        bmp_source = _emit(tree, bmp_only=True)
        self._bmp = _compile(bmp_source)
        # The same pattern as one group: re.split then returns matches and gaps alike.
        self._bmp_split = _compile(f"({bmp_source})")
        proxies = _astral_proxies(char_sets(tree))
        if proxies is None:
            full_source = _emit(tree, bmp_only=False)
            self._full: re.Pattern | None = _compile(full_source)
            self._full_split: re.Pattern | None = _compile(f"({full_source})")
            self._proxy_starts, self._proxies = [], []
        else:
            self._full = self._full_split = None
            self._proxy_starts, self._proxies = proxies
        self._proxy_cache: dict[str, str] = {}

    def _proxy(self, match: re.Match) -> str:
        char = match.group()
        proxy = self._proxy_cache.get(char)
        if proxy is None:
            proxy = self._proxies[bisect_right(self._proxy_starts, ord(char)) - 1]
            self._proxy_cache[char] = proxy
        return proxy

    def _searchable(self, text: str, split: bool = False) -> tuple[re.Pattern, str]:
        """The compiled pattern (the grouped one, for `split`) and the text to run it on.

        Offsets in the text returned are offsets in `text`: astral characters are mapped
        one for one to their BMP proxies.
        """
        if text.isascii() or not _ASTRAL.search(text):
            return (self._bmp_split if split else self._bmp), text
        if self._full is not None:
            return (self._full_split if split else self._full), text
        return (self._bmp_split if split else self._bmp), _ASTRAL.sub(self._proxy, text)

    def isolate(self, text: str) -> list[str]:
        """Matches and the stretches between them, in order, empty ones dropped.

        HF's `Isolated` split, done by `re.split` in C. Only for patterns that cannot
        match empty.
        """
        compiled, searched = self._searchable(text, split=True)
        parts = compiled.split(searched)
        if searched is text:
            return list(filter(None, parts))
        pieces, start = [], 0
        for part in parts:
            if part:
                pieces.append(text[start : start + len(part)])
                start += len(part)
        return pieces

    def findall(self, text: str) -> list[str]:
        """The matched substrings, in order. Only for patterns that cannot match empty."""
        compiled, searched = self._searchable(text)
        if searched is text:
            return compiled.findall(text)
        return [text[m.start() : m.end()] for m in compiled.finditer(searched)]

    def replace(self, text: str, content: str) -> str:
        """Every match replaced by `content`, as HF's Replace does. Only for patterns that cannot match empty."""
        if self.literal is not None:
            return text.replace(self.literal, content)
        out, done = [], 0
        for start, end in self.spans(text):
            out.append(text[done:start])
            out.append(content)
            done = end
        out.append(text[done:])
        return "".join(out)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every match, as the `onig` crate's find_iter yields them.

        Its rule for empty matches differs from Python's: an empty match right where the
        previous match ended is skipped (the search moves one character on), and a
        non-empty match is never tried at a position where the pattern prefers empty.
        """
        compiled, searched = self._searchable(text)
        if not self.nullable:
            return [m.span() for m in compiled.finditer(searched)]
        out = []
        pos, last_end, n = 0, -1, len(text)
        while pos <= n:
            m = compiled.search(searched, pos)
            if m is None:
                break
            start, end = m.span()
            if start == end == last_end:
                pos += 1
                continue
            out.append((start, end))
            pos = last_end = end
        return out


def _literal_text(tree: object) -> str | None:
    """The string a pattern of single characters in sequence matches, or None."""
    items = tree.items if isinstance(tree, Seq) else (tree,)
    chars = []
    for item in items:
        if not (isinstance(item, Chars) and len(item.ranges) == 1 and item.ranges[0][0] == item.ranges[0][1]):
            return None
        chars.append(chr(item.ranges[0][0]))
    return "".join(chars) or None


def from_json(config: object, path: str, nullable: bool = True) -> Pattern:
    """A tokenizer.json pattern, `{"String": ...}` or `{"Regex": ...}`.

    `nullable=False` refuses patterns that can match the empty string (HF inserts at
    every empty match in ways edgepop does not reproduce).
    """
    if not isinstance(config, dict) or len(config) != 1 or not isinstance(next(iter(config.values())), str):
        raise UnsupportedTokenizer(path, f'expected {{"String": ...}} or {{"Regex": ...}}, got {config!r}')
    ((kind, source),) = config.items()
    try:
        if kind == "String":
            tree = onig.literal(source)
        elif kind == "Regex":
            tree = onig.parse(source)
        else:
            raise UnsupportedTokenizer(path, f"pattern kind {kind!r} is neither String nor Regex")
        compiled = Pattern(tree)
    except onig.PatternError as e:
        raise UnsupportedTokenizer(path, f"pattern {source!r} {e}") from None
    if compiled.nullable and not nullable:
        raise UnsupportedTokenizer(path, f"pattern {source!r} can match the empty string, which is not implemented here")
    return compiled
