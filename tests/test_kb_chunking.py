"""Chunking real sources: standard-library modules against what inspect says about them,
the library's own reStructuredText and plain text, Python that does not parse, Markdown."""

from __future__ import annotations

import inspect
import json.decoder
import sysconfig
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from edgepop.kb.chunking import CODE_CHARS, PROSE_CHARS, WINDOW_LINES, Chunk, chunk_source, module_name, split_lines

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def chunks_of(rel_path: str, **options: bool) -> list[Chunk]:
    return chunk_source(rel_path, (STDLIB / rel_path).read_text(encoding="utf-8"), **options)


def definitions(module: ModuleType) -> dict[str, object]:
    """The functions, classes and methods a module defines, by qualified name."""
    found: dict[str, object] = {}
    for value in vars(module).values():
        if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__:
            found[value.__qualname__] = value
            if inspect.isclass(value):
                for member in vars(value).values():
                    member = getattr(member, "__func__", member)  # classmethod, staticmethod
                    if inspect.isfunction(member) and member.__module__ == module.__name__:
                        found[member.__qualname__] = member
    return found


@pytest.mark.parametrize("strip_docstrings", [False, True])
@pytest.mark.parametrize("module, rel_path", [(json.decoder, "json/decoder.py"), (textwrap, "textwrap.py")])
def test_definitions_are_chunked_exactly_where_inspect_finds_them(module: ModuleType, rel_path: str,
                                                                  strip_docstrings: bool) -> None:
    chunks = {c.qualified_name: c for c in chunks_of(rel_path, strip_docstrings=strip_docstrings)
              if c.kind in ("function", "method", "class")}
    wanted = definitions(module)
    assert len(wanted) >= 10
    for name, obj in wanted.items():
        lines, start = inspect.getsourcelines(obj)
        chunk = chunks[name]
        assert (chunk.start_line, chunk.end_line) == (start, start + len(lines) - 1), name
        if not strip_docstrings:
            assert chunk.text + "\n" == "".join(lines), name
        kind = "class" if inspect.isclass(obj) else "method" if "." in name else "function"
        assert chunk.kind == kind, name
        assert chunk.scope == (name.rpartition(".")[0] or module.__name__), name
        assert chunk.path == rel_path


def test_a_class_spans_its_methods_which_have_chunks_of_their_own() -> None:
    chunks = chunks_of("json/decoder.py")
    decoder = next(c for c in chunks if c.qualified_name == "JSONDecoder")
    methods = [c for c in chunks if c.scope == "JSONDecoder"]
    assert {m.qualified_name for m in methods} == {
        "JSONDecoder.__init__", "JSONDecoder.decode", "JSONDecoder.raw_decode"}
    assert all(decoder.start_line < m.start_line and m.end_line <= decoder.end_line for m in methods)
    assert [(c.start_line, -c.end_line) for c in chunks] == sorted((c.start_line, -c.end_line) for c in chunks)


def test_top_level_code_between_definitions_is_in_module_chunks() -> None:
    chunks = chunks_of("json/decoder.py")
    modules = [c for c in chunks if c.kind == "module"]
    definitions = [c for c in chunks if c.kind in ("function", "class") and c.scope == "json.decoder"]
    assert modules and all(c.scope == "json.decoder" and c.qualified_name is None for c in modules)
    assert "import re" in modules[0].text and '"""Implementation of JSONDecoder' in modules[0].text
    assert any("scanstring = c_scanstring or py_scanstring" in c.text for c in modules)
    for module in modules:
        for definition in definitions:
            assert module.end_line < definition.start_line or module.start_line > definition.end_line


def test_strip_docstrings_blanks_their_lines_and_keeps_every_other_line() -> None:
    plain = {c.qualified_name: c for c in chunks_of("textwrap.py")}
    stripped = {c.qualified_name: c for c in chunks_of("textwrap.py", strip_docstrings=True)}
    assert plain.keys() == stripped.keys()
    before, after = plain["dedent"].text.split("\n"), stripped["dedent"].text.split("\n")
    assert len(before) == len(after) and (plain["dedent"].start_line, plain["dedent"].end_line) == (
        stripped["dedent"].start_line, stripped["dedent"].end_line)
    changed = [i for i, (old, new) in enumerate(zip(before, after)) if old != new]
    assert all(after[i] == "" for i in changed)
    doc = inspect.getdoc(textwrap.dedent)
    first, last = changed[0], changed[-1]
    assert before[first].strip() == '"""' + doc.splitlines()[0] and before[last].strip() == '"""'
    assert last - first + 1 == len(inspect.getsource(textwrap.dedent).split('"""')[1].split("\n"))
    assert all(line == "" for line in after[first:last + 1])
    assert doc.splitlines()[0] not in stripped["dedent"].text and "def dedent(text):" in stripped["dedent"].text
    # The module docstring goes too; a class's methods lose theirs within the class chunk.
    assert "Text wrapping and filling." not in "".join(c.text for c in stripped.values())
    assert inspect.getdoc(textwrap.TextWrapper.wrap).splitlines()[0] not in stripped["TextWrapper"].text


def test_a_docstring_sharing_its_line_with_code_is_kept() -> None:
    source = 'def f(): "returns one"; return 1\n\ndef g():\n    "returns two"\n    return 2\n'
    chunks = {c.qualified_name: c for c in chunk_source("m.py", source, strip_docstrings=True)}
    assert chunks["f"].text == 'def f(): "returns one"; return 1'
    assert chunks["g"].text == "def g():\n\n    return 2"


