"""Read an Oniguruma pattern, as tokenizer.json files write them, into a small syntax tree.

HF `tokenizers` runs pre-tokenizer patterns with Oniguruma (Ruby-like syntax, Unicode
tables of its own). Python's `re` has neither `\\p{...}` nor the same `\\s`, so instead of
rewriting pattern text we parse it and resolve every character class, escape and
case-insensitive literal to the explicit set of code points Oniguruma would match
(`unicode_props` holds the sets probed from the reference engine). `regex.py` turns the
tree back into a Python pattern.

Only constructs whose Oniguruma meaning is pinned down here are accepted; anything else
raises `PatternError`, which the loader reports as UnsupportedTokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import unicode_props

MAX_CODE_POINT = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]


class PatternError(ValueError):
    """The pattern uses something this reader does not reproduce exactly."""


# ---- the tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class Chars:
    """One character from a set of code points (sorted, disjoint, inclusive ranges).

    `folded` is the ASCII letter a case-insensitive literal came from, kept so that
    multi-character case folds (`st` also matching `ﬆ`) can be refused.
    """

    ranges: Ranges
    folded: str = ""


@dataclass(frozen=True)
class Seq:
    items: tuple


@dataclass(frozen=True)
class Alt:
    branches: tuple


@dataclass(frozen=True)
class Repeat:
    item: object
    min: int
    max: int | None  # None: unbounded
    mode: str = ""  # "" greedy, "?" lazy, "+" possessive


@dataclass(frozen=True)
class Look:
    """Zero-width assertion on a sub-pattern: kind is one of `=`, `!`, `<=`, `<!`."""

    kind: str
    body: object


@dataclass(frozen=True)
class Atomic:
    body: object


@dataclass(frozen=True)
class Anchor:
    """`\\A`, `\\z`, `\\Z`, `^`, `$` (line anchors, as in Ruby), `\\b`, `\\B`."""

    kind: str


# ---- code point sets ------------------------------------------------------------------


def normalize_ranges(ranges) -> Ranges:
    """Sort and merge overlapping or adjacent ranges."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def complement(ranges: Ranges) -> Ranges:
    out = []
    start = 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


def _class_escape(name: str) -> Ranges:
    try:
        return unicode_props.ranges(name)
    except KeyError:
        raise PatternError(f"uses {name}, which edgepop does not implement") from None


WORD: Ranges = _class_escape(r"\w")
_NEWLINE: Ranges = ((0x0A, 0x0A),)
ANY_BUT_NEWLINE: Ranges = complement(_NEWLINE)

# Simple case folding of ASCII letters, as Oniguruma applies it: besides the two ASCII
# cases, U+017F LATIN SMALL LETTER LONG S folds to `s` and U+212A KELVIN SIGN to `k`.
# (U+0130 and U+0131 do not fold to `i`.) Checked against the reference engine by the tests.
_EXTRA_FOLDS = {"s": "\u017f", "k": "\u212a"}
# Two-letter starts of the ASCII strings that a single character fully case-folds to
# (ß -> ss, ﬅ -> st, ﬀ -> ff, ﬁ -> fi, ﬂ -> fl, ﬃ -> ffi, ﬄ -> ffl): Oniguruma lets a
# case-insensitive `st` match `ﬆ`, which a per-character translation cannot express.
MULTI_CHAR_FOLD_STARTS = frozenset({"ss", "st", "ff", "fi", "fl"})


def _fold(char: str) -> Chars:
    """The set a literal matches under (?i)."""
    if not char.isascii():
        raise PatternError(f"matches the non-ASCII literal {char!r} case-insensitively, which edgepop does not implement")
    if not char.isalpha():
        return Chars(((ord(char), ord(char)),))
    lower = char.lower()
    members = {lower, char.upper(), *_EXTRA_FOLDS.get(lower, "")}
    return Chars(normalize_ranges((ord(c), ord(c)) for c in members), folded=lower)


# ---- the reader -----------------------------------------------------------------------

_SIMPLE_ESCAPES = {"t": 0x09, "n": 0x0A, "r": 0x0D, "f": 0x0C, "v": 0x0B, "a": 0x07, "e": 0x1B, "0": 0x00}
_CLASS_SHORTHANDS = {"s": r"\s", "d": r"\d", "w": r"\w"}
_ANCHOR_ESCAPES = {"A": r"\A", "z": r"\z", "Z": r"\Z", "b": r"\b", "B": r"\B"}
_CLASS_ESCAPE_LETTERS = set("sSdDwWpP")


