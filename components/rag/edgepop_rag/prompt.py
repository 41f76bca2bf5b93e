"""The augmented prompt's layout: cited passages in a context block, then the prompt.

The layout is a concatenation of independent parts (opening, one block per passage,
closing plus prompt), so the budget fitter can count each part once and only check
the sum against the whole.
"""

from .passages import Passage, citation

CONTEXT_OPEN = (
    "Use the context below if it helps. Each passage starts with its source, "
    "[path:first-last line]; cite sources that way.\n<context>\n"
)
CONTEXT_CLOSE = "</context>\n\n"


def block(passage: Passage) -> str:
    """One passage as it appears in the context: its citation and name, then its text."""
    name = f" {passage.qualified_name}" if passage.qualified_name else ""
    return f"[{citation(passage)}]{name}\n{passage.text.rstrip()}\n\n"


def closing(prompt: str) -> str:
    return CONTEXT_CLOSE + prompt


def render(prompt: str, passages: list[Passage]) -> str:
    """The prompt with `passages` as context; with none, the prompt unchanged."""
    if not passages:
        return prompt
    return CONTEXT_OPEN + "".join(block(p) for p in passages) + closing(prompt)
