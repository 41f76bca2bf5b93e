"""A tokenizer-world component that misbehaves on request, for the host's reliability tests.

`encode` takes its orders from the text: "loop" spins forever, "oom" allocates until
memory runs out, "raise" lets an exception escape (a trap), "ids:N" returns ids 0..N-1
(for boundary measurements). Anything else is encoded as its UTF-8 bytes.
"""

import sys

from edgepop_tokenizer import packed_ids
from wit_world import exports
from wit_world.exports.tokenizer import Encoding, TokenizerInfo

INFO = TokenizerInfo(
    model_name="misbehaving",
    model_type="test",
    vocab_size=256,
    special_tokens=[],
    max_context_length=None,
    lossless=True,
    max_input_bytes=1 << 30,
    source_sha256="",
)

HOARD = []


class Tokenizer(exports.Tokenizer):
    def describe(self):
        return INFO

    def encode(self, text, add_special_tokens):
        if text == "loop":
            while True:
                pass
        if text == "oom":
            while True:
                HOARD.append(bytearray(16 << 20))
        if text == "raise":
            print("about to fail on purpose", file=sys.stderr)
            raise RuntimeError("the guest failed on purpose")
        if text.startswith("ids:"):
            return packed_ids.pack(range(int(text[4:])))
        return packed_ids.pack(list(text.encode("utf-8")))

    def encode_with_offsets(self, text, add_special_tokens):
        ids = self.encode(text, add_special_tokens)
        # One id per UTF-8 byte, each spanning its character.
        spans = [bound for i, char in enumerate(text) for _ in char.encode("utf-8") for bound in (i, i + 1)]
        return Encoding(ids=ids, offsets=packed_ids.pack(spans))

    def encode_batch(self, texts, add_special_tokens):
        return [self.encode(text, add_special_tokens) for text in texts]

    def count(self, text, add_special_tokens):
        return len(text.encode("utf-8"))

    def decode(self, ids, skip_special_tokens):
        return str(packed_ids.count(ids))
