"""Typed access to components that export `edge:ai/tokenizer`.

`TokenizerComponent` gives each call its own fresh instance, the default isolation;
`TokenizerSession` keeps one instance for a sequence of calls from the same client (a
CLI run, one request's several steps). Errors the component reports in its `result`
become `TokenizeError` subclasses; traps become the runtime's `GuestTrap` subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgepop_tokenizer import packed_ids

from .canonical import Err, Ok
from .errors import EdgepopError
from .runtime import Instance, LoadedComponent

INTERFACE = "edge:ai/tokenizer@0.2.0"

# What a prepared instance encodes before any request reaches it: fixed text (prose,
# code, several scripts), the same for every instance, so the pages an encode touches
# are already faulted in and no request's data is ever in an instance handed out.
WARM_UP_TEXT = (
    "The quick brown fox jumps over the lazy dog. It's 2026; prices rose 3.5% to $1,024.\n"
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text if c.isalnum()]\n"
    "Die Würde des Menschen ist unantastbar. 東京は日本の首都です。 Привет, мир! مرحبا بالعالم\n"
)


def warm_up(instance: Instance) -> None:
    """Prepare a tokenizer instance (see LoadedComponent.prepare) by describing and encoding fixed text."""
    instance.call(INTERFACE, "describe")
    for add_special_tokens in (True, False):
        instance.call(INTERFACE, "encode", WARM_UP_TEXT, add_special_tokens)


class TokenizeError(EdgepopError):
    """The tokenizer refused the input; the message says why."""


class InputTooLarge(TokenizeError):
    def __init__(self, index: int, size: int, limit: int) -> None:
        where = f"text {index} of the batch" if index else "the text"
        super().__init__(f"{where} is {size:,} bytes of UTF-8, over the limit of {limit:,} bytes")
        self.index, self.size, self.limit = index, size, limit


class UnknownTokenId(TokenizeError):
    def __init__(self, position: int, token_id: int) -> None:
        super().__init__(f"id {token_id} at position {position} is not in the vocabulary")
        self.position, self.token_id = position, token_id


class MalformedIds(TokenizeError):
    """Packed ids that are not 8n hex digits, or ids outside u32."""


class GuestInternalError(TokenizeError):
    """The component failed on its own; the message carries its traceback."""


@dataclass(frozen=True)
class SpecialToken:
    id: int
    content: str


@dataclass(frozen=True)
class TokenizerInfo:
    model_name: str
    model_type: str
    vocab_size: int
    special_tokens: tuple[SpecialToken, ...]
    max_context_length: int | None
    lossless: bool
    max_input_bytes: int
    source_sha256: str


class TokenizerSession:
    """One instance of a tokenizer component, for several calls."""

    def __init__(self, instance: Instance) -> None:
        self._limit = instance.loaded.runtime.config.limits.max_input_bytes
        self.instance = instance

    def close(self) -> None:
        self.instance.close()

    def __enter__(self) -> "TokenizerSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> TokenizerInfo:
        info = self.instance.call(INTERFACE, "describe")
        return TokenizerInfo(
            model_name=info.model_name,
            model_type=info.model_type,
            vocab_size=info.vocab_size,
            special_tokens=tuple(SpecialToken(t.id, t.content) for t in info.special_tokens),
            max_context_length=info.max_context_length,
            lossless=info.lossless,
            max_input_bytes=info.max_input_bytes,
            source_sha256=info.source_sha256,
        )

    def encode_packed(self, text: str, add_special_tokens: bool = True) -> str:
        """Ids as WIT's `packed-token-ids`: what the host forwards without unpacking."""
        self._check_size(text, 0)
        return _unwrap(self.instance.call(INTERFACE, "encode", text, add_special_tokens))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return packed_ids.unpack(self.encode_packed(text, add_special_tokens))

    def encode_with_offsets(self, text: str, add_special_tokens: bool = True) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids and, per token, the (start, end) span of `text` it comes from, in characters."""
        self._check_size(text, 0)
        encoding = _unwrap(self.instance.call(INTERFACE, "encode-with-offsets", text, add_special_tokens))
        bounds = packed_ids.unpack(encoding.offsets)
        return packed_ids.unpack(encoding.ids), list(zip(bounds[::2], bounds[1::2]))

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[list[int]]:
        for index, text in enumerate(texts):
            self._check_size(text, index)
        packed = _unwrap(self.instance.call(INTERFACE, "encode-batch", list(texts), add_special_tokens))
        return [packed_ids.unpack(p) for p in packed]

    def count(self, text: str, add_special_tokens: bool = True) -> int:
        self._check_size(text, 0)
        return _unwrap(self.instance.call(INTERFACE, "count", text, add_special_tokens))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        try:
            packed = packed_ids.pack(ids)
        except (OverflowError, TypeError) as e:
            raise MalformedIds(f"token ids must be integers in 0..4294967295: {e}") from None
        return _unwrap(self.instance.call(INTERFACE, "decode", packed, skip_special_tokens))

    def _check_size(self, text: str, index: int) -> None:
        """The host's own input limit, checked before the text is copied into the guest."""
        if len(text) * 4 > self._limit:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self._limit:
                raise InputTooLarge(index, size, self._limit)


class TokenizerComponent:
    """A loaded tokenizer component; every call here runs in a fresh instance."""

    def __init__(self, loaded: LoadedComponent) -> None:
        self.loaded = loaded

    def session(self) -> TokenizerSession:
        """A session on a fresh instance."""
        return TokenizerSession(self.loaded.instantiate())

    def describe(self) -> TokenizerInfo:
        with self.session() as session:
            return session.describe()

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        with self.session() as session:
            return session.encode(text, add_special_tokens)

    def encode_with_offsets(self, text: str, add_special_tokens: bool = True) -> tuple[list[int], list[tuple[int, int]]]:
        with self.session() as session:
            return session.encode_with_offsets(text, add_special_tokens)

    def count(self, text: str, add_special_tokens: bool = True) -> int:
        with self.session() as session:
            return session.count(text, add_special_tokens)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        with self.session() as session:
            return session.decode(ids, skip_special_tokens)


def _unwrap(result: Ok[Any] | Err[Any]) -> Any:
    """The ok value, or the component's `tokenize-error` as an exception."""
    if isinstance(result, Ok):
        return result.value
    error = result.value
    if error.tag == "input-too-large":
        raise InputTooLarge(error.payload.index, error.payload.bytes, error.payload.limit)
    if error.tag == "unknown-token-id":
        raise UnknownTokenId(error.payload.position, error.payload.id)
    if error.tag == "malformed-ids":
        raise MalformedIds(error.payload)
    raise GuestInternalError(f"the tokenizer component failed: {error.payload}")
