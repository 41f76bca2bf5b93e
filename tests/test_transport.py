"""The PoP -> origin token frame: round trips, its exact layout, and every way a frame can be bad.

Frames for the error cases are built here from the layout in edgepop.transport's
docstring, independently of the encoder, with a valid checksum where the point is an
error behind it.
"""

from __future__ import annotations

import random
import struct
import time
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from edgepop import transport
from edgepop.transport import MAX_ID, TransportError, decode_request, encode_request
from support import tokenizer_json

HEAD = struct.Struct("<4sBBBII")  # magic, version, flags, width, count, content length
VARINT, BITPACK, ZSTD = 0x00, 0x01, 0x02


def build(params_json: bytes, payload: bytes, *, count: int, flags: int, width: int, magic: bytes = b"EPTK",
          version: int = 1, compress: bool = False, content_len: int | None = None) -> bytes:
    """A frame assembled by hand, checksum included."""
    content = struct.pack("<I", len(params_json)) + params_json + payload
    head = HEAD.pack(magic, version, flags, width, count, len(content) if content_len is None else content_len)
    body = zstandard.ZstdCompressor(level=3).compress(content) if compress else content
    return head + struct.pack("<I", zlib.crc32(head + content)) + body


def header(frame: bytes) -> tuple:
    return HEAD.unpack_from(frame)


def errors_with(frame: bytes, *words: str, **kwargs) -> str:
    with pytest.raises(TransportError) as caught:
        decode_request(frame, **kwargs)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    return message


# --- round trips -------------------------------------------------------------------------

IDS = st.lists(st.one_of(st.integers(0, 127), st.integers(0, 128_255), st.integers(0, MAX_ID)), max_size=400)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
PARAMS = st.dictionaries(st.text(max_size=12).filter(lambda k: k != "prompt"),
                         st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=4)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(ids=IDS, params=PARAMS, coding=st.sampled_from(["bitpack", "varint"]), compress=st.booleans())
def test_round_trip(ids, params, coding, compress):
    frame = encode_request(ids, params, coding=coding, compress=compress)
    decoded = decode_request(frame)
    assert decoded.ids == ids
    assert decoded.params == params
    _, _, flags, width, count, _ = header(frame)
    assert count == len(ids)
    assert flags == (BITPACK if coding == "bitpack" else VARINT) | (ZSTD if compress else 0)
    if coding == "bitpack":  # the minimal width for the largest id
        assert width == max([1, *(i.bit_length() for i in ids)])


@pytest.mark.parametrize("width", range(1, 33))
def test_bitpack_every_width_across_word_boundaries(width):
    rng = random.Random(width)
    ids = [rng.randrange(1 << width) for _ in range(1000)] + [(1 << width) - 1]
    frame = encode_request(ids, {}, coding="bitpack")
    assert header(frame)[3] == width
    assert decode_request(frame).ids == ids


def test_ids_need_not_be_a_list():
    assert decode_request(encode_request(range(1000), {"model": "m"})).ids == list(range(1000))
    assert decode_request(encode_request((7, 8), {}, coding="varint")).ids == [7, 8]


def test_layout_is_the_documented_one():
    # LEB128 of 300 is ac 02 (the protobuf example); 1, 2, 3 at 2 bits are 01|10|11 from the low bit: 0x39.
    assert encode_request([1, 300], {"model": "m"}, coding="varint") == \
        build(b'{"model":"m"}', b"\x01\xac\x02", count=2, flags=VARINT, width=0)
    assert encode_request([1, 2, 3], {}, coding="bitpack") == build(b"{}", b"\x39", count=3, flags=BITPACK, width=2)
    compressed = encode_request([1, 2, 3], {}, coding="bitpack", compress=True)
    head, body = compressed[:transport.HEADER_SIZE], compressed[transport.HEADER_SIZE:]
    assert head == build(b"{}", b"\x39", count=3, flags=BITPACK | ZSTD, width=2)[:transport.HEADER_SIZE]
    assert zstandard.ZstdDecompressor().decompress(body) == b"\x02\x00\x00\x00{}\x39"


@pytest.fixture(scope="module")
def llama_ids(code_corpus, multilingual_corpus) -> dict[str, list[int]]:
    tokenizer = Tokenizer.from_file(str(tokenizer_json("llama-3.2")))
    code = "".join(doc.text for doc in code_corpus[:40])
    prose = "\n".join(text[:3000] for text in multilingual_corpus.values())
    return {"code": tokenizer.encode(code).ids, "multilingual": tokenizer.encode(prose).ids}


