"""Regenerate components/tokenizer/edgepop_tokenizer/normalization_data.py.

HF `tokenizers` normalizes with the Rust crate `unicode-normalization-alignments`, whose
Unicode data is older than any interpreter's `unicodedata` (14.0 on the host's 3.11, 16.0
in the component's 3.14), so `unicodedata.normalize` is not exact. This script asks the
reference normalizers themselves for their tables and checks every assumption it makes:

- full decompositions: HF NFD and NFKD of every code point (Hangul syllables are checked
  against the algorithm and left out);
- canonical combining classes: which characters reorder after U+0345 (ccc 240) or before
  U+0334 (ccc 1), then an order-preserving rank from reordering every pair of them;
- composition: the canonically decomposable characters that NFC does not give back (the
  full composition exclusions); the pairs that follow from the rest are probed directly,
  and every starter of the BMP is tried before every possible second character.

Usage: python tools/gen_normalization.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import tokenizers
from tokenizers import normalizers

OUT = Path(__file__).resolve().parent.parent / "components/tokenizer/edgepop_tokenizer/normalization_data.py"

HF: dict[str, Callable[[str], str]] = {
    form: getattr(normalizers, form)().normalize_str for form in ("NFC", "NFD", "NFKC", "NFKD")
}
EVERY_CHAR = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
HANGUL = [chr(S_BASE + i) for i in range(L_COUNT * V_COUNT * T_COUNT)]


def hangul_decomposition(syllable: str) -> str:
    index = ord(syllable) - S_BASE
    lv, t = divmod(index, T_COUNT)
    l, v = divmod(lv, V_COUNT)
    return chr(L_BASE + l) + chr(V_BASE + v) + (chr(T_BASE + t) if t else "")


def hangul_composition(first: str, second: str) -> str | None:
    """What the Unicode algorithm composes from two jamo / a syllable and a jamo."""
    a, b = ord(first), ord(second)
    if L_BASE <= a < L_BASE + L_COUNT and V_BASE <= b < V_BASE + V_COUNT:
        return chr(S_BASE + ((a - L_BASE) * V_COUNT + b - V_BASE) * T_COUNT)
    if 0 <= a - S_BASE < len(HANGUL) and (a - S_BASE) % T_COUNT == 0 and T_BASE < b < T_BASE + T_COUNT:
        return chr(a + b - T_BASE)
    return None


def batch(form: str, segments: list[str]) -> list[str]:
    """HF `form` of each segment, in one call; segments must not interact and keep length."""
    out = HF[form]("".join(segments))
    assert len(out) == sum(map(len, segments)), "a probe changed length"
    pieces, at = [], 0
    for segment in segments:
        pieces.append(out[at: at + len(segment)])
        at += len(segment)
    return pieces


def decompositions(form: str) -> dict[str, str]:
    """HF `form` (NFD or NFKD) of every code point that it changes, Hangul syllables aside."""
    table = {}
    for char in EVERY_CHAR:
        out = HF[form](char)
        if out != char:
            table[char] = out
    for syllable in HANGUL:
        assert table.pop(syllable) == hangul_decomposition(syllable), f"{form} of U+{ord(syllable):04X}"
    return table


def combining_ranks(canonical: dict[str, str]) -> dict[str, int]:
    """Order-preserving rank (1, 2, ...) of every character with a non-zero combining class.

    Only characters that are their own NFD matter: the reordering step never sees others.
    A starter never moves. A non-starter c moves in front of U+0345 unless its class is
    240, and then U+0334 (class 1) moves in front of it. "a" starts each probe so that
    probes never touch.
    """
    low, high = "\u0334", "\u0345"
    assert HF["NFD"]("a" + high + low) == "a" + low + high
    stable = [c for c in EVERY_CHAR if c not in canonical and not 0xAC00 <= ord(c) <= 0xD7A3]
    after_high = batch("NFD", ["a" + high + c for c in stable])
    before_low = batch("NFD", ["a" + c + low for c in stable])
    marks = [
        c for c, x, y in zip(stable, after_high, before_low)
        if x == "a" + c + high or y == "a" + low + c
    ]
    # Every ordered pair: y moves in front of x exactly when x's class is above y's.
    probes = batch("NFD", ["a" + x + y for x in marks for y in marks])
    below: dict[str, set[str]] = {x: set() for x in marks}
    for i, out in enumerate(probes):
        x, y = marks[i // len(marks)], marks[i % len(marks)]
        if out != "a" + x + y:
            assert out == "a" + y + x, f"unexpected reordering {out!r}"
            below[x].add(y)
    # A total preorder: the sets of characters below are nested, and equal within a class.
    sizes = sorted({len(ys) for ys in below.values()})
    rank = {x: sizes.index(len(ys)) + 1 for x, ys in below.items()}
    for x, ys in below.items():
        assert ys == {y for y in marks if rank[y] < rank[x]}, f"inconsistent order at U+{ord(x):04X}"
    return rank


def not_composed(canonical: dict[str, str]) -> list[str]:
    """Canonically decomposable characters that HF NFC does not recompose."""
    return [c for c in canonical if HF["NFC"](c) != c]


def composition_pairs(canonical: dict[str, str], excluded: set[str]) -> dict[str, str]:
    """(first + second) -> composite, for pairs that NFC can meet.

    When NFC meets a starter x and then y with nothing between, NFD(x) + y is in canonical
    order, so a composite z is met only as x = NFC(NFD(z)[:-1]) and y = NFD(z)[-1]. Each
    such pair is probed on its own.
    """
    recompose = {d: c for c, d in canonical.items() if c not in excluded}
    pairs = {}
    for z, d in canonical.items():
        if z in excluded:
            continue
        x = d[0] if len(d) == 2 else recompose[d[:-1]]
        assert canonical.get(x, x) == d[:-1] and HF["NFC"](d[:-1]) == x, f"U+{ord(z):04X}"
        pairs[x + d[-1]] = z
    assert len(recompose) == len(pairs), "two composites share a decomposition"
    for pair, z in pairs.items():
        assert HF["NFC"](pair) == z, f"pair {pair!r}"
    return pairs


def check_no_other_pairs(pairs: dict[str, str], canonical: dict[str, str], rank: dict[str, int]) -> None:
    """Try every BMP starter and every known first before every possible second character.

    Second characters: those of the pairs, the Hangul vowels and trailing consonants, and
    the jamo just outside those ranges.
    """
    seconds = sorted({p[1] for p in pairs} | {chr(cp) for cp in range(V_BASE - 1, T_BASE + T_COUNT + 1)})
    bmp = [c for c in EVERY_CHAR if 0 < ord(c) < 0x10000]  # NUL separates the probes
    firsts = sorted({c for c in bmp if HF["NFC"](c) == c and c not in rank} | {p[0] for p in pairs})
    for y in seconds:
        # Only pairs met with nothing between: NFD(x) + y already in canonical order.
        xs = [x for x in firsts if rank.get(y, 0) == 0 or rank.get(canonical.get(x, x)[-1], 0) <= rank[y]]
        out = HF["NFC"]("\0".join(x + y for x in xs)).split("\0")
        for x, got in zip(xs, out, strict=True):
            expected = pairs.get(x + y) or hangul_composition(x, y) or x + y
            assert got == expected, f"NFC(U+{ord(x):04X} U+{ord(y):04X}) = {got!r}, expected {expected!r}"


def hex_map(table: dict[str, str]) -> str:
    """Compact text form: space-separated `key=value`, code points in hex with `.` between.

    A run of keys whose values differ only by a last code point that goes up with the key
    is one entry `first-last=value of first` (the mathematical alphanumerics, fullwidth
    forms and the like).
    """
    runs: list[list] = []  # [first key, last key, value of first]
    for key, value in sorted(table.items()):
        if runs:
            first, last, start = runs[-1]
            step = ord(key) - ord(first)
            if ord(key) == ord(last) + 1 and value == start[:-1] + chr(ord(start[-1]) + step):
                runs[-1][1] = key
                continue
        runs.append([key, key, value])
    return " ".join(
        (f"{ord(first):x}" if first == last else f"{ord(first):x}-{ord(last):x}")
        + "=" + ".".join(f"{ord(c):x}" for c in value)
        for first, last, value in runs
    )


def hex_ranges(chars: Iterable[str]) -> str:
    """Compact text form: space-separated hex `lo-hi` (or `lo` for a single code point)."""
    ranges: list[list[int]] = []
    for cp in sorted(map(ord, chars)):
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return " ".join(f"{lo:x}" if lo == hi else f"{lo:x}-{hi:x}" for lo, hi in ranges)


def main() -> int:
    canonical = decompositions("NFD")
    compat = {c: d for c, d in decompositions("NFKD").items() if canonical.get(c) != d}
    print(f"{len(canonical)} canonical, {len(compat)} compatibility-only decompositions", file=sys.stderr)
    rank = combining_ranks(canonical)
    print(f"{len(rank)} non-starters in {max(rank.values())} ranks", file=sys.stderr)
    excluded = not_composed(canonical)
    pairs = composition_pairs(canonical, set(excluded))
    check_no_other_pairs(pairs, canonical, rank)
    print(f"{len(pairs)} composition pairs, {len(excluded)} exclusions", file=sys.stderr)
    by_rank: dict[int, list[str]] = {}
    for c, r in rank.items():
        by_rank.setdefault(r, []).append(c)
    version = f"tokenizers=={tokenizers.__version__}"
    lines = [
        f'"""Generated by tools/gen_normalization.py from {version} (unicode-normalization-alignments). Do not edit."""',
        "",
        f'REFERENCE = "{version}"',
        "",
        "# Full canonical decomposition (NFD) of each code point that has one; Hangul syllables aside.",
        f"CANONICAL = {hex_map(canonical)!r}",
        "",
        "# Full compatibility decomposition (NFKD) where it differs from CANONICAL.",
        f"COMPATIBILITY = {hex_map(compat)!r}",
        "",
        "# Canonically decomposable code points that NFC does not recompose (full composition exclusions).",
        f"NOT_COMPOSED = {hex_ranges(excluded)!r}",
        "",
        "# Code points with a non-zero canonical combining class, by class in increasing order.",
        "COMBINING_RANKS = (",
        *(f"    {hex_ranges(by_rank[r])!r}," for r in sorted(by_rank)),
        ")",
    ]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
