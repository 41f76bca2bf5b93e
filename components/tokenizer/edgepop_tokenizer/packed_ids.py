"""Token ids packed for the component boundary, as WIT's `packed-token-ids` defines them.

Each id is its 4 little-endian bytes written as 8 lowercase hex digits, so n ids are an
ASCII string of 8n characters. A string crosses between host and guest in one copy
where a `list<u32>` crosses one element at a time, and an ASCII one needs no
transcoding on either side: CPython keeps ASCII text as its own UTF-8.

Inside the pipeline the word cache holds each piece's ids already in this form, so
encoding a text is one `str.join` and no Python int is made per id. Host and guest both
use this module.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable

_BIG_ENDIAN = sys.byteorder == "big"
CHARS_PER_ID = 8


def to_bytes(ids: Iterable[int]) -> bytes:
    """Ids as little-endian u32 bytes. Raises OverflowError for an id outside 0..2**32-1."""
    if isinstance(ids, (bytes, bytearray, str)):
        raise TypeError(f"expected token ids, got {type(ids).__name__}")  # array() would reinterpret them
    values = array.array("I")
    values.fromlist(ids if isinstance(ids, list) else list(ids))  # a third faster than array("I", ids)
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
    return to_bytes(ids).hex()


def unpack_array(packed: str) -> array.array:
    """The ids of a packed string as an array of u32. Raises ValueError naming what is malformed.

    Building a list of 5,000 ints costs about 100 µs on its own, more than the crossing;
    a host that only forwards or counts ids keeps them in this form.
    """
    if len(packed) % CHARS_PER_ID:
        raise ValueError(f"packed token ids must be {CHARS_PER_ID} hex digits per id, got {len(packed)} characters")
    try:
        data = bytes.fromhex(packed)
    except ValueError as e:
        raise ValueError(f"packed token ids must be hex digits: {e}") from None
    if 2 * len(data) != len(packed):  # fromhex skips whitespace; the format has none
        raise ValueError("packed token ids must be hex digits only, without spaces")
    return from_bytes(data)


def unpack(packed: str) -> list[int]:
    """The ids of a packed string, as a list."""
    return unpack_array(packed).tolist()


def count(packed: str) -> int:
    """How many ids a packed string holds, without unpacking it."""
    return len(packed) // CHARS_PER_ID
