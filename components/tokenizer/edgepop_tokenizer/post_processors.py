"""Post-processors: the special tokens `add_special_tokens` puts around a sequence.

As in HF, a post-processor maps a list of encodings to a list of encodings, and that
list can grow: TemplateProcessing returns one encoding per template piece, so a template
after another one in a Sequence sees two encodings and applies its *pair* template. A
step here is therefore a function on a list of sequences; the pipeline concatenates the
result. A sequence is a list of ids, or of Tokens when offsets are wanted (`Items` says
which): special tokens get the empty span (0, 0), and ByteLevel and RobertaProcessing
trim the spans of tokens that begin or end with spaces (type ids are not edgepop's).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import chain
from typing import Any, NamedTuple

from . import char_classes
from .byte_level import BYTE_CHARS
from .errors import UnsupportedTokenizer, build


class Token(NamedTuple):
    """A token with its span in the original text and its string (HF's Token value)."""

    id: int
    start: int
    end: int
    value: str


class Items(NamedTuple):
    """What sequences hold: how special tokens are made, and whether spans are trimmed."""

    special: Callable[[list[int]], list[Any]]
    trims: bool


IDS = Items(special=list, trims=False)
TOKENS = Items(special=lambda ids: [Token(i, 0, 0, "") for i in ids], trims=True)

Step = Callable[[list[list[Any]], bool, Items], list[list[Any]]]


class PostProcessorError(ValueError):
    """A step was handed a number of sequences it has no template for (HF panics there)."""


class PostProcessor:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    def __call__(self, ids: list[int], add_special_tokens: bool) -> list[int]:
        return self._run(ids, add_special_tokens, IDS)

    def with_offsets(self, tokens: list[Token], add_special_tokens: bool) -> list[Token]:
        return self._run(tokens, add_special_tokens, TOKENS)

    def _run(self, sequence: list[Any], add_special_tokens: bool, items: Items) -> list[Any]:
        sequences = [sequence]
        for step in self.steps:
            sequences = step(sequences, add_special_tokens, items)
        return sequences[0] if len(sequences) == 1 else list(chain.from_iterable(sequences))


@cache
def _spaces() -> str:
    """What offset trimming strips: byte-level's space, `Ġ`, and whitespace (char::is_whitespace)."""
    return BYTE_CHARS[ord(" ")] + char_classes.chars("whitespace")


def trim_offsets(sequence: list[Token], add_prefix_space: bool) -> list[Token]:
    """HF's byte_level::process_offsets: spans lose the spaces (`Ġ` or whitespace) their
    token begins or ends with, except a first token's single space HF itself added."""
    spaces = _spaces()
    out = []
    for i, token in enumerate(sequence):
        token_id, start, end, value = token
        leading = len(value) - len(value.lstrip(spaces))
        trailing = len(value) - len(value.rstrip(spaces))
        if leading and not ((i == 0 or start == 0) and add_prefix_space and leading == 1):
            start = min(start + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, start)
        out.append(Token(token_id, start, end, value))
    return out


def _trimming(config: dict, path: str) -> Callable[[list[list[Any]], Items], list[list[Any]]]:
    """The offset trimming of ByteLevel and RobertaProcessing, as their settings ask."""
    trims = config.get("trim_offsets", True)
    add_prefix_space = config.get("add_prefix_space", True)
    for key, value in (("trim_offsets", trims), ("add_prefix_space", add_prefix_space)):
        if not isinstance(value, bool):
            raise UnsupportedTokenizer(f"{path}.{key}", f"expected true or false, got {value!r}")

    def trim(sequences: list[list[Any]], items: Items) -> list[list[Any]]:
        if not (trims and items.trims):
            return sequences
        return [trim_offsets(sequence, add_prefix_space) for sequence in sequences]

    return trim


def _byte_level(config: dict, path: str) -> Step:
    trim = _trimming(config, path)
    return lambda sequences, add, items: trim(sequences, items)


def _template_pieces(pieces: object, path: str, special: dict) -> list[tuple[bool, object]]:
    """(is_sequence, index of A/B or the special token's ids) per template piece."""
    if not isinstance(pieces, list):
        raise UnsupportedTokenizer(path, "expected a list of template pieces")
    out: list[tuple[bool, object]] = []
    for i, piece in enumerate(pieces):
        where = f"{path}[{i}]"
        if isinstance(piece, dict) and set(piece) == {"Sequence"} and piece["Sequence"].get("id") in ("A", "B"):
            out.append((True, "AB".index(piece["Sequence"]["id"])))
        elif isinstance(piece, dict) and set(piece) == {"SpecialToken"}:
            name = piece["SpecialToken"].get("id")
            ids = special[name].get("ids") if isinstance(special.get(name), dict) else None
            if not isinstance(ids, list) or not all(isinstance(x, int) and x >= 0 for x in ids):
                raise UnsupportedTokenizer(where, f"special token {name!r} has no ids in the template's special_tokens")
            out.append((False, list(ids)))
        else:
            raise UnsupportedTokenizer(where, f"template piece {piece!r} is neither a Sequence nor a SpecialToken object")
    return out


def _template(config: dict, path: str) -> Step:
    special = config.get("special_tokens") or {}
    if not isinstance(special, dict):
        raise UnsupportedTokenizer(f"{path}.special_tokens", "expected an object")
    templates = {
        1: _template_pieces(config.get("single"), f"{path}.single", special),
        2: _template_pieces(config.get("pair"), f"{path}.pair", special),
    }

    def apply(sequences: list[list[Any]], add: bool, items: Items) -> list[list[Any]]:
        pieces = templates.get(len(sequences))
        if pieces is None:
            raise PostProcessorError(f"{path}: a template cannot take {len(sequences)} sequences")
        out = []
        for is_sequence, value in pieces:
            if is_sequence:
                if value >= len(sequences):
                    raise PostProcessorError(f"{path}: the template uses $B for a single sequence")
                out.append(sequences[value])
            elif add:
                out.append(items.special(value))
        return out

    return apply


def _cls_sep(config: dict, path: str) -> Step:
    """RobertaProcessing and BertProcessing: [cls] A [sep], then ([sep]) B [sep] for the others."""
    ids = []
    for key in ("cls", "sep"):
        value = config.get(key)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) and value[1] >= 0):
            raise UnsupportedTokenizer(f"{path}.{key}", f"expected [token, id], got {value!r}")
        ids.append(value[1])
    cls, sep = ids
    roberta = config.get("type") == "RobertaProcessing"
    lead = [sep] if roberta else []
    trim = _trimming(config, path) if roberta else (lambda sequences, items: sequences)

    def apply(sequences: list[list[Any]], add: bool, items: Items) -> list[list[Any]]:
        sequences = trim(sequences, items)
        if not add:
            return sequences
        first, last, others = items.special([cls]), items.special([sep]), items.special(lead)
        return [[*first, *s, *last] if i == 0 else [*others, *s, *last] for i, s in enumerate(sequences)]

    return apply


def _sequence(config: dict, path: str) -> list[Step]:
    items = config.get("processors")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.processors", "expected a list of post-processors")
    return [step for i, item in enumerate(items) for step in _steps(item, f"{path}.processors[{i}]")]


_BUILDERS: dict[str, Callable[[dict, str], Step | list[Step]]] = {
    "ByteLevel": _byte_level,
    "TemplateProcessing": _template,
    "RobertaProcessing": _cls_sep,
    "BertProcessing": _cls_sep,
    "Sequence": _sequence,
}


def _steps(config: object, path: str) -> list[Step]:
    built = build(_BUILDERS, config, path, "post-processor")
    return built if isinstance(built, list) else [built]


def from_json(config: object, path: str = "post_processor") -> PostProcessor:
    """The post-processor of a tokenizer.json, checked to work on a single sequence."""
    post = PostProcessor([] if config is None else _steps(config, path))
    for add in (True, False):
        try:
            post([], add)
            post.with_offsets([], add)
        except PostProcessorError as e:
            raise UnsupportedTokenizer(path, f"{e} (HF panics on this)") from None
    return post
