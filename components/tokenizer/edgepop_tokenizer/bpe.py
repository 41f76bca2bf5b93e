"""The BPE model: vocabulary, ranked merges, and HF's merge loop, exactly.

`merge` gives the result of tokenizers' models/bpe/word.rs `merge_all`: merges in
(rank, position) order over a linked list of symbols, stale candidates dropped when
their turn comes. That is O(n log n) in the word length, so a megabyte without
whitespace is no quadratic trap.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from heapq import heapify, heappop, heappush

from .errors import UnsupportedTokenizer
from .vocab import read_vocab

# Which merge loop a word takes, by its number of symbols: a rescan below SHORT_WORD,
# one heap below LONG_WORD, rank buckets from there on (each is fastest in its range).
SHORT_WORD = 16
LONG_WORD = 2048
# Larger than any merge value (rank << shift | id): marks a pair with no merge.
_NO_MERGE = 1 << 62
# The row of a symbol that starts no merge (shared, never written).
_NO_ROW: dict[int, int] = {}


class BPE:
    """Byte-pair encoding over a vocabulary (`tokenizer.json`'s `model`)."""

    type = "BPE"

    def __init__(
        self,
        vocab: dict[str, int],
        merges: Iterable[tuple[str, str]],
        *,
        ignore_merges: bool = False,
        unk_token: str | None = None,
        fuse_unk: bool = False,
        byte_fallback: bool = False,
        continuing_subword_prefix: str = "",
        end_of_word_suffix: str = "",
        path: str = "model",
    ) -> None:
        self.vocab = vocab
        self.size = len(vocab)
        self.ignore_merges = ignore_merges
        self.unk_id = vocab.get(unk_token) if unk_token is not None else None
        if unk_token is not None and self.unk_id is None:
            raise UnsupportedTokenizer(f"{path}.unk_token", f"unk_token {unk_token!r} is not in the vocabulary")
        self.fuse_unk = fuse_unk
        self.byte_fallback = byte_fallback
        self.prefix = continuing_subword_prefix
        self.suffix = end_of_word_suffix
        self.id_to_token: dict[int, str] = {i: t for t, i in vocab.items()}
        # A merge (a, b) -> (rank, new id) is rows[a][b] = rank << shift | new id: one
        # int, so that the smallest is the lowest rank.
        top = max(vocab.values(), default=0)
        self.shift = max(top.bit_length(), 1)
        self.mask = (1 << self.shift) - 1
        lefts, rights, values = array("I"), array("I"), array("Q")
        for rank, (a, b) in enumerate(merges):
            merged = a + b[len(self.prefix) :]
            ids = [vocab.get(t) for t in (a, b, merged)]
            if None in ids:
                missing = (a, b, merged)[ids.index(None)]
                raise UnsupportedTokenizer(f"{path}.merges[{rank}]", f"merge {a!r} {b!r} uses {missing!r}, which is not in the vocabulary")
            lefts.append(ids[0])
            rights.append(ids[1])
            values.append(rank << self.shift | ids[2])
        # The merges wait in compact arrays until the first merge makes the rows (_rows):
        # at build time that is warm(), once the parsed tokenizer.json is gone, so the rows
        # take its room, side by side, and the heap's peak stays low.
        self._merges: tuple[array, array, array] | None = (lefts, rights, values)
        self._rows: list[dict[int, int]] = []

    def symbols(self, word: str) -> list[int]:
        """The ids of `word`'s characters before merging (HF's merge_word, first half).

        A character the vocabulary lacks becomes the unknown token (fused with its
        neighbours when `fuse_unk`), its bytes' `<0xNN>` tokens with `byte_fallback`, or
        nothing at all when neither is configured, as in HF.
        """
        vocab = self.vocab
        if not (self.prefix or self.suffix or self.unk_id is not None or self.byte_fallback):
            return [vocab[c] for c in word if c in vocab]
        return [token_id for token_id, _ in self.symbol_sizes(word)]

    def symbol_sizes(self, word: str) -> list[tuple[int, int]]:
        """`symbols` as (id, size in UTF-8 bytes of what it stands for): a byte token 1,
        an unknown token the characters it stands for, as HF's Word keeps them."""
        vocab = self.vocab
        out: list[tuple[int, int]] = []
        unk_size = 0  # bytes of the unknown characters not yet emitted
        last = len(word) - 1
        for i, c in enumerate(word):
            size = len(c.encode("utf-8"))
            s = (self.prefix if i else "") + c + (self.suffix if i == last else "")
            token_id = vocab.get(s)
            if token_id is not None:
                if unk_size:
                    out.append((self.unk_id, unk_size))
                    unk_size = 0
                out.append((token_id, size))
                continue
            if self.byte_fallback:
                fallback = [vocab.get(f"<0x{b:02X}>") for b in s.encode("utf-8")]
                if None not in fallback:
                    out.extend((token_id, 1) for token_id in fallback)
                    continue
            if self.unk_id is not None:
                if unk_size and not self.fuse_unk:
                    out.append((self.unk_id, unk_size))
                    unk_size = 0
                unk_size += size
        if unk_size:
            out.append((self.unk_id, unk_size))
        return out

    def tokenize_spans(self, word: str) -> list[tuple[int, int, int]]:
        """`tokenize` as (id, start, end), the span in characters of `word`.

        As in HF, a token's place is the sum of the sizes of the symbols before it (a
        character BPE drops, having neither an entry nor an unknown token, counts for
        nothing, which shifts what follows), and a merged token is the symbols it was
        made of: which ones follows from their strings' lengths, since merging (a, b)
        makes a + b minus b's prefix.
        """
        if self.ignore_merges and word in self.vocab:
            return [(self.vocab[word], 0, len(word))]
        initial = self.symbol_sizes(word)
        char_at = [i for i, c in enumerate(word) for _ in c.encode("utf-8")]
        tokens: list[tuple[int, int, int]] = []
        at = position = 0
        strip, text_of = len(self.prefix), self.id_to_token
        for token_id in self.merge([symbol for symbol, _ in initial]):
            start = position
            length = len(text_of[initial[at][0]])
            position += initial[at][1]
            at += 1
            while length < len(text_of[token_id]):
                length += len(text_of[initial[at][0]]) - strip
                position += initial[at][1]
                at += 1
            tokens.append((token_id, char_at[start], char_at[position - 1] + 1))
        return tokens

    def tokenize(self, word: str) -> list[int]:
        """Ids of one pre-tokenized piece, given in the model's alphabet (byte-level chars for byte-level BPE)."""
        if self.ignore_merges:
            token_id = self.vocab.get(word)
            if token_id is not None:
                return [token_id]
        return self.merge(self.symbols(word))

    @property
    def rows(self) -> list[dict[int, int]]:
        """rows[a][b]: the merge value (rank << shift | merged id) of the pair (a, b)."""
        merges = self._merges
        if merges is not None:
            self._rows = _rows(*merges, self.mask + 1)
            self._merges = None
        return self._rows

    def merge(self, ids: list[int]) -> list[int]:
        """Apply the merges to a list of symbol ids, lowest rank first, leftmost on ties."""
        if len(ids) < SHORT_WORD:
            return self._merge_tiny(ids)
        return self._merge_short(ids) if len(ids) < LONG_WORD else self._merge_long(ids)

    def _merge_tiny(self, ids: list[int]) -> list[int]:
        """The same order by rescanning: on a handful of symbols, C-level `min` over the
        pairs beats keeping a heap (most words the cache misses are under 16 bytes).

        A pair's entry is its merge value `rank << shift | new id`, so the smallest entry
        is the lowest rank, and `index` finds its leftmost occurrence.
        """
        rows, mask = self.rows, self.mask
        none = _NO_MERGE
        ids = list(ids)
        pairs = [rows[a].get(b, none) for a, b in zip(ids, ids[1:])]
        while pairs:
            best = min(pairs)
            if best == none:
                break
            i = pairs.index(best)
            new = best & mask
            ids[i : i + 2] = [new]
            del pairs[i]
            if i:
                pairs[i - 1] = rows[ids[i - 1]].get(new, none)
            if i < len(pairs):
                pairs[i] = rows[new].get(ids[i + 1], none)
        return ids

    def _merge_short(self, ids: list[int]) -> list[int]:
        """HF's loop as it is: one heap of (rank, position, merged id) candidates."""
        n = len(ids)
        if n < 2:
            return ids
        rows, shift, mask = self.rows, self.shift, self.mask
        heap = [(m >> shift, pos, m & mask) for pos, m in enumerate([rows[a].get(b) for a, b in zip(ids, ids[1:])]) if m is not None]
        if not heap:
            return ids
        heapify(heap)
        symbols = list(ids)  # -1 marks a symbol merged into its left neighbour
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prev = list(range(-1, n - 1))
        while heap:
            _, pos, new = heappop(heap)
            right = nxt[pos]
            if symbols[pos] < 0 or right < 0:
                continue
            m = rows[symbols[pos]].get(symbols[right])
            if m is None or m & mask != new:
                continue  # stale: the pair at pos changed since this entry was pushed
            symbols[pos] = new
            symbols[right] = -1
            after = nxt[pos] = nxt[right]
            if after >= 0:
                prev[after] = pos
                m = rows[new].get(symbols[after])
                if m is not None:
                    heappush(heap, (m >> shift, pos, m & mask))
            before = prev[pos]
            if before >= 0:
                m = rows[symbols[before]].get(new)
                if m is not None:
                    heappush(heap, (m >> shift, before, m & mask))
        return [s for s in symbols if s >= 0]

    def _merge_long(self, ids: list[int]) -> list[int]:
        """The same order as `_merge_short`, faster on long words.

        HF pops (rank, position) entries off one heap. The same order comes from a small
        heap of ranks with, per rank, the positions waiting at it, sorted when the rank
        is taken up: a merge never creates a pair of its own rank (the new pair holds
        the merged token), so a rank's positions are complete once it is the lowest;
        should a merge create a pair of *lower* rank (a merge table need not be ordered
        that way), the rest of the rank waits until that one is done. Keeping to one
        rank at a time touches memory in order, which made megabyte-long words 2x faster
        than one big heap (and short ones slower, hence two loops).

        A position is stale when the pair there is no longer the pair it was queued for:
        HF detects that by the merged id, this by the pair itself (one rank is one merge,
        of one pair). The two agree, because a pair's span only grows as merges happen,
        so a changed pair would merge into a longer string, another token.
        """
        n = len(ids)
        if n < 2:
            return ids
        rows, shift, mask = self.rows, self.shift, self.mask
        waiting: dict[int, list[int]] = {}  # rank -> positions
        merge_at: dict[int, tuple[int, int, int]] = {}  # rank -> (left id, right id, merged id)
        for pos, (a, b) in enumerate(zip(ids, ids[1:])):
            m = rows[a].get(b)
            if m is not None:
                r = m >> shift
                queue = waiting.get(r)
                if queue is None:
                    waiting[r] = [pos]
                    merge_at[r] = (a, b, m & mask)
                else:
                    queue.append(pos)
        if not waiting:
            return ids
        ranks = list(waiting)
        heapify(ranks)
        symbols = list(ids)  # -1 marks a symbol merged into its left neighbour
        nxt = list(range(1, n + 1))
        nxt[-1] = -1
        prev = list(range(-1, n - 1))
        while ranks:
            rank = heappop(ranks)
            positions = waiting.pop(rank)
            positions.sort()
            left, right_id, new = merge_at[rank]
            new_row = rows[new]
            lowest = rank
            for i, pos in enumerate(positions):
                if symbols[pos] != left:
                    continue  # stale (or merged away: -1)
                right = nxt[pos]
                if right < 0 or symbols[right] != right_id:
                    continue  # stale
                symbols[pos] = new
                symbols[right] = -1
                after = nxt[pos] = nxt[right]
                before = prev[pos]
                # The two new pairs, right then left, queued inline: a helper call
                # here cost a quarter of the loop's time.
                if after >= 0:
                    prev[after] = pos
                    b = symbols[after]
                    m = new_row.get(b)
                    if m is not None:
                        r = m >> shift
                        queue = waiting.get(r)
                        if queue is None:
                            waiting[r] = [pos]
                            merge_at[r] = (new, b, m & mask)
                            heappush(ranks, r)
                            if r < lowest:
                                lowest = r
                        else:
                            queue.append(pos)
                if before >= 0:
                    a = symbols[before]
                    m = rows[a].get(new)
                    if m is not None:
                        r = m >> shift
                        queue = waiting.get(r)
                        if queue is None:
                            waiting[r] = [before]
                            merge_at[r] = (a, new, m & mask)
                            heappush(ranks, r)
                            if r < lowest:
                                lowest = r
                        else:
                            queue.append(before)
                if lowest < rank:
                    waiting[rank] = positions[i + 1 :]
                    heappush(ranks, rank)
                    break
        return [s for s in symbols if s >= 0]


def _rows(lefts: array, rights: array, values: array, size: int) -> list[dict[int, int]]:
    """The merges by left symbol: rows[a][b] is the merge value of the pair (a, b).

    A first request's time goes mostly to page faults, one per page of the snapshot it
    touches. One flat table of every pair costs three far-apart places per lookup (the
    hash slot, the entry, the key object). Each row is made in one go, its table and its
    ints side by side, so a lookup touches the row list and one place. A counting sort
    over the compact arrays groups the merges, in rank order within a row, so a pair
    listed twice keeps its last rank, as HF's map does.
    """
    starts = array("I", bytes(4 * (size + 1)))  # row a is order[starts[a]:starts[a + 1]]
    for a in lefts:
        starts[a + 1] += 1
    for a in range(size):
        starts[a + 1] += starts[a]
    order = array("I", bytes(4 * len(lefts)))  # merge indexes, by left symbol, then by rank
    next_slot = starts[:-1]
    for i, a in enumerate(lefts):
        order[next_slot[a]] = i
        next_slot[a] += 1
    rows = [_NO_ROW] * size
    for a in range(size):
        start, end = starts[a], starts[a + 1]
        if start < end:
            rows[a] = {rights[i]: values[i] for i in order[start:end]}
    return rows


def from_json(config: dict, path: str = "model") -> BPE:
    """The BPE model of a tokenizer.json, refusing options edgepop does not reproduce."""
    dropout = config.get("dropout")
    if dropout not in (None, 0, 0.0):
        # HF applies dropout in encode too (merges skipped at random), so ids vary per call.
        raise UnsupportedTokenizer(f"{path}.dropout", f"BPE dropout {dropout!r} makes HF's ids random; edgepop needs it null")
    vocab = read_vocab(config, path)
    if len(set(vocab.values())) != len(vocab):
        raise UnsupportedTokenizer(f"{path}.vocab", "two tokens share an id, which makes HF's decoding ambiguous")
    raw_merges = config.get("merges", [])
    if not isinstance(raw_merges, list):
        raise UnsupportedTokenizer(f"{path}.merges", "expected a list of merges")
    return BPE(
        vocab,
        _merge_pairs(raw_merges, path),
        ignore_merges=bool(config.get("ignore_merges") or False),
        unk_token=config.get("unk_token"),
        fuse_unk=bool(config.get("fuse_unk") or False),
        byte_fallback=bool(config.get("byte_fallback") or False),
        continuing_subword_prefix=config.get("continuing_subword_prefix") or "",
        end_of_word_suffix=config.get("end_of_word_suffix") or "",
        path=path,
    )


def _merge_pairs(raw_merges: list, path: str) -> Iterator[tuple[str, str]]:
    """The merges as pairs, one at a time: a list of 400k+ tuples would raise the heap's peak."""
    if raw_merges and all(isinstance(m, str) for m in raw_merges):
        # The legacy form, "a b" per merge (HF skips "#version" lines).
        for rank, line in enumerate(m for m in raw_merges if not m.startswith("#version")):
            parts = line.split(" ")
            if len(parts) != 2:
                raise UnsupportedTokenizer(f"{path}.merges[{rank}]", f"merge {line!r} is not two tokens separated by one space")
            yield parts[0], parts[1]
        return
    for rank, pair in enumerate(raw_merges):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise UnsupportedTokenizer(f"{path}.merges[{rank}]", f"expected a pair of tokens, got {pair!r}")
        yield pair[0], pair[1]
