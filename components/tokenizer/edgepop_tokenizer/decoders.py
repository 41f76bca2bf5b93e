"""Decoders: tokens (strings) back to text."""

from __future__ import annotations

from collections.abc import Callable

from . import byte_level
from .errors import UnsupportedTokenizer, build

Decoder = Callable[[list[str]], str]


def _byte_level(config: dict, path: str) -> Decoder:
    # HF's String::from_utf8_lossy and Python's "replace" both substitute U+FFFD for each
    # maximal invalid subsequence (the Unicode-recommended practice); the tests check it.
    return lambda tokens: byte_level.to_bytes(tokens).decode("utf-8", "replace")


def _sequence(config: dict, path: str) -> Decoder:
    items = config.get("decoders")
    if not isinstance(items, list) or not items:
        raise UnsupportedTokenizer(f"{path}.decoders", "expected a non-empty list of decoders")
    steps = [from_json(item, f"{path}.decoders[{i}]") for i, item in enumerate(items)]
    if len(steps) > 1:
        # ByteLevel hands the next decoder one string; none of edgepop's decoders yet
        # does anything to a single string, so longer chains are refused until one does.
        raise UnsupportedTokenizer(f"{path}.decoders", "a Sequence of more than one decoder is not implemented")
    return steps[0]


_BUILDERS: dict[str, Callable[[dict, str], Decoder]] = {"ByteLevel": _byte_level, "Sequence": _sequence}


def _join_with_spaces(tokens: list[str]) -> str:
    return " ".join(tokens)


def from_json(config: object, path: str = "decoder") -> Decoder:
    """The decoder of a tokenizer.json; with none, HF joins the tokens with spaces."""
    if config is None:
        return _join_with_spaces
    return build(_BUILDERS, config, path, "decoder")
