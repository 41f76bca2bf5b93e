"""The heap baked into a tokenizer component stays shared: a request reads it without copying it.

An instance's linear memory is a private (copy-on-write) mapping of the component's
memory image: the compiled `.cwasm` (or a memfd, should wasmtime not map the file
itself). /proc/self/pagemap tells, page by page, whether the mapping still shows the
image (bit 61) or a private copy, so the test counts the pages a first encode copied.
For this prompt: 291 with a mortal heap; 185 with the heap immortal; 67 with, besides,
the build's free chunks taken, `random` and `weakref` baked and the exports' bytecode
specialized. The rest are pages the interpreter really writes: its own state, the
stack, the random generator it reseeds, the few objects a request makes.
"""

from __future__ import annotations

import contextlib
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgepop import corpora
from edgepop.runtime import Instance, Runtime
from edgepop.tokenizer import TokenizerSession

from support import component_path

PAGE = 4096
PAGEMAP = Path("/proc/self/pagemap")
# Pages a first encode of the prompt below may copy (measured: 67; 185 before the free
# chunks were taken, 291 with a mortal heap).
MAX_PAGES_COPIED = 100

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/pagemap")


def test_a_first_encode_copies_few_pages_of_the_baked_heap(runtime: Runtime, code_corpus: list[corpora.Document]) -> None:
    prompt = code_corpus[1].text.encode("utf-8")[:1024].decode("utf-8", "ignore")
    with _instance_and_image(runtime) as (instance, image):
        TokenizerSession(instance).encode_packed(prompt)
        copied = _pages_copied(*image)
    assert 0 < copied <= MAX_PAGES_COPIED


@contextlib.contextmanager
def _instance_and_image(runtime: Runtime) -> Iterator[tuple[Instance, tuple[int, int]]]:
    """A new instance of the Llama 3.2 component, and the address range of its memory image."""
    loaded = runtime.load(component_path("llama-3.2"))
    before = _image_mappings()
    instance = loaded.instantiate()
    try:
        new = _image_mappings() - before
        assert len(new) == 1, f"expected one new mapping of a memory image, found {sorted(new)}"
        yield instance, new.pop()
    finally:
        instance.close()


def _image_mappings() -> set[tuple[int, int]]:
    """Writable private mappings of memory images: instances' linear memories."""
    found = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "rw-p" and (fields[5].endswith(".cwasm") or "wasm-memory-image" in fields[5]):
            start, end = (int(address, 16) for address in fields[0].split("-"))
            found.add((start, end))
    return found


def _pages_copied(start: int, end: int) -> int:
    """Pages of [start, end) present in memory and no longer backed by the file."""
    with PAGEMAP.open("rb") as pagemap:
        pagemap.seek(start // PAGE * 8)
        entries = pagemap.read((end - start) // PAGE * 8)
    present, file_backed = 1 << 63, 1 << 61
    return sum(1 for (entry,) in struct.iter_unpack("<Q", entries) if entry & present and not entry & file_backed)
