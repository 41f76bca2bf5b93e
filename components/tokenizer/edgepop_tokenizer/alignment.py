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

Span = tuple[int, int]


class Aligned:
    """A text and, per character, its span in the original text.

    While a text is a stretch of the original as it was, its spans are only implied
    (`start` + i for character i) and never built: most tokenizers change nothing before
    the model, and offsets then cost little more than ids. Once a stage changes the text,
    the spans are a list, and `start` stays where the segment being normalized begins:
    HF aligns a character inserted at its very start with the empty span there.
    """

    __slots__ = ("text", "_spans", "start")

    def __init__(self, text: str, spans: list[Span] | None = None, start: int = 0) -> None:
        self.text = text
        self._spans = spans
        self.start = start

    @property
    def spans(self) -> list[Span]:
        if self._spans is None:
            return [(i, i + 1) for i in range(self.start, self.start + len(self.text))]
        return self._spans

    def cut(self, start: int, end: int) -> Aligned:
        if self._spans is None:
            return Aligned(self.text[start:end], None, self.start + start)
        return Aligned(self.text[start:end], self._spans[start:end], self.start)

    def span(self, start: int, end: int) -> Span:
        """The original span of characters start..end (HF: first one's start, last one's end)."""
        if self._spans is None:
            return self.start + start, self.start + end
        return self._spans[start][0], self._spans[end - 1][1]

    def with_text(self, text: str) -> Aligned:
        """Another text of the same length, character for character in the same places."""
        return Aligned(text, self._spans, self.start)

    def prepend(self, prefix: str) -> Aligned:
        """`prefix` before the text, aligned with its first character (HF's prepend)."""
        if not self.text:
            return self
        return Aligned(prefix + self.text, [self.span(0, 1)] * len(prefix) + self.spans, self.start)


def original(text: str, start: int = 0) -> Aligned:
    """Text that is its own original, starting at character `start` of the whole."""
    return Aligned(text, None, start)


def transform(source: Aligned, changes: Iterable[tuple[str, int]]) -> Aligned:
    """HF's NormalizedString::transform: the new text from (character, change) pairs.

    change 0: the character replaces the next one of `source`; -n: it also removes the n
    after that; 1: it is inserted, with the span of the source character before it (the
    empty span at `start` at the very start).
    """
    spans = source.spans
    at = 0
    chars: list[str] = []
    out: list[Span] = []
    for char, change in changes:
        if change > 0:
            out.append(spans[at - 1] if at else (source.start, source.start))
        else:
            out.append(spans[at])
            at += 1 - change
        chars.append(char)
    return Aligned("".join(chars), out, source.start)


def per_character(source: Aligned, step: Callable[[str], str]) -> Aligned:
    """A normalizer that maps each character on its own (lowercase, filters, CJK spacing):
    what a character becomes takes its span, as HF's transforms of such steps give."""
    becomes = {char: step(char) for char in set(source.text)}
    if all(len(new) == 1 for new in becomes.values()):
        return source.with_text(source.text.translate({ord(c): new for c, new in becomes.items()}))
    out: list[Span] = []
    for char, span in zip(source.text, source.spans):
        out.extend([span] * len(becomes[char]))
    return Aligned("".join(map(becomes.__getitem__, source.text)), out, source.start)


def bytes_at_end(start: int, end: int, text: str) -> dict[str, int]:
    """A span that starts at the end of `text`, as HF's Python API reports it: its
    byte-to-character map has no entry there, so the span stays in UTF-8 bytes."""
    return {"start": len(text[:start].encode("utf-8")), "end": len(text[:end].encode("utf-8"))}
