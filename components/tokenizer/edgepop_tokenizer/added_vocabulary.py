"""Added tokens: strings matched in the raw text before any pre-tokenization.

Mirrors tokenizers' tokenizer/added_vocabulary.rs. Ids are assigned the way HF assigns
them when it loads a file (the `id` fields in the JSON are not used): a token whose
content is already in the model vocabulary keeps that id, any other takes the next one
after the model's vocabulary size. Tokens are matched leftmost-longest, first those
with `normalized: false` against the raw text, then those with `normalized: true`
against the normalized remainder; `single_word`, `lstrip` and `rstrip` then apply as
in HF's find_matches.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from . import alignment, unicode_props
from .alignment import Aligned
from .errors import UnsupportedTokenizer
from .normalizers import Normalizer

# HF tests these with the Rust `regex` crate: its \s is Unicode White_Space, which is
# Oniguruma's \s too; its \w differs from Oniguruma's in eight characters (probed: ZWNJ
# and ZWJ are word characters for it, superscripts ¹²³ and fractions ¼½¾ are not).
_WHITESPACE = frozenset(chr(cp) for lo, hi in unicode_props.ranges(r"\s") for cp in range(lo, hi + 1))
_RUST_WORD_EXTRA = {0x200C, 0x200D}
_RUST_WORD_MISSING = {0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0xBE}
_WORD_STARTS = [lo for lo, _ in unicode_props.ranges(r"\w")]
_WORD_RANGES = unicode_props.ranges(r"\w")


def _is_word_char(char: str) -> bool:
    cp = ord(char)
    if cp in _RUST_WORD_EXTRA:
        return True
    if cp in _RUST_WORD_MISSING:
        return False
    i = bisect_right(_WORD_STARTS, cp) - 1
    return i >= 0 and cp <= _WORD_RANGES[i][1]


@dataclass(frozen=True)
class AddedToken:
    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True
    special: bool = False


class _Matcher:
    """Leftmost-longest search for a set of strings (HF uses an Aho-Corasick automaton)."""

    def __init__(self, tokens: dict[str, int], added: dict[int, AddedToken]) -> None:
        self.ids = tokens
        self.added = added
        # Longest first: at the leftmost position, the first alternative that matches is
        # then the longest one.
        self.regex = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))

    def split(self, text: str) -> list[tuple[str, int | None]]:
        """HF's find_matches: (piece, id of the added token or None) covering the text."""
        return [(text[start:stop], token_id) for start, stop, token_id in self.spans(text)]

    def spans(self, text: str) -> list[tuple[int, int, int | None]]:
        """`split` as (start, stop, token id) spans."""
        out: list[tuple[int, int, int | None]] = []
        start_offset = 0
        for m in self.regex.finditer(text):
            start, stop = m.span()
            token_id = self.ids[m.group()]
            token = self.added[token_id]
            if token.single_word and (
                (start > 0 and _is_word_char(text[start - 1])) or (stop < len(text) and _is_word_char(text[stop]))
            ):
                continue
            if token.lstrip:
                while start > 0 and text[start - 1] in _WHITESPACE:
                    start -= 1
                start = max(start, start_offset)  # the previous match may have taken them
            if token.rstrip:
                while stop < len(text) and text[stop] in _WHITESPACE:
                    stop += 1
            if start_offset < start:
                out.append((start_offset, start, None))
            out.append((start, stop, token_id))
            start_offset = stop
        if start_offset != len(text):
            out.append((start_offset, len(text), None))
        return out


class AddedVocabulary:
    """The added tokens of a tokenizer and the splitting of text around them."""

    def __init__(self, tokens: list[AddedToken], vocab: dict[str, int], vocab_size: int, normalizer: Normalizer | None) -> None:
        self.by_content: dict[str, int] = {}
        self.by_id: dict[int, AddedToken] = {}
        self.special: set[str] = set()
        self.normalized_content: dict[int, str] = {}
        next_id = vocab_size
        for token in tokens:
            if not token.content:
                continue
            known = self.by_content.get(token.content)
            if known is not None and self.by_id[known] == token:
                continue
            token_id = known if known is not None else vocab.get(token.content)
            if token_id is None:
                token_id, next_id = next_id, next_id + 1
            if token.normalized and normalizer is not None:
                normed = normalizer(token.content)
                if normed != token.content:
                    self.normalized_content[token_id] = normed
            self.by_content[token.content] = token_id
            if token.special:
                self.special.add(token.content)  # never removed, as in HF
            self.by_id[token_id] = token
        raw = {t.content: i for i, t in self.by_id.items() if not t.normalized}
        normalized = {self.token(i): i for i, t in self.by_id.items() if t.normalized and self.token(i)}
        self._raw = _Matcher(raw, self.by_id) if raw else None
        self._normalized = _Matcher(normalized, self.by_id) if normalized else None

    def token(self, token_id: int) -> str | None:
        """The string an added token decodes from (its normalized form when it has one)."""
        if token_id not in self.by_id:
            return None
        return self.normalized_content.get(token_id, self.by_id[token_id].content)

    def split(self, text: str, normalizer: Normalizer | None) -> list[tuple[str, int | None]]:
        """The text cut around added tokens: (piece, token id) for a token, (normalized text, None) else."""
        pieces = self._raw.split(text) if self._raw else [(text, None)]
        out: list[tuple[str, int | None]] = []
        for piece, token_id in pieces:
            if token_id is None:
                if normalizer is not None:
                    piece = normalizer(piece)
                if self._normalized:
                    out.extend(p for p in self._normalized.split(piece) if p[0])
                    continue
            if piece:
                out.append((piece, token_id))
        return out


    def split_aligned(self, text: str, normalizer: Normalizer | None) -> list[tuple[Aligned, int | None]]:
        """`split` with the original span of every character (for offsets)."""
        pieces = self._raw.spans(text) if self._raw else [(0, len(text), None)]
        out: list[tuple[Aligned, int | None]] = []
        for start, stop, token_id in pieces:
            piece = alignment.original(text[start:stop], start)
            if token_id is None:
                if normalizer is not None:
                    piece = normalizer.align(piece)
                if self._normalized:
                    out.extend((piece.cut(a, b), i) for a, b, i in self._normalized.spans(piece.text) if a != b)
                    continue
            if piece.text:
                out.append((piece, token_id))
        return out


def from_json(
    config: object, vocab: dict[str, int], vocab_size: int, normalizer: Normalizer | None, path: str = "added_tokens"
) -> AddedVocabulary:
    """The added tokens; `vocab` and `vocab_size` are the model's (new ids start at `vocab_size`)."""
    if config is None:
        config = []
    if not isinstance(config, list):
        raise UnsupportedTokenizer(path, "expected a list of added tokens")
    tokens = []
    for i, item in enumerate(config):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise UnsupportedTokenizer(f"{path}[{i}]", "expected an object with a string `content`")
        flags = {}
        for name, default in (("single_word", False), ("lstrip", False), ("rstrip", False), ("normalized", True), ("special", False)):
            value = item.get(name, default)
            if not isinstance(value, bool):
                raise UnsupportedTokenizer(f"{path}[{i}].{name}", f"expected true or false, got {value!r}")
            flags[name] = value
        tokens.append(AddedToken(item["content"], **flags))
    return AddedVocabulary(tokens, vocab, vocab_size, normalizer)
