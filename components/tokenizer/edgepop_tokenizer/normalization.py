"""Unicode normalization (NFC, NFD, NFKC, NFKD) exactly as HF `tokenizers` does it.

HF normalizes with the Rust crate `unicode-normalization-alignments`, whose Unicode data
is older than the `unicodedata` of either interpreter this runs in (14.0 natively on 3.11,
16.0 in the component's 3.14): characters assigned since then decompose, reorder and
compose differently. The tables in normalization_data are probed from HF itself by
tools/gen_normalization.py, and `normalize_pure` implements the normalization algorithm
over them: exact, but pure Python.

`normalize` is the fast way to the same answer. At import (at build time in a component)
it compares the interpreter's `unicodedata` with the tables and collects every character
on which the two could disagree (DISAGREEMENTS); text without one goes to the C
`unicodedata.normalize`, and only the stretches around such characters to `normalize_pure`.
"""

from __future__ import annotations

import array
import re
import sys
import unicodedata
from collections.abc import Iterator

from .normalization_data import CANONICAL, COMBINING_RANKS, COMPATIBILITY, NOT_COMPOSED

FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def _code_points(encoded: str) -> Iterator[str]:
    """Characters of space-separated hex `lo-hi` / `lo` ranges."""
    for item in encoded.split():
        lo, _, hi = item.partition("-")
        yield from map(chr, range(int(lo, 16), int(hi or lo, 16) + 1))


def _parse_map(encoded: str) -> dict[str, str]:
    """Decompositions from `key=value` / `first-last=value of first` entries (see the generator)."""
    table = {}
    for entry in encoded.split():
        keys, _, value = entry.partition("=")
        lo, _, hi = keys.partition("-")
        *head, last = (int(cp, 16) for cp in value.split("."))
        prefix = "".join(map(chr, head))
        first = int(lo, 16)
        for step in range(int(hi or lo, 16) - first + 1):
            table[chr(first + step)] = prefix + chr(last + step)
    return table


_CANONICAL = _parse_map(CANONICAL)
_COMPATIBILITY = {**_CANONICAL, **_parse_map(COMPATIBILITY)}
# Order-preserving stand-in for the canonical combining class; starters are absent (0).
_RANK = {char: rank for rank, encoded in enumerate(COMBINING_RANKS, 1) for char in _code_points(encoded)}


def _composition_pairs() -> dict[str, str]:
    """first + second -> primary composite, for every pair NFC can meet (see the generator)."""
    excluded = set(_code_points(NOT_COMPOSED))
    recompose = {d: c for c, d in _CANONICAL.items() if c not in excluded}
    return {(d[0] if len(d) == 2 else recompose[d[:-1]]) + d[-1]: c for d, c in recompose.items()}


_COMPOSE = _composition_pairs()

# Hangul syllables decompose and compose by arithmetic (The Unicode Standard, 3.12).
_S_BASE, _L_BASE, _V_BASE, _T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
_L_COUNT, _V_COUNT, _T_COUNT = 19, 21, 28
_S_COUNT = _L_COUNT * _V_COUNT * _T_COUNT
_VOWELS = frozenset(map(chr, range(_V_BASE, _V_BASE + _V_COUNT)))
_TRAILS = frozenset(map(chr, range(_T_BASE + 1, _T_BASE + _T_COUNT)))
_JAMO = _VOWELS | _TRAILS | frozenset(map(chr, range(_L_BASE, _L_BASE + _L_COUNT)))


def _decomposition(char: str, table: dict[str, str]) -> str:
    """Full decomposition of one character (itself if it has none)."""
    found = table.get(char)
    if found is not None:
        return found
    index = ord(char) - _S_BASE
    if 0 <= index < _S_COUNT:
        lv, t = divmod(index, _T_COUNT)
        l, v = divmod(lv, _V_COUNT)
        return chr(_L_BASE + l) + chr(_V_BASE + v) + (chr(_T_BASE + t) if t else "")
    return char


def _compose_pair(first: str, second: str) -> str | None:
    found = _COMPOSE.get(first + second)
    if found is not None:
        return found
    if second in _VOWELS:
        index = ord(first) - _L_BASE
        if 0 <= index < _L_COUNT:
            return chr(_S_BASE + (index * _V_COUNT + ord(second) - _V_BASE) * _T_COUNT)
    elif second in _TRAILS:
        index = ord(first) - _S_BASE
        if 0 <= index < _S_COUNT and index % _T_COUNT == 0:
            return chr(ord(first) + ord(second) - _T_BASE)
    return None