def test_python_that_does_not_parse_is_cut_into_overlapping_line_windows() -> None:
    rel_path = "lib2to3/tests/data/py2_test_grammar.py"  # Python 2: print statements, backticks
    text = (STDLIB / rel_path).read_text(encoding="utf-8")
    with pytest.raises(SyntaxError):
        compile(text, rel_path, "exec")
    chunks = chunk_source(rel_path, text)
    lines = split_lines(text)
    assert chunks and all(c.kind == "lines" and c.qualified_name is None for c in chunks)
    assert all(c.end_line - c.start_line < WINDOW_LINES and len(c.text) <= CODE_CHARS for c in chunks)
    assert all(b.start_line <= a.end_line for a, b in zip(chunks, chunks[1:]))  # they overlap
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert covered >= {n for n, line in enumerate(lines, 1) if line.strip()}
    assert all(c.text == "\n".join(lines[c.start_line - 1:c.end_line]) for c in chunks)


def test_restructuredtext_sections_carry_their_heading_path() -> None:
    chunks = chunks_of("email/architecture.rst")
    title = ":mod:`email` Package Architecture"
    assert {c.qualified_name for c in chunks} >= {f"{title} > Overview", f"{title} > The Model",
                                                 f"{title} > Handling Binary Data"}
    assert all(c.kind == "section" and c.scope == title for c in chunks)
    model = next(c for c in chunks if c.qualified_name == f"{title} > The Model")
    assert model.text.startswith("The Model\n---------\n")
    # The title has nothing of its own before the first subsection: no chunk, but every path starts with it.
    assert chunks[0].start_line > 2


def test_plain_text_is_grouped_by_paragraph_with_one_paragraph_of_overlap() -> None:
    rel_path = "LICENSE.txt"
    chunks = chunks_of(rel_path)
    lines = split_lines((STDLIB / rel_path).read_text(encoding="utf-8"))
    assert len(chunks) > 5 and all(c.kind == "section" and c.qualified_name is None for c in chunks)
    overlapping = 0
    for a, b in zip(chunks, chunks[1:]):
        a_lines = lines[a.start_line - 1:a.end_line]
        last_paragraph = a.start_line + max((i + 1 for i, line in enumerate(a_lines) if not line.strip()), default=0)
        if b.start_line == last_paragraph:  # b starts with a's last paragraph
            overlapping += 1
        else:  # a was one paragraph, or a's last one and b's first do not fit together: b is next
            assert b.start_line > a.end_line and not any(line.strip() for line in lines[a.end_line:b.start_line - 1])
    assert overlapping >= len(chunks) // 2
    assert all(len(c.text) <= PROSE_CHARS for c in chunks if "\n\n" in c.text)
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert covered >= {n for n, line in enumerate(lines, 1) if line.strip()}


def test_markdown_by_heading_section_not_fooled_by_code_blocks(tmp_path: Path) -> None:
    paragraphs = "\n\n".join(f"Paragraph {i} about installing on Linux. " * 6 for i in range(12))
    readme = tmp_path / "README.md"
    readme.write_text(
        "edgepop runs AI pre-processing at the edge.\n\n"
        "# Install\n\nPick your platform.\n\n"
        f"## Linux\n\n```sh\n# not a heading\napt-get install edgepop\n\nmake\n```\n\n{paragraphs}\n\n"
        "## macOS\nbrew install edgepop\n\n"
        "Usage\n=====\n\nRun it.\n"
    )
    chunks = chunk_source("README.md", readme.read_text())
    names = [c.qualified_name for c in chunks]
    assert names[:3] == [None, "Install", "Install > Linux"]
    assert names[-2:] == ["Install > macOS", "Usage"]
    assert "# not a heading" in chunks[2].text and "make\n```" in chunks[2].text  # the fence is kept whole
    linux = [c for c in chunks if c.qualified_name == "Install > Linux"]
    assert len(linux) > 2 and all(len(c.text) <= PROSE_CHARS and c.scope == "Install" for c in linux)
    for a, b in zip(linux, linux[1:]):
        assert b.text.startswith(a.text.split("\n\n")[-1])  # one paragraph of overlap
    assert next(c for c in chunks if c.qualified_name == "Usage").text == "Usage\n=====\n\nRun it."


def test_other_text_is_cut_into_line_windows() -> None:
    rel_path = "xml/etree/ElementPath.py"  # checked as Python elsewhere; here as text under another name
    text = (STDLIB / rel_path).read_text(encoding="utf-8")
    chunks = chunk_source("ElementPath.txt.in", text)
    lines = split_lines(text)
    assert len(chunks) > 5 and all(c.kind == "lines" and c.qualified_name is None for c in chunks)
    assert all(c.end_line - c.start_line < WINDOW_LINES and len(c.text) <= CODE_CHARS for c in chunks)
    assert all(a.start_line < b.start_line <= a.end_line for a, b in zip(chunks, chunks[1:]))
    covered = {n for c in chunks for n in range(c.start_line, c.end_line + 1)}
    assert covered >= {n for n, line in enumerate(lines, 1) if line.strip()}


def test_line_numbers_follow_pythons_line_ends() -> None:
    text = "def f():\r\n    return 1\r\n\x0c\r\ndef g():\r    return 2\r"
    chunks = chunk_source("m.py", text)
    assert [(c.qualified_name, c.start_line, c.end_line) for c in chunks] == [("f", 1, 2), ("g", 4, 5)]
    assert chunks[1].text == "def g():\n    return 2"


def test_empty_and_blank_sources_have_no_chunks() -> None:
    assert chunk_source("empty.py", "") == [] and chunk_source("blank.md", "\n  \n\t\n") == []


def test_module_names() -> None:
    assert module_name("json/decoder.py") == "json.decoder"
    assert module_name("json/__init__.py") == "json"
    assert module_name("textwrap.py") == "textwrap"
