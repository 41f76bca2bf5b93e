"""The Unigram model (SentencePiece's): the most probable segmentation, by Viterbi.

Mirrors HF's models/unigram `encode_optimized`: from each character position, every
vocabulary entry that starts there extends a best path if it scores strictly higher
(ties keep the first path found); a character that begins no one-character entry gets
the unknown token at `min score - 10`. Walking back, runs of unknown characters fuse
into one piece, looked up again as a whole, then spelled as `<0xNN>` byte tokens with
`byte_fallback`, else the unknown token. Scores must be read as HF reads them (see
serde_floats): a last-bit difference can tip a tie.
"""

from __future__ import annotations

import math

from .errors import UnsupportedTokenizer

# HF's K_UNK_PENALTY: an unknown character scores this far below the lowest entry.
UNK_PENALTY = 10.0


class Unigram:
    type = "Unigram"

    def __init__(self, pieces: list[tuple[str, float]], unk_id: int, byte_fallback: bool) -> None:
        self.size = len(pieces)
        # token -> id: a token listed twice takes its last id (and that id's score), as in HF.
        self.vocab: dict[str, int] = {token: i for i, (token, _) in enumerate(pieces)}
        self.id_to_token: dict[int, str] = {i: token for i, (token, _) in enumerate(pieces)}
        self.unk_id = unk_id
        self.byte_fallback = byte_fallback
        self._score = {token: pieces[i][1] for token, i in self.vocab.items() if token}
        self._unk_score = min((score for _, score in pieces), default=math.inf) - UNK_PENALTY
        # HF fuses by id: the unknown token's own text, matched in the input, fuses too.
        unk_text = pieces[unk_id][0]
        self._unk_text = unk_text if self.vocab.get(unk_text) == unk_id else None
        # The longest entry beginning with each two characters: how far a match from a
        # position can reach (HF walks a trie; this bounds the lookups instead).
        self._reach: dict[str, int] = {}
        for token in self._score:
            if len(token) > 1 and len(token) > self._reach.get(token[:2], 0):
                self._reach[token[:2]] = len(token)

    def _best_path(self, text: str) -> list[str]:
        """The pieces of the best segmentation, unknown runs fused."""
        n = len(text)
        score_of, reach, unk_score, unk_text = self._score.get, self._reach.get, self._unk_score, self._unk_text
        best = [0.0] * (n + 1)
        start_of = [-1] * (n + 1)  # where the best path's last piece starts; -1: no path yet
        known = [True] * (n + 1)  # whether that piece is a vocabulary entry (else unknown)
        for start in range(n):
            here = best[start]
            single = score_of(text[start])
            if single is not None:
                candidate = single + here
                end = start + 1
                if start_of[end] < 0 or candidate > best[end]:
                    best[end], start_of[end], known[end] = candidate, start, text[start] != unk_text
            for end in range(start + 2, min(n, start + reach(text[start : start + 2], 0)) + 1):
                score = score_of(text[start:end])
                if score is not None:
                    candidate = score + here
                    if start_of[end] < 0 or candidate > best[end]:
                        best[end], start_of[end], known[end] = candidate, start, text[start:end] != unk_text
            if single is None:
                end = start + 1
                candidate = unk_score + here
                if start_of[end] < 0 or candidate > best[end]:
                    best[end], start_of[end], known[end] = candidate, start, False
        pieces: list[str] = []
        end = n
        unknown_end = -1  # end of the run of unknown pieces being fused
        while end > 0:
            start = start_of[end]
            if known[end]:
                if unknown_end >= 0:
                    pieces.append(text[end:unknown_end])
                    unknown_end = -1
                pieces.append(text[start:end])
            elif unknown_end < 0:
                unknown_end = end
            end = start
        if unknown_end >= 0:
            pieces.append(text[0:unknown_end])
        pieces.reverse()
        return pieces

    def _piece_ids(self, piece: str) -> list[int]:
        """The ids of one piece of the best path: its entry, its bytes' `<0xNN>` tokens
        with `byte_fallback`, or the unknown token."""
        vocab = self.vocab
        found = vocab.get(piece)
        if found is None:
            if self.byte_fallback:
                spelled = [vocab.get(f"<0x{b:02X}>") for b in piece.encode("utf-8")]
                if None not in spelled:
                    return spelled
            found = self.unk_id
        return [found]

    def tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        return [token_id for piece in self._best_path(text) for token_id in self._piece_ids(piece)]

    def tokenize_spans(self, text: str) -> list[tuple[int, int, int]]:
        """(id, start, end) per token, in characters of `text`; byte tokens span their whole piece, as in HF."""
        tokens: list[tuple[int, int, int]] = []
        start = 0
        for piece in self._best_path(text) if text else []:
            end = start + len(piece)
            tokens.extend((token_id, start, end) for token_id in self._piece_ids(piece))
            start = end
        return tokens


def from_json(config: dict, path: str = "model") -> Unigram:
    raw = config.get("vocab")
    if not isinstance(raw, list) or not all(
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        and isinstance(item[1], (int, float)) and not isinstance(item[1], bool)
        for item in raw
    ):
        raise UnsupportedTokenizer(f"{path}.vocab", "expected a list of [piece, score] pairs")
    unk_id = config.get("unk_id")
    if unk_id is None:
        raise UnsupportedTokenizer(f"{path}.unk_id", "a Unigram model without unk_id makes HF fail on any character outside the vocabulary")
    if not isinstance(unk_id, int) or isinstance(unk_id, bool) or not 0 <= unk_id < len(raw):
        raise UnsupportedTokenizer(f"{path}.unk_id", f"unk_id {unk_id!r} is not an id of the vocabulary")
    byte_fallback = config.get("byte_fallback", False)
    if not isinstance(byte_fallback, bool):
        raise UnsupportedTokenizer(f"{path}.byte_fallback", f"expected true or false, got {byte_fallback!r}")
    return Unigram([(token, float(score)) for token, score in raw], unk_id, byte_fallback)
