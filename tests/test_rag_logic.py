"""The RAG component's logic, natively: merging overlapping passages and fitting a budget.

Budgets are counted with Llama 3.2's real tokenizer (HF `tokenizers`), and the passages
are real standard-library source, cut where `inspect` says the functions are.
"""

from __future__ import annotations

import inspect
import json.decoder
import textwrap
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from edgepop_rag import Passage, PromptOverBudget, citation, fit, merge_overlapping, render
from support import tokenizer_json


@pytest.fixture(scope="module")
def count():
    tokenizer = Tokenizer.from_file(str(tokenizer_json("llama-3.2")))
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def source_passage(obj, score: float, name: str) -> Passage:
    lines, start = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj)).name
    return Passage("".join(lines), score, path, name, start, start + len(lines) - 1)


@pytest.fixture(scope="module")
def decoder_passages() -> list[Passage]:
    return [
        source_passage(json.decoder.JSONDecoder.raw_decode, 0.8, "JSONDecoder.raw_decode"),
        source_passage(json.decoder.JSONDecoder, 0.6, "JSONDecoder"),
        source_passage(json.decoder.JSONDecoder.decode, 0.7, "JSONDecoder.decode"),
        source_passage(textwrap.dedent, 0.5, "dedent"),
    ]


def test_methods_merge_into_their_class_keeping_the_best_score(decoder_passages):
    merged = merge_overlapping(decoder_passages)
    assert [(p.path, p.qualified_name, p.score) for p in merged] == [
        ("decoder.py", "JSONDecoder", 0.8),
        ("textwrap.py", "dedent", 0.5),
    ]
    cls = decoder_passages[1]
    assert (merged[0].start_line, merged[0].end_line, merged[0].text) == (cls.start_line, cls.end_line, cls.text)


def test_partly_overlapping_windows_merge_into_their_union():
    lines = [f"line {i}" for i in range(1, 31)]
    first = Passage("\n".join(lines[0:20]), 0.4, "notes.md", None, 1, 20)
    second = Passage("\n".join(lines[14:30]) + "\n", 0.9, "notes.md", None, 15, 30)
    apart = Passage("\n".join(lines[0:5]), 0.3, "other.md", None, 1, 5)
    merged = merge_overlapping([first, second, apart])
    assert merged[0] == Passage("\n".join(lines), 0.9, "notes.md", None, 1, 30)
    assert merged[1] == apart
    assert citation(merged[0]) == "notes.md:1-30"


def test_everything_fits_in_a_large_budget(decoder_passages, count):
    passages = merge_overlapping(decoder_passages)
    fitted = fit("How do I parse JSON?", passages, 100_000, count)
    assert fitted.passages == passages and fitted.notes == []
    assert fitted.text == render("How do I parse JSON?", passages)
    assert fitted.tokens == count(fitted.text)
    assert "[decoder.py:" in fitted.text and fitted.text.endswith("How do I parse JSON?")


@pytest.mark.parametrize("budget", [60, 120, 200, 333, 500, 800])
def test_a_tight_budget_is_met_exactly_and_filled(decoder_passages, count, budget):
    """The exact count never exceeds the budget, and one more line would not have fitted."""
    prompt = "Explain how the decoder finds the end of a JSON value."
    passages = merge_overlapping(decoder_passages)
    fitted = fit(prompt, passages, budget, count)
    assert fitted.tokens == count(fitted.text) <= budget
    if fitted.passages:
        last = fitted.passages[-1]
        original = next(p for p in passages if p.path == last.path)
        if last.end_line < original.end_line:
            one_more = original.head(last.end_line - original.start_line + 2)
            assert count(render(prompt, fitted.passages[:-1] + [one_more])) > budget
            assert any(n.startswith(f"shortened {citation(original)}") for n in fitted.notes)
    else:
        assert fitted.text == prompt and fitted.notes[-1].startswith("the token budget leaves no room")


def test_a_budget_too_small_for_any_passage_sends_the_prompt_alone(decoder_passages, count):
    prompt = "What does raw_decode return?"
    fitted = fit(prompt, merge_overlapping(decoder_passages), count(prompt) + 3, count)
    assert (fitted.text, fitted.tokens, fitted.passages) == (prompt, count(prompt), [])
    assert fitted.notes[-1] == "the token budget leaves no room for any passage: the prompt is sent alone"


def test_a_prompt_over_the_budget_is_refused_with_its_size(count):
    prompt = "word " * 50
    with pytest.raises(PromptOverBudget) as refused:
        fit(prompt, [], 10, count)
    assert (refused.value.tokens, refused.value.budget) == (count(prompt), 10)
