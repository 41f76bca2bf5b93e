"""Pre-tokenizers: cut normalized text into the pieces the model tokenizes one by one.

Each step maps a list of pieces (strings) to a list of pieces, as HF's
`PreTokenizedString.split` does, empty pieces dropped. Pieces stay in the text's own
characters; for byte-level models the byte mapping is applied later, only to pieces the
word cache has not seen (see tokenizer.py). `from_json` builds the steps and refuses
what it cannot reproduce.

Most of HF's pre-tokenizers are a character class or a regex and a delimiter behavior,
and are built here as a `Split` over an equivalent pattern (the classes from
char_classes, as HF's Rust tables have them), which runs in C through `re`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

from . import char_classes, onig, regex
from .byte_level import GPT2_PATTERN
from .alignment import Aligned
from .errors import UnsupportedTokenizer, build
from .onig import Alt, Chars, Repeat, complement, normalize_ranges
from .regex import Pattern

BEHAVIORS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def _apply_behavior(length: int, spans: list[tuple[int, int]], invert: bool, behavior: str) -> list[tuple[int, int]]:
    """HF's NormalizedString::split of a text of `length` characters: the spans of the
    matches and the gaps between them, merged per behavior, empty ones dropped."""
    parts: list[tuple[int, int, bool]] = []  # (start, end, is_match), covering the text
    prev = 0
    for start, end in spans:
        if prev != start:
            parts.append((prev, start, invert))
        parts.append((start, end, not invert))
        prev = end
    if prev != length:
        parts.append((prev, length, invert))

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
    return [(s, e) for s, e in pieces if s != e]


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
        return [text[s:e] for s, e in self._spans(text)]

    def _spans(self, text: str) -> list[tuple[int, int]]:
        return _apply_behavior(len(text), self.pattern.spans(text), self.invert, self.behavior)

    def split_all(self, pieces: list[str]) -> list[str]:
        if len(pieces) == 1:
            return self.split(pieces[0])
        return [p for piece in pieces for p in self.split(piece)]

    def align_all(self, pieces: list[Aligned]) -> list[Aligned]:
        return [piece.cut(s, e) for piece in pieces for s, e in self._spans(piece.text)]


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

    def align_all(self, pieces: list[Aligned]) -> list[Aligned]:
        if self.add_prefix_space:
            pieces = [p if p.text.startswith(" ") else p.prepend(" ") for p in pieces]
        return self._split.align_all(pieces) if self._split else pieces


class Metaspace:
    """Spaces become the replacement character (`▁`), which is prepended to each piece
    (`always`) or to the text's first one (`first`) when not already there, and with
    `split` each piece is cut in front of every replacement character that follows
    another character (HF's MergedWithNext)."""

    def __init__(self, replacement: str, scheme: str, split: bool) -> None:
        self.replacement = replacement
        self.scheme = scheme
        self.lossless = False
        self._words = re.compile(f"{re.escape(replacement)}?[^{re.escape(replacement)}]+|{re.escape(replacement)}") if split else None

    def _prepends(self, piece: str, first: bool) -> bool:
        return (self.scheme == "always" or (first and self.scheme == "first")) and not piece.startswith(self.replacement)

    def split_all(self, pieces: list[str], at_start: bool = False) -> list[str]:
        replacement = self.replacement
        out = []
        for i, piece in enumerate(pieces):
            if not piece:
                continue
            piece = piece.replace(" ", replacement)
            if self._prepends(piece, at_start and i == 0):
                piece = replacement + piece
            if self._words is None:
                out.append(piece)
            else:
                out.extend(self._words.findall(piece))
        return out

    def align_all(self, pieces: list[Aligned], at_start: bool = False) -> list[Aligned]:
        """`split_all` on aligned pieces: each `▁` keeps its space's span, a prepended one
        takes the span of the piece's first character."""
        out = []
        for i, piece in enumerate(pieces):
            if not piece.text:
                continue
            piece = piece.with_text(piece.text.replace(" ", self.replacement))
            if self._prepends(piece.text, at_start and i == 0):
                piece = piece.prepend(self.replacement)
            if self._words is None:
                out.append(piece)
            else:
                out.extend(piece.cut(*m.span()) for m in self._words.finditer(piece.text))
        return out


class UnicodeScripts:
    """Pieces cut where the script changes (char_classes.script_table); characters of no
    script (`Any`, the space among them) go with the piece before them, and before the
    first character of a script they are dropped, as HF does."""

    lossless = False

    def __init__(self) -> None:
        self._starts, self._classes = char_classes.script_table()

    def split(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self._spans(text)]

    def _spans(self, text: str) -> list[tuple[int, int]]:
        starts, classes, any_script = self._starts, self._classes, char_classes.ANY_SCRIPT
        bounds = []
        last = None
        for i, char in enumerate(text):
            found = classes[bisect_right(starts, ord(char)) - 1]
            if found != any_script:
                if found != last:
                    bounds.append(i)
                last = found
        bounds.append(len(text))
        return list(zip(bounds, bounds[1:]))

    def split_all(self, pieces: list[str]) -> list[str]:
        return [p for piece in pieces for p in self.split(piece)]

    def align_all(self, pieces: list[Aligned]) -> list[Aligned]:
        return [piece.cut(a, b) for piece in pieces for a, b in self._spans(piece.text)]


class PreTokenizer:
    """The pre-tokenizer steps of a tokenizer, in order.

    `byte_level` says whether the last step is ByteLevel, whose pieces the model sees as
    bytes. `positional` is set when a Metaspace step prepends only at the start of the
    text (prepend scheme `first`): the text's first segment is then cut with `at_start`.
    """

    def __init__(self, steps: list) -> None:
        self.steps = steps
        self.lossless = all(step.lossless for step in steps)
        self.byte_level = bool(steps) and isinstance(steps[-1], ByteLevel)
        self.positional = any(isinstance(step, Metaspace) and step.scheme == "first" for step in steps)

    def __call__(self, text: str) -> list[str]:
        pieces = [text]
        for step in self.steps:
            pieces = step.split_all(pieces)
        return pieces

    def at_start(self, text: str) -> list[str]:
        """The pieces of the segment that starts the text (HF: at original offset 0)."""
        pieces = [text]
        for step in self.steps:
            pieces = step.split_all(pieces, True) if isinstance(step, Metaspace) else step.split_all(pieces)
        return pieces

    def align(self, piece: Aligned, at_start: bool = False) -> list[Aligned]:
        """The pieces of an aligned segment, with their spans (for offsets)."""
        pieces = [piece]
        for step in self.steps:
            pieces = step.align_all(pieces, at_start) if isinstance(step, Metaspace) else step.align_all(pieces)
        return pieces


# ---- loading --------------------------------------------------------------------------


def _bool(config: dict, key: str, path: str, default: bool | None = None) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _behavior(config: dict, path: str) -> str:
    behavior = config.get("behavior")
    # HF's JSON spells the behaviors in CamelCase; its Python API in snake_case.
    if behavior not in BEHAVIORS:
        raise UnsupportedTokenizer(f"{path}.behavior", f"Split behavior {behavior!r} is not one of {', '.join(BEHAVIORS)}")
    return behavior


def _split(config: dict, path: str) -> Split:
    behavior = _behavior(config, path)
    return Split(regex.from_json(config.get("pattern"), f"{path}.pattern"), behavior, _bool(config, "invert", path, False))


def _byte_level(config: dict, path: str) -> ByteLevel:
    return ByteLevel(_bool(config, "add_prefix_space", path, True), _bool(config, "use_regex", path, True))


def _class(name: str) -> Chars:
    return Chars(char_classes.ranges(name))


def _not(*names: str) -> Chars:
    return Chars(complement(normalize_ranges([r for name in names for r in char_classes.ranges(name)])))


def _whitespace_split(config: dict, path: str) -> Split:
    """Runs of non-whitespace (char::is_whitespace): HF splits on each whitespace character, removing it."""
    return Split(Pattern(Repeat(_not("whitespace"), 1, None)), "Removed", True)


def _whitespace(config: dict, path: str) -> Split:
    """HF's `\\w+|[^\\w\\s]+` (the `regex` crate's classes), everything else removed."""
    word = _class("word")
    other = _not("word", "whitespace")
    return Split(Pattern(Alt((Repeat(word, 1, None), Repeat(other, 1, None)))), "Removed", True)


def _bert(config: dict, path: str) -> Split:
    """Whitespace removed, then each punctuation character isolated: in one pass, the runs
    of what is neither and the punctuation characters one by one."""
    return Split(Pattern(Alt((Repeat(_not("whitespace", "punctuation"), 1, None), _class("punctuation")))), "Removed", True)


def _punctuation(config: dict, path: str) -> Split:
    return Split(Pattern(_class("punctuation")), _behavior({"behavior": config.get("behavior", "Isolated")}, path), False)


def _digits(config: dict, path: str) -> Split:
    """Each numeric character (char::is_numeric) isolated, or runs of them with `individual_digits` false."""
    individual = _bool(config, "individual_digits", path, False)
    return Split(Pattern(_class("numeric")), "Isolated" if individual else "Contiguous", False)


def _char_delimiter(config: dict, path: str) -> Split:
    delimiter = config.get("delimiter")
    if not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise UnsupportedTokenizer(f"{path}.delimiter", f"expected one character, got {delimiter!r}")
    return Split(Pattern(onig.literal(delimiter)), "Removed", False)


def _metaspace(config: dict, path: str) -> Metaspace:
    replacement = config.get("replacement", "\u2581")
    if not (isinstance(replacement, str) and len(replacement) == 1):
        raise UnsupportedTokenizer(f"{path}.replacement", f"expected one character, got {replacement!r}")
    return Metaspace(replacement, prepend_scheme(config, path), _bool(config, "split", path, True))


def prepend_scheme(config: dict, path: str) -> str:
    """Metaspace's `prepend_scheme`, or the older `add_prefix_space` it replaced (as HF reads them)."""
    scheme = config.get("prepend_scheme")
    if scheme is None:
        add = config.get("add_prefix_space", True)
        if not isinstance(add, bool):
            raise UnsupportedTokenizer(f"{path}.add_prefix_space", f"expected true or false, got {add!r}")
        return "always" if add else "never"
    if scheme not in ("always", "first", "never"):
        raise UnsupportedTokenizer(f"{path}.prepend_scheme", f"prepend scheme {scheme!r} is not always, first or never")
    return scheme


def _unicode_scripts(config: dict, path: str) -> UnicodeScripts:
    return UnicodeScripts()


def _sequence(config: dict, path: str) -> list:
    items = config.get("pretokenizers")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.pretokenizers", "expected a list of pre-tokenizers")
    return [step for i, item in enumerate(items) for step in _steps(item, f"{path}.pretokenizers[{i}]")]


_STEP_BUILDERS: dict[str, Callable[[dict, str], object]] = {
    "Split": _split,
    "ByteLevel": _byte_level,
    "Metaspace": _metaspace,
    "Whitespace": _whitespace,
    "WhitespaceSplit": _whitespace_split,
    "BertPreTokenizer": _bert,
    "Punctuation": _punctuation,
    "Digits": _digits,
    "UnicodeScripts": _unicode_scripts,
    "CharDelimiterSplit": _char_delimiter,
    "Sequence": _sequence,
}


def _steps(config: object, path: str) -> list:
    built = build(_STEP_BUILDERS, config, path, "pre-tokenizer")
    return built if isinstance(built, list) else [built]


def from_json(config: object, path: str = "pre_tokenizer") -> PreTokenizer:
    """The pre-tokenizer of a tokenizer.json.

    A ByteLevel step must come last: pieces are kept in the text's own characters until
    the model maps them to bytes, so a step after it would see the wrong characters.
    A Metaspace with prepend scheme `first` must come first, where its pieces are the
    segments of the text themselves (HF decides by their offset in the original text).
    """
    steps = [] if config is None else _steps(config, path)
    byte_levels = [i for i, step in enumerate(steps) if isinstance(step, ByteLevel)]
    if byte_levels and byte_levels != [len(steps) - 1]:
        raise UnsupportedTokenizer(path, "a ByteLevel step is implemented only as the last pre-tokenizer step, once")
    firsts = [i for i, step in enumerate(steps) if isinstance(step, Metaspace) and step.scheme == "first"]
    if firsts and firsts != [0]:
        raise UnsupportedTokenizer(path, "Metaspace with prepend_scheme `first` is implemented only as the first pre-tokenizer step, once")
    return PreTokenizer(steps)
