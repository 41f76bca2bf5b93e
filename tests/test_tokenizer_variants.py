"""Options the seven real models do not use, on tokenizers derived from them, against HF.

Each case edits one stage of a real tokenizer.json (or builds a tiny one) and checks
that edgepop and HF agree on ids and decoded text; the last section checks that what
edgepop does not implement is refused at load, by name.
"""

from __future__ import annotations

import copy
import json
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizer

from support import Pair, pair_from_config, tokenizer_json
from edgepop_tokenizer import Tokenizer, UnsupportedTokenizer
from edgepop_tokenizer.byte_level import BYTE_CHARS

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@cache
def base(name: str) -> str:
    return tokenizer_json(name).read_text(encoding="utf-8")


def derived(name: str, edit) -> dict:
    config = json.loads(base(name))
    edit(config)
    return config


def added(content: str, **flags) -> dict:
    token = {"id": 0, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False}
    return {**token, **flags}


def tiny_bpe(**model) -> dict:
    """A small byte-level BPE over a few letters, so that unknown characters do occur."""
    letters = [BYTE_CHARS[b] for b in b"abcdeklmnrst "]
    vocab = {c: i for i, c in enumerate(letters)}
    merges = [("a", "b"), ("ab", "c"), ("Ġ", "a"), ("e", "r"), ("s", "t"), ("er", "s")]
    for a, b in merges:
        vocab.setdefault(a + b.removeprefix(model.get("continuing_subword_prefix") or ""), len(vocab))
    for extra in ("<unk>", *(f"<0x{b:02X}>" for b in range(0xE0, 0x100))):
        vocab[extra] = len(vocab)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": [list(m) for m in merges], **model},
    }


def tiny_bpe_with_affixes() -> dict:
    """continuing_subword_prefix `##` and end_of_word_suffix `</w>`: every letter in its four forms."""
    config = tiny_bpe(continuing_subword_prefix="##", end_of_word_suffix="</w>")
    vocab = {}
    for c in "abcerstĠ":
        for form in (c, "##" + c, c + "</w>", "##" + c + "</w>"):
            vocab[form] = len(vocab)
    merges = [("a", "##b"), ("ab", "##c</w>"), ("e", "##r"), ("er", "##s</w>"), ("##s", "##t"), ("Ġ", "##a"), ("Ġa", "##b")]
    for a, b in merges:
        vocab.setdefault(a + b[2:], len(vocab))
    config["model"].update(vocab=vocab, merges=[list(m) for m in merges])
    return config


CASES: dict[str, dict] = {
    "roberta-processing": derived("gpt2", lambda c: c.update(post_processor={
        "type": "RobertaProcessing", "sep": ["<|endoftext|>", 50256], "cls": ["<|endoftext|>", 50256], "trim_offsets": True, "add_prefix_space": False})),
    "bert-processing": derived("gpt2", lambda c: c.update(post_processor={"type": "BertProcessing", "sep": ["a", 64], "cls": ["b", 65]})),
    "template-around": derived("llama-3.2", lambda c: c["post_processor"]["processors"].append({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|eot_id|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<|end_of_text|>", "type_id": 0}}, {"SpecialToken": {"id": "<|eot_id|>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|eot_id|>": {"id": "<|eot_id|>", "ids": [128009], "tokens": ["<|eot_id|>"]},
                           "<|end_of_text|>": {"id": "<|end_of_text|>", "ids": [128001, 128001], "tokens": ["<|end_of_text|>"] * 2}}})),
    "added-token-options": derived("gpt2", lambda c: c["added_tokens"].extend([
        added("<mask>", lstrip=True, rstrip=True, special=True),
        added("ony", single_word=True, normalized=True),
        added("[SEP]", lstrip=True, special=True),
        added("<m", normalized=True),
        added("<mask><m", rstrip=True),
        added("hello", normalized=True),
        added("\u00e9t\u00e9", normalized=True),
        added("\u4eca", single_word=True),
    ])),
    "nfkc-and-normalized-added-tokens": derived("qwen3", lambda c: (
        c.update(normalizer={"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "NFKC"}]}),
        c["added_tokens"].extend([added("\ufb01x", normalized=True), added("e\u0301", normalized=True), added("Ⅻ", normalized=False)]),
    )),
    "nfd": derived("gpt2", lambda c: c.update(normalizer={"type": "NFD"})),
    "split-behaviours": derived("gpt2", lambda c: c.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\p{N}"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\p{P}+"}, "behavior": "Contiguous", "invert": False},
        {"type": "Split", "pattern": {"Regex": r"\n"}, "behavior": "Removed", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]})),
    "byte-level-prefix-space": derived("gpt2", lambda c: c["pre_tokenizer"].update(add_prefix_space=True)),
    "ignore-merges": derived("llama-3.2", lambda c: c["model"].update(ignore_merges=True)),
    "legacy-merges": derived("gpt2", lambda c: c["model"].update(merges=["#version: 0.2"] + [" ".join(m) for m in c["model"]["merges"]])),
    "no-decoder": derived("gpt2", lambda c: c.update(decoder=None)),
    "decoder-sequence": derived("gpt2", lambda c: c.update(decoder={"type": "Sequence", "decoders": [c["decoder"]]})),
    "unk": tiny_bpe(unk_token="<unk>"),
    "unk-fused": tiny_bpe(unk_token="<unk>", fuse_unk=True),
    "byte-fallback": tiny_bpe(unk_token="<unk>", byte_fallback=True),
    "unknown-dropped": tiny_bpe(),
    "subword-prefix-and-suffix": tiny_bpe_with_affixes(),
}


