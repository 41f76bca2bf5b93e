"""Post-processors: what `add_special_tokens` adds around the ids of one sequence.

Only ids matter here (offsets and type ids are not part of edgepop's contract), so each
post-processor is reduced to the special ids it puts before and after a single
sequence, and a Sequence of them to the composition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import UnsupportedTokenizer


@dataclass(frozen=True)
class PostProcessor:
    """Ids a single sequence gets before and after it when special tokens are added."""

    before: tuple[int, ...] = ()
    after: tuple[int, ...] = ()

    def then(self, outer: PostProcessor) -> PostProcessor:
        return PostProcessor(outer.before + self.before, self.after + outer.after)


def _byte_level(config: dict, path: str) -> PostProcessor:
    return PostProcessor()  # it only trims offsets


def _template(config: dict, path: str) -> PostProcessor:
    single = config.get("single")
    special = config.get("special_tokens") or {}
    if not isinstance(single, list) or not isinstance(special, dict):
        raise UnsupportedTokenizer(f"{path}.single", "expected a list of template pieces")
    before: list[int] = []
    after: list[int] = []
    seen_sequence = False
    for i, piece in enumerate(single):
        where = f"{path}.single[{i}]"
        if isinstance(piece, dict) and set(piece) == {"Sequence"}:
            if piece["Sequence"].get("id") != "A" or seen_sequence:
                raise UnsupportedTokenizer(where, "a single-sequence template may hold $A once and no $B")
            seen_sequence = True
        elif isinstance(piece, dict) and set(piece) == {"SpecialToken"}:
            name = piece["SpecialToken"].get("id")
            ids = special.get(name, {}).get("ids") if isinstance(special.get(name), dict) else None
            if not isinstance(ids, list) or not all(isinstance(x, int) and x >= 0 for x in ids):
                raise UnsupportedTokenizer(where, f"special token {name!r} has no ids in {path}.special_tokens")
            (after if seen_sequence else before).extend(ids)
        else:
            raise UnsupportedTokenizer(where, f"template piece {piece!r} is neither a Sequence nor a SpecialToken object")
    if not seen_sequence:
        raise UnsupportedTokenizer(f"{path}.single", "the single-sequence template has no $A")
    return PostProcessor(tuple(before), tuple(after))


def _cls_sep(config: dict, path: str) -> PostProcessor:
    """RobertaProcessing and BertProcessing: [cls] sequence [sep]."""
    ends = []
    for key in ("cls", "sep"):
        value = config.get(key)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) and value[1] >= 0):
            raise UnsupportedTokenizer(f"{path}.{key}", f"expected [token, id], got {value!r}")
        ends.append(value[1])
    return PostProcessor((ends[0],), (ends[1],))


def _sequence(config: dict, path: str) -> PostProcessor:
    items = config.get("processors")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.processors", "expected a list of post-processors")
    result = PostProcessor()
    for i, item in enumerate(items):
        result = result.then(from_json(item, f"{path}.processors[{i}]"))
    return result


_BUILDERS: dict[str, Callable[[dict, str], PostProcessor]] = {
    "ByteLevel": _byte_level,
    "TemplateProcessing": _template,
    "RobertaProcessing": _cls_sep,
    "BertProcessing": _cls_sep,
    "Sequence": _sequence,
}


def from_json(config: object, path: str = "post_processor") -> PostProcessor:
    if config is None:
        return PostProcessor()
    kind = config.get("type") if isinstance(config, dict) else None
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise UnsupportedTokenizer(f"{path}.type", f"post-processor {kind!r} is not implemented (edgepop has {', '.join(_BUILDERS)})")
    return builder(config, path)
