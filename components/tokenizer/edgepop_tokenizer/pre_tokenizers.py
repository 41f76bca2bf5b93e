"""Pre-tokenizers: cut normalized text into the pieces the model tokenizes one by one.

Each step maps a list of pieces (strings) to a list of pieces, as HF's
`PreTokenizedString.split` does, empty pieces dropped. Pieces stay in the text's own
characters; the byte-level mapping is applied later, only to pieces the word cache has
not seen (see tokenizer.py). `from_json` builds the steps and refuses what it cannot
reproduce.
"""

from __future__ import annotations

from collections.abc import Callable

from . import onig
from .byte_level import GPT2_PATTERN
from .errors import UnsupportedTokenizer, build
from .regex import Pattern

BEHAVIORS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def _apply_behavior(text: str, spans: list[tuple[int, int]], invert: bool, behavior: str) -> list[str]:
    """HF's NormalizedString::split: matches and the gaps between them, merged per behavior."""
    parts: list[tuple[int, int, bool]] = []  # (start, end, is_match), covering the text
    prev = 0
    for start, end in spans:
        if prev != start:
            parts.append((prev, start, invert))
        parts.append((start, end, not invert))
        prev = end
    if prev != len(text):
        parts.append((prev, len(text), invert))

    pieces: list[list[int]] = []  # [start, end] of the kept parts
    if behavior == "Isolated":
        pieces = [[s, e] for s, e, _ in parts]
    elif behavior == "Removed":
        pieces = [[s, e] for s, e, is_match in parts if not is_match]
    elif behavior == "Contiguous":
        previous = False
        for s, e, is_match in parts:
            if pieces and is_match == previous:
                pieces[-1][1] = e
            else:
                pieces.append([s, e])
            previous = is_match
    elif behavior == "MergedWithPrevious":
        previous = False
        for s, e, is_match in parts:
            if pieces and is_match and not previous:
                pieces[-1][1] = e
            else:
                pieces.append([s, e])
            previous = is_match
    else:  # MergedWithNext: the same, walking backwards
        previous = False
        for s, e, is_match in reversed(parts):
            if pieces and is_match and not previous:
                pieces[-1][0] = s
            else:
                pieces.append([s, e])
            previous = is_match
        pieces.reverse()
    return [text[s:e] for s, e in pieces if s != e]


class Split:
    """HF's `Split` pre-tokenizer: a pattern, a delimiter behavior, and `invert`."""

    def __init__(self, pattern: Pattern, behavior: str, invert: bool) -> None:
        self.pattern = pattern
        self.behavior = behavior
        self.invert = invert
        # The common shapes have shortcuts through `re.findall` and `re.split`, which run in C.
        self._isolated = behavior == "Isolated" and not pattern.nullable
        self._matches_only = behavior == "Removed" and invert and not pattern.nullable
        self.lossless = behavior != "Removed" or (invert and pattern.tiles_everything)

    def split(self, text: str) -> list[str]:
        if self._matches_only:
            return self.pattern.findall(text)
        if self._isolated:
            if self.pattern.tiles_everything:
                return self.pattern.findall(text)  # no text between matches: findall is enough
            return self.pattern.isolate(text)
        return _apply_behavior(text, self.pattern.spans(text), self.invert, self.behavior)

    def split_all(self, pieces: list[str]) -> list[str]:
        if len(pieces) == 1:
            return self.split(pieces[0])
        return [p for piece in pieces for p in self.split(piece)]


class ByteLevel:
    """The split half of HF's ByteLevel pre-tokenizer (the byte mapping is the model's input).

    `add_prefix_space` prepends a space to every piece not starting with one; `use_regex`
    then splits with GPT-2's pattern.
    """

    def __init__(self, add_prefix_space: bool, use_regex: bool) -> None:
        self.add_prefix_space = add_prefix_space
        self.lossless = not add_prefix_space
        self._split = Split(Pattern(onig.parse(GPT2_PATTERN)), "Isolated", False) if use_regex else None

    def split_all(self, pieces: list[str]) -> list[str]:
        if self.add_prefix_space:
            pieces = [p if p.startswith(" ") else " " + p for p in pieces]
        return self._split.split_all(pieces) if self._split else pieces


class PreTokenizer:
    """The pre-tokenizer steps of a byte-level tokenizer, in order."""

    def __init__(self, steps: list[Split | ByteLevel]) -> None:
        self.steps = steps
        self.lossless = all(step.lossless for step in steps)

    def __call__(self, text: str) -> list[str]:
        pieces = [text]
        for step in self.steps:
            pieces = step.split_all(pieces)
        return pieces


# ---- loading --------------------------------------------------------------------------


def _bool(config: dict, key: str, path: str, default: bool | None = None) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _split(config: dict, path: str) -> Split:
    pattern = config.get("pattern")
    behavior = config.get("behavior")
    if behavior not in BEHAVIORS:
        raise UnsupportedTokenizer(f"{path}.behavior", f"Split behavior {behavior!r} is not one of {', '.join(BEHAVIORS)}")
    if not isinstance(pattern, dict) or len(pattern) != 1 or not isinstance(next(iter(pattern.values())), str):
        raise UnsupportedTokenizer(f"{path}.pattern", f'expected {{"String": ...}} or {{"Regex": ...}}, got {pattern!r}')
    ((kind, source),) = pattern.items()
    try:
        if kind == "String":
            tree = onig.literal(source)
        elif kind == "Regex":
            tree = onig.parse(source)
        else:
            raise UnsupportedTokenizer(f"{path}.pattern", f"pattern kind {kind!r} is neither String nor Regex")
        compiled = Pattern(tree)
    except onig.PatternError as e:
        raise UnsupportedTokenizer(f"{path}.pattern", f"Split pattern {source!r} {e}") from None
    return Split(compiled, behavior, _bool(config, "invert", path, False))


def _byte_level(config: dict, path: str) -> ByteLevel:
    return ByteLevel(_bool(config, "add_prefix_space", path, True), _bool(config, "use_regex", path, True))


def _sequence(config: dict, path: str) -> list:
    items = config.get("pretokenizers")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.pretokenizers", "expected a list of pre-tokenizers")
    return [step for i, item in enumerate(items) for step in _steps(item, f"{path}.pretokenizers[{i}]")]


_STEP_BUILDERS: dict[str, Callable[[dict, str], object]] = {"Split": _split, "ByteLevel": _byte_level, "Sequence": _sequence}


def _steps(config: object, path: str) -> list:
    built = build(_STEP_BUILDERS, config, path, "pre-tokenizer")
    return built if isinstance(built, list) else [built]


def from_json(config: object, path: str = "pre_tokenizer") -> PreTokenizer:
    """The pre-tokenizer of a byte-level BPE tokenizer.json: Splits, then one ByteLevel last.

    ByteLevel must come last because pieces are kept in the text's own characters until
    the model maps them to bytes; a Split after it would see byte-level characters.
    """
    steps = [] if config is None else _steps(config, path)
    byte_levels = [i for i, step in enumerate(steps) if isinstance(step, ByteLevel)]
    if byte_levels != [len(steps) - 1]:
        raise UnsupportedTokenizer(
            path, "edgepop implements byte-level BPE only: the pre-tokenizer must end with one ByteLevel step"
        )
    return PreTokenizer(steps)
