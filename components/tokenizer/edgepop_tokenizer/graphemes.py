"""Extended grapheme clusters, as HF's `unicode-segmentation` crate cuts them (UAX #29).

Only the Precompiled normalizer needs them. The character classes are probed from HF
(tools/gen_graphemes.py, graphemes_data); the rules are UAX #29's, written as its
regular expression for a cluster: CR LF | Control | Prepend* core postcore*, where the
core is a Hangul syllable, a pictograph sequence joined by ZWJs, an Indic conjunct or
any other character, and postcore is Extend, ZWJ or SpacingMark.

Most text has no cluster longer than a character. `regions` finds the stretches that
may: every cluster of several characters holds a character of JOINING (an extender, a
Prepend, CR or a Hangul jamo), and never two others in a row, so the stretches of
JOINING characters, with the character on each side, are cut at cluster boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from .graphemes_data import CLASSES


def _ranges(names: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for name in names:
        for item in CLASSES[name].split():
            lo, _, hi = item.partition("-")
            out.append((int(lo, 16), int(hi or lo, 16)))
    return sorted(out)


def _class(*names: str, negate: bool = False) -> str:
    body = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _ranges(names))
    if not body:
        return "(?s:.)" if negate else "(?!)"
    return f"[{'^' if negate else ''}{body}]"


JOINING = ("Extend", "ZWJ", "SpacingMark", "Prepend", "L", "V", "T", "LV", "LVT")


@cache
def _patterns() -> tuple[re.Pattern, re.Pattern]:
    """The cluster pattern and the region pattern, compiled the first time they are needed."""
    postcore = _class("Extend", "ZWJ", "SpacingMark")
    l, v, t, lv, lvt = (_class(n) for n in ("L", "V", "T", "LV", "LVT"))
    hangul = f"(?:{l}*(?:{v}+|{lv}{v}*|{lvt}){t}*|{l}+|{t}+)"
    pictographs = f"(?:{_class('ExtPict')}(?:{_class('Extend')}*\\u200d{_class('ExtPict')})*)"
    linking = _class("InCB_Extend", "InCB_Linker")
    consonant = _class("InCB_Consonant")
    conjunct = f"(?:{consonant}(?:{linking}*{_class('InCB_Linker')}{linking}*{consonant})+)"
    core = f"(?:{hangul}|{pictographs}|{conjunct}|{_class('Control', negate=True)})"
    # Alternatives in this order, each greedy: the first that matches is the longest cluster.
    cluster = re.compile(f"\\r\\n|{_class('Control')}|{_class('Prepend')}*{core}{postcore}*")
    joining = _class(*JOINING)[1:-1] + "\\r"
    region = re.compile(f"[^{joining}]?(?:[{joining}]+[^{joining}]?)+")
    return cluster, region


def clusters(text: str) -> list[str]:
    """The extended grapheme clusters of text."""
    return _patterns()[0].findall(text)


def regions(text: str) -> Iterator[re.Match]:
    """The stretches of text that may hold clusters of several characters, each starting
    and ending at a cluster boundary; outside them every character is a cluster."""
    return _patterns()[1].finditer(text)
