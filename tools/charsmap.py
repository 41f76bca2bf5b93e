"""Build SentencePiece `precompiled_charsmap`s: a double-array trie of keys and their replacements.

Real charsmaps come from trained SentencePiece models; this builds one from any mapping,
so that HF's Precompiled normalizer can be probed (tools/gen_graphemes.py) and tested
(tests/test_tokenizer_families.py) with keys chosen on purpose.

The format, as HF's `spm_precompiled` reads it: a little-endian u32 with the trie's size
in bytes, the trie's units (u32, Darts-clone layout), then the replacements, each
NUL-terminated, which the trie's leaf values point to by byte offset. A unit holds a
label (bits 0-7), a has-leaf flag (bit 8) and an offset to its node's base (bits 10-30,
shifted left by 8 more when bit 9 is set); a node at position p with offset o finds its
child labelled c at p ^ o ^ c and its leaf value at p ^ o. Leaf value units have bit 31
set, so that no label ever matches them.
"""

from __future__ import annotations

import struct

_BLOCK = 256


def build(mapping: dict[str, str]) -> bytes:
    """A precompiled charsmap mapping each key (non-empty, no NUL) to its replacement (no NUL)."""
    blob = bytearray()
    values: dict[bytes, int] = {}
    root: dict = {}
    for key, replacement in mapping.items():
        data = key.encode("utf-8")
        if not data or b"\0" in data or "\0" in replacement:
            raise ValueError(f"charsmap keys must be non-empty and NUL-free, replacements NUL-free: {key!r} -> {replacement!r}")
        values[data] = len(blob)
        blob += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in data:
            node = node.setdefault(byte, {})
        node[None] = values[data]  # None marks a key ending here

    units: list[int] = [0] * _BLOCK  # block 0 holds the root at position 0
    used = bytearray(_BLOCK)
    used[0] = 1

    def new_block() -> int:
        start = len(units)
        units.extend([0] * _BLOCK)
        used.extend(bytes(_BLOCK))
        return start

    def set_unit(position: int, label: int, has_leaf: bool, offset: int) -> None:
        if offset < 1 << 21:
            encoded = offset << 10
        elif offset % _BLOCK == 0 and offset >> 8 < 1 << 21:
            encoded = (offset >> 8) << 10 | 1 << 9
        else:
            raise ValueError(f"offset {offset} cannot be encoded")
        units[position] = label | (int(has_leaf) << 8) | encoded

    # Each node with children gets a fresh block, entered at the same low byte as the
    # node's own position, so the offset is a multiple of the block size whatever the
    # distance; a node without children keeps its leaf value in a free slot of the
    # block it sits in.
    pending = [(0, 0, root)]  # (position, label, node)
    while pending:
        position, label, node = pending.pop()
        children = sorted(b for b in node if b is not None)
        has_leaf = None in node
        if children:
            base = new_block() + (position & (_BLOCK - 1))
            # The base's own slot (label 0) holds the leaf value, if any; it stays reserved
            # either way, or a childless sibling could take it as its base and seem to
            # have this node's children.
            used[base] = 1
            for byte in children:
                used[base ^ byte] = 1
                pending.append((base ^ byte, byte, node[byte]))
        else:
            block = position & ~(_BLOCK - 1)
            free = next((block + i for i in range(_BLOCK) if not used[block + i]), None)
            if free is None:
                base = new_block() + (position & (_BLOCK - 1))
            else:
                base = free
        if has_leaf:
            used[base] = 1
            units[base] = 1 << 31 | node[None]
        set_unit(position, label, has_leaf, position ^ base)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)
