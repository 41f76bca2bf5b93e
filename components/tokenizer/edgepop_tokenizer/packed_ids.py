"""Token ids packed for the component boundary, as WIT's `packed-token-ids` defines them.

Each id is 4 little-endian bytes and each byte travels as the char of the same value,
so a list of ids crosses between host and guest as one string copy instead of one
conversion per element. Host and guest both use this module.
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable

_BIG_ENDIAN = sys.byteorder == "big"


def pack(ids: Iterable[int]) -> str:
    """Ids to their packed string. Raises OverflowError for an id outside 0..2**32-1."""
    if isinstance(ids, (bytes, bytearray, str)):
        raise TypeError(f"expected token ids, got {type(ids).__name__}")  # array() would reinterpret them
    values = array.array("I", ids)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes().decode("latin-1")


def unpack(packed: str) -> list[int]:
    """The ids of a packed string, as a list. Raises ValueError naming what is malformed."""
    return unpack_array(packed).tolist()


def unpack_array(packed: str) -> array.array:
    """The ids of a packed string as an array of u32: no Python int per id is made.

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
    values = array.array("I")
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values


def count(packed: str) -> int:
    """How many ids a packed string holds, without unpacking it."""
    return len(packed) // 4
