"""edgepop's tokenizer: Hugging Face `tokenizers` reproduced in pure Python, id for id.

`Tokenizer.from_str(json_text)` loads a tokenizer.json (byte-level BPE: GPT-2, Llama 3,
Qwen, DeepSeek, OpenAI's o200k/cl100k conversions; SentencePiece BPE with byte
fallback: Llama 2, Gemma; WordPiece: BERT; Unigram: XLM-R, T5 and SentencePiece
conversions; WordLevel) and refuses, with UnsupportedTokenizer naming the JSON path,
anything it does not reproduce exactly. It runs on CPython 3.11 natively and 3.14
inside a WebAssembly component, on the standard library alone.

`Tokenizer.lossless` is true when `decode(encode(text, add_special_tokens=False),
skip_special_tokens=False) == text` for every text, and so `decode(encode(text)) ==
text` for every text that does not spell one of `special_tokens` (those are decoded to
nothing with skip_special_tokens).

Module map, in pipeline order:
  added_vocabulary  added tokens, cut out of the raw text first
  normalizers       text -> text: Unicode forms (normalization), BERT's, Precompiled
                    (precompiled, over graphemes), Replace, Strip, ...
  pre_tokenizers    text -> pieces: Split, ByteLevel, Metaspace, Whitespace, BERT's, ...;
                    patterns via onig (parse) and regex (run)
  models            piece -> ids: bpe (with byte_level, GPT-2's byte <-> character
                    mapping), wordpiece, unigram, wordlevel; vocab, the checks they share
  post_processors   special tokens added around a sequence
  decoders          tokens -> text
  tokenizer         the pipeline, JSON loading (serde_floats) and the word cache
  errors            UnsupportedTokenizer, UnknownTokenId, DecodeError
Tables probed from HF: unicode_props (Oniguruma's classes), normalization (Unicode
forms), char_classes (Rust's and BERT's character classes), graphemes (clusters).
"""

from .errors import DecodeError, UnknownTokenId, UnsupportedTokenizer
from .tokenizer import Tokenizer

__all__ = ["DecodeError", "Tokenizer", "UnknownTokenId", "UnsupportedTokenizer"]
