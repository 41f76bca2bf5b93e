"""SentencePiece's precompiled charsmap, as HF's Precompiled normalizer applies it.

The charsmap is a double-array trie (Darts-clone layout) of UTF-8 keys, each leading to
a NUL-terminated replacement. HF (`spm_precompiled`) applies it grapheme cluster by
grapheme cluster: a cluster shorter than 6 bytes that has a prefix among the keys is
replaced, whole, by the replacement of its *shortest* such prefix (so `Ａ` + U+0301
becomes `A`, the accent gone); any other cluster is looked up one character at a time.
This module reads the trie into a dict once and reproduces that, with HF's cluster
boundaries (graphemes).

The common case is fast: a text where no cluster has more than one character is one
`str.translate` over the one-character keys, and only the stretches around combining
marks and the like are segmented.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterator

from . import alignment, graphemes
from .alignment import Aligned
from .errors import UnsupportedTokenizer

# Unit layout: label in bits 0-7, has-leaf in bit 8, offset in bits 10-30 (shifted by 8
# more with bit 9); leaf value units have bit 31 set and the value in bits 0-30.
_IS_LEAF = 1 << 31
_VALUE = _IS_LEAF - 1
_LONGEST_KEY = 64  # bytes; a deeper trie is malformed (or cyclic)


def _offset(unit: int) -> int:
    return (unit >> 10) << ((unit & (1 << 9)) >> 6)


def _read(charsmap: bytes) -> dict[bytes, bytes]:
    """Every key of the trie and its replacement, as bytes."""
    if len(charsmap) < 4:
        raise ValueError("shorter than its header")
    (size,) = struct.unpack_from("<I", charsmap)
    if size % 4 or 4 + size > len(charsmap):
        raise ValueError(f"trie size {size} does not fit the charsmap")
    units = struct.unpack_from(f"<{size // 4}I", charsmap, 4)
    blob = charsmap[4 + size :]
    if not units:
        return {}
    # A unit labelled c at position q is the child labelled c of the node whose base is
    # q ^ c (a search from that node lands on q and finds the label it expects).
    children: dict[int, list[tuple[int, int]]] = {}
    for position, unit in enumerate(units):
        label = unit & 0xFF
        if label and not unit & _IS_LEAF:
            children.setdefault(position ^ label, []).append((label, position))
    out: dict[bytes, bytes] = {}
    stack = [(0, b"")]
    while stack:
        position, key = stack.pop()
        unit = units[position]
        base = position ^ _offset(unit)
        if key and unit >> 8 & 1:
            if base >= len(units) or units[base] & _VALUE > len(blob):
                raise ValueError(f"the replacement of {key!r} is outside the charsmap")
            start = units[base] & _VALUE
            end = blob.find(b"\0", start)
            out[key] = blob[start : len(blob) if end < 0 else end]
        if len(key) >= _LONGEST_KEY:
            raise ValueError("keys deeper than any charsmap has")
        for label, child in children.get(base, ()):
            stack.append((child, key + bytes((label,))))
    return out


class Precompiled:
    def __init__(self, charsmap: bytes, path: str = "normalizer") -> None:
        try:
            raw = _read(charsmap)
            self._keys = {key.decode("utf-8"): value.decode("utf-8") for key, value in raw.items()}
        except (ValueError, UnicodeDecodeError) as e:
            raise UnsupportedTokenizer(f"{path}.precompiled_charsmap", f"not a charsmap edgepop can read ({e})") from None
        # One-character keys as a translate table: what a cluster looked up one
        # character at a time becomes.
        self._single = {ord(key): value for key, value in self._keys.items() if len(key) == 1}
        self._longest = max(map(len, self._keys), default=0)

    def _whole(self, cluster: str) -> str | None:
        """What HF replaces a whole cluster with: under 6 bytes, the replacement of its
        shortest prefix among the keys (the rest of the cluster is dropped)."""
        if len(cluster.encode("utf-8")) < 6:
            keys = self._keys
            for end in range(1, min(len(cluster), self._longest) + 1):
                found = keys.get(cluster[:end])
                if found is not None:
                    return found
        return None

    def _cluster(self, cluster: str) -> str:
        """One grapheme cluster of several characters, as HF transforms it."""
        found = self._whole(cluster)
        return cluster.translate(self._single) if found is None else found

    def __call__(self, text: str) -> str:
        single = self._single
        out: list[str] = []
        done = 0
        for region in graphemes.regions(text):
            start, end = region.span()
            out.append(text[done:start].translate(single))
            for cluster in graphemes.clusters(region.group()):
                out.append(cluster.translate(single) if len(cluster) == 1 else self._cluster(cluster))
            done = end
        out.append(text[done:].translate(single))
        return "".join(out)


    def align(self, source: Aligned) -> Aligned:
        """The same on an aligned text, with the (character, change) pairs HF's normalizer builds."""
        changes: list[tuple[str, int]] = []
        modified = False
        for cluster in _every_cluster(source.text):
            found = self._whole(cluster)
            if found is not None:
                _replace(changes, cluster, found)
                modified = True
                continue
            for char in cluster:
                found = self._single.get(ord(char))
                if found is None:
                    changes.append((char, 0))
                else:
                    _replace(changes, char, found)
                    modified = True
        return alignment.transform(source, changes) if modified else source


def _every_cluster(text: str) -> Iterator[str]:
    done = 0
    for region in graphemes.regions(text):
        start, end = region.span()
        yield from text[done:start]
        yield from graphemes.clusters(region.group())
        done = end
    yield from text[done:]


def _replace(changes: list[tuple[str, int]], old: str, new: str) -> None:
    """HF's `replace` in normalizers/precompiled.rs: `old` becomes `new`, the extra new
    characters inserted, or the missing ones removed after the last change so far (which
    at the very start is none: HF then loses track, and so does this, on purpose)."""
    diff = len(new) - len(old)
    changes.extend((char, 0) for char in new)
    if diff > 0:
        changes[len(changes) - diff :] = [(char, 1) for char, _ in changes[len(changes) - diff :]]
    elif diff < 0 and changes:
        char, change = changes[-1]
        changes[-1] = (char, change + diff)


def from_json(config: dict, path: str = "normalizer") -> Precompiled:
    encoded = config.get("precompiled_charsmap")
    if not isinstance(encoded, str):
        raise UnsupportedTokenizer(f"{path}.precompiled_charsmap", "expected the charsmap in base64")
    try:
        charsmap = base64.b64decode(encoded, validate=True)
    except binascii.Error as e:
        raise UnsupportedTokenizer(f"{path}.precompiled_charsmap", f"not base64 ({e})") from None
    return Precompiled(charsmap, path)
