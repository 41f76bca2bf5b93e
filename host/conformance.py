"""Conformance: does a tokenizer component produce exactly Hugging Face `tokenizers`' ids?

Anyone can run this on their own component (`edgepop conformance X.wasm
--tokenizer-json PATH`): HF `tokenizers` runs natively as the oracle on the same
tokenizer.json, over real code, real multilingual text and seeded random Unicode, and
every mismatch is reported with the first position where the ids differ.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import Tokenizer as Reference

from .corpora import Document
from .errors import GuestTrap
from .tokenizer import TokenizeError, TokenizerComponent, TokenizerSession


def reference_from_str(tokenizer_json: str) -> Reference:
    """HF's tokenizer for a tokenizer.json's text, with padding and truncation off.

    A file may set them (all-MiniLM-L6-v2's pads and truncates to 128 ids): they shape a
    model's batches, not tokenization, and a component gives HF's ids without them.
    """
    reference = Reference.from_str(tokenizer_json)
    reference.no_padding()
    reference.no_truncation()
    return reference


def load_reference(path: Path) -> Reference:
    """The oracle for the tokenizer.json at `path` (see reference_from_str)."""
    return reference_from_str(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Mismatch:
    """Where a component's ids first differ from the reference's for one input."""

    source: str
    position: int
    ours: list[int]
    reference: list[int]
    context: str

    def describe(self) -> str:
        return (
            f"{self.source}: ids differ from position {self.position}: "
            f"ours {self.ours} vs reference {self.reference} near {self.context!r}"
        )


@dataclass
class Report:
    inputs: int = 0
    bytes: int = 0
    tokens: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    round_trip_failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.round_trip_failures or self.errors)

    def summary(self, label: str) -> str:
        status = "OK" if self.ok else "FAILED"
        return (
            f"{label}: {status}: {self.inputs} inputs, {self.bytes:,} bytes, {self.tokens:,} tokens; "
            f"{len(self.mismatches)} id mismatches, {len(self.round_trip_failures)} round-trip failures, "
            f"{len(self.errors)} errors"
        )


def first_difference(ours: Sequence[int], reference: Sequence[int]) -> int | None:
    """Index of the first differing id (or the shorter length), None when equal."""
    for i, (a, b) in enumerate(zip(ours, reference)):
        if a != b:
            return i
    return None if len(ours) == len(reference) else min(len(ours), len(reference))


def compare(
    source: str,
    ours: Sequence[int],
    reference_ids: Sequence[int],
    reference: Reference,
) -> Mismatch | None:
    """A Mismatch describing the first difference, or None when the ids are equal."""
    at = first_difference(ours, reference_ids)
    if at is None:
        return None
    window = slice(max(0, at - 3), at + 4)
    context = reference.decode(list(reference_ids[window]), skip_special_tokens=False)
    return Mismatch(source, at, list(ours[window]), list(reference_ids[window]), context)


def check(
    component: TokenizerComponent,
    reference: Reference,
    documents: Iterable[Document],
    add_special_tokens: bool = True,
    check_round_trip: bool = True,
) -> Report:
    """Encode every document with the component and the reference, and compare."""
    report = Report()
    session: TokenizerSession | None = None
    lossless = None
    for doc in documents:
        if session is None:
            session = component.session()
            lossless = session.describe().lossless
        report.inputs += 1
        report.bytes += len(doc.text.encode("utf-8"))
        try:
            ours = session.encode(doc.text, add_special_tokens)
        except GuestTrap as e:
            report.errors.append(f"{doc.source}: {e}")
            session = None  # the trapped instance is discarded
            continue
        except TokenizeError as e:
            report.errors.append(f"{doc.source}: {e}")
            continue
        want = reference.encode(doc.text, add_special_tokens=add_special_tokens).ids
        report.tokens += len(want)
        mismatch = compare(doc.source, ours, want, reference)
        if mismatch:
            report.mismatches.append(mismatch)
        elif check_round_trip and lossless:
            # Lossless means: the ids without added specials, decoded keeping specials, are the text.
            plain = session.encode(doc.text, False) if add_special_tokens else ours
            if session.decode(plain, skip_special_tokens=False) != doc.text:
                report.round_trip_failures.append(f"{doc.source}: decode(encode(text)) is not the text")
    return report


# Pieces random text is made of: the places tokenizers disagree when they disagree.
_WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u3000", "\x1c", " \n "]
_CONTRACTIONS = ["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'LL", "'d", "'ſ", "'K"]


def fuzz_documents(count: int, seed: int, specials: Sequence[str] = ()) -> list[Document]:
    """Seeded random texts mixing arbitrary code points with the tricky pieces above."""
    rng = random.Random(seed)
    digits = [chr(cp) for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Nd"]
    marks = [chr(cp) for cp in range(0x3000) if unicodedata.category(chr(cp)).startswith("M")]
    pieces: list[Callable[[], str]] = [
        lambda: chr(rng.randrange(0x20, 0x7F)),
        lambda: chr(rng.randrange(0xA0, 0x3000)),
        lambda: chr(rng.randrange(0x3000, 0xD800)),
        lambda: chr(rng.randrange(0xE000, 0x110000)),
        lambda: rng.choice(digits),
        lambda: rng.choice(marks),
        lambda: rng.choice(_WHITESPACE),
        lambda: rng.choice(_CONTRACTIONS),
        lambda: "\U0001F469\u200d\U0001F4BB",  # emoji ZWJ sequence
        lambda: "\U0001F1FA\U0001F1F8",  # regional-indicator flag
        lambda: "".join(chr(rng.randrange(0x61, 0x7B)) for _ in range(rng.randrange(1, 12))),
    ]
    if specials:
        pieces.append(lambda: rng.choice(specials))
    documents = []
    for i in range(count):
        text = "".join(rng.choice(pieces)() for _ in range(rng.randrange(1, 40)))
        documents.append(Document(f"fuzz#{i}", text))
    return documents
