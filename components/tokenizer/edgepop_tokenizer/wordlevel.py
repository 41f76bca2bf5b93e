"""The WordLevel model: each pre-tokenized word is one vocabulary entry, or the unknown token."""

from __future__ import annotations

from .errors import UnsupportedTokenizer


class WordLevel:
    type = "WordLevel"

    def __init__(self, vocab: dict[str, int], unk_token: str, path: str = "model") -> None:
        self.vocab = vocab
        self.size = len(vocab)
        self.id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
        self.unk_id = vocab.get(unk_token)
        if self.unk_id is None:
            raise UnsupportedTokenizer(f"{path}.unk_token", f"unk_token {unk_token!r} is not in the vocabulary (HF fails on unknown words)")

    def tokenize(self, word: str) -> list[int]:
        found = self.vocab.get(word)
        return [self.unk_id if found is None else found]


def from_json(config: dict, path: str = "model") -> WordLevel:
    vocab = config.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in vocab.values()):
        raise UnsupportedTokenizer(f"{path}.vocab", "expected an object mapping tokens to non-negative ids")
    unk_token = config.get("unk_token", "<unk>")
    if not isinstance(unk_token, str):
        raise UnsupportedTokenizer(f"{path}.unk_token", f"expected a string, got {unk_token!r}")
    return WordLevel(vocab, unk_token, path)
