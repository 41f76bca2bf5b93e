"""Fitting passages into a token budget, counted by the model's own tokenizer.

Token counts are almost additive across the parts of the layout (each part ends in a
newline), so each part is counted once and the sum decides what goes in; the whole
prompt is then counted exactly, and if the sum was optimistic the last passage is
shortened or dropped until the exact count fits. The result never exceeds the budget.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .passages import Passage, citation
from .prompt import CONTEXT_OPEN, block, closing, render

Count = Callable[[str], int]


class PromptOverBudget(Exception):
    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"the prompt alone is {tokens} tokens, over the budget of {budget}")
        self.tokens, self.budget = tokens, budget


@dataclass(frozen=True)
class Fitted:
    text: str
    tokens: int
    passages: list[Passage]
    notes: list[str]


def fit(prompt: str, passages: list[Passage], budget: int, count: Count) -> Fitted:
    """The prompt with as many of `passages` (in order) as fit in `budget` tokens.

    A passage that does not fit whole goes in as its longest head of lines that fits;
    one whose first line does not fit is left out, and the next ones are still tried.
    """
    alone = count(prompt)
    if alone > budget:
        raise PromptOverBudget(alone, budget)
    frame = count(CONTEXT_OPEN) + count(closing(prompt))
    chosen: dict[int, tuple[Passage, int]] = {}  # index in `passages` -> (what goes in, its tokens)
    for index, passage in enumerate(passages):
        room = budget - frame - sum(size for _, size in chosen.values())
        size = count(block(passage))
        fitting = (passage, size) if size <= room else _longest_head(passage, room, count)
        if fitting is not None:
            chosen[index] = fitting
    while chosen:
        text = render(prompt, [used for used, _ in chosen.values()])
        tokens = count(text)
        if tokens <= budget:
            return Fitted(text, tokens, [used for used, _ in chosen.values()], _notes(passages, chosen))
        # The parts' sum was optimistic by a few tokens: take them from the last passage.
        index = max(chosen)
        used, size = chosen.pop(index)
        shorter = _longest_head(used, size - (tokens - budget), count)
        if shorter is not None:
            chosen[index] = shorter
    notes = _notes(passages, chosen)
    if passages:
        notes.append("the token budget leaves no room for any passage: the prompt is sent alone")
    return Fitted(prompt, alone, [], notes)


def _notes(passages: list[Passage], chosen: dict[int, tuple[Passage, int]]) -> list[str]:
    """What the budget cut, passage by passage."""
    notes = []
    for index, passage in enumerate(passages):
        if index not in chosen:
            notes.append(f"left out {citation(passage)}: over the token budget")
        elif chosen[index][0].end_line < passage.end_line:
            used = chosen[index][0]
            notes.append(f"shortened {citation(passage)} to lines {used.start_line}-{used.end_line} to fit the token budget")
    return notes


def _longest_head(passage: Passage, room: int, count: Count) -> tuple[Passage, int] | None:
    """The longest head of `passage`'s lines whose block costs at most `room` tokens, with its cost."""
    lines = passage.lines()
    if lines is None or room <= 0:
        return None
    best: tuple[Passage, int] | None = None
    low, high = 1, len(lines)
    while low <= high:
        middle = (low + high) // 2
        head = passage.head(middle)
        size = count(block(head))
        if size <= room:
            best, low = (head, size), middle + 1
        else:
            high = middle - 1
    return best
