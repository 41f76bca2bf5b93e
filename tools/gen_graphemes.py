"""Regenerate components/tokenizer/edgepop_tokenizer/graphemes_data.py.

HF's Precompiled normalizer cuts text into extended grapheme clusters with the
`unicode-segmentation` crate (its own Unicode version) and treats clusters under 6
bytes specially: one with a prefix among the charsmap's keys is replaced whole by that
prefix's replacement. That makes the clusters visible: with a charsmap mapping every
character to itself, HF turns each cluster of several characters under 6 bytes into its
first character, and leaves everything else as it is. This script asks HF, through
such a charsmap (edgepop.charsmap), which Grapheme_Cluster_Break class,
Extended_Pictographic and Indic_Conjunct_Break value every character has, by probes
like "a" + c (does c extend a cluster?) and c + "a" (is c a Prepend?), and checks the
segmentation graphemes.py builds from the answer against HF on random text.

Regional indicators are left in Other: a pair of them is 8 bytes, so whether HF pairs
them never changes what the normalizer outputs (and nothing else here uses clusters).

Usage: python tools/gen_graphemes.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import tokenizers
from tokenizers import normalizers

from edgepop.charsmap import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_unicode_props import encode, to_ranges  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "components/tokenizer/edgepop_tokenizer/graphemes_data.py"

EVERY_CHAR = [chr(cp) for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF]
PROBED = [c for c in EVERY_CHAR if c not in "\r\n"]  # CR and LF: known, and CR LF is one cluster
GRAVE, ACUTE, ZWJ, COPYRIGHT = "\u0300", "\u0301", "\u200d", "\u00a9"
KA, VIRAMA = "\u0915", "\u094d"  # Devanagari: InCB Consonant and Linker
HANGUL = {"L": "\u1100", "V": "\u1161", "T": "\u11a8", "LV": "\uac00", "LVT": "\uac01"}

IDENTITY = normalizers.Precompiled(build({c: c for c in EVERY_CHAR}))


def outputs(items: list[str]) -> list[str]:
    """What HF's Precompiled, with the identity charsmap, makes of each item (cut apart by
    NULs: a control character, with a cluster of its own, which no key can hold)."""
    out = IDENTITY.normalize_str("\0" + "\0".join(items)).split("\0")[1:]
    assert len(out) == len(items)
    return out


def probe(template: str, chars: list[str] = PROBED) -> dict[str, str]:
    """template with {} replaced by each character -> HF's output for it."""
    items = [template.format(c) for c in chars]
    return dict(zip(chars, outputs(items)))


def collapse_like_hf(text: str, clusters) -> str:
    """What the identity charsmap makes of text, if HF's clusters were `clusters(text)`."""
    return "".join(c[0] if len(c) > 1 and len(c.encode()) < 6 else c for c in clusters(text))


