"""Normalizers: text -> text before added tokens of the `normalized` kind and pre-tokenization.

A normalizer is two functions: `normalize`, text to text, the fast way ids are made,
and `align`, the same on an alignment.Aligned text, which also says where each new
character comes from (for offsets). None stands for "no normalizer" so that the encoder
can skip the call and know the text is left as it is. Character classes come from
char_classes (HF's Rust tables), Unicode forms from normalization (HF's tables).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from typing import NamedTuple

from . import alignment, char_classes, normalization, precompiled, regex
from .alignment import Aligned
from .errors import UnsupportedTokenizer, build


class Normalizer(NamedTuple):
    normalize: Callable[[str], str]
    align: Callable[[Aligned], Aligned]

    def __call__(self, text: str) -> str:
        return self.normalize(text)


def per_character(normalize: Callable[[str], str]) -> Normalizer:
    """A normalizer that maps each character on its own: `normalize` of the text is
    `normalize` of each character, joined (see alignment.per_character)."""
    return Normalizer(normalize, lambda source: alignment.per_character(source, normalize))


def unicode_form(form: str, source: Aligned) -> Aligned:
    """`form` of an aligned text, the spans moved as HF's alignment crate moves them."""
    if source.text.isascii():  # every form leaves ASCII as it is
        return source
    return alignment.transform(source, normalization.tagged(form, source.text))


def _unicode_form(form: str) -> Callable[[dict, str], Normalizer]:
    def build(config: dict, path: str) -> Normalizer:
        return Normalizer(lambda text: normalization.normalize(form, text), lambda source: unicode_form(form, source))

    return build


def _bool(config: dict, key: str, path: str, default: bool | None) -> bool | None:
    value = config.get(key, default)
    if not (isinstance(value, bool) or (value is None and default is None)):
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


def _string(config: dict, key: str, path: str) -> str:
    value = config.get(key)
    if not isinstance(value, str):
        raise UnsupportedTokenizer(f"{path}.{key}", f"expected a string, got {value!r}")
    return value


def _lowercase(config: dict, path: str) -> Normalizer:
    return per_character(char_classes.lowercase)


def _strip(config: dict, path: str) -> Normalizer:
    """Whitespace (char::is_whitespace) off the left and/or right end."""
    left, right = _bool(config, "strip_left", path, True), _bool(config, "strip_right", path, True)
    whitespace = char_classes.chars("whitespace")

    def normalize(text: str) -> str:
        if left:
            text = text.lstrip(whitespace)
        return text.rstrip(whitespace) if right else text

    def align(source: Aligned) -> Aligned:
        kept = normalize(source.text)
        start = len(source.text) - len(source.text.lstrip(whitespace)) if left else 0
        return source.cut(start, start + len(kept))

    return Normalizer(normalize, align)


def _strip_accents(config: dict, path: str) -> Normalizer:
    """Every combining mark removed (Mn, Mc and Me, none of them ASCII), without decomposing first."""
    marks = char_classes.pattern("combining_mark")
    return per_character(lambda text: text if text.isascii() else marks.replace(text, ""))


def _replace(config: dict, path: str) -> Normalizer:
    pattern = regex.from_json(config.get("pattern"), f"{path}.pattern", nullable=False)
    content = _string(config, "content", path)

    def align(source: Aligned) -> Aligned:
        """Each match becomes `content`, all of it with the span of the match's last character."""
        chars: list[str] = []
        spans: list[alignment.Span] = []
        done, before = 0, source.spans
        for start, end in pattern.spans(source.text):
            chars.append(source.text[done:start])
            spans.extend(before[done:start])
            chars.append(content)
            spans.extend([before[end - 1]] * len(content))
            done = end
        chars.append(source.text[done:])
        spans.extend(before[done:])
        return Aligned("".join(chars), spans, source.start)

    return Normalizer(lambda text: pattern.replace(text, content), align)


def _prepend(config: dict, path: str) -> Normalizer:
    prepend = _string(config, "prepend", path)
    return Normalizer(lambda text: prepend + text if text else text, lambda source: source.prepend(prepend))


