"""Passages: retrieved chunks with their source, merged where they overlap, and cited."""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Passage:
    """Lines `start_line`..`end_line` (1-based, inclusive) of `path`, and how close they are to the query."""

    text: str
    score: float
    path: str
    qualified_name: str | None
    start_line: int
    end_line: int

    def lines(self) -> list[str] | None:
        """The passage's lines, or None if its text does not have one per line of its range."""
        lines = self.text.split("\n")
        if lines and lines[-1] == "" and len(lines) == self.end_line - self.start_line + 2:
            lines.pop()  # the text ends with a newline
        return lines if len(lines) == self.end_line - self.start_line + 1 else None

    def head(self, count: int) -> "Passage":
        """The first `count` lines of the passage."""
        lines = self.lines()
        assert lines is not None and 0 < count <= len(lines)
        return replace(self, text="\n".join(lines[:count]), end_line=self.start_line + count - 1)


def citation(passage: Passage) -> str:
    """How a passage is cited: `path:start-end`."""
    return f"{passage.path}:{passage.start_line}-{passage.end_line}"


def merge_overlapping(passages: list[Passage]) -> list[Passage]:
    """One passage per run of overlapping line ranges of a file, best score first.

    A method and its class, or two windows of a document, overlap; sending both would
    spend the budget twice on the same lines. A merged passage spans the union of the
    lines, keeps the best score and the name of the passage that starts first.
    """
    by_path: dict[str, list[Passage]] = {}
    for passage in passages:
        by_path.setdefault(passage.path, []).append(passage)
    merged: list[Passage] = []
    for group in by_path.values():
        group.sort(key=lambda p: (p.start_line, -p.end_line))
        current = group[0]
        for passage in group[1:]:
            if passage.start_line <= current.end_line:
                current = _union(current, passage)
            else:
                merged.append(current)
                current = passage
        merged.append(current)
    merged.sort(key=lambda p: -p.score)
    return merged


def _union(first: Passage, second: Passage) -> Passage:
    """`first` extended by the lines of `second` past its end (`second` starts inside `first`)."""
    score = max(first.score, second.score)
    if second.end_line <= first.end_line:
        return replace(first, score=score)
    first_lines, second_lines = first.lines(), second.lines()
    if first_lines is None or second_lines is None:
        # Texts that are not verbatim lines cannot be spliced: keep the better one whole.
        return replace(max(first, second, key=lambda p: p.score), score=score)
    tail = second_lines[first.end_line - second.start_line + 1:]
    return replace(first, text="\n".join(first_lines + tail), score=score, end_line=second.end_line)
