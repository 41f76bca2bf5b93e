"""Ids ready at module level, so a call measures the crossing and nothing else."""

from edgepop_tokenizer import packed_ids
from wit_world import exports

IDS = list(range(100_000, 120_000))
PACKED = packed_ids.pack(IDS)


class Boundary(exports.Boundary):
    def nothing(self):
        return 0

    def ids_list(self, n):
        return IDS[:n]

    def ids_packed(self, n):
        return PACKED[: packed_ids.CHARS_PER_ID * n]

    def take_list(self, ids):
        return len(ids)

    def take_packed(self, ids):
        return packed_ids.count(ids)
