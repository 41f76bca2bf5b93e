"""Bytes on the PoP -> origin link per request: the prompt as text, as JSON ids, as edgepop frames.

Usage: python tools/payload_report.py [--prompts N] [--out build/bench/payload.md]

Prompts of about 1, 4 and 16 KB of UTF-8 are cut, at line ends, from the two corpora
(edgepop.corpora: the standard library's code; translated messages in 150+ languages),
N of each size spread evenly over the corpus. Each becomes the request an origin would
get, tokenized by Llama 3.2's tokenizer.json through HF `tokenizers` (the oracle the
tokenizer component matches, special tokens included as the component adds them):

- OpenAI's /v1/completions body with the prompt as text, and with it as a JSON list of
  ids, both serialized as httpx sends JSON (compact, UTF-8 unescaped), and zstd'd;
- the edgepop frame (edgepop.transport), varint and bitpacked ids, with and without zstd.

Every request is compressed on its own (zstd level 3, no shared dictionary), as it would
be on the link. Byte counts are exact and machine-independent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import zstandard
from tokenizers import Tokenizer

from edgepop import corpora, transport

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_JSON = ROOT / "build" / "tokenizers" / "llama-3.2" / "tokenizer.json"
OUT = ROOT / "build" / "bench" / "payload.md"
SIZES = {"~1 KB": 1024, "~4 KB": 4096, "~16 KB": 16384}
MODEL = "meta-llama/Llama-3.2-1B-Instruct"
PARAMS = {"model": MODEL, "max_tokens": 256}
TEXT, TEXT_ZSTD = "JSON, prompt as text", "JSON, prompt as text, zstd"

_zstd = zstandard.ZstdCompressor(level=transport.ZSTD_LEVEL)


def _json(prompt: object) -> bytes:
    return json.dumps({**PARAMS, "prompt": prompt}, ensure_ascii=False, separators=(",", ":")).encode()


def requests(text: str, ids: list[int]) -> dict[str, bytes]:
    """One prompt as the request body of each representation."""
    as_text, as_ids = _json(text), _json(ids)
    return {
        TEXT: as_text,
        TEXT_ZSTD: _zstd.compress(as_text),
        "JSON, prompt as ids": as_ids,
        "JSON, prompt as ids, zstd": _zstd.compress(as_ids),
        **{f"frame, {coding}{', zstd' if compress else ''}":
           transport.encode_request(ids, PARAMS, coding=coding, compress=compress)
           for coding in ("varint", "bitpack") for compress in (False, True)},
    }


UNCOMPRESSED_FRAMES = ("frame, varint", "frame, bitpack")


def pieces(text: str, size: int) -> Iterator[str]:
    """Consecutive runs of whole lines of text, each the first to reach size bytes of UTF-8."""
    lines: list[str] = []
    length = 0
    for line in text.splitlines(keepends=True):
        lines.append(line)
        length += len(line.encode())
        if length >= size:
            yield "".join(lines)
            lines, length = [], 0


def prompts(texts: list[str], size: int, count: int) -> list[str]:
    """count pieces of about size bytes, spread evenly over texts (pieces never span two texts)."""
    pool = [piece for text in texts for piece in pieces(text, size)]
    if len(pool) <= count:
        return pool
    return [pool[i * len(pool) // count] for i in range(count)]


def measure(tokenizer: Tokenizer, texts: list[str], count: int) -> dict[str, dict]:
    """Per prompt size: prompt count, total text bytes and tokens, total bytes per representation."""
    rows = {}
    for label, size in SIZES.items():
        chosen = prompts(texts, size, count)
        totals: dict[str, int] = {}
        tokens = 0
        for text in chosen:
            ids = tokenizer.encode(text).ids
            tokens += len(ids)
            for name, body in requests(text, ids).items():
                totals[name] = totals.get(name, 0) + len(body)
        rows[label] = {"prompts": len(chosen), "text_bytes": sum(len(t.encode()) for t in chosen),
                       "tokens": tokens, "bytes": totals}
    return rows


def render(results: dict[str, dict[str, dict]]) -> str:
    lines = [
        "Bytes per request on the PoP -> origin link, averaged over the prompts of each size; in",
        "brackets, the ratio to the plain JSON request with the prompt as text. Smallest in bold.",
        f"Tokenizer: Llama 3.2 (HF `tokenizers`); body `{json.dumps(PARAMS)}` plus the prompt;",
        f"zstd level {transport.ZSTD_LEVEL}, each request on its own.",
        "",
    ]
    for corpus, rows in results.items():
        labels = list(rows)
        lines += [f"#### {corpus}", "", "| per request | " + " | ".join(labels) + " |",
                  "|---|" + "---:|" * len(labels)]
        lines.append("| prompts; text, tokens | " + " | ".join(
            f"{r['prompts']}; {r['text_bytes'] / r['prompts']:,.0f} B, {r['tokens'] / r['prompts']:,.0f} tok"
            for r in rows.values()) + " |")
        for name in next(iter(rows.values()))["bytes"]:
            cells = []
            for r in rows.values():
                total = r["bytes"][name]
                cell = f"{total / r['prompts']:,.0f} B ({total / r['bytes'][TEXT]:.2f})"
                cells.append(f"**{cell}**" if total == min(r["bytes"].values()) else cell)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["What the numbers say:", ""]
    for corpus, rows in results.items():
        for label, r in rows.items():
            lines.append(f"- {corpus}, {label}: {_finding(r['bytes'])}")
    return "\n".join(lines) + "\n"


def _finding(sizes: dict[str, int]) -> str:
    def ratio(name: str) -> str:
        return f"{sizes[name] / sizes[TEXT]:.2f}"

    best = min(sizes, key=sizes.get)
    frame = min((name for name in sizes if name.startswith("frame")), key=sizes.get)
    raw = min(UNCOMPRESSED_FRAMES, key=sizes.get)
    said = [f"smallest: {best} ({ratio(best)})"]
    if sizes[TEXT_ZSTD] < sizes[raw]:
        said.append(f"zstd'd text ({ratio(TEXT_ZSTD)}) is smaller than ids without zstd ({raw}, {ratio(raw)})")
    else:
        said.append(f"ids without zstd ({raw}, {ratio(raw)}) are smaller than zstd'd text ({ratio(TEXT_ZSTD)})")
    change = sizes[frame] / sizes[TEXT_ZSTD] - 1
    direction = "smaller" if change < 0 else "larger"
    said.append(f"the best frame ({frame}) is {abs(change):.0%} {direction} than zstd'd text")
    return "; ".join(said) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=300, help="prompts per size and corpus (default 300)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help=f"Markdown file to write (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if not TOKENIZER_JSON.exists():
        sys.exit(f"{TOKENIZER_JSON} is missing: run `python tools/fetch_tokenizers.py llama-3.2`")
    start = time.perf_counter()
    tokenizer = Tokenizer.from_file(str(TOKENIZER_JSON))
    code = "".join(doc.text for doc in corpora.code_corpus())
    languages = corpora.multilingual_corpus()
    results = {
        "code (Python standard library)": measure(tokenizer, [code], args.prompts),
        f"multilingual ({len(languages)} languages)": measure(tokenizer, list(languages.values()), args.prompts),
    }
    report = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report, end="")
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