def _bert(config: dict, path: str) -> Normalizer:
    """clean_text (control characters, NUL and U+FFFD removed, whitespace made a space),
    spaces around CJK ideographs, accents stripped (NFD, then the non-spacing marks only),
    lowercase; in that order, as HF."""
    clean_text = _bool(config, "clean_text", path, True)
    chinese = _bool(config, "handle_chinese_chars", path, True)
    lowercase = _bool(config, "lowercase", path, True)
    strip_accents = _bool(config, "strip_accents", path, None)
    if strip_accents is None:
        strip_accents = lowercase
    control = char_classes.pattern("control")
    to_space = {ord(c): " " for c in char_classes.chars("cleaned_to_space")}
    ideographs = re.compile("([" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in char_classes.ranges("chinese")) + "])")
    marks = char_classes.pattern("nonspacing_mark")

    def normalize(text: str) -> str:
        if clean_text:
            text = control.replace(text, "").translate(to_space)
        if text.isascii():
            return text.lower() if lowercase else text
        if chinese:
            text = ideographs.sub(r" \1 ", text)
        if strip_accents:
            text = marks.replace(normalization.normalize("NFD", text), "")
        return char_classes.lowercase(text) if lowercase else text

    def align(source: Aligned) -> Aligned:
        if clean_text:
            source = alignment.per_character(source, lambda char: control.replace(char, "").translate(to_space))
        if chinese:
            source = alignment.per_character(source, lambda char: ideographs.sub(r" \1 ", char))
        if strip_accents:
            source = alignment.per_character(unicode_form("NFD", source), lambda char: marks.replace(char, ""))
        return alignment.per_character(source, char_classes.lowercase) if lowercase else source

    return Normalizer(normalize, align)


def _precompiled(config: dict, path: str) -> Normalizer:
    charsmap = precompiled.from_json(config, path)
    return Normalizer(charsmap, charsmap.align)


def _sequence(config: dict, path: str) -> Normalizer | None:
    items = config.get("normalizers")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.normalizers", "expected a list of normalizers")
    steps = [n for i, item in enumerate(items) if (n := from_json(item, f"{path}.normalizers[{i}]")) is not None]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def normalize(text: str) -> str:
        for step in steps:
            text = step.normalize(text)
        return text

    def align(source: Aligned) -> Aligned:
        for step in steps:
            source = step.align(source)
        return source

    return Normalizer(normalize, align)


_BUILDERS: dict[str, Callable[[dict, str], Normalizer | None]] = {
    "NFC": _unicode_form("NFC"),
    "NFD": _unicode_form("NFD"),
    "NFKC": _unicode_form("NFKC"),
    "NFKD": _unicode_form("NFKD"),
    "Lowercase": _lowercase,
    "Strip": _strip,
    "StripAccents": _strip_accents,
    "Replace": _replace,
    "Prepend": _prepend,
    "BertNormalizer": _bert,
    "Precompiled": _precompiled,
    "Sequence": _sequence,
}


def from_json(config: object, path: str = "normalizer") -> Normalizer | None:
    """The normalizer of a tokenizer.json, None when it leaves every text unchanged."""
    if config is None:
        return None
    return build(_BUILDERS, config, path, "normalizer")


def keeps_start(config: object) -> bool:
    """Whether the normalized text's first character always comes from the first of the input.

    HF's Metaspace prepend scheme `first` asks this of the original text (by offsets);
    normalizers that can delete leading characters (Strip, StripAccents, BERT's
    clean_text, Replace with nothing, Precompiled) may move it.
    """
    if config is None:
        return True
    kind = config.get("type")
    if kind == "Sequence":
        return all(keeps_start(item) for item in config.get("normalizers", []))
    if kind == "Strip":
        return not config.get("strip_left", True)
    if kind == "Replace":
        return config.get("content") != ""
    if kind == "BertNormalizer":
        lowercase = config.get("lowercase", True)
        return not config.get("clean_text", True) and not (config.get("strip_accents") is None and lowercase or config.get("strip_accents"))
    return kind in ("NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend")
