"""Normalizers: text -> text before added tokens of the `normalized` kind and pre-tokenization.

A normalizer here is a plain function; None stands for "no normalizer" so that the
encoder can skip the call and know the text is left as it is. Character classes come
from char_classes (HF's Rust tables), Unicode forms from normalization (HF's tables).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import char_classes, normalization, precompiled, regex
from .errors import UnsupportedTokenizer, build

Normalizer = Callable[[str], str]


def _unicode_form(form: str) -> Callable[[dict, str], Normalizer]:
    def build(config: dict, path: str) -> Normalizer:
        return lambda text: normalization.normalize(form, text)

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
    return char_classes.lowercase


def _strip(config: dict, path: str) -> Normalizer:
    """Whitespace (char::is_whitespace) off the left and/or right end."""
    left, right = _bool(config, "strip_left", path, True), _bool(config, "strip_right", path, True)
    whitespace = char_classes.chars("whitespace")
    if left and right:
        return lambda text: text.strip(whitespace)
    if left:
        return lambda text: text.lstrip(whitespace)
    if right:
        return lambda text: text.rstrip(whitespace)
    return lambda text: text


def _strip_accents(config: dict, path: str) -> Normalizer:
    """Every combining mark removed (Mn, Mc and Me, none of them ASCII), without decomposing first."""
    marks = char_classes.pattern("combining_mark")
    return lambda text: text if text.isascii() else marks.replace(text, "")


def _replace(config: dict, path: str) -> Normalizer:
    pattern = regex.from_json(config.get("pattern"), f"{path}.pattern", nullable=False)
    content = _string(config, "content", path)
    return lambda text: pattern.replace(text, content)


def _prepend(config: dict, path: str) -> Normalizer:
    prepend = _string(config, "prepend", path)
    return lambda text: prepend + text if text else text


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

    return normalize


def _precompiled(config: dict, path: str) -> Normalizer:
    return precompiled.from_json(config, path)


def _sequence(config: dict, path: str) -> Normalizer | None:
    items = config.get("normalizers")
    if not isinstance(items, list):
        raise UnsupportedTokenizer(f"{path}.normalizers", "expected a list of normalizers")
    steps = [n for i, item in enumerate(items) if (n := from_json(item, f"{path}.normalizers[{i}]")) is not None]
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]

    def sequence(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return sequence


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
