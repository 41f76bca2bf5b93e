"""The WordPiece model (BERT): greedy longest-match-first over a word, as HF's models/wordpiece.

A word is cut from the left into the longest vocabulary entries, every entry after the
first looked up with the continuing-subword prefix (`##`). A word with a part no entry
covers, or longer than `max_input_chars_per_word`, is the unknown token as a whole.
"""

from __future__ import annotations

from .errors import UnsupportedTokenizer
from .vocab import read_vocab, unknown_id


class WordPiece:
    type = "WordPiece"

    def __init__(self, vocab: dict[str, int], unk_token: str, prefix: str, max_chars: int, path: str = "model") -> None:
        self.vocab = vocab
        self.size = len(vocab)
        self.id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
        self.unk_id = unknown_id(vocab, unk_token, path)
        self.prefix = prefix
        self.max_chars = max_chars
        # No entry is longer, so no longer match needs trying.
        longest = max(map(len, vocab), default=0)
        self._first_span = longest
        self._next_span = longest - len(prefix)

    def tokenize(self, word: str) -> list[int]:
        return [token_id for token_id, _, _ in self.tokenize_spans(word)]

    def tokenize_spans(self, word: str) -> list[tuple[int, int, int]]:
        """(id, start, end) per token, the span in characters of `word`."""
        n = len(word)
        if n > self.max_chars:
            return [(self.unk_id, 0, n)]
        get, prefix = self.vocab.get, self.prefix
        tokens: list[tuple[int, int, int]] = []
        start = 0
        while start < n:
            end = min(n, start + (self._next_span if start else self._first_span))
            while end > start:
                found = get(prefix + word[start:end] if start else word[start:end])
                if found is not None:
                    break
                end -= 1
            else:
                return [(self.unk_id, 0, n)]
            tokens.append((found, start, end))
            start = end
        return tokens


def from_json(config: dict, path: str = "model") -> WordPiece:
    vocab = read_vocab(config, path)
    unk_token = config.get("unk_token", "[UNK]")
    prefix = config.get("continuing_subword_prefix", "##")
    max_chars = config.get("max_input_chars_per_word", 100)
    if not isinstance(unk_token, str) or not isinstance(prefix, str):
        raise UnsupportedTokenizer(path, "expected unk_token and continuing_subword_prefix to be strings")
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 0:
        raise UnsupportedTokenizer(f"{path}.max_input_chars_per_word", f"expected a non-negative integer, got {max_chars!r}")
    return WordPiece(vocab, unk_token, prefix, max_chars, path)
