"""edgepop's tokenizer: Hugging Face `tokenizers` reproduced in pure Python, id for id.

`Tokenizer.from_str(json_text)` loads a byte-level BPE tokenizer.json (GPT-2, Llama 3,
Qwen, DeepSeek, OpenAI's o200k/cl100k conversions, ...) and refuses, with
UnsupportedTokenizer naming the JSON path, anything it does not reproduce exactly.
It runs on CPython 3.11 natively and 3.14 inside a WebAssembly component, on the
standard library alone.

`Tokenizer.lossless` is true when `decode(encode(text, add_special_tokens=False),
skip_special_tokens=False) == text` for every text, and so `decode(encode(text)) ==
text` for every text that does not spell one of `special_tokens` (those are decoded to
nothing with skip_special_tokens).

Module map, in pipeline order:
  added_vocabulary  added tokens, cut out of the raw text first
  normalizers       text -> text (NFC, ...), via normalization
  pre_tokenizers    Split / ByteLevel: text -> pieces; patterns via onig (parse) and regex (run)
  byte_level        GPT-2's byte <-> character mapping
  bpe               the BPE model and its merge loop
  post_processors   special tokens added around a sequence
  decoders          tokens -> text
  tokenizer         the pipeline, JSON loading and the word cache
  errors            UnsupportedTokenizer, UnknownTokenId
"""

from .errors import UnknownTokenId, UnsupportedTokenizer
from .tokenizer import Tokenizer

__all__ = ["Tokenizer", "UnknownTokenId", "UnsupportedTokenizer"]
