"""The two ways the tokenizer says no: at load time, and at decode time."""

from __future__ import annotations


class UnsupportedTokenizer(ValueError):
    """A tokenizer.json asks for something edgepop does not reproduce exactly.

    Refusing at load is the whole contract: a component either gives HF's ids bit for
    bit or is never built. `path` is where in the JSON the offending value sits, e.g.
    `pre_tokenizer.pretokenizers[0].pattern`.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnknownTokenId(ValueError):
    """decode() was given an id the vocabulary (added tokens included) does not have."""

    def __init__(self, position: int, token_id: int) -> None:
        super().__init__(f"unknown token id {token_id} at position {position}")
        self.position = position
        self.id = token_id


class DecodeError(ValueError):
    """decode() was given ids on which HF's decoder fails (it panics), so there is no text to match."""


def build(builders: dict, config: object, path: str, stage: str):
    """Build a stage from its JSON object with the builder registered for its `type`.

    Every stage (normalizer, pre-tokenizer, ...) keeps such a registry; a type missing
    from it is refused here, with the types edgepop does have.
    """
    kind = config.get("type") if isinstance(config, dict) else None
    builder = builders.get(kind)
    if builder is None:
        raise UnsupportedTokenizer(f"{path}.type", f"{stage} {kind!r} is not implemented (edgepop has {', '.join(builders)})")
    return builder(config, path)
