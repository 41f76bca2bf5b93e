"""The tokenizer: HF's encode and decode pipelines, put together from a tokenizer.json.

encode: added tokens are cut out of the raw text (added_vocabulary), the rest is
normalized (normalizers) and cut into pieces (pre_tokenizers), each piece goes through
the model (models: BPE, with the byte-level mapping for byte-level BPE, WordPiece,
Unigram, WordLevel), and the post-processor adds the special tokens around the result
(post_processors).

Speed comes from the word cache: piece (in the text's own characters) -> its ids,
already packed (packed_ids: 8 hex digits per id). Looking pieces up is one C-level `map`
over the list the regex returned and joining the results is one `str.join`, so no
Python int is made per id; only pieces never seen before go through the model. `warm()`
fills the cache ahead of time with every vocabulary entry that is a piece on its own.
The packed string is also what crosses the component boundary.

Padding and truncation are not tokenization: they shape a batch, or cut it to a model's
length, and HF applies them after the fact. edgepop gives HF's ids with both turned off
(HF's `no_padding()` and `no_truncation()`); a tokenizer.json that sets them loads, and
`ignored_settings` names what was set and left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice

from . import added_vocabulary, alignment, byte_level, decoders, models, normalizers, packed_ids, post_processors, pre_tokenizers, serde_floats
from .alignment import Aligned
from .errors import UnknownTokenId, UnsupportedTokenizer
from .post_processors import Token

# Pieces longer than this are tokenized every time (HF's BPE cache has the same bound,
# in bytes): long runs without whitespace are rare and would only bloat the cache.
MAX_CACHED_PIECE = 256
# How many entries the cache may gain at run time beyond what warm() put in, so that a
# long-lived instance fed endless new words stays within a bounded memory.
RUNTIME_CACHE_ENTRIES = 1 << 16
# SentencePiece's word marker, which BPE vocabularies converted from it begin words with.
METASPACE = "\u2581"


class Tokenizer:
    """A tokenizer that gives the ids HF `tokenizers` gives, bit for bit.

    `config` is the parsed tokenizer.json, as `serde_floats.loads` parses it (from_str
    does): Unigram scores parsed otherwise may differ from HF's in the last bit.
    """

    def __init__(self, config: dict) -> None:
        self.ignored_settings: tuple[str, ...] = tuple(k for k in ("padding", "truncation") if config.get(k) is not None)
        if config.get("version", "1.0") != "1.0":
            raise UnsupportedTokenizer("version", f"tokenizer.json version {config.get('version')!r} is not 1.0")
        model_config = config.get("model")
        if not isinstance(model_config, dict):
            raise UnsupportedTokenizer("model", "expected an object")
        self._normalizer = normalizers.from_json(config.get("normalizer"))
        self._pre_tokenizer = pre_tokenizers.from_json(config.get("pre_tokenizer"))
        if self._pre_tokenizer.positional and not normalizers.keeps_start(config.get("normalizer")):
            raise UnsupportedTokenizer(
                "pre_tokenizer", "Metaspace prepend_scheme `first` after a normalizer that can remove leading characters is not implemented"
            )
        self._model = models.from_json(model_config)
        self.model_type: str = self._model.type
        self._added = added_vocabulary.from_json(config.get("added_tokens"), self._model.vocab, self._model.size, self._normalizer)
        self._post = post_processors.from_json(config.get("post_processor"))
        self._decoder = decoders.from_json(config.get("decoder"))

        vocab = self._model.vocab
        self.vocab_size: int = len(vocab) + sum(1 for c in self._added.by_content if c not in vocab)
        self.special_tokens: list[tuple[int, str]] = sorted(
            (i, t.content) for i, t in self._added.by_id.items() if t.special
        )
        # id -> the string it decodes from; added tokens first, as HF looks them up.
        size = max([*self._model.id_to_token, *self._added.by_id, -1]) + 1
        if size > 2 * (len(vocab) + len(self._added.by_id)) + 1024:
            raise UnsupportedTokenizer("model.vocab", f"ids run up to {size - 1} for {len(vocab)} tokens; edgepop wants them dense")
        self._id_to_token: list[str | None] = [None] * size
        for i, token in self._model.id_to_token.items():
            self._id_to_token[i] = token
        for i in self._added.by_id:
            self._id_to_token[i] = self._added.token(i)
        model = self._model
        self._byte_level_bpe = self._pre_tokenizer.byte_level and model.type == "BPE" and not (model.prefix or model.suffix)
        self.lossless: bool = self._is_lossless()

        # Byte value -> symbol id, when byte-level BPE's initial symbols are simply one per byte.
        byte_ids = [model.vocab.get(c) for c in byte_level.BYTE_CHARS]
        self._byte_ids: list[int] | None = byte_ids if self._byte_level_bpe and None not in byte_ids else None
        self._words = self._word_boundaries()
        self._positional = self._pre_tokenizer.positional

        self._frames = {add: self._frame(add) for add in (True, False)}
        self._cache: dict[str, str] = {}
        self._span_cache: dict[str, list[tuple[int, int, int]]] = {}
        self._cache_limit = RUNTIME_CACHE_ENTRIES
        self._span_cache_limit = RUNTIME_CACHE_ENTRIES

    @classmethod
    def from_str(cls, json_text: str) -> Tokenizer:
        """Parse and check a tokenizer.json; UnsupportedTokenizer for anything not reproduced exactly."""
        try:
            config = serde_floats.loads(json_text)
        except ValueError as e:
            raise UnsupportedTokenizer("tokenizer.json", f"not valid JSON: {e}") from None
        if not isinstance(config, dict):
            raise UnsupportedTokenizer("tokenizer.json", "expected a JSON object")
        return cls(config)

    def _is_lossless(self) -> bool:
        """Whether decoding gives back the text, whatever it is (see `lossless` in __init__.py).

        Only byte-level BPE without a normalizer qualifies: every other model has an
        unknown token or a word marker that decoding cannot undo.
        """
        model = self._model
        added = self._added.by_id.values()
        # The sequence must come out once, among ids that decode to nothing.
        marker = -1
        framed = self._post([marker], True)
        added_ids = [i for i in framed if i != marker]
        return (
            self._normalizer is None
            and self._pre_tokenizer.lossless
            and self._byte_level_bpe
            and self._decoder.types == ["ByteLevel"]
            and all(c in model.vocab for c in byte_level.BYTE_CHARS)
            and not any(t.lstrip or t.rstrip for t in added)
            and all(self._decoder([t.content]) == t.content for t in added if not t.special)
            and framed.count(marker) == 1
            and all(i < len(self._id_to_token) and self._id_to_token[i] in self._added.special for i in added_ids)
        )

    def _frame(self, add_special_tokens: bool) -> tuple[str, str] | None:
        """The packed ids the post-processor puts before and after a sequence, when that is all it does.

        Every post-processor of a single sequence in HF (ByteLevel, TemplateProcessing,
        Bert, Roberta and Sequences of them) only frames it; checked here with two
        sequences of different lengths, else encode falls back to the general path.
        """
        first, second = -1, -2
        one = self._post([first], add_special_tokens)
        if one.count(first) != 1:
            return None
        at = one.index(first)
        prefix, suffix = one[:at], one[at + 1:]
        two = self._post([first, second], add_special_tokens)
        if two != [*prefix, first, second, *suffix] or min(prefix + suffix, default=0) < 0:
            return None
        return packed_ids.pack(prefix), packed_ids.pack(suffix)

    def _word_boundaries(self) -> re.Pattern | None:
        """Where a text may be cut before BPE without changing its ids, for BPE that gets whole texts.

        SentencePiece-converted BPE (Llama 2, Gemma) has no pre-tokenizer that cuts
        words: HF runs BPE over the whole normalized text. A merge never joins two
        symbols across a `▁` that follows a character x when no vocabulary entry holds
        x▁ (the merged token would be one), and each character's initial symbols do not
        depend on its neighbours once `▁` is itself in the vocabulary (so never unknown,
        never fused with an unknown neighbour). Cutting in front of such `▁`s gives
        word-sized pieces, which the word cache can hold, and the same ids.
        """
        model = self._model
        if (
            model.type != "BPE" or self._pre_tokenizer.byte_level or model.prefix or model.suffix
            or model.ignore_merges or METASPACE not in model.vocab
        ):
            return None
        joined = {token[i - 1] for token in model.vocab for i in range(1, len(token)) if token[i] == METASPACE}
        joined.add(METASPACE)
        return re.compile(f"(?<=[^{''.join(map(re.escape, sorted(joined)))}])(?={METASPACE})")

    def _pieces(self, text: str, at_start: bool = False) -> list[str]:
        """The pieces the model gets for one segment of normalized text."""
        pieces = self._pre_tokenizer.at_start(text) if at_start else self._pre_tokenizer(text)
        if self._words is not None:
            cut = self._words.split
            pieces = [word for piece in pieces for word in cut(piece)]
        return pieces

    # ---- encoding ---------------------------------------------------------------------

    def _piece_ids(self, pieces: list[str]) -> list[str]:
        """The packed ids of each piece, from the cache or, for new pieces, from BPE."""
        cache = self._cache
        parts = list(map(cache.get, pieces))
        if None not in parts:
            return parts
        tokenize = self._tokenize_piece
        new = {p: packed_ids.pack(tokenize(p)) for p in {p for p, part in zip(pieces, parts) if part is None}}
        room = self._cache_limit - len(cache)
        if room > 0:
            cache.update(item for item in islice(new.items(), room) if len(item[0]) <= MAX_CACHED_PIECE)
        return [new[p] if part is None else part for p, part in zip(pieces, parts)]

    def _tokenize_piece(self, piece: str) -> list[int]:
        """The model's ids of one piece; for byte-level BPE, from its UTF-8 bytes straight to symbol ids when the vocabulary allows."""
        model = self._model
        if self._byte_ids is not None:
            if model.ignore_merges:
                whole = model.vocab.get(byte_level.to_byte_level(piece))
                if whole is not None:
                    return [whole]
            return model.merge(list(map(self._byte_ids.__getitem__, piece.encode("utf-8"))))
        if self._pre_tokenizer.byte_level:
            return model.tokenize(byte_level.to_byte_level(piece))
        return model.tokenize(piece)

    def _parts(self, text: str) -> list[str]:
        """The packed ids of `text` before post-processing, piece by piece."""
        parts: list[str] = []
        segments = self._added.split(text, self._normalizer)
        if self._positional and segments and segments[0][1] is None:
            # The segment at the start of the text (HF: original offset 0), cut on its own.
            parts.extend(self._piece_ids(self._pieces(segments[0][0], at_start=True)))
            segments = segments[1:]
        if self._words is None:
            pre_tokenize = self._pre_tokenizer
        else:
            pre_tokenize = self._pieces
        for piece, token_id in segments:
            if token_id is None:
                parts.extend(self._piece_ids(pre_tokenize(piece)))
            else:
                parts.append(packed_ids.pack((token_id,)))
        return parts

    def encode_packed(self, text: str, add_special_tokens: bool = True) -> str:
        """encode's ids as a `packed-token-ids` string, made without a Python int per id."""
        frame = self._frames[add_special_tokens]
        if frame is None:
            ids = packed_ids.unpack("".join(self._parts(text)))
            return packed_ids.pack(self._post(ids, add_special_tokens))
        prefix, suffix = frame
        return "".join([prefix, *self._parts(text), suffix])

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The ids HF's `encode(text, add_special_tokens=...).ids` gives."""
        return packed_ids.unpack(self.encode_packed(text, add_special_tokens))

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
        return [self.encode(text, add_special_tokens) for text in texts]

    def count(self, text: str, add_special_tokens: bool = True) -> int:
        """len(encode(text, add_special_tokens)), without building the list."""
        return packed_ids.count(self.encode_packed(text, add_special_tokens))

    # ---- offsets ----------------------------------------------------------------------

    def encode_with_offsets(self, text: str, add_special_tokens: bool = True) -> tuple[list[int], list[tuple[int, int]]]:
        """HF's `encode(text, add_special_tokens=...)`: its `ids` and its `offsets`, the span
        of the text (in characters) each token comes from, (0, 0) for special tokens.

        The text goes through the same stages as in `encode`, each keeping the original
        span of every character (alignment), and the model's spans have a cache of their own.
        """
        tokens: list[Token] = []
        for n, (segment, token_id) in enumerate(self._added.split_aligned(text, self._normalizer)):
            if token_id is not None:
                tokens.append(Token(token_id, *segment.span(0, len(segment.text)), segment.text))
                continue
            for piece in self._pre_tokenizer.align(segment, at_start=self._positional and n == 0):
                # Cut into words as `encode` does, unless a character can be dropped (no
                # unknown token): HF's offsets after it shift, within the whole piece.
                if self._words is None or self._model.unk_id is None:
                    tokens.extend(self._piece_tokens(piece))
                    continue
                bounds = [0, *(m.start() for m in self._words.finditer(piece.text)), len(piece.text)]
                for start, end in zip(bounds, bounds[1:]):
                    tokens.extend(self._piece_tokens(piece.cut(start, end)))
        end_of_text = len(text)
        if not text.isascii() and any(t.start >= end_of_text for t in tokens):
            tokens = [t if t.start < end_of_text else t._replace(**alignment.bytes_at_end(t.start, t.end, text)) for t in tokens]
        tokens = self._post.with_offsets(tokens, add_special_tokens)
        return [t.id for t in tokens], [(t.start, t.end) for t in tokens]

    def _piece_tokens(self, piece: Aligned) -> list[Token]:
        """The model's tokens of one aligned piece, with their original spans."""
        text_of = self._model.id_to_token
        if not self._pre_tokenizer.byte_level:
            return [Token(i, *piece.span(s, e), text_of[i]) for i, s, e in self._model_spans(piece.text)]
        # The model sees one character per byte; byte k belongs to the piece's character char_of[k].
        spans = self._model_spans(byte_level.to_byte_level(piece.text))
        if piece.text.isascii():
            return [Token(i, *piece.span(s, e), text_of[i]) for i, s, e in spans]
        char_of = [i for i, c in enumerate(piece.text) for _ in c.encode("utf-8")]
        return [Token(i, *piece.span(char_of[s], char_of[e - 1] + 1), text_of[i]) for i, s, e in spans]

    def _model_spans(self, word: str) -> list[tuple[int, int, int]]:
        """The model's (id, start, end) for one input, through a cache of its own (as the word cache)."""
        found = self._span_cache.get(word)
        if found is None:
            found = self._model.tokenize_spans(word)
            if len(word) <= MAX_CACHED_PIECE and len(self._span_cache) < self._span_cache_limit:
                self._span_cache[word] = found
        return found

    # ---- decoding ---------------------------------------------------------------------

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """The text HF's `decode(ids, skip_special_tokens=...)` gives; UnknownTokenId for an id not in the vocabulary."""
        table = self._id_to_token
        try:
            tokens = [table[i] for i in ids]
            valid = None not in tokens and (not ids or min(ids) >= 0)
        except (IndexError, TypeError):
            valid = False
        if not valid:
            for position, i in enumerate(ids):
                if not (isinstance(i, int) and 0 <= i < len(table) and table[i] is not None):
                    raise UnknownTokenId(position, i)
        if skip_special_tokens and self._added.special:
            special = self._added.special
            tokens = [t for t in tokens if t not in special]
        return self._decoder(tokens)

    # ---- the word cache ---------------------------------------------------------------

    def warm(self) -> int:
        """Fill the word cache with every vocabulary entry that is a piece on its own.

        An entry qualifies when its text (for byte-level BPE: its bytes, valid UTF-8)
        comes out of pre-tokenization as exactly that text. Meant for build time, when
        the result is snapshotted. Returns the number of cache entries.
        """
        cache = self._cache
        byte_level_pieces = self._pre_tokenizer.byte_level
        for token in self._model.vocab:
            if byte_level_pieces:
                if not byte_level.is_byte_level(token):
                    continue
                try:
                    text = byte_level.to_bytes([token]).decode("utf-8")
                except UnicodeDecodeError:
                    continue
            else:
                text = token
            if not text or text in cache or len(text) > MAX_CACHED_PIECE or self._pieces(text) != [text]:
                continue
            cache[text] = packed_ids.pack(self._tokenize_piece(text))
        self._cache_limit = len(cache) + RUNTIME_CACHE_ENTRIES
        return len(cache)

    @contextmanager
    def caches_held(self) -> Iterator[None]:
        """Encode without adding to the caches: for runs at build time whose words must not be baked."""
        limits = self._cache_limit, self._span_cache_limit
        self._cache_limit, self._span_cache_limit = len(self._cache), len(self._span_cache)
        try:
            yield
        finally:
            self._cache_limit, self._span_cache_limit = limits
