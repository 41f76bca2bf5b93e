"""Splitting sources into retrievable chunks: the units a query finds and a prompt cites.

Python is cut where a reader would look things up: one chunk per function, method and
class (a class chunk spans the whole class and its methods get chunks of their own, so
chunks overlap; the RAG component merges overlapping passages), plus "module" chunks for
the top-level code between them. Markdown and reStructuredText are cut by heading
section, then into groups of paragraphs; plain text into groups of paragraphs; anything
else into windows of lines. Consecutive groups and windows overlap a little, so a
passage cut at a boundary is still found whole in one of them.

Every chunk is a range of whole lines, and its text is exactly those lines, so a
citation `path:start-end` always points at what was retrieved. With strip_docstrings
the docstrings' lines are blanked rather than removed, for the same reason.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import PurePosixPath

PYTHON_SUFFIXES = (".py", ".pyi")
MARKUP_SUFFIXES = (".md", ".markdown", ".rst")
PLAIN_TEXT_SUFFIXES = (".txt",)

# Sizes in characters, sized to the embedding model: 256 WordPiece tokens are about
# 1,000-1,500 characters of English, somewhat more of code.
PROSE_CHARS = 1200
CODE_CHARS = 1600
WINDOW_LINES = 30
WINDOW_OVERLAP = 6
# A stretch of top-level code with fewer code lines (a lone `else:`, `_sentinel = object()`)
# is not worth a chunk of its own.
MIN_MODULE_CODE_LINES = 2

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what Python's tokenizer and linecache count as line ends
_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_RST_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1{2,}[ \t]*$")


@dataclass(frozen=True)
class Chunk:
    """Lines `start_line`..`end_line` (1-based, inclusive) of the source at `path`."""

    path: str  # posix, relative to the sources' root (a file given alone: its name)
    kind: str  # "function" | "method" | "class" | "module" | "section" | "lines"
    qualified_name: str | None  # "Class.method", "func"; a heading path "Install > Linux"
    scope: str | None  # the dotted module for top-level code, else the enclosing qualified name
    start_line: int  # Python: the first decorator
    end_line: int
    text: str


def chunk_source(rel_path: str, text: str, *, strip_docstrings: bool = False) -> list[Chunk]:
    """The chunks of one source file, in line order of their first line.

    The kind of file comes from the name's suffix; Python that does not parse is cut
    into windows of lines.
    """
    lines = split_lines(text)
    if not any(line.strip() for line in lines):
        return []
    suffix = PurePosixPath(rel_path).suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        chunks = _python_chunks(rel_path, lines, strip_docstrings)
        if chunks is not None:
            return chunks
    elif suffix in MARKUP_SUFFIXES:
        return _markup_chunks(rel_path, lines, rst=suffix == ".rst")
    elif suffix in PLAIN_TEXT_SUFFIXES:
        return _section_chunks(rel_path, lines, [(1, len(lines), 0, None, None)])
    return [
        _chunk(rel_path, "lines", None, None, start, end, lines)
        for start, end in _windows(lines, 1, len(lines), CODE_CHARS, WINDOW_OVERLAP)
    ]


def split_lines(text: str) -> list[str]:
    """Lines as Python numbers them (\\r\\n, \\r and \\n end a line; a form feed does not)."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def module_name(rel_path: str) -> str:
    """`json/decoder.py` -> `json.decoder`; a package's `__init__.py` is the package."""
    parts = list(PurePosixPath(rel_path).with_suffix("").parts)
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# Python -------------------------------------------------------------------------------