@cache
def _pair(case: str) -> Pair:
    return pair_from_config(case, CASES[case])


TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from([
        "<mask>", " <mask> ", "<mask><m", "[SEP]", "  [SEP]", "ony", " ony ", "Tony", "hello", "Hello", "été", "e\u0301te\u0301",
        "\ufb01x", "Ⅻ", "今", "今天", "abc", "abcs", "ers", "kest", "xyz", "ÿ", "é", " ", "\n", "\t", "1", "12", "a1b", ".,;", "'s",
        "<|eot_id|>", "<|begin_of_text|>", "<|endoftext|>", "😀", "\u3000", "\u200d",
    ]), max_size=20).map("".join),
)


@pytest.mark.parametrize("case", sorted(CASES))
@FUZZ
@given(text=TEXT, add_special_tokens=st.booleans())
def test_derived_tokenizer_matches_hf(case: str, text: str, add_special_tokens: bool) -> None:
    pair = _pair(case)
    encoding = pair.hf.encode(text, add_special_tokens=add_special_tokens)
    expected = encoding.ids
    assert pair.ours.encode(text, add_special_tokens=add_special_tokens) == expected
    assert pair.ours.encode_with_offsets(text, add_special_tokens) == (expected, encoding.offsets)
    for skip in (True, False):
        assert pair.ours.decode(expected, skip_special_tokens=skip) == pair.hf.decode(expected, skip_special_tokens=skip)


@pytest.mark.parametrize("case", sorted(CASES))
def test_derived_tokenizer_metadata(case: str) -> None:
    pair = _pair(case)
    assert pair.ours.vocab_size == pair.hf.get_vocab_size(with_added_tokens=True)
    assert pair.ours.special_tokens == sorted((i, t.content) for i, t in pair.hf.get_added_tokens_decoder().items() if t.special)


@pytest.mark.parametrize(
    ("case", "lossless"),
    [("added-token-options", False), ("nfd", False), ("split-behaviours", False), ("byte-level-prefix-space", False),
     ("no-decoder", False), ("unk", False), ("ignore-merges", True), ("legacy-merges", True), ("decoder-sequence", True)],
)
def test_lossless_flag(case: str, lossless: bool) -> None:
    assert _pair(case).ours.lossless is lossless


# ---- refused at load, by name -----------------------------------------------------------


def _refusal(name: str, edit) -> str:
    config = derived(name, edit)
    with pytest.raises(UnsupportedTokenizer) as info:
        Tokenizer.from_str(json.dumps(config))
    return str(info.value)


