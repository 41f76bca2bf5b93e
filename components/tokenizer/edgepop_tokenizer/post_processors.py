"""Post-processors: the special tokens `add_special_tokens` puts around a sequence.

Only ids matter here (offsets and type ids are not part of edgepop's contract). As in
HF, a post-processor maps a list of encodings to a list of encodings, and that list can
grow: TemplateProcessing returns one encoding per template piece, so a template after
another one in a Sequence sees two encodings and applies its *pair* template. A step
here is therefore a function on a list of id lists; the pipeline concatenates the result.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

from .errors import UnsupportedTokenizer, build

Step = Callable[[list[list[int]], bool], list[list[int]]]


class PostProcessorError(ValueError):
    """A step was handed a number of sequences it has no template for (HF panics there)."""


class PostProcessor:
    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    def __call__(self, ids: list[int], add_special_tokens: bool) -> list[int]:
        sequences = [ids]
        for step in self.steps:
            sequences = step(sequences, add_special_tokens)
        return sequences[0] if len(sequences) == 1 else list(chain.from_iterable(sequences))


def _byte_level(config: dict, path: str) -> Step:
    return lambda sequences, add: sequences  # it only trims offsets


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

    def apply(sequences: list[list[int]], add: bool) -> list[list[int]]:
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
                out.append(value)
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
    lead = [sep] if config.get("type") == "RobertaProcessing" else []

    def apply(sequences: list[list[int]], add: bool) -> list[list[int]]:
        if not add:
            return sequences
        return [[cls, *s, sep] if i == 0 else [*lead, *s, sep] for i, s in enumerate(sequences)]

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
        except PostProcessorError as e:
            raise UnsupportedTokenizer(path, f"{e} (HF panics on this)") from None
    return post
