"""Token ids packed as little-endian u32, and as WIT's `packed-token-ids` string.

Inside the pipeline, ids travel as bytes (4 per id): the word cache holds each piece's
ids already packed, so encoding a text is a join of byte strings with no Python int
made per id. Across the component boundary the same bytes travel as a string whose
chars are the byte values (`bytes.decode("latin-1")`), because a string crosses in one
copy where a list crosses one element at a time. Host and guest both use this module.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable

_BIG_ENDIAN = sys.byteorder == "big"


def to_bytes(ids: Iterable[int]) -> bytes:
    """Ids as little-endian u32 bytes. Raises OverflowError for an id outside 0..2**32-1."""
    if isinstance(ids, (bytes, bytearray, str)):
        raise TypeError(f"expected token ids, got {type(ids).__name__}")  # array() would reinterpret them
    values = array.array("I", ids)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def from_bytes(data: bytes) -> array.array:
    """The ids of little-endian u32 bytes, as an array (no Python int per id is made)."""
    values = array.array("I")
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def pack(ids: Iterable[int]) -> str:
    """Ids as a `packed-token-ids` string."""
    return to_bytes(ids).decode("latin-1")


def unpack(packed: str) -> list[int]:
    """The ids of a packed string, as a list. Raises ValueError naming what is malformed."""
    return unpack_array(packed).tolist()


def unpack_array(packed: str) -> array.array:
    """The ids of a packed string as an array of u32.

    Building a list of 5,000 ints costs about 100 µs on its own, more than the crossing;
    a host that only forwards or counts ids keeps them in this form.
    """
    try:
        data = packed.encode("latin-1")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"packed token ids may only hold U+0000..U+00FF, found U+{ord(packed[e.start]):04X} at char {e.start}"
        ) from None
    if len(data) % 4:
        raise ValueError(f"packed token ids must be 4 chars per id, got {len(data)} chars")
    return from_bytes(data)


def count(packed: str) -> int:
    """How many ids a packed string (or bytes) holds, without unpacking it."""
    return len(packed) // 4
