"""The WordLevel model: each pre-tokenized word is one vocabulary entry, or the unknown token."""

from __future__ import annotations

from .errors import UnsupportedTokenizer
from .vocab import read_vocab, unknown_id


class WordLevel:
    type = "WordLevel"

    def __init__(self, vocab: dict[str, int], unk_token: str, path: str = "model") -> None:
        self.vocab = vocab
        self.size = len(vocab)
        self.id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
        self.unk_id = unknown_id(vocab, unk_token, path)

    def tokenize(self, word: str) -> list[int]:
        found = self.vocab.get(word)
        return [self.unk_id if found is None else found]

    def tokenize_spans(self, word: str) -> list[tuple[int, int, int]]:
        """(id, start, end) per token: the one token spans the word."""
        return [(self.tokenize(word)[0], 0, len(word))]


def from_json(config: dict, path: str = "model") -> WordLevel:
    vocab = read_vocab(config, path)
    unk_token = config.get("unk_token", "<unk>")
    if not isinstance(unk_token, str):
        raise UnsupportedTokenizer(f"{path}.unk_token", f"expected a string, got {unk_token!r}")
    return WordLevel(vocab, unk_token, path)