def _python_chunks(rel_path: str, lines: list[str], strip_docstrings: bool) -> list[Chunk] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like in old code
            tree = ast.parse("\n".join(lines), filename=rel_path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if strip_docstrings:
        lines = _without_docstrings(tree, lines)
    module = module_name(rel_path)
    chunks: list[Chunk] = []
    top_level: list[tuple[int, int]] = []
    for node, qualified_name, scope, in_class in _definitions(tree.body, None):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = _block_end(node, lines)
        kind = "class" if isinstance(node, ast.ClassDef) else "method" if in_class else "function"
        chunks.append(_chunk(rel_path, kind, qualified_name, scope or module, start, end, lines))
        if scope is None:
            top_level.append((start, end))
    for start, end in _uncovered(top_level, len(lines)):
        if _code_lines(lines, start, end) >= MIN_MODULE_CODE_LINES:
            for first, last in _windows(lines, start, end, CODE_CHARS, WINDOW_OVERLAP):
                chunks.append(_chunk(rel_path, "module", None, module, first, last, lines))
    chunks.sort(key=lambda c: (c.start_line, -c.end_line))
    return chunks


Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _definitions(body: list[ast.stmt], scope: str | None, in_class: bool = False
                 ) -> Iterator[tuple[Definition, str, str | None, bool]]:
    """(node, qualified name, enclosing qualified name, is a method) of every def and class
    in `body`, into classes and into `if`/`try`/`with`/`for` blocks (platform-dependent
    definitions), but not into function bodies: what is defined there is part of the function."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = f"{scope}.{node.name}" if scope else node.name
            yield node, name, scope, in_class
            if isinstance(node, ast.ClassDef):
                yield from _definitions(node.body, name, in_class=True)
        else:
            for block in _blocks(node):
                yield from _definitions(block, scope, in_class)


def _blocks(node: ast.stmt) -> Iterator[list[ast.stmt]]:
    """The statement lists nested in a compound statement."""
    for field in ("body", "orelse", "finalbody"):
        value = getattr(node, field, None)
        if isinstance(value, list):
            yield value
    for part in chain(getattr(node, "handlers", ()), getattr(node, "cases", ())):
        yield part.body


def _block_end(node: Definition, lines: list[str]) -> int:
    """The last line of a definition, with the comments that follow it at its body's
    indentation (as inspect.getsourcelines counts them)."""
    end = node.end_lineno or node.lineno
    first = node.body[0]
    if first.lineno == node.lineno:  # `def f(): return 1`
        return end
    body_indent = first.col_offset  # not read from `lines`: a stripped docstring's line is blank
    following = end
    while following < len(lines):
        line = lines[following]
        stripped = line.lstrip()
        if stripped.startswith("#") and _indent(line) >= body_indent:
            end = following + 1
        elif stripped:
            break
        following += 1
    return end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _without_docstrings(tree: ast.Module, lines: list[str]) -> list[str]:
    """`lines` with every docstring's lines blank, where the docstring has its lines to
    itself (`def f(): "doc"` keeps its line: blanking it would take the code too)."""
    blank: set[int] = set()
    for node in chain([tree], _all_definitions(tree.body)):
        if not node.body:  # an empty module
            continue
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            continue
        last = first.end_lineno or first.lineno
        before = lines[first.lineno - 1].encode()[: first.col_offset]  # offsets count UTF-8 bytes
        after = lines[last - 1].encode()[first.end_col_offset:].strip()
        if not before.strip() and (not after or after.startswith(b"#")):
            blank.update(range(first.lineno, last + 1))
    return [("" if number in blank else line) for number, line in enumerate(lines, start=1)]


def _all_definitions(body: list[ast.stmt]) -> Iterator[Definition]:
    """Every def and class, nested in functions too; statements only, which is all a
    definition can be (walking the expressions as well takes most of the time)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node
        for block in _blocks(node):
            yield from _all_definitions(block)


def _uncovered(spans: list[tuple[int, int]], line_count: int) -> Iterator[tuple[int, int]]:
    """Maximal runs of lines 1..line_count outside every span."""
    line = 1
    for start, end in sorted(spans):
        if start > line:
            yield line, start - 1
        line = max(line, end + 1)
    if line <= line_count:
        yield line, line_count


def _code_lines(lines: list[str], start: int, end: int) -> int:
    return sum(1 for line in lines[start - 1:end] if line.strip() and not line.lstrip().startswith("#"))


# Markdown, reStructuredText, plain text --------------------------------------------------

# first line, last line, last line of the heading (0: none), heading path, parent heading path
Section = tuple[int, int, int, str | None, str | None]
# first line, last line, level, title
Heading = tuple[int, int, int, str]


def _markup_chunks(rel_path: str, lines: list[str], rst: bool) -> list[Chunk]:
    headings = _rst_headings(lines) if rst else _markdown_headings(lines)
    sections: list[Section] = []
    if not headings or headings[0][0] > 1:
        sections.append((1, headings[0][0] - 1 if headings else len(lines), 0, None, None))
    path: list[tuple[int, str]] = []  # (level, title) of the headings enclosing the current one
    for i, (start, heading_end, level, title) in enumerate(headings):
        while path and path[-1][0] >= level:
            path.pop()
        parent = " > ".join(t for _, t in path) or None
        path.append((level, title))
        end = headings[i + 1][0] - 1 if i + 1 < len(headings) else len(lines)
        sections.append((start, end, heading_end, " > ".join(t for _, t in path), parent))
    return _section_chunks(rel_path, lines, sections)


def _markdown_headings(lines: list[str]) -> list[Heading]:
    """ATX (`## Title`) and setext (`Title` over `===`) headings, outside fenced code blocks."""
    headings: list[Heading] = []
    fence: str | None = None
    for i, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        atx = _ATX_HEADING.match(line)
        if atx:
            headings.append((i + 1, i + 1, len(atx.group(1)), (atx.group(2) or "").strip()))
        elif (i > 0 and _SETEXT_UNDERLINE.match(line) and lines[i - 1].strip()
              and not (headings and headings[-1][1] == i) and not _FENCE.match(lines[i - 1])):
            headings.append((i, i + 1, 1 if line.strip()[0] == "=" else 2, lines[i - 1].strip()))
    return headings


def _rst_headings(lines: list[str]) -> list[Heading]:
    """reStructuredText section titles: a line underlined (and maybe overlined) with one
    punctuation character; levels in the order styles are first used."""
    headings: list[Heading] = []
    styles: list[tuple[str, bool]] = []
    i = 0
    while i + 1 < len(lines):
        line, below = lines[i], lines[i + 1]
        overlined = (_RST_ADORNMENT.match(line) and i + 2 < len(lines) and below.strip()
                     and lines[i + 2].rstrip() == line.rstrip())
        underlined = (line.strip() and not line[0].isspace() and not _RST_ADORNMENT.match(line)
                      and _RST_ADORNMENT.match(below) and len(below.rstrip()) >= len(line.rstrip()))
        if overlined or underlined:
            style = (line.strip()[0], True) if overlined else (below.strip()[0], False)
            if style not in styles:
                styles.append(style)
            size = 3 if overlined else 2
            headings.append((i + 1, i + size, styles.index(style) + 1, (below if overlined else line).strip()))
            i += size
        else:
            i += 1
    return headings


def _section_chunks(rel_path: str, lines: list[str], sections: list[Section]) -> list[Chunk]:
    """The paragraph groups of each section; a heading with nothing under it before the
    next one is no chunk (its title lives on in the heading paths below it)."""
    chunks = []
    for start, end, heading_end, heading, parent in sections:
        paragraphs = _paragraphs(lines, start, end)
        if not any(last > heading_end for _, last in paragraphs):
            continue
        for first, last in _paragraph_groups(lines, paragraphs):
            chunks.append(_chunk(rel_path, "section", heading, parent, first, last, lines))
    return chunks


def _paragraphs(lines: list[str], start: int, end: int) -> list[tuple[int, int]]:
    """Runs of non-blank lines in start..end; a fenced code block is one run, blank lines and all."""
    paragraphs: list[tuple[int, int]] = []
    first: int | None = None
    fence: str | None = None
    for number in range(start, end + 1):
        line = lines[number - 1]
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
        elif opened:
            fence = opened.group(1)
        if line.strip() or fence is not None:
            first = number if first is None else first
        elif first is not None:
            paragraphs.append((first, number - 1))
            first = None
    if first is not None:
        paragraphs.append((first, _last_non_blank(lines, first, end)))
    return paragraphs


def _paragraph_groups(lines: list[str], paragraphs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Consecutive paragraphs up to PROSE_CHARS a group, each group starting with the last
    paragraph of the one before; a paragraph larger than that alone becomes line windows."""
    groups: list[tuple[int, int]] = []
    current: list[tuple[int, int]] = []
    for paragraph in paragraphs:
        size = _chars(lines, *paragraph)
        if size > PROSE_CHARS:
            if current:
                groups.append((current[0][0], current[-1][1]))
            groups.extend(_windows(lines, *paragraph, PROSE_CHARS, WINDOW_OVERLAP))
            current = []
            continue
        if current and _chars(lines, current[0][0], paragraph[1]) > PROSE_CHARS:
            groups.append((current[0][0], current[-1][1]))
            current = current[-1:] if len(current) > 1 else []
            if current and _chars(lines, current[0][0], paragraph[1]) > PROSE_CHARS:
                current = []
        current.append(paragraph)
    if current:
        groups.append((current[0][0], current[-1][1]))
    return groups


# Lines ------------------------------------------------------------------------------------


def _windows(lines: list[str], start: int, end: int, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of at most WINDOW_LINES lines and max_chars characters (a longer line is a
    window by itself) covering start..end, each overlapping the one before by `overlap`
    lines (fewer for short windows: a fifth of the window at most); blank lines at a
    window's edges are left out, and all-blank windows."""
    windows: list[tuple[int, int]] = []
    while start <= end:
        last = start
        size = len(lines[start - 1])
        while last < end and last - start + 1 < WINDOW_LINES and size + 1 + len(lines[last]) <= max_chars:
            size += 1 + len(lines[last])
            last += 1
        first = _first_non_blank(lines, start, last)
        if first is not None:
            windows.append((first, _last_non_blank(lines, first, last)))
        if last >= end:
            break
        start = last + 1 - min(overlap, (last - start + 1) // 5)
    return windows


def _first_non_blank(lines: list[str], start: int, end: int) -> int | None:
    return next((n for n in range(start, end + 1) if lines[n - 1].strip()), None)


def _last_non_blank(lines: list[str], start: int, end: int) -> int:
    return next(n for n in range(end, start - 1, -1) if lines[n - 1].strip())


def _chars(lines: list[str], start: int, end: int) -> int:
    return sum(len(line) + 1 for line in lines[start - 1:end]) - 1


def _chunk(path: str, kind: str, name: str | None, scope: str | None, start: int, end: int,
           lines: list[str]) -> Chunk:
    return Chunk(path, kind, name, scope, start, end, "\n".join(lines[start - 1:end]))
