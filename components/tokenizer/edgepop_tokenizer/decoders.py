"""Decoders: tokens (strings) back to text.

As in HF, a decoder is a chain of steps, each mapping the list of token strings to a new
list (`decode_chain`); the text is the concatenation of what the last step returns. A
Sequence is the steps of its decoders in order. Where HF panics (Strip asked to cut more
than a token has), `DecodeError` is raised instead of giving any text.
"""

from __future__ import annotations

from collections.abc import Callable

from . import byte_level, pre_tokenizers, regex
from .errors import DecodeError, UnsupportedTokenizer, build

Step = Callable[[list[str]], list[str]]


class Decoder:
    """The steps of a tokenizer.json's decoder, run in order on the token strings."""

    def __init__(self, steps: list[Step], types: list[str]) -> None:
        self.steps = steps
        self.types = types  # the decoder type of each step, for `Tokenizer.lossless`

    def __call__(self, tokens: list[str]) -> str:
        for step in self.steps:
            tokens = step(tokens)
        return "".join(tokens)


def _byte_level(config: dict, path: str) -> Step:
    # HF's String::from_utf8_lossy and Python's "replace" both substitute U+FFFD for each
    # maximal invalid subsequence (the Unicode-recommended practice); the tests check it.
    return lambda tokens: [byte_level.to_bytes(tokens).decode("utf-8", "replace")]


def _string(config: dict, key: str, path: str, default: str | None = None, length: int | None = None) -> str:
    value = config.get(key, default)
    if not isinstance(value, str) or (length is not None and len(value) != length):
        wanted = "a string" if length is None else f"a string of {length} character"
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected {wanted}, got {value!r}")
    return value


def _count(config: dict, key: str, path: str) -> int:
    value = config.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected a non-negative integer, got {value!r}")
    return value


def _metaspace(config: dict, path: str) -> Step:
    """The replacement character back to spaces; in the first token it is dropped, all of
    it, unless the prepend scheme is `never` (HF's decode_chain, probed)."""
    replacement = _string(config, "replacement", path, "\u2581", length=1)
    scheme = pre_tokenizers.prepend_scheme(config, path)

    def decode(tokens: list[str]) -> list[str]:
        out = [t.replace(replacement, " ") for t in tokens]
        if out and scheme != "never":
            out[0] = tokens[0].replace(replacement, "")
        return out

    return decode


def _cleanup(text: str) -> str:
    """HF's wordpiece::cleanup: spaces before punctuation and English contractions removed."""
    for dirty, clean in _CLEANUPS:
        text = text.replace(dirty, clean)
    return text


_CLEANUPS = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]


