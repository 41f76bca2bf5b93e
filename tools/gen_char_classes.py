"""Regenerate components/tokenizer/edgepop_tokenizer/char_classes_data.py.

The normalizers and pre-tokenizers that do not use Oniguruma classify characters with
the Unicode tables of Rust crates compiled into HF `tokenizers`: `char::is_whitespace`
and `is_numeric` and `to_lowercase` (Rust's std), the `regex` crate's `\\w`,
`unicode_categories` (BERT's punctuation, control characters and non-spacing marks;
StripAccents' combining marks), BERT's CJK
ranges, and the Unicode scripts table of UnicodeScripts. Their Unicode versions are not
the interpreter's, so this script asks HF itself, character by character, through the
very pre-tokenizers and normalizers that use each table, and writes down the answers.

Usage: python tools/gen_char_classes.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import tokenizers
from tokenizers import normalizers, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_unicode_props import encode, to_ranges  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "components/tokenizer/edgepop_tokenizer/char_classes_data.py"

EVERY_CHAR = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
FILLER = "a"  # a word character that no probe removes, splits off or changes


def owners(pre_tokenizer, chars: list[str]) -> tuple[list[int], list[int]]:
    """Pre-tokenize FILLER c1 FILLER c2 ... FILLER; per character, the piece it ends up in
    (-1: removed) and the piece of the filler just before it."""
    text = "".join(FILLER + c for c in chars) + FILLER
    owner = [-1] * len(text)
    for index, (_, (start, end)) in enumerate(pre_tokenizer.pre_tokenize_str(text)):
        owner[start:end] = [index] * (end - start)
    return [owner[2 * i + 1] for i in range(len(chars))], [owner[2 * i] for i in range(len(chars))]


def removed(pre_tokenizer) -> list[int]:
    mine, _ = owners(pre_tokenizer, EVERY_CHAR)
    return [ord(c) for c, o in zip(EVERY_CHAR, mine) if o < 0]


def split_off(pre_tokenizer) -> list[int]:
    """Characters that end up in a piece of their own, not joined to the fillers around them."""
    mine, before = owners(pre_tokenizer, EVERY_CHAR)
    return [ord(c) for c, o, b in zip(EVERY_CHAR, mine, before) if o >= 0 and o != b and c != FILLER]


def word_chars() -> list[int]:
    """`\\w` of the `regex` crate, through Whitespace (`\\w+|[^\\w\\s]+`): joined to the fillers."""
    mine, before = owners(pre_tokenizers.Whitespace(), EVERY_CHAR)
    return [ord(c) for c, o, b in zip(EVERY_CHAR, mine, before) if o >= 0 and o == b]


def mapped(normalizer, separator: str) -> list[str]:
    """What `normalizer` makes of each character on its own (joined with `separator`, which it keeps)."""
    others = [c for c in EVERY_CHAR if c != separator]
    out = normalizer.normalize_str(separator.join(others)).split(separator)
    if len(out) != len(others) or normalizer.normalize_str(separator) != separator:
        raise SystemExit(f"{normalizer}: the separator {separator!r} did not survive")
    at = EVERY_CHAR.index(separator)
    return out[:at] + [separator] + out[at:]


def script_classes() -> list[list[int]]:
    """UnicodeScripts' script of every character, as classes of characters it never splits apart.

    Class 0 is HF's `Any` (never starts a piece: the space, unassigned code points, ...);
    the others are found one at a time: a representative r and every character c that
    still has no class, as r c r c' r ..., where c stays with r exactly when it is of r's
    script.
    """
    probe = pre_tokenizers.UnicodeScripts()
    text = "".join("\u03b1" + c for c in EVERY_CHAR) + "\u03b1"
    starts = {start for _, (start, _) in probe.pre_tokenize_str(text)}
    greek = [2 * i + 1 not in starts and 2 * i + 2 not in starts for i in range(len(EVERY_CHAR))]
    text = "".join("b" + c for c in EVERY_CHAR) + "b"
    starts = {start for _, (start, _) in probe.pre_tokenize_str(text)}
    latin = [2 * i + 1 not in starts and 2 * i + 2 not in starts for i in range(len(EVERY_CHAR))]
    classes = [[ord(c) for c, in_latin, in_greek in zip(EVERY_CHAR, latin, greek) if in_latin and in_greek]]
    any_script = set(classes[0])
    left = [c for c in EVERY_CHAR if ord(c) not in any_script]
    while left:
        r = left[0]
        text = "".join(r + c for c in left) + r
        starts = {start for _, (start, _) in probe.pre_tokenize_str(text)}
        same = [c for i, c in enumerate(left) if 2 * i + 1 not in starts]
        classes.append([ord(c) for c in same])
        print(f"script class {len(classes) - 1}: {len(same)} characters like {r!r}, {len(left) - len(same)} left", file=sys.stderr)
        taken = set(same)
        left = [c for c in left if c not in taken]
    return classes


def main() -> int:
    ranges: dict[str, list[int]] = {}
    ranges["whitespace"] = removed(pre_tokenizers.WhitespaceSplit())
    ranges["numeric"] = split_off(pre_tokenizers.Digits(individual_digits=True))
    ranges["punctuation"] = split_off(pre_tokenizers.Punctuation(behavior="isolated"))
    ranges["word"] = word_chars()
    clean = mapped(normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False), "a")
    ranges["control"] = [ord(c) for c, m in zip(EVERY_CHAR, clean) if m == ""]
    ranges["cleaned_to_space"] = [ord(c) for c, m in zip(EVERY_CHAR, clean) if m == " " and c != " "]
    chinese = mapped(normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False), "a")
    ranges["chinese"] = [ord(c) for c, m in zip(EVERY_CHAR, chinese) if m == f" {c} "]
    accents = mapped(normalizers.StripAccents(), "a")
    ranges["combining_mark"] = [ord(c) for c, m in zip(EVERY_CHAR, accents) if m == ""]
    bert_accents = mapped(normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False), "\x01")
    ranges["nonspacing_mark"] = [ord(c) for c, m in zip(EVERY_CHAR, bert_accents) if m == ""]
    lowered = mapped(normalizers.Lowercase(), "\x00")
    lowercase = {ord(c): m for c, m in zip(EVERY_CHAR, lowered) if m != c}

    # The same tables, seen through the other stages that use them, must agree.
    whitespace = set(ranges["whitespace"])
    assert set(removed(pre_tokenizers.Whitespace())) == whitespace, "regex \\s is not char::is_whitespace"
    assert set(ranges["cleaned_to_space"]) == whitespace - {0x20} - set(ranges["control"])
    bert = pre_tokenizers.BertPreTokenizer()
    assert set(removed(bert)) == whitespace and set(split_off(bert)) == set(ranges["punctuation"])
    assert all(chinese[i] in (c, f" {c} ") for i, c in enumerate(EVERY_CHAR))
    assert all(m in ("", c) for c, m in zip(EVERY_CHAR, accents))
    marks = set(map(chr, ranges["nonspacing_mark"]))  # BERT strips them after NFD
    nfd = mapped(normalizers.NFD(), "\x01")
    assert all(m == "".join(x for x in d if x not in marks) for d, m in zip(nfd, bert_accents))
    assert all(m in ("", " ", c) for c, m in zip(EVERY_CHAR, clean))
    strip = normalizers.Strip()
    assert all(strip.normalize_str(c + "a" + c) == ("a" if ord(c) in whitespace else c + "a" + c) for c in EVERY_CHAR[:0x3100])
    scripts = script_classes()

    lines = [
        f'"""Generated by tools/gen_char_classes.py from tokenizers=={tokenizers.__version__}. Do not edit."""',
        "",
        f'REFERENCE = "tokenizers=={tokenizers.__version__}"',
        "",
        "# Code point ranges (hex `lo-hi` or `lo`) of each class, as HF's stages see them.",
        "RANGES = {",
    ]
    for name, members in ranges.items():
        lines.append(f"    {name!r}: {encode(to_ranges(sorted(members)))!r},")
        print(f"{name:18s} {len(members):7d} characters", file=sys.stderr)
    lines += ["}", "", "# Lowercase (Rust's char::to_lowercase, one character at a time): code point -> text.", "LOWERCASE = {"]
    lines += [f"    0x{cp:x}: {text!r}," for cp, text in sorted(lowercase.items())]
    lines += ["}", "", "# UnicodeScripts: ranges of each script class; class 0 is `Any`, which never splits.", "SCRIPTS = ("]
    lines += [f"    {encode(to_ranges(sorted(members)))!r}," for members in scripts]
    lines.append(")")
    print(f"lowercase          {len(lowercase):7d} characters; {len(scripts)} script classes", file=sys.stderr)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
