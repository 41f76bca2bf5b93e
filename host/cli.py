"""The `edgepop` command line: build, inspect, run and check components."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

import httpx
import uvicorn

from . import corpora
from .build import COMPONENTS_DIR, DEFAULT_MAX_INPUT_BYTES, BuildError, build_rag, build_tokenizer
from .config import Limits, MiB, RuntimeConfig
from .conformance import check, fuzz_documents, load_reference
from .errors import EdgepopError, GuestTrap
from .kb.builder import build as build_kb
from .kb.builder import update as update_kb
from .kb.embedder import Embedder
from .kb.store import QUANTIZATION, QUANTIZATIONS, KnowledgeBase
from .origin import create_app as create_origin_app
from .pop import config as pop_config
from .pop.app import create_app
from .pop.demo_kb import ensure_demo_kb
from .pop.demo_origin import create_app as create_demo_origin_app
from .pop.state import DEMO_TOKENIZER_JSON
from .progress import Progress
from .rag import Capabilities, RagComponent, RagSession
from .runtime import Runtime
from .tokenizer import TokenizeError, TokenizerComponent, TokenizerSession
from .worlds import shape

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DEFAULT_RAG_COMPONENT = COMPONENTS_DIR / "rag.wasm"
DEFAULT_TOKENIZER_COMPONENT = COMPONENTS_DIR / "llama-3.2.wasm"
# Lines of each passage `edgepop retrieve` shows.
PREVIEW_LINES = 6


class UsageError(EdgepopError):
    """Bad input on the command line: exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as e:
        print(f"edgepop: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (EdgepopError, OSError) as e:
        print(f"edgepop: error: {e}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgepop", description="AI pre-processing at the network edge.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    limits = argparse.ArgumentParser(add_help=False)
    limits.add_argument("--memory-limit-mib", type=int, default=Limits.memory_bytes // MiB,
                        help="linear memory per instance (default: %(default)s)")
    limits.add_argument("--deadline-ms", type=int, default=Limits.call_deadline_ms,
                        help="CPU deadline per call into the component (default: %(default)s)")
    limits.add_argument("--cache-dir", type=Path, help="where compiled components are kept")

    build = commands.add_parser("build", help="build a component")
    kinds = build.add_subparsers(required=True, metavar="KIND")
    tok = kinds.add_parser("tokenizer", parents=[limits], help="bake a tokenizer.json into a tokenizer component")
    tok.add_argument("--tokenizer-json", type=Path, required=True, help="the model's tokenizer.json")
    tok.add_argument("-o", "--output", type=Path, required=True, help="the .wasm to write")
    tok.add_argument("--name", help="model name (default: the tokenizer.json's directory name)")
    tok.add_argument("--max-context", type=int, help="context window in tokens (default: tokenizer_config.json's)")
    tok.add_argument("--max-input-bytes", type=int, default=DEFAULT_MAX_INPUT_BYTES,
                     help="largest text the component accepts (default: %(default)s)")
    tok.set_defaults(run=_build_tokenizer)
    rag_build = kinds.add_parser("rag", help="build the RAG component (it bakes no data)")
    rag_build.add_argument("-o", "--output", type=Path, required=True, help="the .wasm to write")
    rag_build.set_defaults(run=_build_rag)

    rag = argparse.ArgumentParser(add_help=False, parents=[limits])
    rag.add_argument("--kb", type=Path, required=True, help="knowledge base directory (edgepop index build)")
    rag.add_argument("--component", type=Path, default=DEFAULT_RAG_COMPONENT,
                     help="the RAG component (default: %(default)s)")
    rag.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER_COMPONENT,
                     help="tokenizer component that counts budgets (default: %(default)s)")
    rag.add_argument("--json", action="store_true", help="machine-readable output")

    retrieve = commands.add_parser("retrieve", parents=[rag], help="passages of a knowledge base related to a query")
    retrieve.add_argument("query")
    retrieve.add_argument("-k", type=int, default=10, help="passages to return (default: %(default)s)")
    retrieve.add_argument("--path-prefix", help="only passages from paths starting with this")
    retrieve.set_defaults(run=_retrieve)

    augment = commands.add_parser("augment", parents=[rag], help="a prompt with related passages, within a token budget")
    augment.add_argument("prompt")
    augment.add_argument("--budget", type=int, required=True, help="token budget of the augmented prompt")
    augment.set_defaults(run=_augment)

    tokenize = commands.add_parser("tokenize", parents=[limits], help="tokenize text with a tokenizer component")
    tokenize.add_argument("--component", type=Path, required=True)
    source = tokenize.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="the text to tokenize")
    source.add_argument("--file", type=Path, help="tokenize this file's UTF-8 text")
    source.add_argument("--jsonl", action="store_true",
                        help='read {"text": ...} lines from stdin, write {"ids": [...], "count": N} lines')
    tokenize.add_argument("--no-special", action="store_true", help="do not add the model's special tokens")
    tokenize.add_argument("--offsets", action="store_true",
                          help='also write "offsets": the [start, end) character span of the text each token comes from')
    tokenize.set_defaults(run=_tokenize)

    decode = commands.add_parser("decode", parents=[limits], help="turn token ids back into text")
    decode.add_argument("--component", type=Path, required=True)
    decode.add_argument("ids", nargs="+", help="token ids")
    decode.add_argument("--keep-special", action="store_true", help="keep special tokens in the text")
    decode.set_defaults(run=_decode)

    info = commands.add_parser("info", parents=[limits], help="describe a component")
    info.add_argument("component", type=Path)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=_info)

    conf = commands.add_parser("conformance", parents=[limits],
                               help="compare a tokenizer component with HF tokenizers on real and random text")
    conf.add_argument("component", type=Path)
    conf.add_argument("--tokenizer-json", type=Path, required=True, help="the tokenizer.json it was built from")
    conf.add_argument("--corpus", default="code,multilingual,fuzz",
                      help="comma-separated: code, multilingual, fuzz (default: %(default)s)")
    conf.add_argument("--code-bytes", type=int, default=5_000_000, help="bytes of stdlib source (default: %(default)s)")
    conf.add_argument("--fuzz", type=int, default=2000, help="random texts (default: %(default)s)")
    conf.add_argument("--seed", type=int, default=0)
    conf.add_argument("--show", type=int, default=5, help="mismatches to print (default: %(default)s)")
    conf.set_defaults(run=_conformance)

    index = commands.add_parser("index", help="build, update and check knowledge bases for RAG")
    actions = index.add_subparsers(required=True, metavar="ACTION")
    index_build = actions.add_parser("build", help="chunk and embed files into a knowledge base")
    index_build.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="files and directories")
    index_build.add_argument("--out", type=Path, required=True, metavar="KB_DIR",
                             help="the knowledge base to write (a knowledge base there is replaced)")
    index_build.add_argument("--quantization", choices=tuple(QUANTIZATIONS), default=QUANTIZATION,
                             help="how the HNSW index stores vectors (default: %(default)s)")
    index_build.add_argument("--strip-docstrings", action="store_true",
                             help="blank Python docstrings (to evaluate retrieval by docstring queries)")
    index_build.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                             help="leave out what matches, as in .gitignore: a name (site-packages), "
                                  "a path from the root (/test) or a path glob; repeatable")
    index_build.set_defaults(run=_index_build)
    index_update = actions.add_parser("update", help="re-read the sources, embed only new and changed files")
    index_update.add_argument("kb_dir", type=Path, metavar="KB_DIR")
    index_update.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="files and directories")
    index_update.set_defaults(run=_index_update)
    index_info = actions.add_parser("info", help="what a knowledge base holds (its manifest)")
    index_info.add_argument("kb_dir", type=Path, metavar="KB_DIR")
    index_info.add_argument("--json", action="store_true", help="the manifest as it is")
    index_info.set_defaults(run=_index_info)
    index_verify = actions.add_parser("verify", help="check every file of a knowledge base against its sha256")
    index_verify.add_argument("kb_dir", type=Path, metavar="KB_DIR")
    index_verify.set_defaults(run=_index_verify)

    serve = commands.add_parser("serve", help="run a PoP: the OpenAI-compatible edge endpoint")
    serve.add_argument("--config", type=Path, metavar="POP_TOML",
                       help="what to serve (default: Llama 3.2 with RAG over the demo KB, demo origin)")
    serve.add_argument("--host", help="listen address (overrides the config)")
    serve.add_argument("--port", type=int, help="listen port (overrides the config)")
    serve.set_defaults(run=_serve)
    origin = commands.add_parser("origin", help="run the adapter next to a model server: token frames in, completions out")
    origin.add_argument("--upstream", required=True, metavar="URL", help="the OpenAI-compatible model server")
    origin.add_argument("--host", default="127.0.0.1")
    origin.add_argument("--port", type=int, default=9000)
    origin.set_defaults(run=_origin)
    demo = commands.add_parser("demo-origin", help="run the demo origin alone (a labelled echo, not a model)")
    demo.add_argument("--tokenizer-json", type=Path, default=DEMO_TOKENIZER_JSON,
                      help="the model's tokenizer.json, to decode and count ids")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=9100)
    demo.set_defaults(run=_demo_origin)
    deploy = commands.add_parser("deploy", help="upload a component to a PoP's operator API and activate it")
    deploy.add_argument("component", type=Path, metavar="COMPONENT.wasm")
    deploy.add_argument("--to", required=True, metavar="URL", help="the PoP, e.g. http://127.0.0.1:8080")
    deploy.add_argument("--name", required=True, help="the component's name in the PoP's store")
    deploy.add_argument("--token", help="admin token (default: $EDGEPOP_ADMIN_TOKEN)")
    deploy.add_argument("--no-activate", action="store_true", help="store the version without activating it")
    deploy.set_defaults(run=_deploy)
    return parser