class _Reader:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    # -- helpers
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def take(self) -> str:
        c = self.peek()
        if not c:
            raise PatternError("ends in the middle of a construct")
        self.i += 1
        return c

    def fail(self, what: str) -> PatternError:
        return PatternError(f"{what} (at offset {self.i} of the pattern), which edgepop does not implement")

    # -- grammar
    def alternation(self, icase: bool) -> object:
        branches = [self.sequence(icase)]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.sequence(icase))
        return branches[0] if len(branches) == 1 else Alt(tuple(branches))

    def sequence(self, icase: bool) -> Seq:
        items: list = []
        while self.peek() and self.peek() not in "|)":
            switch = next((s for s in ("(?i)", "(?-i)") if self.p.startswith(s, self.i)), None)
            if switch:
                # Ruby semantics: the switch holds to the end of the enclosing group,
                # alternatives after it included: `x(?i)a|b` is `x(?i:a|b)`.
                self.i += len(switch)
                items.append(self.alternation(switch == "(?i)"))
                break
            items.append(self.quantified(self.atom(icase)))
        return Seq(tuple(items))

    def quantified(self, item: object) -> object:
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.i += 1
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
                mode = ""
                if self.peek() in ("?", "+"):
                    mode = self.take()
                item = Repeat(item, lo, hi, mode)
            elif c == "{" and (bounds := self.interval()) is not None:
                lo, hi = bounds
                # `{n,m}?` is lazy; `{n,m}+` is NOT possessive in Oniguruma, it repeats the
                # interval again, which the loop handles as a nested repeat.
                mode = "?" if self.peek() == "?" else ""
                self.i += len(mode)
                item = Repeat(item, lo, hi, mode)
            else:
                return item
            if isinstance(item.item, (Look, Anchor)):
                raise self.fail("repeats a zero-width assertion")

    def interval(self) -> tuple[int, int | None] | None:
        """Parse `{n}`, `{n,}`, `{,m}`, `{n,m}` at the cursor; None if `{` is a literal there."""
        end = self.p.find("}", self.i)
        if end < 0:
            return None
        body = self.p[self.i + 1 : end]
        lo_text, comma, hi_text = body.partition(",")
        if not (lo_text.isdigit() or (comma and lo_text == "" and hi_text.isdigit())):
            return None
        if (hi_text and not hi_text.isdigit()) or not body.isascii():
            return None
        lo = int(lo_text) if lo_text else 0
        hi = None if comma and not hi_text else int(hi_text) if hi_text else lo
        if hi is not None and hi < lo:
            raise self.fail(f"has the interval {{{body}}} with max < min")
        self.i = end + 1
        return lo, hi

    def atom(self, icase: bool) -> object:
        c = self.take()
        if c == "(":
            return self.group(icase)
        if c == "[":
            return Chars(self.char_class(icase))
        if c == ".":
            return Chars(ANY_BUT_NEWLINE)
        if c == "^":
            return Anchor("^")
        if c == "$":
            return Anchor("$")
        if c == "\\":
            return self.escape(icase, in_class=False)
        if c in "*+?":
            raise self.fail(f"has a quantifier {c!r} with nothing to repeat")
        if c == "{" and self.interval() is not None:
            raise self.fail("has an interval with nothing to repeat")
        return _fold(c) if icase else Chars(((ord(c), ord(c)),))

    def group(self, icase: bool) -> object:
        if self.peek() != "?":
            body = self.alternation(icase)  # capture groups match like non-capturing ones
        else:
            self.i += 1
            head = self.take()
            if head == ":":
                body = self.alternation(icase)
            elif head in "=!":
                body = Look(head, self.alternation(icase))
            elif head == "<" and self.peek() in "=!":
                body = Look("<" + self.take(), self.alternation(icase))
            elif head == ">":
                body = Atomic(self.alternation(icase))
            elif head == "<" or head == "'":
                close = ">" if head == "<" else "'"
                end = self.p.find(close, self.i)
                if end < 0 or not self.p[self.i : end].isidentifier():
                    raise self.fail("has a malformed named group")
                self.i = end + 1
                body = self.alternation(icase)
            elif head in "i-":
                flag = ""
                self.i -= 1
                while self.peek() in ("i", "-"):
                    flag += self.take()
                if flag not in ("i", "-i") or self.peek() != ":":
                    raise self.fail("sets group options other than (?i:...) / (?-i:...)")
                self.i += 1
                body = self.alternation(flag == "i")
            else:
                raise self.fail(f"has the group construct (?{head}")
        if self.take() != ")":
            raise self.fail("has an unbalanced parenthesis")
        return body

    def escape(self, icase: bool, in_class: bool) -> object:
        c = self.take()
        if c in _SIMPLE_ESCAPES and not (c == "0" and self.peek().isdigit()):
            cp = _SIMPLE_ESCAPES[c]
            return Chars(((cp, cp),))
        if c in _CLASS_ESCAPE_LETTERS:
            if icase:
                raise self.fail(f"uses the class escape \\{c} under (?i)")
            if c in ("p", "P"):
                return Chars(self.property(negated=c == "P"))
            ranges = _class_escape(_CLASS_SHORTHANDS[c.lower()])
            return Chars(complement(ranges) if c.isupper() else ranges)
        if c in ("x", "u"):
            return self.code_point(c)
        if c == "b" and in_class:
            return Chars(((0x08, 0x08),))
        if c in _ANCHOR_ESCAPES and not in_class:
            return Anchor(_ANCHOR_ESCAPES[c])
        if not c.isalnum() or not c.isascii():
            return _fold(c) if icase else Chars(((ord(c), ord(c)),))
        raise self.fail(f"uses the escape \\{c}")

    def property(self, negated: bool) -> Ranges:
        if self.take() != "{":
            raise self.fail("uses a one-letter property escape such as \\pL")
        end = self.p.find("}", self.i)
        if end < 0:
            raise self.fail("has an unterminated \\p{")
        name = self.p[self.i : end]
        self.i = end + 1
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        ranges = _class_escape(rf"\p{{{name}}}")
        return complement(ranges) if negated else ranges

    def code_point(self, kind: str) -> Chars:
        if kind == "x" and self.peek() == "{":
            end = self.p.find("}", self.i)
            digits = self.p[self.i + 1 : end] if end > 0 else ""
            self.i = end + 1
        else:
            width = 2 if kind == "x" else 4
            digits = self.p[self.i : self.i + width]
            self.i += width
            if len(digits) != width:
                digits = ""
        try:
            cp = int(digits, 16)
        except ValueError:
            raise self.fail(f"has a malformed \\{kind} escape") from None
        if cp > MAX_CODE_POINT:
            raise self.fail(f"has the code point {cp:#x} beyond Unicode")
        return Chars(((cp, cp),))

    def char_class(self, icase: bool) -> Ranges:
        negated = self.peek() == "^"
        self.i += negated
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            c = self.take()
            if c == "]" and not first:
                break
            first = False
            if c == "[":
                raise self.fail("nests character classes or uses POSIX brackets")
            if c == "&" and self.peek() == "&":
                raise self.fail("intersects character classes (&&)")
            if c == "\\" and self.peek() in _CLASS_ESCAPE_LETTERS:
                ranges.extend(self.escape(icase, in_class=True).ranges)
                continue
            lo = self.class_char(c)
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                c = self.take()
                if c == "\\" and self.peek() in _CLASS_ESCAPE_LETTERS:
                    raise self.fail("has a character class range that ends in a class escape")
                hi = self.class_char(c)
                if hi < lo:
                    raise self.fail("has a reversed character class range")
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        merged = normalize_ranges(ranges)
        if icase:
            if any(hi > 0x7F for _, hi in merged):
                raise self.fail("has non-ASCII class members under (?i)")
            if negated and any(chr(cp).isalpha() for lo, hi in merged for cp in range(lo, hi + 1)):
                raise self.fail("negates a character class with letters under (?i)")
            merged = normalize_ranges(r for lo, hi in merged for cp in range(lo, hi + 1) for r in _fold(chr(cp)).ranges)
        return complement(merged) if negated else merged

    def class_char(self, c: str) -> int:
        """The code point of a one-character class member (`a`, `\\n`, `\\x41`, `\\]`)."""
        if c != "\\":
            return ord(c)
        item = self.escape(icase=False, in_class=True)
        if not isinstance(item, Chars):
            raise self.fail("puts an anchor inside a character class")
        return item.ranges[0][0]


