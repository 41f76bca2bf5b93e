"""The tokenizer: HF's encode and decode pipelines, put together from a tokenizer.json.

encode: added tokens are cut out of the raw text (added_vocabulary), the rest is
normalized (normalizers) and cut into pieces (pre_tokenizers), each piece goes through
the byte-level mapping and BPE (byte_level, bpe), and the post-processor adds the
special tokens around the result (post_processors).

Speed comes from the word cache: piece (in the text's own characters) -> its ids,
already packed (packed_ids: 8 hex digits per id). Looking pieces up is one C-level `map`
over the list the regex returned and joining the results is one `str.join`, so no
Python int is made per id; only pieces never seen before go through the byte mapping
and BPE. `warm()` fills the cache ahead of time with every vocabulary entry that is a
piece on its own. The packed string is also what crosses the component boundary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import islice

from . import added_vocabulary, bpe, byte_level, decoders, normalizers, packed_ids, post_processors, pre_tokenizers
from .errors import UnknownTokenId, UnsupportedTokenizer

# Pieces longer than this are tokenized every time (HF's BPE cache has the same bound,
# in bytes): long runs without whitespace are rare and would only bloat the cache.
MAX_CACHED_PIECE = 256
# How many entries the cache may gain at run time beyond what warm() put in, so that a
# long-lived instance fed endless new words stays within a bounded memory.
RUNTIME_CACHE_ENTRIES = 1 << 16


class Tokenizer:
    """A byte-level BPE tokenizer that gives the ids HF `tokenizers` gives, bit for bit."""

    model_type: str = "BPE"

    def __init__(self, config: dict) -> None:
        for key in ("truncation", "padding"):
            if config.get(key) is not None:
                raise UnsupportedTokenizer(key, f"{key} changes ids per call; edgepop needs it null")
        if config.get("version", "1.0") != "1.0":
            raise UnsupportedTokenizer("version", f"tokenizer.json version {config.get('version')!r} is not 1.0")
        model_config = config.get("model")
        if not isinstance(model_config, dict):
            raise UnsupportedTokenizer("model", "expected an object")
        self._normalizer = normalizers.from_json(config.get("normalizer"))
        self._pre_tokenizer = pre_tokenizers.from_json(config.get("pre_tokenizer"))
        self._model = bpe.from_json(model_config)
        self._added = added_vocabulary.from_json(config.get("added_tokens"), self._model.vocab, self._normalizer)
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
        self.lossless: bool = self._is_lossless(config.get("decoder"))

        # Byte value -> symbol id, when BPE's initial symbols are simply one per byte.
        model = self._model
        plain = not (model.prefix or model.suffix)
        byte_ids = [model.vocab.get(c) for c in byte_level.BYTE_CHARS]
        self._byte_ids: list[int] | None = byte_ids if plain and None not in byte_ids else None

        self._frames = {add: self._frame(add) for add in (True, False)}
        self._cache: dict[str, str] = {}
        self._cache_limit = RUNTIME_CACHE_ENTRIES

    @classmethod
    def from_str(cls, json_text: str) -> Tokenizer:
        """Parse and check a tokenizer.json; UnsupportedTokenizer for anything not reproduced exactly."""
        try:
            config = json.loads(json_text)
        except json.JSONDecodeError as e:
            raise UnsupportedTokenizer("tokenizer.json", f"not valid JSON: {e}") from None
        if not isinstance(config, dict):
            raise UnsupportedTokenizer("tokenizer.json", "expected a JSON object")
        return cls(config)

    def _is_lossless(self, decoder_config: object) -> bool:
        """Whether decoding gives back the text, whatever it is (see `lossless` in __init__.py)."""
        decoder_types = [decoder_config.get("type")] if isinstance(decoder_config, dict) else []
        if decoder_types == ["Sequence"]:
            decoder_types = [d.get("type") for d in decoder_config["decoders"]]
        model = self._model
        added = self._added.by_id.values()
        # The sequence must come out once, among ids that decode to nothing.
        marker = -1
        framed = self._post([marker], True)
        added_ids = [i for i in framed if i != marker]
        return (
            self._normalizer is None
            and self._pre_tokenizer.lossless
            and decoder_types == ["ByteLevel"]
            and not (model.prefix or model.suffix)
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
        """BPE of one piece, from its UTF-8 bytes straight to symbol ids when the vocabulary allows."""
        model = self._model
        if self._byte_ids is None:
            return model.tokenize(byte_level.to_byte_level(piece))
        if model.ignore_merges:
            whole = model.vocab.get(byte_level.to_byte_level(piece))
            if whole is not None:
                return [whole]
        return model.merge(list(map(self._byte_ids.__getitem__, piece.encode("utf-8"))))

    def _parts(self, text: str) -> list[str]:
        """The packed ids of `text` before post-processing, piece by piece."""
        parts: list[str] = []
        for piece, token_id in self._added.split(text, self._normalizer):
            if token_id is None:
                parts.extend(self._piece_ids(self._pre_tokenizer(piece)))
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

        An entry qualifies when its bytes are valid UTF-8 and pre-tokenizing that text
        gives back exactly that text. Meant for build time, when the result is
        snapshotted. Returns the number of cache entries.
        """
        cache = self._cache
        model = self._model
        for token in model.vocab:
            if not byte_level.is_byte_level(token):
                continue
            try:
                text = byte_level.to_bytes([token]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if text in cache or len(text) > MAX_CACHED_PIECE or self._pre_tokenizer(text) != [text]:
                continue
            cache[text] = packed_ids.pack(model.tokenize(token))
        self._cache_limit = len(cache) + RUNTIME_CACHE_ENTRIES
        return len(cache)
