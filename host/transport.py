"""The wire format for token ids from a PoP to its origin: one request per binary frame.

The PoP has already tokenized the prompt, so what crosses the long link is ids, not
text. As JSON an id costs its decimal digits plus a comma (4.4 bytes on average for
Llama 3's ids of code, 4.9 for multilingual prose); here it costs a LEB128 varint (1 to
5 bytes) or, bit-packed, exactly the bits of the request's largest id (17 for a
vocabulary of 128,256).

Varint is the default, as measured by tools/payload_report.py. Llama 3's ids follow BPE
merge order, so frequent pieces have small ids: most ids of code are two-byte varints,
under bitpack's 17 bits (on multilingual text bitpack is 2-3% smaller). And varints stay
byte-aligned, so zstd finds a prompt's repeated token runs in them; in a 17-bit stream it
finds almost none, and bitpack + zstd comes out 30-50% larger than varint + zstd.

The frame, little-endian:

    offset  size  field
    0       4     magic b"EPTK"
    4       1     version (1)
    5       1     flags: bit 0 id coding (0 varint, 1 bitpack), bit 1 zstd; others 0
    6       1     bit width of a bitpacked id (1..32; 0 for varint)
    7       4     id count
    11      4     content length, uncompressed
    15      4     crc32 of bytes 0..14 and the uncompressed content
    19            content, zstd-compressed when flag bit 1 is set:
                    u32 length of the parameters, the parameters (a UTF-8 JSON object:
                    model, max_tokens, stream, ... everything but the prompt), the ids

Bitpacked ids are one little-endian bit stream: id i occupies bits i*w .. i*w+w-1.
A decoder checks the header's sizes against `max_bytes` before it decompresses or
allocates anything, and the checksum before it parses the parameters or the ids: a
small frame cannot claim gigabytes, and a corrupted one is never half-read.
"""

from __future__ import annotations

import array
import json
import operator
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zstandard

from .errors import EdgepopError

CONTENT_TYPE = "application/vnd.edgepop.tokens"
MAGIC = b"EPTK"
VERSION = 1
MAX_ID = 2**32 - 1
# A larger frame, or one declaring larger content, is refused before it is decompressed
# or parsed. 16 MiB of prompt text (the tokenizer's input limit) is at most 16 Mi ids:
# 48 MiB as 3-byte varints, 34 MiB bitpacked at 17 bits.
MAX_BYTES = 64 << 20
ZSTD_LEVEL = 3

_BITPACK = 0x01
_ZSTD = 0x02
_KNOWN_FLAGS = _BITPACK | _ZSTD
_HEAD = struct.Struct("<4sBBBII")  # everything before the checksum
_CRC = struct.Struct("<I")
_PARAMS_LEN = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + _CRC.size
_U64 = np.uint64
_VARINT_MAX_BYTES = 5  # 35 bits hold any u32
# An id at or above threshold k (from 0) needs k + 2 bytes.
_VARINT_THRESHOLDS = np.array([1 << (7 * k) for k in range(1, _VARINT_MAX_BYTES)], _U64)


class TransportError(EdgepopError):
    """A frame that cannot be made or read; the message names what is wrong with it."""


@dataclass(frozen=True)
class TokenRequest:
    """One decoded request: the prompt's token ids and the completion parameters."""

    ids: list[int]
    params: dict[str, Any]


def encode_request(
    ids: Sequence[int], params: dict[str, Any], *, coding: str = "varint", compress: bool = False
) -> bytes:
    """A frame carrying ids and params. coding is "varint" or "bitpack"; compress adds zstd."""
    if coding not in ("bitpack", "varint"):
        raise TransportError(f"coding must be 'bitpack' or 'varint', got {coding!r}")
    values = _u32_values(ids)
    params_json = _params_json(params)
    if coding == "bitpack":
        width = max(1, int(values.max()).bit_length()) if len(values) else 1
        payload = _bitpack(values, width)
    else:
        width = 0
        payload = _varint_encode(values)
    content = _PARAMS_LEN.pack(len(params_json)) + params_json + payload
    flags = (_BITPACK if coding == "bitpack" else 0) | (_ZSTD if compress else 0)
    head = _HEAD.pack(MAGIC, VERSION, flags, width, len(values), len(content))
    crc = zlib.crc32(content, zlib.crc32(head))
    if compress:
        content = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(content)
    return head + _CRC.pack(crc) + content