@pytest.mark.parametrize("corpus", ["code", "multilingual"])
def test_llama3_ids_cost_17_bits_bitpacked_and_1_to_3_bytes_as_varints(llama_ids, corpus):
    ids = llama_ids[corpus]
    assert len(ids) > 10_000
    bitpack = encode_request(ids, {}, coding="bitpack")
    varint = encode_request(ids, {}, coding="varint")
    overhead = transport.HEADER_SIZE + 4 + 2  # header, parameters' length, "{}"
    assert header(bitpack)[3] == 17  # a vocabulary of 128,256 ids
    assert len(bitpack) - overhead == (17 * len(ids) + 7) // 8
    assert len(varint) - overhead == sum(1 + (i >= 1 << 7) + (i >= 1 << 14) for i in ids)
    assert decode_request(bitpack).ids == ids == decode_request(varint).ids


def test_bitpack_beats_varint_on_multilingual_llama3_ids(llama_ids):
    ids = llama_ids["multilingual"]
    assert len(encode_request(ids, {}, coding="bitpack")) < 0.99 * len(encode_request(ids, {}, coding="varint"))


def test_varint_beats_bitpack_on_llama3_code_ids(llama_ids):
    # Llama 3's ids follow merge order, so frequent pieces have small ids: most ids of code
    # (and of English) are under 16,384, two bytes as a varint, under bitpack's 17 bits.
    ids = llama_ids["code"]
    assert sum(i < 1 << 14 for i in ids) > 0.8 * len(ids)
    assert len(encode_request(ids, {}, coding="varint")) < 0.99 * len(encode_request(ids, {}, coding="bitpack"))


@pytest.mark.parametrize("coding", ["bitpack", "varint"])
def test_100k_ids_take_milliseconds(coding):
    rng = random.Random(0)
    ids = [rng.randrange(128_256) for _ in range(100_000)]
    params = {"model": "m", "max_tokens": 256}

    def best_of(n, fn):
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    frame = encode_request(ids, params, coding=coding)
    # Measured at about 5 ms each way on a shared 2-core machine; a per-id Python loop takes 100+.
    assert best_of(5, lambda: encode_request(ids, params, coding=coding)) < 0.05
    assert best_of(5, lambda: decode_request(frame)) < 0.05


# --- what a decoder refuses --------------------------------------------------------------

GOOD = build(b'{"model":"m"}', b"\x01\xac\x02", count=2, flags=VARINT, width=0)


def test_the_hand_built_frame_is_good():
    assert decode_request(GOOD) == transport.TokenRequest([1, 300], {"model": "m"})


def test_wrong_magic():
    errors_with(build(b"{}", b"", count=0, flags=VARINT, width=0, magic=b"EPTX"), "not an edgepop token frame", "EPTX")
    errors_with(b'{"model": "m", "prompt": "some JSON by mistake"}', "not an edgepop token frame")


def test_unsupported_version():
    errors_with(build(b"{}", b"", count=0, flags=VARINT, width=0, version=2), "unsupported frame version 2")


@pytest.mark.parametrize("flags", [0x04, 0x80, 0x05])
def test_unknown_flags(flags):
    errors_with(build(b"{}", b"", count=0, flags=flags, width=1 if flags & 1 else 0), "unknown flags")


@pytest.mark.parametrize("width", [0, 33, 255])
def test_impossible_bit_width(width):
    errors_with(build(b"{}", b"", count=0, flags=BITPACK, width=width), "bits wide", str(width))
    if width:
        errors_with(build(b"{}", b"", count=0, flags=VARINT, width=width), "varint frame has bit width 0")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_anywhere(compress):
    frame = encode_request(list(range(0, 5000, 7)), {"model": "m", "max_tokens": 9}, compress=compress)
    for cut in [0, 1, transport.HEADER_SIZE - 1, transport.HEADER_SIZE, transport.HEADER_SIZE + 3, len(frame) // 2,
                len(frame) - 1]:
        errors_with(frame[:cut], "truncated")


def test_trailing_bytes():
    errors_with(GOOD + b"\x00", "1 trailing bytes")
    compressed = encode_request([1, 2, 3], {}, compress=True)
    errors_with(compressed + b"junk", "trailing bytes after the zstd frame")


def test_counts_that_disagree_with_the_payload():
    errors_with(build(b"{}", b"\x01\xac\x02", count=3, flags=VARINT, width=0), "holds 2 varint ids, the header says 3")
    errors_with(build(b"{}", b"\x39", count=5, flags=BITPACK, width=2), "5 ids of 2 bits need 2 bytes")
    errors_with(build(b"{}", b"\x01\xac", count=2, flags=VARINT, width=0), "last varint id has no final byte")
    errors_with(build(b"{}", b"", count=1, flags=VARINT, width=0), "holds 0 varint ids, the header says 1")


def test_every_single_byte_corruption_is_caught():
    frame = encode_request([128000, 9906, 11, 6964, 0], {"model": "m", "max_tokens": 16})
    for at in range(len(frame)):
        corrupted = bytearray(frame)
        corrupted[at] ^= 0x5A
        with pytest.raises(TransportError):
            decode_request(bytes(corrupted))


def test_corrupted_ids_name_the_checksum():
    frame = bytearray(encode_request([128000, 9906, 11, 6964, 0], {"model": "m"}))
    frame[-1] ^= 0x01
    errors_with(bytes(frame), "checksum mismatch", "corrupted")


