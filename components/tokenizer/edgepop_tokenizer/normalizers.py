"""Normalizers: text -> text before added tokens of the `normalized` kind and pre-tokenization.

A normalizer here is a plain function; None stands for "no normalizer" so that the
encoder can skip the call and know the text is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from . import normalization
from .errors import UnsupportedTokenizer, build

Normalizer = Callable[[str], str]


def _unicode_form(form: str) -> Callable[[dict, str], Normalizer]:
    def build(config: dict, path: str) -> Normalizer:
        return lambda text: normalization.normalize(form, text)

    return build


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
    "Sequence": _sequence,
}


def from_json(config: object, path: str = "normalizer") -> Normalizer | None:
    """The normalizer of a tokenizer.json, None when it leaves every text unchanged."""
    if config is None:
        return None
    return build(_BUILDERS, config, path, "normalizer")