def _config(args: argparse.Namespace) -> RuntimeConfig:
    limits = Limits(memory_bytes=args.memory_limit_mib * MiB, call_deadline_ms=args.deadline_ms)
    if args.cache_dir:
        return RuntimeConfig(limits=limits, cache_dir=args.cache_dir)
    return RuntimeConfig(limits=limits)


def _runtime(args: argparse.Namespace) -> Runtime:
    return Runtime(_config(args))


def _build_tokenizer(args: argparse.Namespace) -> int:
    try:
        built = build_tokenizer(
            args.tokenizer_json, args.output,
            model_name=args.name, max_context_length=args.max_context,
            max_input_bytes=args.max_input_bytes, runtime_config=_config(args),
        )
    except BuildError as e:
        raise UsageError(str(e)) from None
    context = f"{built.max_context_length:,}" if built.max_context_length else "unknown"
    print(
        f"built {built.path} ({built.size_bytes / MiB:.1f} MiB): {built.model_name}, "
        f"{built.vocab_size:,} ids, {built.special_tokens} special tokens, context {context}, "
        f"source sha256 {built.source_sha256[:16]}..."
    )
    return EXIT_OK


def _build_rag(args: argparse.Namespace) -> int:
    try:
        out = build_rag(args.output)
    except BuildError as e:
        print(f"edgepop: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"built {out} ({out.stat().st_size / MiB:.1f} MiB)")
    return EXIT_OK


def _rag_session(args: argparse.Namespace, runtime: Runtime) -> RagSession:
    """A RAG session over `--kb`, counting with `--tokenizer`."""
    for flag, path in (("--component", args.component), ("--tokenizer", args.tokenizer)):
        if not path.exists():
            raise UsageError(f"{flag} {path} does not exist (make build builds the default one)")
    embedder = Embedder()
    kb = KnowledgeBase.open(args.kb, model=embedder.name, dimensions=embedder.dimensions)
    rag = RagComponent(runtime, args.component, Capabilities(embedder, kb), runtime.load(args.tokenizer))
    return rag.session()


def _retrieve(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        with _rag_session(args, runtime) as session:
            retrieval = session.retrieve(args.query, args.k, args.path_prefix)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(asdict(retrieval), ensure_ascii=False))
        return EXIT_OK
    if retrieval.query_truncated:
        print(f"note: the query was cut to its first {retrieval.query_tokens} tokens to embed it", file=sys.stderr)
    for rank, passage in enumerate(retrieval.passages, 1):
        name = f"  {passage.source.qualified_name}" if passage.source.qualified_name else ""
        print(f"{rank:>2}. [{passage.source.citation()}]{name}  score {passage.score:.3f}")
        lines = [line for line in passage.text.splitlines() if line.strip()]
        for line in lines[:PREVIEW_LINES]:
            print(f"      {line}")
        if len(lines) > PREVIEW_LINES:
            print(f"      ... {len(lines) - PREVIEW_LINES} more lines")
    return EXIT_OK


def _augment(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        with _rag_session(args, runtime) as session:
            augmented = session.augment(args.prompt, args.budget)
    finally:
        runtime.close()
    if args.json:
        print(json.dumps(asdict(augmented), ensure_ascii=False))
        return EXIT_OK
    print(augmented.prompt)
    cited = ", ".join(p.source.citation() for p in augmented.passages) or "none"
    print(f"\n{augmented.tokens} tokens of a budget of {args.budget}; passages: {cited}", file=sys.stderr)
    for note in augmented.notes:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def _read_text_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{path} is not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} ({e.reason})"
        ) from None