Tagged = list[tuple[str, int]]


def _reorder(items: Tagged) -> None:
    """Canonical ordering in place: stable sort of each run of non-starters by class."""
    i, n = 0, len(items)
    while i < n:
        if items[i][0] not in _RANK:
            i += 1
            continue
        j = i + 1
        while j < n and items[j][0] in _RANK:
            j += 1
        if j - i > 1:
            items[i:j] = sorted(items[i:j], key=lambda item: _RANK[item[0]])
        i = j


def _compose(items: Tagged) -> Tagged:
    """Canonical composition of a canonically ordered decomposition (The Unicode Standard,
    D117), step for step as the crate's Recompositions, which decides the changes."""
    out: Tagged = []
    composee: tuple[str, int] | None = None  # the last starter, still open to composition
    held: Tagged = []  # characters after it that did not compose, emitted after it
    last_rank = 0  # rank of the last held character, 0 if none
    for char, change in items:
        rank = _RANK.get(char, 0)
        if composee is None:
            if rank:
                out.append((char, change))
            else:
                composee = (char, change)
            continue
        if not held or last_rank < rank:  # not blocked
            composite = _compose_pair(composee[0], char)
            if composite is not None:
                composee = (composite, composee[1] + change - 1)
                continue
        if rank == 0:
            out.append(composee)
            out.extend(held)
            held, composee, last_rank = [], (char, change), 0
        else:
            held.append((char, change))
            last_rank = rank
    if composee is not None:
        out.append(composee)
    out.extend(held)
    return out


def tagged(form: str, text: str) -> Tagged:
    """`form` of `text` as (character, change) pairs, the changes as HF's alignment crate
    gives them: 0 for a character's first after decomposition, 1 for the rest, composing
    sums them minus one (see alignment.transform)."""
    if form not in FORMS:
        raise ValueError(f"invalid normalization form {form!r}")
    table = _COMPATIBILITY if form in ("NFKC", "NFKD") else _CANONICAL
    items: Tagged = []
    for char in text:
        decomposed = _decomposition(char, table)
        items.append((decomposed[0], 0))
        items.extend((c, 1) for c in decomposed[1:])
    _reorder(items)
    return _compose(items) if form in ("NFC", "NFKC") else items


def normalize_pure(form: str, text: str) -> str:
    """`form` of `text` by the algorithm over the probed tables alone; what HF gives, slowly."""
    return "".join(char for char, _ in tagged(form, text))


_SECONDS = frozenset(pair[1] for pair in _COMPOSE) | _VOWELS | _TRAILS
# Characters that text may not be cut in front of: cutting in front of anything else (its
# decomposition starts with a starter that composes with nothing before it) normalizes
# the two sides independently, in every form.
_UNSAFE = frozenset(_RANK) | _SECONDS | frozenset(
    char
    for table in (_CANONICAL, _COMPATIBILITY)
    for char, decomposed in table.items()
    if decomposed[0] in _RANK or decomposed[0] in _SECONDS
)


def _every_char() -> str:
    """All code points but the surrogates, in order, as one string."""
    codec = "utf-32-le" if sys.byteorder == "little" else "utf-32-be"
    head = array.array("I", range(0xD800)).tobytes().decode(codec)
    return head + array.array("I", range(0xE000, 0x110000)).tobytes().decode(codec)