def _bool(config: dict, key: str, path: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _wordpiece(config: dict, path: str) -> Step:
    """Continuation tokens lose their prefix, the others get a space before them (not the first)."""
    prefix = _string(config, "prefix", path, "##")
    cleanup = _bool(config, "cleanup", path, True)

    def decode(tokens: list[str]) -> list[str]:
        out = []
        for i, token in enumerate(tokens):
            if i:
                token = token.replace(prefix, "", 1) if token.startswith(prefix) else " " + token
            out.append(_cleanup(token) if cleanup else token)
        return out

    return decode


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _byte_of(token: str) -> int | None:
    """The byte a `<0xNN>` token stands for: 6 UTF-8 bytes, NN as Rust's u8::from_str_radix reads it."""
    if len(token) != 6 or not token.startswith("<0x") or token[5] != ">":
        return None
    digits = token[3:5]
    if digits[1] not in _HEX_DIGITS or (digits[0] not in _HEX_DIGITS and digits[0] != "+"):
        return None
    return int(digits, 16)


def _byte_fallback(config: dict, path: str) -> Step:
    """Runs of `<0xNN>` tokens become the text they spell, or one U+FFFD per byte if it is not UTF-8."""

    def decode(tokens: list[str]) -> list[str]:
        out: list[str] = []
        pending = bytearray()
        for token in tokens:
            byte = _byte_of(token)
            if byte is not None:
                pending.append(byte)
                continue
            if pending:
                out.extend(_spelled(pending))
                pending.clear()
            out.append(token)
        if pending:
            out.extend(_spelled(pending))
        return out

    return decode


def _spelled(data: bytearray) -> list[str]:
    try:
        return [data.decode("utf-8")]
    except UnicodeDecodeError:
        return ["\ufffd"] * len(data)


def _fuse(config: dict, path: str) -> Step:
    return lambda tokens: ["".join(tokens)]


def _strip(config: dict, path: str) -> Step:
    """Up to `start` leading and `stop` trailing `content` characters off each token."""
    content = _string(config, "content", path, length=1)
    start, stop = _count(config, "start", path), _count(config, "stop", path)

    def strip_token(token: str) -> str:
        begin = 0
        while begin < min(start, len(token)) and token[begin] == content:
            begin += 1
        end = len(token)
        for _ in range(stop):
            if end == 0:
                raise DecodeError(f"Strip decoder: more than the whole of {token!r} to cut (HF panics)")
            if token[end - 1] != content:
                break
            end -= 1
        if begin > end:
            raise DecodeError(f"Strip decoder: the cuts of {token!r} overlap (HF panics)")
        return token[begin:end]

    return lambda tokens: [strip_token(t) for t in tokens]


def _replace(config: dict, path: str) -> Step:
    pattern = regex.from_json(config.get("pattern"), f"{path}.pattern", nullable=False)
    content = _string(config, "content", path)
    return lambda tokens: [pattern.replace(t, content) for t in tokens]


def _bpe_decoder(config: dict, path: str) -> Step:
    """The end-of-word suffix becomes a space, except in the last token."""
    suffix = _string(config, "suffix", path, "</w>")

    def decode(tokens: list[str]) -> list[str]:
        last = len(tokens) - 1
        return [t.replace(suffix, "" if i == last else " ") for i, t in enumerate(tokens)]

    return decode


def _ctc(config: dict, path: str) -> Step:
    """Repeats collapsed, padding dropped, the word delimiter made a space (with `cleanup`)."""
    pad = _string(config, "pad_token", path, "<pad>")
    delimiter = _string(config, "word_delimiter_token", path, "|")
    cleanup = _bool(config, "cleanup", path, True)

    def decode(tokens: list[str]) -> list[str]:
        out = []
        for i, token in enumerate(tokens):
            if i and token == tokens[i - 1]:
                continue
            token = token.replace(pad, "")
            if cleanup:
                token = _cleanup(token).replace(delimiter, " ")
            if token:
                out.append(token)
        return out

    return decode


def _sequence(config: dict, path: str) -> list[tuple[Step, str]]:
    items = config.get("decoders")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.decoders", "expected a list of decoders")
    return [step for i, item in enumerate(items) for step in _steps(item, f"{path}.decoders[{i}]")]


_BUILDERS: dict[str, Callable[[dict, str], Step]] = {
    "ByteLevel": _byte_level,
    "Metaspace": _metaspace,
    "WordPiece": _wordpiece,
    "ByteFallback": _byte_fallback,
    "Fuse": _fuse,
    "Strip": _strip,
    "Replace": _replace,
    "BPEDecoder": _bpe_decoder,
    "CTC": _ctc,
    "Sequence": _sequence,
}


def _steps(config: object, path: str) -> list[tuple[Step, str]]:
    built = build(_BUILDERS, config, path, "decoder")
    return built if isinstance(built, list) else [(built, config["type"])]


def _join_with_spaces(tokens: list[str]) -> list[str]:
    return [" ".join(tokens)]


def from_json(config: object, path: str = "decoder") -> Decoder:
    """The decoder of a tokenizer.json; with none, HF joins the tokens with spaces."""
    if config is None:
        return Decoder([_join_with_spaces], [])
    steps = _steps(config, path)
    return Decoder([step for step, _ in steps], [kind for _, kind in steps])