def _tokenize(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        session = TokenizerComponent(runtime.load(args.component)).session()
        add_special = not args.no_special
        if args.jsonl:
            return _tokenize_lines(session, sys.stdin, sys.stdout, add_special, args.offsets)
        text = _read_text_file(args.file) if args.file else args.text
        if text == "":
            raise UsageError(f"{args.file or 'the text'} is empty: there is nothing to tokenize")
        try:
            record = _encoding(session, text, add_special, args.offsets)
        except TokenizeError as e:
            raise UsageError(str(e)) from None
        print(json.dumps(record))
        return EXIT_OK
    finally:
        runtime.close()


def _encoding(session: TokenizerSession, text: str, add_special: bool, offsets: bool) -> dict[str, object]:
    """What `edgepop tokenize` writes for one text: ids, their count, and offsets if asked."""
    if not offsets:
        ids = session.encode(text, add_special)
        return {"ids": ids, "count": len(ids)}
    ids, spans = session.encode_with_offsets(text, add_special)
    return {"ids": ids, "count": len(ids), "offsets": [list(span) for span in spans]}


def _tokenize_lines(session: TokenizerSession, lines: TextIO, out: TextIO, add_special: bool, offsets: bool) -> int:
    """One output line per input line, in order; a bad line gets an error line, never a gap."""
    status = EXIT_OK
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = _encoding(session, _text_of_line(line, number), add_special, offsets)
        except (UsageError, TokenizeError) as e:
            record, status = {"error": str(e), "line": number}, EXIT_FAILED
        except GuestTrap as e:
            record, status = {"error": str(e), "line": number}, EXIT_FAILED
            session = TokenizerSession(session.instance.loaded.instantiate())  # a trapped instance is not reused
        out.write(json.dumps(record) + "\n")
        out.flush()
    return status


def _text_of_line(line: str, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise UsageError(f"line {number} is not JSON: {e}") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise UsageError(f'line {number} has no "text" string')
    if record["text"] == "":
        raise UsageError(f"line {number}: the text is empty: there is nothing to tokenize")
    return record["text"]


def _decode(args: argparse.Namespace) -> int:
    try:
        ids = [int(i) for i in args.ids]
    except ValueError as e:
        raise UsageError(f"token ids must be integers: {e}") from None
    runtime = _runtime(args)
    try:
        component = TokenizerComponent(runtime.load(args.component))
        try:
            print(component.decode(ids, skip_special_tokens=not args.keep_special))
        except TokenizeError as e:
            raise UsageError(str(e)) from None
        return EXIT_OK
    finally:
        runtime.close()


def _info(args: argparse.Namespace) -> int:
    runtime = _runtime(args)
    try:
        loaded = runtime.load(args.component)
        found = shape(loaded.component, runtime.engine)
        world = found.world()
        description: dict[str, object] = {
            "path": str(loaded.path),
            "size_bytes": loaded.path.stat().st_size,
            "sha256": loaded.sha256(),
            "world": world.name if world else None,
            "world_exports": sorted(world.exports) if world else [],
            "imports": list(found.imports),
            "unexpected_imports": found.unexpected_imports(world) if world else [],
            "exports": {name: list(functions) for name, functions in found.exports.items()},
        }
        if world and "edge:ai/tokenizer@0.2.0" in world.exports:
            info = TokenizerComponent(loaded).describe()
            description["tokenizer"] = {
                "model_name": info.model_name,
                "model_type": info.model_type,
                "vocab_size": info.vocab_size,
                "special_tokens": len(info.special_tokens),
                "first_special_tokens": [t.content for t in info.special_tokens[:5]],
                "max_context_length": info.max_context_length,
                "lossless": info.lossless,
                "max_input_bytes": info.max_input_bytes,
                "source_sha256": info.source_sha256,
            }
        if args.json:
            print(json.dumps(description, indent=2))
        else:
            _print_info(description)
        return EXIT_OK
    finally:
        runtime.close()


def _print_info(d: dict) -> None:
    print(f"component  {d['path']} ({d['size_bytes'] / MiB:.1f} MiB)")
    print(f"sha256     {d['sha256']}")
    print(f"world      {d['world'] or 'none of edgepop' + chr(39) + 's worlds'}")
    for name, functions in d["exports"].items():
        outside = "" if d["world"] is None or name in d["world_exports"] else "  (outside the world)"
        print(f"export     {name}: {', '.join(functions)}{outside}")
    wasi = [i for i in d["imports"] if i.startswith("wasi:")]
    print(f"imports    {len(wasi)} WASI 0.2 interfaces (granted without capabilities: "
          "no files, no environment, no network)")
    for name in d["unexpected_imports"]:
        print(f"import     {name}  (not allowed by the world)")
    tok = d.get("tokenizer")
    if tok:
        context = f"{tok['max_context_length']:,} tokens" if tok["max_context_length"] else "unknown"
        print(f"tokenizer  {tok['model_name']} ({tok['model_type']}), {tok['vocab_size']:,} ids, "
              f"{tok['special_tokens']} special tokens ({', '.join(tok['first_special_tokens'])}, ...)")
        print(f"           context {context}; lossless: {'yes' if tok['lossless'] else 'no'}; "
              f"max input {tok['max_input_bytes']:,} bytes")
        print(f"           built from tokenizer.json sha256 {tok['source_sha256']}")


def _conformance(args: argparse.Namespace) -> int:
    wanted = {c.strip() for c in args.corpus.split(",") if c.strip()}
    unknown = wanted - {"code", "multilingual", "fuzz"}
    if unknown:
        raise UsageError(f"unknown corpus {', '.join(sorted(unknown))}; choose from code, multilingual, fuzz")
    try:
        reference = load_reference(args.tokenizer_json)
    except Exception as e:  # tokenizers raises plain Exception for what it cannot parse
        raise UsageError(f"cannot load {args.tokenizer_json} with HF tokenizers: {e}") from None
    runtime = _runtime(args)
    try:
        component = TokenizerComponent(runtime.load(args.component))
        specials = [t.content for t in component.describe().special_tokens]
        suites: list[tuple[str, list[corpora.Document]]] = []
        if "code" in wanted:
            suites.append(("code", corpora.code_corpus(args.code_bytes)))
        if "multilingual" in wanted:
            suites.append(("multilingual", [corpora.Document(lang, text)
                                            for lang, text in corpora.multilingual_corpus().items()]))
        if "fuzz" in wanted:
            suites.append(("fuzz", fuzz_documents(args.fuzz, args.seed, specials)))
        failed = False
        progress = Progress(len(suites) * 2)
        for name, documents in suites:
            for add_special in (True, False):
                with progress.stage(f"{name}, add_special_tokens={add_special}"):
                    report = check(component, reference, documents, add_special_tokens=add_special)
                print(report.summary(f"{name} (add_special_tokens={add_special})"))
                for mismatch in report.mismatches[: args.show]:
                    print("  " + mismatch.describe())
                for problem in (report.round_trip_failures + report.errors)[: args.show]:
                    print("  " + problem)
                failed |= not report.ok
        return EXIT_FAILED if failed else EXIT_OK
    finally:
        runtime.close()


def _index_build(args: argparse.Namespace) -> int:
    report = build_kb(args.sources, args.out, embedder=Embedder(), quantization=args.quantization,
                      strip_docstrings=args.strip_docstrings, exclude=args.exclude)
    print(f"built {report.path}: {report.chunks:,} chunks from {report.files:,} files "
          f"({report.truncated:,} of them over the model's {Embedder.max_tokens} tokens: embedded from their head)")
    if report.skipped:
        print(f"skipped {len(report.skipped):,} files: {_tally(report.skipped.values())}")
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report.seconds.items())
    print(f"time: {stages}; embedding {report.chunks_per_second:.1f} chunks/s")
    return EXIT_OK


def _index_update(args: argparse.Namespace) -> int:
    report = update_kb(args.kb_dir, args.sources, embedder=Embedder())
    if not (report.added or report.changed or report.removed):
        print(f"{report.path} is up to date: {report.unchanged:,} files unchanged, {report.chunks:,} chunks")
        return EXIT_OK
    print(f"updated {report.path}: {len(report.added):,} files added, {len(report.changed):,} changed, "
          f"{len(report.removed):,} removed, {report.unchanged:,} unchanged; "
          f"+{report.chunks_added:,} -{report.chunks_removed:,} chunks, {report.chunks:,} in all")
    for what, paths in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        for path in paths:
            print(f"  {what:<8} {path}")
    if report.skipped:
        print(f"skipped {len(report.skipped):,} files: {_tally(report.skipped.values())}")
    return EXIT_OK


def _index_info(args: argparse.Namespace) -> int:
    with KnowledgeBase.open(args.kb_dir) as kb:
        m = kb.manifest
    if args.json:
        print(m.to_json(), end="")
        return EXIT_OK
    size = sum(entry.bytes for entry in m.files.values())
    print(f"knowledge base  {args.kb_dir} ({size / MiB:.1f} MiB)")
    print(f"model           {m.model}, {m.dimensions} dimensions, up to {m.max_tokens} tokens a chunk "
          f"(sha256 {m.model_sha256[:16]}...)")
    print(f"index           usearch HNSW, {m.metric}, {m.quantization}")
    print(f"chunks          {m.chunk_count:,} from {m.source_files:,} files (next id {m.next_chunk_id:,})")
    print(f"root            {m.root}")
    for source in m.sources:
        print(f"source          {source}")
    if m.exclude:
        print(f"excluded        {', '.join(m.exclude)}")
    print(f"docstrings      {'stripped' if m.strip_docstrings else 'kept'}")
    print(f"built           {m.built_at}" + (f", updated {m.updated_at}" if m.updated_at else ""))
    for name, entry in m.files.items():
        print(f"file            {name:<14} {entry.bytes / MiB:8.1f} MiB  sha256 {entry.sha256}")
    return EXIT_OK


def _index_verify(args: argparse.Namespace) -> int:
    with KnowledgeBase.open(args.kb_dir) as kb:
        kb.verify()
        size = sum(entry.bytes for entry in kb.manifest.files.values())
        print(f"{args.kb_dir}: all {len(kb.manifest.files)} files match their sha256 ({size / MiB:.1f} MiB read)")
    return EXIT_OK


def _tally(reasons: Iterable[str]) -> str:
    """Reasons counted, most frequent first: "96 binary, 2 not UTF-8"."""
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items(), key=lambda item: -item[1]))