def _disagreements() -> frozenset[str]:
    """Characters on which `unicodedata.normalize` may give other results than HF for some text.

    Text with none of them normalizes the same with both. Collected: characters whose
    decomposition differs, whose combining class differs (zero or not, or order), the
    composites and first characters of composition pairs only one side has (the second
    when the first is itself composed), and the characters that decompose to these.
    """
    every = _every_char()
    differ: set[str] = set()
    interpreter_nfd: dict[str, str] = {}
    with_tables = {ord(c) >> 8 for c in _COMPATIBILITY} | set(range(_S_BASE >> 8, ((_S_BASE + _S_COUNT) >> 8) + 1))
    for start in range(0, len(every), 256):
        block = every[start: start + 256]
        if ord(block[0]) >> 8 not in with_tables and unicodedata.is_normalized("NFKD", block):
            continue
        for char in block:
            nfd = unicodedata.normalize("NFD", char)
            if nfd != char:
                interpreter_nfd[char] = nfd
            if nfd != _decomposition(char, _CANONICAL) or unicodedata.normalize("NFKD", char) != _decomposition(
                char, _COMPATIBILITY
            ):
                differ.add(char)
    ccc = bytes(map(unicodedata.combining, every))
    interpreter_classes = {}
    for found in re.finditer(rb"[^\0]", ccc):
        char = every[found.start()]
        if char not in interpreter_nfd:
            interpreter_classes[char] = found.group()[0]
    differ.update(c for c in _RANK.keys() ^ interpreter_classes.keys() if c not in interpreter_nfd)
    # Where both have a class, rank and class must sort the same way.
    both = {(_RANK[c], interpreter_classes[c]) for c in _RANK.keys() & interpreter_classes.keys()}
    misordered = {(r, v) for r, v in both for s, w in both if (r < s) != (v < w) or (r == s) != (v == w)}
    differ.update(c for c in _RANK.keys() & interpreter_classes.keys() if (_RANK[c], interpreter_classes[c]) in misordered)
    interpreter_pairs = {
        unicodedata.normalize("NFC", d[:-1]) + d[-1]: z  # as NFC meets them, like _COMPOSE
        for z, d in interpreter_nfd.items()
        if unicodedata.normalize("NFC", z) == z and not 0 <= ord(z) - _S_BASE < _S_COUNT
    }
    for pair in _COMPOSE.keys() | interpreter_pairs.keys():
        if _COMPOSE.get(pair) != interpreter_pairs.get(pair):
            first = pair[:-1]
            stable = len(first) == 1 and first not in interpreter_nfd and _decomposition(first, _CANONICAL) == first
            differ.update(c for c in (_COMPOSE.get(pair), interpreter_pairs.get(pair)) if c)
            differ.add(first if stable else pair[-1])
    return _with_decomposing_to(differ)


def _with_decomposing_to(chars: set[str]) -> frozenset[str]:
    """`chars` and every character whose decomposition holds one of them.

    Normalization sees a character through its decomposition, so a text can bring a
    disagreement in disguised as such a character. (Unicode's stability policies keep
    old decompositions free of the new characters the disagreements are made of, so
    this adds nothing today; it keeps the set sound without relying on that.)
    """
    closure = {
        char
        for table in (_CANONICAL, _COMPATIBILITY)
        for char, decomposed in table.items()
        if not chars.isdisjoint(decomposed)
    }
    if not chars.isdisjoint(_JAMO):
        closure.update(map(chr, range(_S_BASE, _S_BASE + _S_COUNT)))
    return frozenset(chars | closure)


def _search_pattern(chars: frozenset[str]) -> re.Pattern[str]:
    """A pattern matching exactly `chars`, which `re` scans about as fast as text goes.

    `re` tests a BMP character against a bitmap but tries non-BMP ranges one by one, so a
    class listing non-BMP ranges costs every character of the text that many tests. The
    negated complement costs a BMP character one test (`re` puts the bitmap first) and
    a non-BMP one a walk through the non-BMP ranges, the widest (emoji, CJK) first.
    """
    gaps, low = [], 0
    for cp in [*sorted(map(ord, chars)), 0x110000]:
        if cp > low:
            gaps.append((low, cp - 1))
        low = cp + 1
    gaps.sort(key=lambda gap: gap[0] - gap[1])
    return re.compile("[^" + "".join(rf"\U{lo:08x}-\U{hi:08x}" for lo, hi in gaps) + "]")


DISAGREEMENTS = _disagreements()
_search = _search_pattern(DISAGREEMENTS).search


def normalize(form: str, text: str) -> str:
    """`form` ("NFC", "NFD", "NFKC" or "NFKD") of `text` exactly as HF `tokenizers` gives it."""
    if form not in FORMS:
        raise ValueError(f"invalid normalization form {form!r}")
    if text.isascii():  # every form leaves ASCII as it is
        return text
    found = _search(text)
    if found is None:
        return unicodedata.normalize(form, text)
    # Cut around each disagreement where both sides normalize independently; the
    # stretches between have none and go to the C code.
    pieces: list[str] = []
    done, length = 0, len(text)
    while found is not None:
        start = found.start()
        while start > done and text[start] in _UNSAFE:
            start -= 1
        end = found.end()
        while end < length and text[end] in _UNSAFE:
            end += 1
        pieces.append(unicodedata.normalize(form, text[done:start]))
        pieces.append(normalize_pure(form, text[start:end]))
        done = end
        found = _search(text, done)
    pieces.append(unicodedata.normalize(form, text[done:]))
    return "".join(pieces)
