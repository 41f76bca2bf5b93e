"""Convert a SentencePiece Unigram model (`.model`) to a tokenizer.json, as HF converts it.

Two conversions exist upstream, and both are reproduced:

- `tokenizers` (the default): `SentencePieceUnigramTokenizer.from_spm`, which ships in
  HF `tokenizers` itself. Unigram(pieces with their scores, trainer_spec.unk_id,
  trainer_spec.byte_fallback); normalizer Precompiled(precompiled_charsmap) then
  Replace(Regex(" {2,}"), " ") (the Replace alone without a charsmap); Metaspace("▁",
  prepend_scheme "always") as pre-tokenizer and decoder; no post-processor, no added
  tokens.
- `transformers`: the generic `SpmConverter` of transformers' convert_slow_tokenizer,
  as of its 4.4x releases: the same model, normalizer Precompiled then Strip(right) then
  Replace(Regex(" {2,}"), "▁"), the same Metaspace, and the CONTROL pieces (as special)
  and USER_DEFINED pieces as added tokens, not normalized.

Neither reads add_dummy_prefix or remove_extra_whitespaces from the normalizer spec
(both always prepend `▁`), so neither do we. from_spm wants the generated protobuf
module `sentencepiece_model_pb2`; here the ModelProto is read by a minimal protobuf
decoder instead (the fields needed are few), and HF's own Python API builds and
serializes the tokenizer, so the JSON is what HF writes.

Usage: python tools/spm_to_tokenizer.py MODEL [--flavour tokenizers|transformers] [-o tokenizer.json]
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

# ModelProto.SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM = 1  # TrainerSpec.ModelType


@dataclass
class Piece:
    piece: str = ""
    score: float = 0.0
    type: int = NORMAL


@dataclass
class Model:
    """The parts of sentencepiece_model.proto's ModelProto the conversion reads (defaults as in the .proto)."""

    pieces: list[Piece] = field(default_factory=list)
    model_type: int = UNIGRAM
    unk_id: int = 0
    byte_fallback: bool = False
    precompiled_charsmap: bytes = b""


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")
        if pos > len(data):
            raise ValueError("truncated protobuf message")
        yield number, wire, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _int32(value: int) -> int:
    """A varint-encoded int32 (negative ones take ten bytes, as int64)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_model(data: bytes) -> Model:
    model = Model()
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            piece = Piece()
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    piece.piece = v.decode("utf-8")
                elif n == 2 and w == 5:
                    piece.score = struct.unpack("<f", v)[0]
                elif n == 3 and w == 0:
                    piece.type = v
            model.pieces.append(piece)
        elif number == 2 and wire == 2:
            for n, w, v in _fields(value):
                if n == 3 and w == 0:
                    model.model_type = v
                elif n == 40 and w == 0:
                    model.unk_id = _int32(v)
                elif n == 35 and w == 0:
                    model.byte_fallback = bool(v)
        elif number == 3 and wire == 2:
            for n, w, v in _fields(value):
                if n == 2 and w == 2:
                    model.precompiled_charsmap = v
    return model


def convert(data: bytes, flavour: str = "tokenizers") -> str:
    """The tokenizer.json (text) HF's converter of that flavour makes of a .model file."""
    model = parse_model(data)
    if model.model_type != UNIGRAM:
        raise ValueError(f"model type {model.model_type} is not Unigram")
    tokenizer = Tokenizer(models.Unigram([(p.piece, p.score) for p in model.pieces], model.unk_id, model.byte_fallback))
    charsmap = [normalizers.Precompiled(model.precompiled_charsmap)] if model.precompiled_charsmap else []
    if flavour == "tokenizers":
        tokenizer.normalizer = normalizers.Sequence([*charsmap, normalizers.Replace(Regex(" {2,}"), " ")])
    elif flavour == "transformers":
        tokenizer.normalizer = normalizers.Sequence(
            [*charsmap, normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), "\u2581")]
        )
        tokenizer.add_tokens(
            [AddedToken(p.piece, normalized=False, special=p.type == CONTROL) for p in model.pieces if p.type in (CONTROL, USER_DEFINED)]
        )
    else:
        raise ValueError(f"unknown flavour {flavour!r}")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return tokenizer.to_str(pretty=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--flavour", choices=("tokenizers", "transformers"), default="tokenizers")
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    text = convert(args.model.read_bytes(), args.flavour)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