def _serve(args: argparse.Namespace) -> int:
    config = pop_config.load(args.config) if args.config else pop_config.default()
    config = dataclasses.replace(config, host=args.host or config.host,
                                 port=args.port if args.port is not None else config.port)
    if args.config is None:
        for model in config.models:
            if model.rag is not None:
                ensure_demo_kb(model.rag.kb)
    request_log = logging.getLogger("edgepop.pop")  # one JSON line per request
    request_log.addHandler(logging.StreamHandler(sys.stdout))
    request_log.setLevel(logging.INFO)
    print(f"edgepop PoP on http://{config.host}:{config.port}/v1 serving "
          f"{', '.join(m.name for m in config.models)}", flush=True)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning")
    return EXIT_OK


def _origin(args: argparse.Namespace) -> int:
    print(f"edgepop origin on http://{args.host}:{args.port}, forwarding to {args.upstream}", flush=True)
    uvicorn.run(create_origin_app(args.upstream), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _demo_origin(args: argparse.Namespace) -> int:
    print(f"edgepop demo origin (an echo, not a model) on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(create_demo_origin_app(args.tokenizer_json), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def _deploy(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("EDGEPOP_ADMIN_TOKEN")
    if not token:
        raise UsageError("no admin token: pass --token or set EDGEPOP_ADMIN_TOKEN")
    try:
        data = args.component.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {args.component}: {e.strerror}") from None
    url = f"{args.to.rstrip('/')}/admin/components/{args.name}"
    try:
        response = httpx.put(url, content=data, params={"activate": "0" if args.no_activate else "1"},
                             headers={"authorization": f"Bearer {token}", "content-type": "application/wasm"},
                             timeout=httpx.Timeout(300.0, connect=5.0))
    except httpx.HTTPError as e:
        print(f"edgepop: error: cannot reach {url}: {e}", file=sys.stderr)
        return EXIT_FAILED
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"message": response.text}}
    if response.status_code >= 400:
        print(f"edgepop: error: the PoP refused {args.component.name} ({response.status_code}): "
              f"{body.get('error', {}).get('message', body)}", file=sys.stderr)
        return EXIT_FAILED
    version = body["version"]
    state = "active" if version.get("active") else "stored, not active"
    print(f"{args.name}: {version['sha256'][:16]}... ({version['size'] / MiB:.1f} MiB, {version['world']}) {state}"
          f"{' (already uploaded)' if response.status_code == 200 else ''}")
    return EXIT_OK
