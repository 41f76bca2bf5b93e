"""Models: a pre-tokenized piece -> token ids.

Every model has `type` (tokenizer.json's name for it), `vocab` (token -> id, what added
tokens and `vocab_size` consult), `id_to_token`, `size` (HF's get_vocab_size, where
added tokens' ids start) and `tokenize(piece) -> list[int]`.
"""

from __future__ import annotations

from collections.abc import Callable

from . import bpe, unigram, wordlevel, wordpiece
from .errors import build

_BUILDERS: dict[str, Callable[[dict, str], object]] = {
    "BPE": bpe.from_json,
    "WordPiece": wordpiece.from_json,
    "Unigram": unigram.from_json,
    "WordLevel": wordlevel.from_json,
}


def from_json(config: object, path: str = "model") -> bpe.BPE | wordpiece.WordPiece | unigram.Unigram | wordlevel.WordLevel:
    return build(_BUILDERS, config, path, "model")
