"""Retrieval-augmented prompts in pure Python: the logic of edgepop's RAG component.

The same package runs natively (tests) and inside the component, where the embedding
model, the vector index, the chunk store and the tokenizer are host capabilities:
`passages` merges and cites what the search returned, `prompt` lays it out, and
`budget` fits it to a token budget with the model's own token counts.
"""

from .budget import Fitted, PromptOverBudget, fit
from .passages import Passage, citation, merge_overlapping
from .prompt import render

__all__ = ["Fitted", "Passage", "PromptOverBudget", "citation", "fit", "merge_overlapping", "render"]
