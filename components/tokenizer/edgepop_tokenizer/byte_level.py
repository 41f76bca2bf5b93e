"""GPT-2's reversible byte <-> printable character mapping, the heart of byte-level BPE.

Every UTF-8 byte is shown as one printable character (space becomes `Ġ`, newline `Ċ`),
so a vocabulary of strings can hold arbitrary bytes. Both directions are `str.translate`
tables, which run at C speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _byte_chars() -> list[str]:
    """The character that stands for each byte value, index = byte (openai/gpt-2 encoder.py)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + shifted)
            shifted += 1
    return [chars[b] for b in range(256)]


BYTE_CHARS: list[str] = _byte_chars()

# latin-1 code point (= byte value) -> byte-level character, and back.
_TO_BYTE_LEVEL = {b: c for b, c in enumerate(BYTE_CHARS)}
_FROM_BYTE_LEVEL = {ord(c): b for b, c in enumerate(BYTE_CHARS)}

_OUTSIDE_ALPHABET = re.compile("[^" + "".join(re.escape(c) for c in BYTE_CHARS) + "]")

# The regex ByteLevel(use_regex=true) splits with (tokenizers' pre_tokenizers/byte_level.rs).
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def to_byte_level(text: str) -> str:
    """The byte-level string of `text`: one character per UTF-8 byte."""
    return text.encode("utf-8").decode("latin-1").translate(_TO_BYTE_LEVEL)


def is_byte_level(token: str) -> bool:
    """Whether every character of `token` stands for a byte (so it decodes to those bytes)."""
    return _OUTSIDE_ALPHABET.search(token) is None


def to_bytes(tokens: Iterable[str]) -> bytes:
    """The bytes a sequence of tokens spells, as HF's ByteLevel decoder computes them.

    A token with any character outside the byte alphabet (an added token such as
    `<｜tool▁sep｜>`) contributes its own UTF-8 instead.
    """
    tokens = list(tokens)
    joined = "".join(tokens)
    if is_byte_level(joined):
        return joined.translate(_FROM_BYTE_LEVEL).encode("latin-1")
    return b"".join(
        t.translate(_FROM_BYTE_LEVEL).encode("latin-1") if is_byte_level(t) else t.encode("utf-8") for t in tokens
    )
