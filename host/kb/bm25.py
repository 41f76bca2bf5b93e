"""Okapi BM25 over chunk texts: the lexical baseline the embedding retrievers are measured against.

Scoring is the textbook formula (Robertson et al.; k1 = 1.2, b = 0.75) with the
non-negative IDF Lucene uses, ln(1 + (N - n + 0.5) / (n + 0.5)), so that a term in more
than half of the chunks still counts a little instead of pushing a chunk down. A query
term that occurs twice counts twice (the k3 → ∞ limit of Okapi's query-term weight).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from .store import KnowledgeBase

K1 = 1.2
B = 0.75

_WORD = re.compile(r"[A-Za-z0-9]+")
# Inside one run of letters and digits: an acronym (HTTP in HTTPResponse), a capitalised
# or lower-case word, or a number.
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def analyze(text: str) -> list[str]:
    """Lower-cased words, with identifiers split the way people name things.

    Punctuation and underscores separate words (raw_decode → raw, decode), and so do
    case changes (getHTTPResponse → get, http, response) and letter-digit boundaries
    (utf8 → utf, 8). No stemming and no stop words: IDF already discounts `self` and `the`.
    """
    return [part.lower() for word in _WORD.findall(text) for part in _PART.findall(word)]


class BM25:
    """An inverted index from term to the chunks that contain it, with each posting's
    BM25 weight precomputed: a query costs one array addition per query term."""

    def __init__(self, docs: Iterable[tuple[int, str]], k1: float = K1, b: float = B) -> None:
        """docs: (chunk id, text) pairs."""
        ids: list[int] = []
        counts: list[Counter[str]] = []
        for doc_id, text in docs:
            ids.append(doc_id)
            counts.append(Counter(analyze(text)))
        self.ids = np.asarray(ids, dtype=np.int64)
        lengths = np.asarray([sum(c.values()) for c in counts], dtype=np.float64)
        n_docs = len(ids)
        avgdl = float(lengths.mean()) if n_docs else 0.0
        # k1 * (1 - b + b * |D| / avgdl): the per-document part of the denominator.
        norm = k1 * (1 - b + b * lengths / avgdl) if avgdl else np.full(n_docs, k1)

        postings: dict[str, tuple[list[int], list[int]]] = {}
        for index, counter in enumerate(counts):
            for term, tf in counter.items():
                docs_of, tfs = postings.setdefault(term, ([], []))
                docs_of.append(index)
                tfs.append(tf)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, (docs_of, tfs) in postings.items():
            where = np.asarray(docs_of, dtype=np.int64)
            tf = np.asarray(tfs, dtype=np.float64)
            idf = math.log(1 + (n_docs - len(where) + 0.5) / (len(where) + 0.5))
            self._postings[term] = (where, idf * tf * (k1 + 1) / (tf + norm[where]))

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> BM25:
        """Index every chunk of an open knowledge base by its stored text (docstrings
        stripped if the KB was built so)."""
        ids, _ = kb.vectors()
        return cls((c.id, c.text) for c in kb.chunks(ids) if c is not None)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k best chunks as (chunk id, score), best first; only chunks sharing a term with
        the query. Equal scores go to the lower chunk id, so results are reproducible."""
        scores = np.zeros(len(self.ids), dtype=np.float64)
        for term in analyze(query):
            posting = self._postings.get(term)
            if posting is not None:
                where, weights = posting
                scores[where] += weights
        matched = np.flatnonzero(scores)
        if len(matched) > k:
            # Everything scoring at least the k-th best, then an exact ordering of those.
            kth = np.partition(scores[matched], len(matched) - k)[len(matched) - k]
            matched = matched[scores[matched] >= kth]
        order = np.lexsort((self.ids[matched], -scores[matched]))[:k]
        return [(int(self.ids[matched[i]]), float(scores[matched[i]])) for i in order]
