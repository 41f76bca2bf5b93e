"""Build SentencePiece `precompiled_charsmap`s: a double-array trie of keys and their replacements.

Real charsmaps come from trained SentencePiece models. This builds one from any mapping:
`edgepop build` rebuilds a model's with only the keys HF can ever look up (see
build.py), and tests and tools/gen_graphemes.py probe HF's Precompiled normalizer with
keys chosen on purpose.

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
# Free slots are looked for in the last blocks only (as Darts-clone does), so that the
# holes left further back do not make every placement scan the whole array.
_OPEN_BLOCKS = 16
_IS_LEAF = 1 << 31


def build(mapping: dict[str, str]) -> bytes:
    """A precompiled charsmap mapping each key (non-empty, no NUL) to its replacement (no NUL)."""
    blob = bytearray()
    offsets: dict[str, int] = {}  # replacement -> where it is in the blob, each stored once
    root: dict = {}
    for key, replacement in mapping.items():
        data = key.encode("utf-8")
        if not data or b"\0" in data or "\0" in replacement:
            raise ValueError(f"charsmap keys must be non-empty and NUL-free, replacements NUL-free: {key!r} -> {replacement!r}")
        if replacement not in offsets:
            offsets[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        node = root
        for byte in data:
            node = node.setdefault(byte, {})
        node[None] = offsets[replacement]  # None marks a key ending here
    trie = _Trie()
    pending = [(0, 0, root)]  # (position, label, node)
    while pending:
        position, label, node = pending.pop()
        children = sorted(b for b in node if b is not None)
        base = trie.place(position, children)
        for byte in children:
            pending.append((base ^ byte, byte, node[byte]))
        if None in node:
            trie.units[base] = _IS_LEAF | node[None]
        trie.set_unit(position, label, None in node, position ^ base)
    units = struct.pack(f"<{len(trie.units)}I", *trie.units)
    return struct.pack("<I", len(units)) + units + bytes(blob)


class _Trie:
    """The units being laid out, and which slots are taken."""

    def __init__(self) -> None:
        self.units: list[int] = [0] * _BLOCK  # block 0 holds the root at position 0
        self.used = bytearray(_BLOCK)
        self.used[0] = 1

    def place(self, position: int, children: list[int]) -> int:
        """A base for the node at `position`: its own slot (label 0, where a leaf value goes)
        and its children's slots free, reachable by an offset the format can encode.

        The base's slot stays taken even without a leaf value: two nodes sharing a base
        would each seem to have the other's children.
        """
        used = self.used
        first = children[0] if children else 0
        free = used.find(0, max(0, len(used) - _OPEN_BLOCKS * _BLOCK))
        while free >= 0:
            base = free ^ first
            if not used[base] and all(not used[base ^ c] for c in children) and _encodable(position ^ base):
                break
            free = used.find(0, free + 1)
        else:
            base = len(used) + (position & (_BLOCK - 1))  # a fresh block, aligned: always encodable
            self.units.extend([0] * _BLOCK)
            used.extend(bytes(_BLOCK))
        used[base] = 1
        for c in children:
            used[base ^ c] = 1
        return base

    def set_unit(self, position: int, label: int, has_leaf: bool, offset: int) -> None:
        if offset < 1 << 21:
            encoded = offset << 10
        else:
            encoded = (offset >> 8) << 10 | 1 << 9
        self.units[position] = label | (int(has_leaf) << 8) | encoded


def _encodable(offset: int) -> bool:
    """Whether a unit can hold this offset: below 2^21, or a multiple of 256 below 2^29."""
    return offset < 1 << 21 or (offset % _BLOCK == 0 and offset >> 8 < 1 << 21)
