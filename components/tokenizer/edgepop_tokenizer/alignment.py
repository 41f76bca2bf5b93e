"""Text with the place in the original text of each of its characters: HF's alignments.

HF's NormalizedString keeps, for every byte of the normalized text, the span of the
original text it came from; token offsets are read off it. HF gives every byte of a
character the same span, so one span per character says the same, and spans here are
in characters of the original text, which is what HF's Python API reports.

Normalizers and pre-tokenizers change the text and its spans together (`Aligned`); how
each stage moves the spans is HF's `transform`: a new character either replaces the next
original one (and takes its span), also swallows some that follow, or is inserted (and
takes the span of the original character before it). Replaying that rule, including
where HF's bookkeeping is odd, is what makes the offsets exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

Span = tuple[int, int]


class Aligned(NamedTuple):
    """A text and, per character, its span in the original text.

    `origin` is where in the original the segment being normalized starts: HF aligns a
    character inserted at its very start with the empty span there.
    """

    text: str
    spans: list[Span]
    origin: int = 0

    def cut(self, start: int, end: int) -> Aligned:
        return Aligned(self.text[start:end], self.spans[start:end], self.origin)

    def span(self, start: int, end: int) -> Span:
        """The original span of characters start..end (HF: first one's start, last one's end)."""
        return self.spans[start][0], self.spans[end - 1][1]

    def prepend(self, prefix: str) -> Aligned:
        """`prefix` before the text, aligned with its first character (HF's prepend)."""
        if not self.text:
            return self
        return Aligned(prefix + self.text, [self.spans[0]] * len(prefix) + self.spans, self.origin)


def original(text: str, start: int = 0) -> Aligned:
    """Text that is its own original, starting at character `start` of the whole."""
    return Aligned(text, [(i, i + 1) for i in range(start, start + len(text))], start)


def transform(source: Aligned, changes: Iterable[tuple[str, int]], removed_first: int = 0) -> Aligned:
    """HF's NormalizedString::transform: the new text from (character, change) pairs.

    change 0: the character replaces the next one of `source`; -n: it also removes the n
    after that; 1: it is inserted, with the span of the source character before it (the
    empty span at `origin` at the very start). The first `removed_first` source
    characters are dropped.
    """
    spans = source.spans
    at = removed_first
    chars: list[str] = []
    out: list[Span] = []
    for char, change in changes:
        if change > 0:
            out.append(spans[at - 1] if at else (source.origin, source.origin))
        else:
            out.append(spans[at])
            at += 1 - change
        chars.append(char)
    return Aligned("".join(chars), out, source.origin)


def per_character(source: Aligned, step: Callable[[str], str]) -> Aligned:
    """A normalizer that maps each character on its own (lowercase, filters, CJK spacing):
    what a character becomes takes its span, as HF's transforms of such steps give."""
    becomes = {char: step(char) for char in set(source.text)}
    if all(len(new) == 1 for new in becomes.values()):
        return Aligned(source.text.translate({ord(c): new for c, new in becomes.items()}), source.spans, source.origin)
    out: list[Span] = []
    for char, span in zip(source.text, source.spans):
        out.extend([span] * len(becomes[char]))
    return Aligned("".join(map(becomes.__getitem__, source.text)), out, source.origin)


def char_offsets(spans: list[Span], text: str) -> list[Span]:
    """The spans as HF's Python API reports them: in characters, except that a span starting
    at the end of the text stays in bytes (HF's byte-to-char map has no entry there)."""
    n = len(text)
    if text.isascii():
        return spans
    return [(s, e) if s < n else (len(text[:s].encode("utf-8")), len(text[:e].encode("utf-8"))) for s, e in spans]