def classify() -> dict[str, set[str]]:
    classes: dict[str, set[str]] = {}
    extends = {c for c, o in probe("a{}").items() if o == "a"}  # Extend, ZWJ, SpacingMark
    classes["Prepend"] = {c for c, o in probe("{}a").items() if o == c}
    after = probe("{}" + GRAVE + ACUTE)
    # NUL cannot be probed (it ends every charsmap lookup, and separates the probes) and is
    # Control in every Unicode version; CR and LF are known.
    classes["Control"] = {c for c, o in after.items() if o == c + GRAVE} | {"\0", "\r", "\n"}
    assert all(o in (c, c + GRAVE + ACUTE) for c, o in after.items() if c not in classes["Control"])
    extended_pictographic = {c for c, o in probe("{}" + ZWJ + COPYRIGHT + GRAVE).items() if o.endswith(GRAVE)}
    assert COPYRIGHT in extended_pictographic
    classes["ExtPict"] = extended_pictographic
    # Extend (GB11 lets Extend* sit between a pictograph and ZWJ) against SpacingMark.
    gb11 = probe(COPYRIGHT + "{}" + ZWJ + COPYRIGHT + GRAVE, sorted(extends))
    classes["Extend"] = {c for c, o in gb11.items() if o.endswith(GRAVE)}
    classes["ZWJ"] = {ZWJ}
    classes["SpacingMark"] = extends - classes["Extend"] - classes["ZWJ"]
    # Hangul: which characters each jamo or syllable type is followed by, in one cluster.
    joins_after = {}
    bmp = [c for c in PROBED if ord(c) < 0x10000]  # Hangul is all in the BMP
    for name, first in HANGUL.items():
        found = probe(first + "{}" + GRAVE, bmp)
        joins_after[name] = {c for c, o in found.items() if o == first + c + GRAVE and c not in classes["Control"]}
    joins_before = {}
    for name in ("V", "T"):
        found = probe("{}" + HANGUL[name] + GRAVE)
        joins_before[name] = {c for c, o in found.items() if o == c + HANGUL[name] + GRAVE}
    bmp_extends = {c for c in extends if ord(c) < 0x10000}
    classes["T"] = joins_after["LVT"] - bmp_extends
    classes["V"] = joins_after["LV"] - bmp_extends - classes["T"]
    syllables = joins_after["L"] - bmp_extends - classes["V"]
    classes["L"] = syllables & joins_before["V"] - joins_before["T"]
    classes["LV"] = syllables & joins_before["V"] & joins_before["T"]
    classes["LVT"] = syllables & joins_before["T"] - joins_before["V"]
    assert all(HANGUL[name] in classes[name] for name in HANGUL)
    # Indic conjuncts (GB9c): consonant [extend linker]* linker [extend linker]* x consonant.
    classes["InCB_Linker"] = {c for c, o in probe(KA + "{}" + KA + GRAVE, sorted(extends)).items() if o.endswith(GRAVE)}
    linked = {c for c, o in probe(KA + "{}" + VIRAMA + KA + GRAVE, sorted(extends)).items() if o.endswith(GRAVE)}
    classes["InCB_Extend"] = linked - classes["InCB_Linker"]
    others = [c for c in PROBED if c not in extends]
    classes["InCB_Consonant"] = {c for c, o in probe(KA + VIRAMA + "{}" + VIRAMA + KA + GRAVE, others).items() if o.endswith(GRAVE)}
    assert KA in classes["InCB_Consonant"] and VIRAMA in classes["InCB_Linker"]
    return classes


def check(clusters, data, rounds: int = 20000) -> None:
    """The segmentation graphemes.py makes of the tables against HF's, on random text made
    of the characters where rules meet."""
    pool: list[str] = ["a", "\r", "\n", " ", ZWJ, COPYRIGHT, KA, VIRAMA, *HANGUL.values(), "\U0001f600", "\U0001f1e6"]
    rng = random.Random(5)
    for name in data.CLASSES:
        members = [chr(cp) for lo, hi in _ranges(data.CLASSES[name]) for cp in (lo, hi) if cp]
        pool += rng.sample(members, min(len(members), 40))
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(rounds)]
    got = outputs(texts)
    bad = [(t, g) for t, g in zip(texts, got) if g != collapse_like_hf(t, clusters)]
    if bad:
        raise SystemExit(f"{len(bad)} of {rounds} random texts segmented unlike HF, e.g. {bad[:5]}")
    print(f"checked {rounds} random texts against HF", file=sys.stderr)


def _ranges(encoded: str):
    for item in encoded.split():
        lo, _, hi = item.partition("-")
        yield int(lo, 16), int(hi or lo, 16)


def main() -> int:
    classes = classify()
    lines = [
        f'"""Generated by tools/gen_graphemes.py from tokenizers=={tokenizers.__version__} (unicode-segmentation). Do not edit."""',
        "",
        f'REFERENCE = "tokenizers=={tokenizers.__version__}"',
        "",
        "# Grapheme_Cluster_Break classes (and Extended_Pictographic, Indic_Conjunct_Break) as",
        "# HF's clusters have them; code points in none of them are Other.",
        "CLASSES = {",
    ]
    for name, members in classes.items():
        lines.append(f"    {name!r}: {encode(to_ranges(sorted(map(ord, members))))!r},")
        print(f"{name:15s} {len(members):7d} characters", file=sys.stderr)
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    sys.path.insert(0, str(ROOT / "components/tokenizer"))
    from edgepop_tokenizer import graphemes, graphemes_data  # noqa: E402  (the module just generated for)

    check(graphemes.clusters, graphemes_data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
