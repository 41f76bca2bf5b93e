"""The vocabulary checks the models share: ids as HF reads them, and the unknown token."""

from __future__ import annotations

from .errors import UnsupportedTokenizer


def read_vocab(config: dict, path: str) -> dict[str, int]:
    """A model's `vocab` object: token -> non-negative id."""
    vocab = config.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in vocab.values()):
        raise UnsupportedTokenizer(f"{path}.vocab", "expected an object mapping tokens to non-negative ids")
    return vocab


def unknown_id(vocab: dict[str, int], unk_token: str, path: str) -> int:
    """The id of the unknown token, which WordPiece and WordLevel need (HF fails on unknown words without it)."""
    unk_id = vocab.get(unk_token)
    if unk_id is None:
        raise UnsupportedTokenizer(f"{path}.unk_token", f"unk_token {unk_token!r} is not in the vocabulary (HF fails on unknown words)")
    return unk_id