# ---- analyses -------------------------------------------------------------------------


def min_width(node: object) -> int:
    """The fewest characters a match of `node` can have (0: it can match the empty string)."""
    if isinstance(node, Chars):
        return 1
    if isinstance(node, Seq):
        return sum(min_width(i) for i in node.items)
    if isinstance(node, Alt):
        return min(min_width(b) for b in node.branches)
    if isinstance(node, Repeat):
        return node.min * min_width(node.item)
    if isinstance(node, Atomic):
        return min_width(node.body)
    return 0  # Look, Anchor


def char_sets(node: object) -> list[Ranges]:
    """Every set of code points the pattern tests a character against, `\\b`'s word class included."""
    if isinstance(node, Chars):
        return [node.ranges]
    if isinstance(node, Anchor):
        return [WORD] if node.kind in (r"\b", r"\B") else []
    children = node.items if isinstance(node, Seq) else node.branches if isinstance(node, Alt) else (
        [node.item] if isinstance(node, Repeat) else [node.body]
    )
    return [s for child in children for s in char_sets(child)]


def single_char_cover(node: object) -> Ranges:
    """Characters at which the pattern surely finds a match, whatever follows.

    A branch counts when it is one mandatory character set (once or repeated) among
    greedy or lazy optional items: backtracking can always let those match nothing.
    If the cover is every code point and the pattern never matches empty, matches
    tile any text without gaps, so `Split(Removed, invert=true)` drops nothing.
    """
    branches = node.branches if isinstance(node, Alt) else (node,)
    covered: list[tuple[int, int]] = []
    for branch in branches:
        items = branch.items if isinstance(branch, Seq) else (branch,)
        mandatory = [i for i in items if not (isinstance(i, Repeat) and i.min == 0 and i.mode != "+" and _plain(i.item))]
        if len(mandatory) != 1:
            continue
        (item,) = mandatory
        if isinstance(item, Repeat) and item.min >= 1 and item.mode != "+" and isinstance(item.item, Chars):
            item = item.item
        if isinstance(item, Chars):
            covered.extend(item.ranges)
    return normalize_ranges(covered)