def _replace_first_split(pattern: str):
    return lambda c: c["pre_tokenizer"]["pretokenizers"][0].update(pattern={"Regex": pattern})


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        ("llama-3.2", lambda c: c["model"].update(type="Word2Vec"), ["model.type", "Word2Vec"]),
        ("llama-3.2", _replace_first_split(r"\p{Greek}+|\s+"), ["pre_tokenizer.pretokenizers[0].pattern", r"\p{Greek}"]),
        ("llama-3.2", _replace_first_split(r"(?i:'st)"), ["pre_tokenizer.pretokenizers[0].pattern", "'st'"]),
        ("qwen3", lambda c: c.update(normalizer={"type": "Nmt"}), ["normalizer.type", "Nmt"]),
        ("deepseek-v3", lambda c: c["normalizer"]["normalizers"].append({"type": "ByteLevel"}), ["normalizer.normalizers[0].type", "ByteLevel"]),
        ("gpt2", lambda c: c.update(pre_tokenizer={"type": "FixedLength", "length": 5}), ["pre_tokenizer.type", "FixedLength"]),
        ("llama-3.2", lambda c: c["pre_tokenizer"]["pretokenizers"].reverse(), ["pre_tokenizer", "ByteLevel"]),
        ("gpt-4o", lambda c: c["pre_tokenizer"]["pretokenizers"][0].update(behavior="Merged"), ["pretokenizers[0].behavior", "Merged"]),
        ("gpt2", lambda c: c.update(decoder={"type": "Unknown"}), ["decoder.type", "Unknown"]),
        ("gpt2", lambda c: c.update(post_processor={"type": "Unknown"}), ["post_processor.type", "Unknown"]),
        ("gpt2", lambda c: c["model"].update(dropout=0.1), ["model.dropout"]),
        ("gpt2", lambda c: c["model"]["merges"].append(["zzzq", "qqqz"]), ["model.merges[50000]", "zzzq"]),
    ],
)
def test_unsupported_stage_is_named(name: str, edit, expected: list[str]) -> None:
    message = _refusal(name, edit)
    for part in expected:
        assert part in message, message


def test_invalid_json_is_refused() -> None:
    with pytest.raises(UnsupportedTokenizer, match="not valid JSON"):
        Tokenizer.from_str("{")
    with pytest.raises(UnsupportedTokenizer, match="JSON object"):
        Tokenizer.from_str("[]")


def test_configs_are_not_mutated() -> None:
    """Loading reads the config only: the same dict loads twice to the same tokenizer."""
    config = json.loads(base("gpt2"))
    snapshot = copy.deepcopy(config)
    Tokenizer(config)
    assert config == snapshot


def test_merges_out_of_rank_order_on_long_words() -> None:
    """A merge whose input is made by a later merge: the long-word loop must interrupt a rank."""
    config = tiny_bpe()
    config["model"]["merges"] = [["ab", "c"], ["s", "t"], ["a", "b"], ["er", "s"], ["e", "r"], ["Ġ", "a"]]
    text = json.dumps(config)
    ours, hf = Tokenizer.from_str(text), HFTokenizer.from_str(text)
    for word in ("abc" * 1000, "abcabab" * 500 + "ers" * 700, "ab" * 1500 + "c"):
        assert len(word) >= 2048
        assert ours.encode(word) == hf.encode(word).ids


def test_a_merge_listed_twice_keeps_its_last_rank() -> None:
    """HF's merge map keeps the rank a pair is listed at last; every merge loop must agree."""
    config = tiny_bpe()
    vocab = config["model"]["vocab"]
    vocab["bc"] = len(vocab)
    config["model"]["merges"] += [["b", "c"], ["a", "b"]]  # (a, b) is now first and last
    text = json.dumps(config)
    ours, hf = Tokenizer.from_str(text), HFTokenizer.from_str(text)
    # At its last rank (a, b) comes after (b, c): "abc" is a + bc, not ab + c -> abc.
    assert ours.encode("abc") == [vocab["a"], vocab["bc"]]
    for word in ("abc", "abc" * 10, "abc" * 1000):  # the tiny, short and long merge loops
        assert ours.encode(word) == hf.encode(word).ids