def decode_request(data: bytes, *, max_bytes: int = MAX_BYTES) -> TokenRequest:
    """The request in a frame. Raises TransportError naming the first thing wrong with it.

    max_bytes caps both the frame and the content it declares (and decompresses to).
    """
    if len(data) > max_bytes:
        raise TransportError(f"the frame is {len(data):,} bytes, over the limit of {max_bytes:,}")
    if len(data) < HEADER_SIZE:
        raise TransportError(f"truncated frame: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, flags, width, count, content_len = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise TransportError(f"not an edgepop token frame: it starts with {bytes(magic)!r}, not {MAGIC!r}")
    if version != VERSION:
        raise TransportError(f"unsupported frame version {version}; this edgepop reads version {VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise TransportError(f"unknown flags 0x{flags & ~_KNOWN_FLAGS:02x} in frame flags 0x{flags:02x}")
    if flags & _BITPACK and not 1 <= width <= 32:
        raise TransportError(f"bitpacked ids must be 1 to 32 bits wide, the header says {width}")
    if not flags & _BITPACK and width:
        raise TransportError(f"a varint frame has bit width 0, the header says {width}")
    if content_len > max_bytes:
        raise TransportError(f"the frame declares {content_len:,} bytes of content, over the limit of {max_bytes:,}")
    body = memoryview(data)[HEADER_SIZE:]
    content = _decompress(body, content_len) if flags & _ZSTD else _exact(body, content_len)
    (expected,) = _CRC.unpack_from(data, _HEAD.size)
    actual = zlib.crc32(content, zlib.crc32(memoryview(data)[:_HEAD.size]))
    if actual != expected:
        raise TransportError(f"checksum mismatch: the content has crc32 {actual:08x}, the header says "
                             f"{expected:08x}; the frame was corrupted on the way")
    if len(content) < _PARAMS_LEN.size:
        raise TransportError(f"truncated frame: {len(content)} bytes of content cannot hold the parameters' length")
    (params_len,) = _PARAMS_LEN.unpack_from(content)
    ids_at = _PARAMS_LEN.size + params_len
    if ids_at > len(content):
        raise TransportError(f"truncated frame: {params_len:,} bytes of parameters declared, "
                             f"{len(content) - _PARAMS_LEN.size:,} present")
    params = _parse_params(content[_PARAMS_LEN.size:ids_at])
    payload = np.frombuffer(content, np.uint8, offset=ids_at)
    values = _bitunpack(payload, count, width) if flags & _BITPACK else _varint_decode(payload, count)
    return TokenRequest(values.tolist(), params)


def _u32_values(ids: Sequence[int]) -> np.ndarray:
    ids = ids if isinstance(ids, list) else list(ids)
    values = array.array("q")
    try:
        values.fromlist(ids)  # far faster than np.array(ids)
    except (OverflowError, TypeError):
        pass  # the scan below names the id
    else:
        out = np.frombuffer(values, np.int64)
        if not ((out < 0) | (out > MAX_ID)).any():
            return out.astype(_U64)
    position = next(i for i, v in enumerate(ids) if not _is_u32(v))
    raise TransportError(f"id {ids[position]!r} at position {position} is not an integer in 0..2**32-1")


def _is_u32(value: object) -> bool:
    try:
        return 0 <= operator.index(value) <= MAX_ID
    except TypeError:
        return False


def _params_json(params: dict[str, Any]) -> bytes:
    if not isinstance(params, dict):
        raise TransportError(f"parameters must be a dict, got {type(params).__name__}")
    if "prompt" in params:
        raise TransportError("parameters must not carry a 'prompt': the ids are the prompt")
    try:
        return json.dumps(params, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise TransportError(f"parameters are not JSON: {e}") from None


def _parse_params(raw: memoryview) -> dict[str, Any]:
    try:
        params = json.loads(bytes(raw).decode("utf-8"))
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError both
        raise TransportError(f"parameters are not UTF-8 JSON: {e}") from None
    if not isinstance(params, dict):
        raise TransportError(f"parameters must be a JSON object, got {type(params).__name__}")
    if "prompt" in params:
        raise TransportError("parameters must not carry a 'prompt': the ids are the prompt")
    return params


def _exact(body: memoryview, content_len: int) -> memoryview:
    if len(body) < content_len:
        raise TransportError(f"truncated frame: {len(body):,} bytes of content, the header says {content_len:,}")
    if len(body) > content_len:
        raise TransportError(f"{len(body) - content_len:,} trailing bytes after the frame's "
                             f"{content_len:,} bytes of content")
    return body


def _decompress(body: memoryview, content_len: int) -> bytes:
    """Decompressed content, never more than content_len bytes of it (zstd enforces its declared size)."""
    declared = _zstd_content_size(body)
    if declared != content_len:
        what = "does not declare its size" if declared < 0 else f"declares {declared:,} bytes"
        raise TransportError(f"the zstd frame {what}; the header says {content_len:,}")
    # A window never needs to be larger than the content; cap it so a crafted frame cannot ask for more.
    window = 1 << max(10, (content_len - 1).bit_length())
    decompressor = zstandard.ZstdDecompressor(max_window_size=window).decompressobj()
    try:
        content = decompressor.decompress(body)
    except zstandard.ZstdError as e:
        raise TransportError(f"the compressed content is corrupt: {e}") from None
    if not decompressor.eof or len(content) != content_len:
        raise TransportError(f"truncated frame: the zstd frame ends after {len(content):,} of {content_len:,} bytes")
    if decompressor.unused_data:
        raise TransportError(f"{len(decompressor.unused_data):,} trailing bytes after the zstd frame")
    return content


def _zstd_content_size(body: memoryview) -> int:
    """The content size a zstd frame's header declares (negative if none), or why there is no such header."""
    try:
        return zstandard.frame_content_size(body)
    except zstandard.ZstdError:
        pass
    magic = zstandard.FRAME_HEADER
    cut_in_magic = len(body) <= len(magic) and magic.startswith(bytes(body))
    if cut_in_magic or (bytes(body[:len(magic)]) == magic and len(body) < zstandard.frame_header_size(body)):
        raise TransportError(f"truncated frame: {len(body)} bytes of compressed content end inside the zstd header")
    raise TransportError(f"the compressed content is not a zstd frame: it starts with {bytes(body[:8]).hex()}")


def _bitpack(values: np.ndarray, width: int) -> bytes:
    """values (u64, each < 2**width) as one little-endian bit stream, built a 64-bit word at a time.

    An id starts in word k = offset // 64 and, when it crosses the word's end, spills its
    high bits into word k + 1. Ids never share bits, so OR is addition, and the ids
    starting in one word are adjacent: one add.reduceat sums them. Memory stays O(n),
    where unpacking each id into bits would need n * width bytes.
    """
    n = len(values)
    if not n:
        return b""
    offsets = np.arange(n, dtype=_U64) * _U64(width)
    word, shift = offsets >> _U64(6), offsets & _U64(63)
    words = np.zeros((n * width + 63) // 64, _U64)
    firsts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
    words[word[firsts]] = np.add.reduceat(values << shift, firsts)
    spills = np.flatnonzero(shift + _U64(width) > _U64(64))
    words[word[spills] + _U64(1)] |= values[spills] >> (_U64(64) - shift[spills])
    return words.astype("<u8").tobytes()[: (n * width + 7) // 8]


def _bitunpack(payload: np.ndarray, count: int, width: int) -> np.ndarray:
    """The ids of a bit stream: each read as 8 bytes at its first byte, shifted and masked."""
    need = (count * width + 7) // 8
    if len(payload) != need:
        raise TransportError(f"{count:,} ids of {width} bits need {need:,} bytes, the frame has {len(payload):,}")
    padded = np.concatenate([payload, np.zeros(8, np.uint8)])
    # Every byte offset viewed as the start of a little-endian u64; the views overlap.
    at_byte = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    offsets = np.arange(count, dtype=_U64) * _U64(width)
    return (at_byte[offsets >> _U64(3)] >> (offsets & _U64(7))) & _U64((1 << width) - 1)


def _varint_encode(values: np.ndarray) -> bytes:
    """LEB128: 7 bits a byte, low bits first, the high bit set on every byte of an id but its last.

    Written one byte position at a time: round k writes byte k of every id that has one.
    """
    lengths = 1 + np.searchsorted(_VARINT_THRESHOLDS, values, side="right")
    out = np.empty(int(lengths.sum()), np.uint8)
    at = np.cumsum(lengths) - lengths  # where each id's first byte goes
    while len(values):
        more = lengths > 1
        out[at] = (values & _U64(0x7F)).astype(np.uint8) | (more.astype(np.uint8) << 7)
        values, at, lengths = values[more] >> _U64(7), at[more] + 1, lengths[more] - 1
    return out.tobytes()


def _varint_decode(payload: np.ndarray, count: int) -> np.ndarray:
    ends = np.flatnonzero(payload < 0x80)  # an id's last byte has the high bit clear
    if len(payload) and (not len(ends) or ends[-1] != len(payload) - 1):
        raise TransportError("truncated frame: the last varint id has no final byte")
    if len(ends) != count:
        raise TransportError(f"the frame holds {len(ends):,} varint ids, the header says {count:,}")
    starts = np.zeros_like(ends)
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if count and lengths.max() > _VARINT_MAX_BYTES:
        position = int(np.argmax(lengths > _VARINT_MAX_BYTES))
        raise TransportError(f"the id at position {position} is a varint of {lengths[position]} bytes, "
                             f"so over 2**32-1")
    # Round k adds byte k of every id that has one; the padding lets short ids read past the end.
    padded = np.concatenate([payload, np.zeros(_VARINT_MAX_BYTES, np.uint8)])
    values = np.zeros(count, _U64)
    for k in range(int(lengths.max()) if count else 0):
        byte = (padded[starts + k] & 0x7F) * (lengths > k)
        values |= byte.astype(_U64) << _U64(7 * k)
    over = np.flatnonzero(values > _U64(MAX_ID))
    if len(over):
        raise TransportError(f"id {int(values[over[0]])} at position {int(over[0])} is over 2**32-1")
    return values