def _plain(node: object) -> bool:
    """Whether `node` is built only of character sets, sequences, alternations and repeats."""
    if isinstance(node, Chars):
        return True
    if isinstance(node, Seq):
        return all(_plain(i) for i in node.items)
    if isinstance(node, Alt):
        return all(_plain(b) for b in node.branches)
    if isinstance(node, Repeat):
        return node.mode != "+" and _plain(node.item)
    return False


def _check_multi_char_folds(node: object) -> None:
    """Refuse case-insensitive letters that can stand next to each other as `ss`, `st`, ..."""

    def walk(n: object) -> tuple[set[str], set[str], bool]:
        """(possible first folded letters, possible last ones, can match empty)."""
        if isinstance(n, Chars):
            return ({n.folded} - {""}, {n.folded} - {""}, False)
        if isinstance(n, Seq):
            first: set[str] = set()
            last: set[str] = set()
            open_lasts: set[str] = set()  # last letters of the prefix that can touch what comes next
            nullable = True
            for item in n.items:
                f, l, e = walk(item)
                _check(open_lasts, f)
                if nullable:
                    first |= f
                open_lasts = (open_lasts | l) if e else set(l)
                nullable = nullable and e
            last = open_lasts
            return first, last, nullable
        if isinstance(n, Alt):
            parts = [walk(b) for b in n.branches]
            return (set().union(*(p[0] for p in parts)), set().union(*(p[1] for p in parts)), any(p[2] for p in parts))
        if isinstance(n, Repeat):
            f, l, e = walk(n.item)
            if n.max is None or n.max > 1:
                _check(l, f)
            return f, l, e or n.min == 0
        if isinstance(n, Atomic):
            return walk(n.body)
        if isinstance(n, Look):
            walk(n.body)
        return set(), set(), True

    def _check(lasts: set[str], firsts: set[str]) -> None:
        for a in lasts:
            for b in firsts:
                if a + b in MULTI_CHAR_FOLD_STARTS:
                    raise PatternError(
                        f"matches {a + b!r} case-insensitively, which Oniguruma lets match a single"
                        " ligature or sharp s; edgepop does not implement multi-character case folding"
                    )

    walk(node)


def parse(pattern: str) -> object:
    """The syntax tree of an Oniguruma pattern, or PatternError naming what is not supported."""
    reader = _Reader(pattern)
    tree = reader.alternation(icase=False)
    if reader.i != len(pattern):
        raise reader.fail("has an unbalanced parenthesis")
    _check_multi_char_folds(tree)
    return tree


def literal(text: str) -> Seq:
    """The tree of a plain string pattern (Split's `{"String": ...}`), matched as is."""
    return Seq(tuple(Chars(((ord(c), ord(c)),)) for c in text))