def test_corrupted_compressed_frames_never_decode_to_something_else():
    ids = [random.Random(1).randrange(128_256) for _ in range(300)]
    frame = encode_request(ids, {"model": "m"}, compress=True)
    for at in range(transport.HEADER_SIZE, len(frame)):
        corrupted = bytearray(frame)
        corrupted[at] ^= 0xFF
        try:
            decoded = decode_request(bytes(corrupted))
        except TransportError:
            continue
        assert decoded.ids == ids  # a flip zstd ignores is harmless; none may change the request


@pytest.mark.parametrize("raw, words", [
    (b'{"model": "m"', ["parameters are not UTF-8 JSON"]),
    (b"\xff\xfe{}", ["parameters are not UTF-8 JSON"]),
    (b"[1, 2]", ["must be a JSON object", "list"]),
    (b'{"prompt": "text too"}', ["must not carry a 'prompt'"]),
])
def test_bad_parameters(raw, words):
    errors_with(build(raw, b"\x01", count=1, flags=VARINT, width=0), *words)


def test_parameters_longer_than_the_content():
    content = struct.pack("<I", 1000) + b"{}"
    head = HEAD.pack(b"EPTK", 1, VARINT, 0, 0, len(content))
    frame = head + struct.pack("<I", zlib.crc32(head + content)) + content
    errors_with(frame, "1,000 bytes of parameters declared, 2 present")


def test_ids_over_u32():
    errors_with(build(b"{}", b"\xff\xff\xff\xff\x1f", count=1, flags=VARINT, width=0), "id 8589934591", "over 2**32-1")
    errors_with(build(b"{}", b"\x05\xff\xff\xff\xff\xff\x01", count=2, flags=VARINT, width=0),
                "position 1 is a varint of 6 bytes")
    assert decode_request(build(b"{}", b"\xff\xff\xff\xff\x0f", count=1, flags=VARINT, width=0)).ids == [MAX_ID]


def test_decompression_bombs():
    zeros = 100 << 20
    # A frame whose zstd content does not declare its size: it would decompress to 100 MiB.
    sizeless = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(bytes(zeros))
    head = HEAD.pack(b"EPTK", 1, VARINT | ZSTD, 0, 0, 10)
    start = time.perf_counter()
    errors_with(head + b"\0\0\0\0" + sizeless, "does not declare its size")
    # One whose zstd content declares more than the header does.
    declared = zstandard.ZstdCompressor(level=3).compress(bytes(zeros))
    errors_with(head + b"\0\0\0\0" + declared, "declares 104,857,600 bytes", "header says 10")
    assert time.perf_counter() - start < 1.0  # refused without decompressing
    # A real frame of a million zero ids is a few hundred bytes compressed; the limit still holds.
    frame = encode_request([0] * 1_000_000, {}, coding="varint", compress=True)
    assert len(frame) < 1000
    errors_with(frame, "declares 1,000,006 bytes of content, over the limit of 65,536", max_bytes=65_536)
    assert len(decode_request(frame).ids) == 1_000_000
    # And a frame that is itself over the limit is refused before anything is read.
    errors_with(GOOD, f"the frame is {len(GOOD)} bytes, over the limit of 20", max_bytes=20)


def test_zstd_content_that_is_not_zstd():
    head = HEAD.pack(b"EPTK", 1, VARINT | ZSTD, 0, 0, 6)
    errors_with(head + b"\0\0\0\0" + b"\x02\x00\x00\x00{}", "not a zstd frame")


# --- what an encoder refuses -------------------------------------------------------------

@pytest.mark.parametrize("ids, words", [
    ([1, -1], ["id -1 at position 1", "0..2**32-1"]),
    ([2**32], ["id 4294967296 at position 0"]),
    ([5, 6, 2**70], ["id 1180591620717411303424 at position 2"]),
    ([1, 2.5], ["id 2.5 at position 1"]),
    (["7"], ["id '7' at position 0"]),
])
@pytest.mark.parametrize("coding", ["bitpack", "varint"])
def test_encoder_refuses_ids_outside_u32(ids, words, coding):
    with pytest.raises(TransportError) as caught:
        encode_request(ids, {}, coding=coding)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("params, words", [
    ({"prompt": "hi"}, ["must not carry a 'prompt'"]),
    ({"temperature": float("nan")}, ["not JSON"]),
    ({"stop": {"a", "b"}}, ["not JSON", "set"]),
    ([("model", "m")], ["must be a dict", "list"]),
])
def test_encoder_refuses_bad_parameters(params, words):
    with pytest.raises(TransportError) as caught:
        encode_request([1], params)
    for word in words:
        assert word in str(caught.value)


def test_encoder_refuses_unknown_coding():
    with pytest.raises(TransportError, match="coding must be 'bitpack' or 'varint', got 'gzip'"):
        encode_request([1], {}, coding="gzip")
